"""Streaming CTC recognition: audio samples in, a growing greedy CTC hypothesis out.

Features are computed as soon as their STFT window is complete (identical to the offline
frontend; the framing is :class:`~espnet_summarymixing.frames.framing.IncrementalStft`, shared
with the ONNX runtime), encoded chunk by chunk
(:class:`~espnet_summarymixing.streaming.encoder.StreamingEncoder`) and decoded greedily with CTC,
labels carried across chunks. Memory stays constant whatever the length of the audio.
"""

import time
from typing import List, Optional

import numpy as np
import torch

from espnet_summarymixing.frames.framing import GreedyCtc, IncrementalStft, feed, latency_seconds, stream_summary
from espnet_summarymixing.frames.normalize import normalize
from espnet_summarymixing.streaming.encoder import StreamingEncoder, trained_chunk_size

__all__ = ["StreamingRecognizer", "full_context_text"]


def _blank_id(token_list) -> int:
    return list(token_list).index("<blank>") if "<blank>" in token_list else 0


def _text(train_args, token_ids: List[int]) -> str:
    from espnet2.text.build_tokenizer import build_tokenizer
    from espnet2.text.token_id_converter import TokenIDConverter

    tokens = TokenIDConverter(token_list=train_args.token_list).ids2tokens(token_ids)
    return build_tokenizer(token_type=train_args.token_type, bpemodel=train_args.bpemodel).tokens2text(tokens)


@torch.no_grad()
def full_context_text(model, train_args, samples: torch.Tensor) -> str:
    """The greedy CTC text of a whole utterance encoded at once with full context (any ESPnet ASR
    model with a CTC branch; a streaming-trained SummaryMixing model ignores its
    ``decode_chunk_size`` here): the offline reference of a streamed decoding."""
    if getattr(model, "ctc", None) is None:
        raise ValueError("the model has no CTC branch (ctc_weight 0): greedy CTC decoding needs one")
    model.eval()
    encoder = model.encoder
    saved = getattr(encoder, "decode_chunk_size", None)
    if saved is not None:
        encoder.decode_chunk_size = 0
    try:
        wave = samples.float().reshape(1, -1)
        enc, _ = model.encode(wave, torch.tensor([wave.size(1)]))
    finally:
        if saved is not None:
            encoder.decode_chunk_size = saved
    if isinstance(enc, tuple):  # with intermediate CTC: (output, intermediate outputs)
        enc = enc[0]
    carry = GreedyCtc(_blank_id(train_args.token_list))
    carry.push(model.ctc.argmax(enc)[0].tolist())
    return _text(train_args, carry.tokens)


class StreamingRecognizer:
    """Audio samples in, growing CTC greedy hypothesis out.

    Args:
        model: A loaded ESPnet ASR model whose encoder is a SummaryMixing encoder with
            ``conv_context: chunk`` or ``conv_context: causal``, ESPnet's default STFT front end and
            ``global_mvn`` (or no) normalisation.
        train_args: Its training arguments (token list, token type).
        chunk_size: Encoder frames per chunk (default: the encoder's ``decode_chunk_size``), one the model
            was trained for (:func:`~espnet_summarymixing.streaming.encoder.trained_chunk_size`).
    """

    def __init__(self, model, train_args, chunk_size: Optional[int] = None):
        from espnet2.asr.frontend.default import DefaultFrontend
        from espnet2.layers.utterance_mvn import UtteranceMVN

        from espnet_summarymixing.loading.models import sample_rate

        self.model = model.eval()
        self.train_args = train_args
        if model.ctc is None:
            raise ValueError("the model has no CTC branch (ctc_weight 0): greedy CTC decoding needs one")
        if not isinstance(model.frontend, DefaultFrontend) or model.frontend.stft is None:
            raise ValueError("streaming needs ESPnet's default STFT frontend")
        if isinstance(model.normalize, UtteranceMVN):
            raise ValueError(
                "normalize: utterance_mvn needs the whole utterance; train the streaming model with "
                "global_mvn (or no normalisation)"
            )
        stft = model.frontend.stft
        if not stft.center:
            raise ValueError("streaming expects the frontend's STFT with center=True (ESPnet's default)")
        self.rate = sample_rate(train_args)
        self.encoder = StreamingEncoder(model.encoder, trained_chunk_size(model.encoder, chunk_size), ctc=model.ctc)
        self.stft = IncrementalStft(stft.n_fft, stft.hop_length)
        self.ctc = GreedyCtc(_blank_id(train_args.token_list))
        self.reset()

    @property
    def latency_seconds(self) -> float:
        """The algorithmic latency (:func:`~espnet_summarymixing.frames.framing.latency_seconds`)."""
        return latency_seconds(self.encoder.frames_waited, self.stft, self.rate)

    def summary(self, chunk_seconds: List[float]) -> str:
        """Chunk, look-ahead, latency and compute per chunk, as every streaming command reports them."""
        return stream_summary(self.encoder.chunk_size, self.encoder.lookahead_frames, self.latency_seconds,
                              chunk_seconds)

    def reset(self) -> None:
        """Start a new utterance."""
        self.encoder.reset()
        self.stft.reset()
        self.ctc.reset()
        self.chunk_seconds: List[float] = []

    @torch.no_grad()
    def _features(self, segment: np.ndarray) -> torch.Tensor:
        """Normalised features (T, F) of an audio segment, as the model computes them."""
        speech = torch.from_numpy(segment)[None]
        feats, lengths = self.model.frontend(speech, torch.tensor([speech.size(1)]))
        feats, _ = normalize(self.model.normalize, feats, lengths)
        return feats[0]

    def _decode(self, enc: torch.Tensor) -> None:
        if enc.size(1):
            with torch.no_grad():
                self.ctc.push(self.model.ctc.argmax(enc)[0].tolist())

    def text(self) -> str:
        """The hypothesis so far."""
        return _text(self.train_args, self.ctc.tokens)

    def accept_audio(self, samples) -> str:
        """Add mono samples at the model's rate (tensor or array); return the current hypothesis."""
        if isinstance(samples, torch.Tensor):
            samples = samples.detach().cpu().float().numpy()
        self.stft.add(samples)
        feats = self.stft.features(self._features, final=False)
        if feats is not None and feats.size(0):
            start = time.perf_counter()
            enc = self.encoder.accept(feats[None])
            self._decode(enc)
            if enc.size(1):
                self.chunk_seconds.append((time.perf_counter() - start) * self.encoder.chunk_size / enc.size(1))
        return self.text()

    def stream(self, samples, block: int, on_partial=None) -> str:
        """Feed a whole utterance ``block`` samples at a time, as if live; return the final text."""
        return feed(self, samples, block, on_partial)

    def finish(self) -> str:
        """End of the audio: decode what remains; return the final hypothesis."""
        feats = self.stft.features(self._features, final=True)
        if feats is not None and feats.size(0):
            self._decode(self.encoder.accept(feats[None]))
        self._decode(self.encoder.finish())
        return self.text()
