"""Long recordings transcribed with timed words: one pass through the encoder, or segments.

``one_pass`` (the default) puts the whole recording through the model's encoder at once, its
front end and subsampling computed in blocks (:mod:`.blocked`): a SummaryMixing encoder's memory
is linear in the length and every frame's summary is the whole recording's (or, with
``summary_window_seconds``, that of the frames around it). ``segmented`` cuts the recording at its
quietest 10 ms frames into pieces of at most ``segment_seconds``, encodes them one by one and
joins their posteriors. Either way the posteriors are decoded by CTC (greedy, or prefix beam search
with an optional LM) and the words timed by CTC segmentation (:mod:`.align`).
"""

from dataclasses import dataclass, field
from typing import Iterator, List, Optional, Tuple

import torch

from espnet_summarymixing.encoders.base import SUBSAMPLING_STEPS, SummaryMixingEncoderBase
from espnet_summarymixing.longform.align import timed_words
from espnet_summarymixing.longform.blocked import blocked
from espnet_summarymixing.longform.ctc_search import Hypothesis, LMScorer, greedy, prefix_beam_search
from espnet_summarymixing.longform.subtitles import Word

__all__ = ["LongFormRecognizer", "Transcript", "quiet_cuts", "MODES", "DECODINGS"]

MODES = ("one_pass", "segmented")
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
        train_args: Its training arguments (token list, token type, BPE model).
        rate: Its sample rate.
        mode: ``one_pass`` or ``segmented`` (see the module).
        decoding: ``greedy`` or ``beam`` (CTC prefix beam search).
        beam_size: Prefixes kept by ``beam``.
        lm: Optional LM scorer for ``beam`` (:func:`~.ctc_search.espnet_lm_scorer`), with ``lm_weight``.
        segment_seconds: Longest piece in ``segmented`` mode.
        block_seconds: Block of the front end and subsampling in ``one_pass`` mode.
        summary_window_seconds: 0 = each frame's summary is over the whole recording (as trained
            on whole utterances); > 0 = over the frames within that many seconds of it (SummaryMixing
            encoders only).
        timestamps: Time the words (CTC segmentation); False gives the text alone.
    """

    def __init__(self, model, train_args, rate: int, mode: str = "one_pass", decoding: str = "greedy",
                 beam_size: int = 10, lm: Optional[LMScorer] = None, lm_weight: float = 0.0,
                 segment_seconds: float = 30.0, block_seconds: float = 60.0,
                 summary_window_seconds: float = 0.0, timestamps: bool = True):
        from espnet2.text.build_tokenizer import build_tokenizer
        from espnet2.text.token_id_converter import TokenIDConverter

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
        self.converter = TokenIDConverter(token_list=self.token_list)
        self.tokenizer = build_tokenizer(token_type=train_args.token_type, bpemodel=train_args.bpemodel)
        self.blank = self.token_list.index("<blank>") if "<blank>" in self.token_list else 0
        self.frame_seconds = self._frame_seconds()
        if summary_window_seconds < 0:
            raise ValueError(f"summary_window_seconds={summary_window_seconds} must be >= 0 (0 = whole recording)")
        if summary_window_seconds:
            if not isinstance(model.encoder, SummaryMixingEncoderBase):
                raise ValueError(f"summary_window_seconds needs a SummaryMixing encoder, not {type(model.encoder).__name__}")
            model.encoder.set_summary_window(int(round(summary_window_seconds / self.frame_seconds)))

    def _frame_seconds(self) -> float:
        """Seconds per encoder output frame: the front end's hop times the subsampling's stride."""
        frontend = self.model.frontend
        hop = getattr(getattr(frontend, "stft", None), "hop_length", None) or getattr(frontend, "hop_length", 160)
        stride = 1
        for _, s in SUBSAMPLING_STEPS.get(type(getattr(self.model.encoder, "embed", None)), ()):
            stride *= s
        return hop * stride / self.rate

    @torch.no_grad()
    def encode(self, wave: torch.Tensor) -> torch.Tensor:
        """Encoder output (frames, D) of a mono waveform (samples,) at the model's rate."""
        device = next(self.model.parameters()).device
        pieces = []
        cuts = [(0, wave.numel())] if self.mode == "one_pass" else quiet_cuts(wave, self.rate, self.segment_seconds)
        for start, end in cuts:
            speech = wave[start:end].to(device)[None]
            lengths = torch.tensor([speech.size(1)], device=device)
            with blocked(self.model, self.block_seconds):
                enc, enc_lens = self.model.encode(speech, lengths)
            if isinstance(enc, tuple):  # intermediate CTC outputs
                enc = enc[0]
            pieces.append(enc[0, : int(enc_lens[0])])
        return torch.cat(pieces) if len(pieces) > 1 else pieces[0]

    def log_probs(self, enc: torch.Tensor, block: int = 4096) -> Iterator[torch.Tensor]:
        """CTC log-probabilities of encoder frames, ``block`` frames at a time."""
        for start in range(0, enc.size(0), block):
            yield self.model.ctc.log_softmax(enc[None, start:start + block])[0].float().cpu()

    @torch.no_grad()
    def __call__(self, wave: torch.Tensor) -> Transcript:
        duration = wave.numel() / self.rate
        enc = self.encode(wave)
        if self.decoding == "greedy":
            hyp = greedy(self.log_probs(enc), self.blank)
        else:
            hyp = prefix_beam_search(self.log_probs(enc), self.beam_size, self.blank, self.lm, self.lm_weight)
        tokens = self.converter.ids2tokens(hyp.tokens)
        text = self.tokenizer.tokens2text(tokens).strip()
        words: List[Word] = []
        if self.timestamps and hyp.tokens:
            def region(start: int, end: int):
                return self.model.ctc.log_softmax(enc[None, start:end])[0].float().cpu().numpy()

            for word, start, end, confidence in timed_words(region, enc.size(0), hyp, self.token_list,
                                                            self.frame_seconds, self.blank):
                words.append(Word(word, min(start, duration), min(max(start, end), duration),
                                  min(1.0, max(0.0, confidence))))
        return Transcript(text, words, duration, hyp)
