"""Word timings and confidences of a decoded recording, by CTC segmentation.

The decoded tokens are grouped into words, the words into alignment regions cut in the middle of
long pauses (so that each alignment table stays small whatever the recording's length), and each
region's words are aligned to its frame posteriors with the ``ctc-segmentation`` package, as
ESPnet's ``espnet2.bin.asr_align`` does for utterances: each word is one "utterance" of the
aligner, which gives its start and end (ESPnet's convention: half-way between the word's first
token and the label before it, at most 0.5 s before the token; the same after its last one) and the
frames its tokens align to, whose posteriors give the word's confidence (their geometric mean).
"""

import math
from typing import Callable, List, Sequence, Tuple

import numpy as np

from espnet_summarymixing.longform.ctc_search import Hypothesis

__all__ = ["words_of", "regions", "align_region", "timed_words"]

#: A word: its text and the indices of its tokens in the hypothesis.
WordTokens = Tuple[str, List[int]]


def words_of(hyp: Hypothesis, token_list: Sequence[str], pause_frames: int = 0,
             breaks: Sequence[int] = ()) -> List[WordTokens]:
    """Group a hypothesis's tokens into words: ESPnet's character tokens are split at ``<space>``,
    SentencePiece pieces start a word with ``▁``, any other token type is one word per token. With
    ``pause_frames`` > 0, tokens more than that many frames apart also belong to different words (a
    model trained on single utterances never learned to emit a word boundary between two of them), and
    a word never spans one of the frames ``breaks`` (where separately encoded pieces meet)."""
    words: List[WordTokens] = []
    chars = "<space>" in token_list
    pieces = any(tok.startswith("\u2581") for tok in token_list)
    current: List[int] = []
    text = ""

    def flush():
        nonlocal current, text
        if current and text:
            words.append((text, current))
        current, text = [], ""

    for i, token_id in enumerate(hyp.tokens):
        token = token_list[token_id]
        if i and ((pause_frames and hyp.frames[i] - hyp.frames[i - 1] > pause_frames)
                  or any(hyp.frames[i - 1] < b <= hyp.frames[i] for b in breaks)):
            flush()
        if chars:
            if token == "<space>":
                flush()
                continue
            current.append(i)
            text += token
        elif pieces:
            if token.startswith("\u2581"):
                flush()
                token = token[1:]
            current.append(i)
            text += token
        else:
            flush()
            current, text = [i], token
    flush()
    return words


def regions(words: List[WordTokens], frames: Sequence[int], total: int, pause: int, longest: int) -> List[Tuple[int, int, List[int]]]:
    """Cut [0, total) frames into regions (start, end, word indices): a region ends in the middle of
    a pause of more than ``pause`` frames between two words, or of the longest pause once it spans
    more than ``longest`` frames."""
    out: List[Tuple[int, int, List[int]]] = []
    start, members = 0, []
    for w, (_, tokens) in enumerate(words):
        if members:
            last = frames[words[members[-1]][1][-1]]
            first = frames[tokens[0]]
            span = first - start
            if first - last > pause or span > longest:
                cut = (last + first + 1) // 2
                out.append((start, cut, members))
                start, members = cut, []
        members.append(w)
    out.append((start, total, members))
    return out


def align_region(log_probs: np.ndarray, words: List[List[int]], token_list: Sequence[str], frame_seconds: float,
                 blank: int = 0) -> List[Tuple[float, float, float]]:
    """(start, end, confidence) of each word (token ids) in a region's (frames, vocabulary) CTC
    log-probabilities, in seconds from the region's start."""
    try:
        from ctc_segmentation import (CtcSegmentationParameters, ctc_segmentation, determine_utterance_segments,
                                      prepare_token_list)
    except ImportError:
        raise ImportError("word timings need the ctc-segmentation package: "
                          "pip install 'espnet-summarymixing[longform]' (or ctc-segmentation)") from None

    config = CtcSegmentationParameters()
    config.index_duration = frame_seconds
    config.blank = blank
    config.char_list = list(token_list)
    ground_truth, begins = prepare_token_list(config, [np.asarray(w, dtype=np.int64) for w in words])
    timings, char_probs, _ = ctc_segmentation(config, log_probs.astype(np.float32), ground_truth)
    texts = [" ".join(map(str, w)) for w in words]
    segments = determine_utterance_segments(config, begins, char_probs, timings, texts)
    duration = log_probs.shape[0] * frame_seconds
    last = log_probs.shape[0] - 1
    out = []
    for word, begin, (start, end, _) in zip(words, begins, segments):
        # the confidence: geometric mean of the word's token posteriors at the frames they align to
        token_frames = [min(last, int(round(timings[begin + 1 + k] / frame_seconds))) for k in range(len(word))]
        confidence = math.exp(float(np.mean([log_probs[f, tok] for f, tok in zip(token_frames, word)])))
        start = min(max(0.0, float(start)), duration)
        end = min(max(start, float(end)), duration)
        out.append((start, end, confidence))
    return out


def timed_words(log_probs: Callable[[int, int], np.ndarray], total: int, hyp: Hypothesis, token_list: Sequence[str],
                frame_seconds: float, blank: int = 0, pause_seconds: float = 1.0,
                region_seconds: float = 30.0, word_pause_frames: int = 0,
                breaks: Sequence[int] = ()) -> List[Tuple[str, float, float, float]]:
    """(word, start, end, confidence) for every word of ``hyp``, seconds from the recording's start.

    ``log_probs(start, end)`` gives the CTC log-probabilities (frames, vocabulary) of the frames
    [start, end) of the recording's ``total`` frames (one region at a time: a long recording's
    posteriors over a large vocabulary need never exist at once). A region the
    aligner cannot fit (more labels than frames) keeps the decoder's own timing: a word from its
    first token's frame to its last one's, confidence the mean posterior of its tokens there.
    """
    words = words_of(hyp, token_list, word_pause_frames, breaks)
    if not words:
        return []
    pause = max(1, int(round(pause_seconds / frame_seconds)))
    longest = max(pause, int(round(region_seconds / frame_seconds)))
    out: List[Tuple[str, float, float, float]] = []
    for start, end, members in regions(words, hyp.frames, total, pause, longest):
        ids = [[hyp.tokens[i] for i in words[w][1]] for w in members]
        region = log_probs(start, end)
        labels = sum(len(w) for w in ids) + len(ids) + 1
        if labels <= region.shape[0]:
            try:
                times = align_region(region, ids, token_list, frame_seconds, blank)
            except (AssertionError, IndexError):  # the aligner's own refusals
                times = None
        else:
            times = None
        offset = start * frame_seconds
        for k, w in enumerate(members):
            text, tokens = words[w]
            if times is not None:
                s, e, c = times[k]
                out.append((text, offset + s, offset + e, c))
                continue
            first, last = hyp.frames[tokens[0]], hyp.frames[tokens[-1]]
            conf = float(np.mean([math.exp(region[hyp.frames[i] - start, hyp.tokens[i]]) for i in tokens]))
            out.append((text, first * frame_seconds, (last + 1) * frame_seconds, conf))
    return out
