"""Streaming CTC recognition: audio samples in, a growing greedy CTC hypothesis out.

Features are computed as soon as their STFT window is complete (identical to the offline
frontend), encoded chunk by chunk (:class:`~espnet_summarymixing.streaming.encoder.StreamingEncoder`)
and decoded greedily with CTC, labels carried across chunks. Memory stays constant whatever the
length of the audio.
"""

import time
from typing import List, Optional

import torch

from espnet_summarymixing.publish.loading import load_asr_model, sample_rate
from espnet_summarymixing.streaming.encoder import StreamingEncoder

__all__ = ["StreamingRecognizer"]


class StreamingRecognizer:
    """Audio samples in, growing CTC greedy hypothesis out.

    Args:
        asr_train_config: ESPnet training config of a model whose encoder is a
            SummaryMixing encoder with ``chunk_conv: true`` or ``causal_conv: true``.
        asr_model_file: Its checkpoint.
        chunk_size: Encoder frames per chunk (default: the encoder's ``decode_chunk_size``).
        device: torch device.
        offline_only: Only :meth:`decode_offline` will be used: any ESPnet ASR model with a CTC
            branch is accepted (an offline-trained SummaryMixing or self-attention model), so that
            it can be compared with a streaming model under the same greedy CTC decoding.
    """

    def __init__(self, asr_train_config: str, asr_model_file: str, chunk_size: Optional[int] = None,
                 device: str = "cpu", offline_only: bool = False):
        from espnet2.asr.frontend.default import DefaultFrontend
        from espnet2.layers.utterance_mvn import UtteranceMVN
        from espnet2.text.build_tokenizer import build_tokenizer
        from espnet2.text.token_id_converter import TokenIDConverter

        model, args = load_asr_model(asr_train_config, asr_model_file, device)
        self.model = model.eval()
        if model.ctc is None:
            raise ValueError("the model has no CTC branch (ctc_weight 0): greedy CTC decoding needs one")
        self.offline_only = offline_only
        self.converter = TokenIDConverter(token_list=args.token_list)
        self.tokenizer = build_tokenizer(token_type=args.token_type, bpemodel=args.bpemodel)
        self.rate = sample_rate(args)
        if offline_only:
            self.encoder = None
            self.reset()
            return
        if not isinstance(model.frontend, DefaultFrontend) or model.frontend.stft is None:
            raise ValueError("streaming needs ESPnet's default STFT frontend")
        if isinstance(model.normalize, UtteranceMVN):
            raise ValueError(
                "normalize: utterance_mvn needs the whole utterance; train the streaming model with "
                "global_mvn (or no normalisation)"
            )
        self.encoder = StreamingEncoder(model.encoder, chunk_size, ctc=model.ctc)
        stft = model.frontend.stft
        if not stft.center:
            raise ValueError("streaming expects the frontend's STFT with center=True (ESPnet's default)")
        self.n_fft, self.hop = stft.n_fft, stft.hop_length
        self.reset()

    def reset(self) -> None:
        """Start a new utterance."""
        if self.encoder is not None:
            self.encoder.reset()
        self.audio = torch.zeros(0)  # samples from sample index self.audio_start on
        self.audio_start = 0
        self.next_frame = 0  # first feature frame not computed yet
        self.token_ids: List[int] = []
        self.previous = 0  # last CTC label, carried across chunks (0 = blank)
        self.chunk_seconds: List[float] = []

    def _features(self, final: bool) -> torch.Tensor:
        """Feature frames that the audio so far determines exactly (all of them when final)."""
        half, hop = self.n_fft // 2, self.hop
        total = self.audio_start + self.audio.numel()
        last = total // hop if final else (total - half) // hop  # frame t needs samples < t*hop + half
        if last < self.next_frame or self.audio.numel() == 0:
            return torch.zeros(1, 0, 1)
        context = -(-half // hop)  # frames whose left edge the segment's own padding would corrupt
        first = max(0, self.next_frame - context)
        start = first * hop
        segment = self.audio[start - self.audio_start:]
        if segment.numel() <= half:  # the STFT's reflection padding needs more than half a window
            if final:
                raise ValueError(f"the audio is too short: {total} samples, the model's STFT window needs "
                                 f"more than {half}")
            return torch.zeros(1, 0, 1)
        with torch.no_grad():
            feats, _ = self.model.frontend(segment[None], torch.tensor([segment.numel()]))
            if self.model.normalize is not None:
                feats, _ = self.model.normalize(feats, torch.tensor([feats.size(1)]))
        begin = self.next_frame - first
        feats = feats[:, begin:begin + last - self.next_frame + 1]
        self.next_frame += feats.size(1)
        keep_from = max(0, (self.next_frame - context) * hop)  # where the next segment starts
        if keep_from > self.audio_start:
            self.audio = self.audio[keep_from - self.audio_start:]
            self.audio_start = keep_from
        return feats

    def _decode(self, enc: torch.Tensor) -> None:
        if enc.size(1) == 0:
            return
        with torch.no_grad():
            best = self.model.ctc.argmax(enc)[0].tolist()
        for label in best:
            if label != 0 and label != self.previous:
                self.token_ids.append(label)
            self.previous = label

    def text(self) -> str:
        """The hypothesis so far."""
        tokens = self.converter.ids2tokens(self.token_ids)
        return self.tokenizer.tokens2text(tokens)

    def accept_audio(self, samples: torch.Tensor) -> str:
        """Add mono samples at the model's rate; return the current hypothesis."""
        if self.offline_only:
            raise ValueError("this recognizer was built with offline_only=True: use decode_offline")
        self.audio = torch.cat([self.audio, samples.float().reshape(-1)])
        feats = self._features(final=False)
        if feats.size(1):
            start = time.perf_counter()
            enc = self.encoder.accept(feats)
            self._decode(enc)
            if enc.size(1):
                self.chunk_seconds.append((time.perf_counter() - start) * self.encoder.chunk_size / enc.size(1))
        return self.text()

    def decode_offline(self, samples: torch.Tensor) -> str:
        """The greedy CTC text of a whole utterance encoded at once with full context."""
        self.reset()
        encoder = self.model.encoder
        saved = getattr(encoder, "decode_chunk_size", None)
        if saved is not None:
            encoder.decode_chunk_size = 0
        try:
            with torch.no_grad():
                wave = samples.float().reshape(1, -1)
                enc, _ = self.model.encode(wave, torch.tensor([wave.size(1)]))
        finally:
            if saved is not None:
                encoder.decode_chunk_size = saved
        if isinstance(enc, tuple):  # with intermediate CTC: (output, intermediate outputs)
            enc = enc[0]
        self._decode(enc)
        return self.text()

    def stream(self, samples: torch.Tensor, block: int, on_partial=None) -> str:
        """Feed a whole utterance ``block`` samples at a time, as if live; return the final text."""
        self.reset()
        shown = ""
        for start in range(0, samples.numel(), block):
            text = self.accept_audio(samples[start:start + block])
            if on_partial is not None and text != shown:
                shown = text
                on_partial(min(samples.numel(), start + block) / self.rate, text)
        return self.finish()

    def finish(self) -> str:
        """End of the audio: decode what remains; return the final hypothesis."""
        feats = self._features(final=True)
        if feats.size(1):
            self._decode(self.encoder.accept(feats))
        self._decode(self.encoder.finish())
        return self.text()
