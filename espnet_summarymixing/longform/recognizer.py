"""Long recordings transcribed with timed words: one pass through the encoder, or segments.

``one_pass`` (the default here) puts the whole recording through the model's encoder at once, its
front end and subsampling computed in blocks (:mod:`.blocked`): a SummaryMixing encoder's memory
is linear in the length and every frame's summary is the whole recording's (or, with
``summary_window_seconds``, that of the frames around it; with ``summary_pause_seconds``, that of
its stretch between two pauses). ``segmented`` decodes such a pass to find the pauses, cuts the
recording in their middle (and pieces longer than ``segment_seconds`` at their quietest 10 ms
frames), encodes the pieces one by one and joins their posteriors. Either way the posteriors are decoded by CTC (greedy, or prefix beam search
with an optional LM) and the words timed by CTC segmentation (:mod:`.align`).
"""

from dataclasses import dataclass, field
from typing import Iterator, List, Optional, Sequence, Tuple

import torch

from espnet_summarymixing.encoders.base import SummaryMixingEncoderBase
from espnet_summarymixing.frames.input_layer import InputLayer
from espnet_summarymixing.frames.normalize import normalize
from espnet_summarymixing.longform.align import timed_words, words_of
from espnet_summarymixing.longform.blocked import blocked
from espnet_summarymixing.longform.ctc_search import Hypothesis, LMScorer, greedy, prefix_beam_search
from espnet_summarymixing.longform.subtitles import Word

__all__ = ["LongFormRecognizer", "Transcript", "quiet_cuts", "pause_cuts", "MODES", "DECODINGS"]

MODES = ("auto", "one_pass", "segmented")
DECODINGS = ("greedy", "beam")


def quiet_cuts(wave: torch.Tensor, rate: int, max_seconds: float, search_seconds: float = 2.0) -> Iterator[Tuple[int, int]]:
    """(start, end) samples of pieces of at most ``max_seconds``, each cut at the quietest 10 ms
    frame of the last ``search_seconds`` before the limit."""
    limit = int(max_seconds * rate)
    hop = max(1, rate // 100)
    start, n = 0, wave.numel()
    while n - start > limit:
        lo = start + max(hop, limit - int(search_seconds * rate))
        window = wave[lo:start + limit]
        frames = window[: window.numel() // hop * hop].view(-1, hop).pow(2).mean(dim=1)
        cut = lo + int(torch.argmin(frames)) * hop + hop // 2
        yield start, cut
        start = cut
    yield start, n


def pause_cuts(frames: List[int], pause: int) -> List[int]:
    """Frames in the middle of every gap of more than ``pause`` frames between consecutive tokens."""
    return [(a + b + 1) // 2 for a, b in zip(frames, frames[1:]) if b - a > pause]


@dataclass
class Transcript:
    """A recording's text, its timed words, and the decoder's hypothesis (tokens, frames)."""

    text: str
    words: List[Word] = field(default_factory=list)
    duration: float = 0.0
    hypothesis: Optional[Hypothesis] = None


class LongFormRecognizer:
    """Transcribe a whole recording with an ESPnet ASR model that has a CTC branch.

    Args:
        model: ESPnet's ASR model (``ESPnetASRModel``), in eval mode or not (it is put in eval).
        train_args: Its training arguments (the token list).
        rate: Its sample rate.
        mode: ``one_pass`` or ``segmented`` (see the module), or ``auto``: a recording of at most
            ``segment_seconds`` in one pass (as the model was trained: whole utterances), a longer
            one segmented (:meth:`mode_for`).
        decoding: ``greedy`` or ``beam`` (CTC prefix beam search).
        beam_size: Prefixes kept by ``beam``.
        lm: Optional LM scorer for ``beam`` (:func:`~.ctc_search.espnet_lm_scorer`), with ``lm_weight``.
        segment_seconds: Longest piece in ``segmented`` mode.
        segment_pause_seconds: ``segmented`` mode cuts in the middle of every pause longer than this
            between the tokens of a first one-pass decoding (0 = only at quiet frames, for length).
        block_seconds: Block of the front end and subsampling in ``one_pass`` mode.
        summary_window_seconds: 0 = each frame's summary is over the whole recording (as trained
            on whole utterances); > 0 = over the frames within that many seconds of it (SummaryMixing
            encoders only).
        summary_pause_seconds: > 0 = two passes (one_pass mode, SummaryMixing encoders): the first
            finds the pauses longer than this between decoded tokens, the second gives each frame the
            summary of its own stretch between two such pauses, as if each were an utterance.
        word_pause_seconds: Tokens further apart than this are different words even without a word
            boundary token between them (0 = off).
        timestamps: Time the words (CTC segmentation); False gives the text alone.
    """

    def __init__(self, model, train_args, rate: int, mode: str = "one_pass", decoding: str = "greedy",
                 beam_size: int = 10, lm: Optional[LMScorer] = None, lm_weight: float = 0.0,
                 segment_seconds: float = 30.0, segment_pause_seconds: float = 0.5, block_seconds: float = 60.0,
                 summary_window_seconds: float = 0.0, summary_pause_seconds: float = 0.0,
                 word_pause_seconds: float = 0.0, timestamps: bool = True):
        if mode not in MODES:
            raise ValueError(f"mode={mode!r} is not supported: choose one of {list(MODES)}")
        if decoding not in DECODINGS:
            raise ValueError(f"decoding={decoding!r} is not supported: choose one of {list(DECODINGS)}")
        if getattr(model, "ctc", None) is None:
            raise ValueError("the model has no CTC branch (ctc_weight 0): long-form decoding needs one")
        if segment_seconds <= 2.0:
            raise ValueError(f"segment_seconds={segment_seconds} must be more than 2 seconds")
        self.model = model.eval()
        self.rate = rate
        self.mode, self.decoding, self.beam_size = mode, decoding, beam_size
        self.lm, self.lm_weight = lm, lm_weight
        self.segment_seconds, self.block_seconds = segment_seconds, block_seconds
        self.timestamps = timestamps
        self.token_list = list(train_args.token_list)
        self.blank = self.token_list.index("<blank>") if "<blank>" in self.token_list else 0
        self.frame_seconds = self._frame_seconds()
        for name, value in (("summary_window_seconds", summary_window_seconds),
                            ("summary_pause_seconds", summary_pause_seconds), ("word_pause_seconds", word_pause_seconds)):
            if value < 0:
                raise ValueError(f"{name}={value} must be >= 0 (0 = off)")
            if value and name.startswith("summary") and not isinstance(model.encoder, SummaryMixingEncoderBase):
                raise ValueError(f"{name} needs a SummaryMixing encoder, not {type(model.encoder).__name__}")
        self.window_frames = int(round(summary_window_seconds / self.frame_seconds))
        self.summary_pause_frames = int(round(summary_pause_seconds / self.frame_seconds))
        self.word_pause_frames = int(round(word_pause_seconds / self.frame_seconds))
        if segment_pause_seconds < 0:
            raise ValueError(f"segment_pause_seconds={segment_pause_seconds} must be >= 0 (0 = off)")
        self.segment_pause_frames = int(round(segment_pause_seconds / self.frame_seconds))

    def _frame_seconds(self) -> float:
        """Seconds per encoder output frame: the front end's hop times the subsampling's stride."""
        frontend = self.model.frontend
        hop = getattr(getattr(frontend, "stft", None), "hop_length", None) or getattr(frontend, "hop_length", 160)
        try:
            stride = InputLayer(self.model.encoder.embed).geometry.stride
        except (AttributeError, ValueError):  # an encoder without ESPnet's input layers: no subsampling
            stride = 1
        return hop * stride / self.rate

    def mode_for(self, samples: int) -> str:
        """The mode a recording of ``samples`` samples is decoded in: ``auto`` decodes one of at most
        ``segment_seconds`` whole and segments a longer one."""
        if self.mode != "auto":
            return self.mode
        return "one_pass" if samples <= self.segment_seconds * self.rate else "segmented"

    def cuts(self, wave: torch.Tensor) -> List[Tuple[int, int]]:
        """(start, end) samples of the pieces encoded one by one: the whole recording in ``one_pass``
        mode; in ``segmented`` mode, pieces cut in the middle of the pauses of a first one-pass
        decoding, and pieces longer than ``segment_seconds`` again at their quietest frames."""
        if self.mode_for(wave.numel()) == "one_pass":
            return [(0, wave.numel())]
        bounds = [0]
        if self.segment_pause_frames:  # the pauses of a greedy pass: linear in the length, whatever decoding
            first = greedy(self.log_probs(self._encode_pieces(wave, [(0, wave.numel())])[0]), self.blank)
            step = int(round(self.frame_seconds * self.rate))
            bounds += [frame * step for frame in pause_cuts(first.frames, self.segment_pause_frames)]
        bounds.append(wave.numel())
        return [(a + s, a + e) for a, b in zip(bounds, bounds[1:]) for s, e in quiet_cuts(wave[a:b], self.rate,
                                                                                          self.segment_seconds)]

    @torch.no_grad()
    def encode(self, wave: torch.Tensor, summary_segments: Optional[List[int]] = None) -> torch.Tensor:
        """Encoder output (frames, D) of a mono waveform (samples,) at the model's rate;
        ``summary_segments``: the encoder frames where a new summary segment starts (one pass)."""
        return self._encode_pieces(wave, self.cuts(wave), summary_segments)[0]

    def _encode_one(self, speech: torch.Tensor, lengths: torch.Tensor, summary_segments=None):
        """ESPnet's ``encode`` (front end, normalisation, pre-encoder, encoder, post-encoder), with the
        summary options passed to a SummaryMixing encoder as arguments and the normalisation in memory
        linear in the length (ESPnet's builds a (T + 1)^2 mask: 130 GB for an hour of frames)."""
        model = self.model
        feats, feats_lengths = model._extract_feats(speech, lengths)
        feats, feats_lengths = normalize(model.normalize, feats, feats_lengths)  # linear in the length
        if getattr(model, "preencoder", None) is not None:
            feats, feats_lengths = model.preencoder(feats, feats_lengths)
        options = {}
        if getattr(model.encoder, "interctc_use_conditioning", False) or getattr(model.encoder, "ctc_trim", False):
            options["ctc"] = model.ctc
        if summary_segments is not None:
            options["summary_segments"] = summary_segments
        elif self.window_frames:
            options["summary_window"] = self.window_frames
        enc, enc_lens, _ = model.encoder(feats, feats_lengths, **options)
        if isinstance(enc, tuple):  # intermediate CTC outputs
            enc = enc[0]
        if getattr(model, "postencoder", None) is not None:
            enc, enc_lens = model.postencoder(enc, enc_lens)
        return enc, enc_lens

    def _encode_pieces(self, wave: torch.Tensor, cuts: List[Tuple[int, int]],
                       summary_segments: Optional[List[int]] = None) -> Tuple[torch.Tensor, List[int]]:
        """The pieces' encoder outputs joined, and the frames where the second and later pieces start."""
        device = next(self.model.parameters()).device
        pieces = []
        for start, end in cuts:
            speech = wave[start:end].to(device)[None]
            lengths = torch.tensor([speech.size(1)], device=device)
            with blocked(self.model, self.block_seconds):
                enc, enc_lens = self._encode_one(speech, lengths, summary_segments)
            pieces.append(enc[0, : int(enc_lens[0])])
        starts = [sum(p.size(0) for p in pieces[:i]) for i in range(1, len(pieces))]
        return (torch.cat(pieces) if len(pieces) > 1 else pieces[0]), starts

    def log_probs(self, enc: torch.Tensor, block: int = 4096) -> Iterator[torch.Tensor]:
        """CTC log-probabilities of encoder frames, ``block`` frames at a time."""
        for start in range(0, enc.size(0), block):
            yield self.model.ctc.log_softmax(enc[None, start:start + block])[0].float().cpu()

    def decode(self, enc: torch.Tensor, breaks: Sequence[int] = ()) -> Hypothesis:
        """The CTC hypothesis of encoder frames (greedy or prefix beam search); with ``breaks`` (the frames
        where a separately encoded piece starts), each piece decoded alone and the hypotheses joined: a
        beam search's prefixes then never grow beyond one piece's tokens (its cost per frame grows with
        their length), so a recording of any length costs time linear in its pieces."""
        if self.decoding == "greedy":
            return greedy(self.log_probs(enc), self.blank)
        bounds = [0, *breaks, enc.size(0)]
        joined = Hypothesis()
        for start, end in zip(bounds, bounds[1:]):
            hyp = prefix_beam_search(self.log_probs(enc[start:end]), self.beam_size, self.blank, self.lm,
                                     self.lm_weight)
            joined.tokens += hyp.tokens
            joined.frames += [start + frame for frame in hyp.frames]
            joined.score += hyp.score
        return joined

    @torch.no_grad()
    def __call__(self, wave: torch.Tensor) -> Transcript:
        duration = wave.numel() / self.rate
        enc, breaks = self._encode_pieces(wave, self.cuts(wave))
        hyp = self.decode(enc, breaks)
        if self.summary_pause_frames and self.mode_for(wave.numel()) == "one_pass":
            starts = pause_cuts(hyp.frames, self.summary_pause_frames)
            if starts:
                enc = self.encode(wave, summary_segments=starts)  # the summary of each stretch is its own
                hyp = self.decode(enc)
        text = " ".join(word for word, _ in words_of(hyp, self.token_list, self.word_pause_frames, breaks))
        words: List[Word] = []
        if self.timestamps and hyp.tokens:
            def region(start: int, end: int):
                return self.model.ctc.log_softmax(enc[None, start:end])[0].float().cpu().numpy()

            for word, start, end, confidence in timed_words(region, enc.size(0), hyp, self.token_list,
                                                            self.frame_seconds, self.blank,
                                                            word_pause_frames=self.word_pause_frames,
                                                            breaks=breaks):
                words.append(Word(word, min(start, duration), min(max(start, end), duration),
                                  min(1.0, max(0.0, confidence))))
        return Transcript(text, words, duration, hyp)
