"""Chunk-by-chunk encoding with a SummaryMixing encoder, state carried between chunks.

Each layer keeps one running (sum, count) of its summary branch and the previous frames of each
time convolution (k - 1 with ``causal_conv``, (k - 1) / 2 with ``chunk_conv``); the subsampling
keeps the input frames whose outputs are not complete yet.
Memory is constant per chunk whatever the length of the stream, and the output equals the
encoder's forward in eval mode with ``decode_chunk_size`` = ``chunk_size`` (tested).

    >>> import torch
    >>> from espnet_summarymixing.encoders.conformer import SummaryMixingConformerEncoder
    >>> enc = SummaryMixingConformerEncoder(20, output_size=16, linear_units=32, num_blocks=2,
    ...                                     cnn_module_kernel=3, chunk_conv=True).eval()
    >>> stream = StreamingEncoder(enc, chunk_size=4)
    >>> outs = [stream.accept(torch.randn(1, 10, 20)) for _ in range(5)] + [stream.finish()]
    >>> sum(o.size(1) for o in outs), enc(torch.randn(1, 50, 20), torch.tensor([50]))[0].size(1)
    (11, 11)
"""

import math
from typing import List, Optional

import torch
from espnet.nets.pytorch_backend.transformer.embedding import (
    PositionalEncoding,
    ScaledPositionalEncoding,
)

from espnet_summarymixing.encoders.base import (
    SUBSAMPLING_STEPS,
    SummaryMixingEncoderBase,
    subsampled_frames,
)

__all__ = ["StreamingEncoder"]


def _sinusoids(start: int, count: int, size: int, like: torch.Tensor) -> torch.Tensor:
    """ESPnet's sinusoidal table for positions start .. start + count - 1: (1, count, size)."""
    position = torch.arange(start, start + count, dtype=torch.float32).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, size, 2, dtype=torch.float32) * -(math.log(10000.0) / size))
    pe = torch.zeros(count, size)
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term)
    return pe.unsqueeze(0).to(device=like.device, dtype=like.dtype)


class StreamingEncoder:
    """Feed features as they arrive; get encoder frames as soon as a chunk is complete.

    Args:
        encoder (SummaryMixingEncoderBase): Any of the three SummaryMixing encoders, built with
            ``causal_conv=True`` or ``chunk_conv=True``.
        chunk_size (Optional[int]): Frames after subsampling per chunk; default the encoder's
            ``decode_chunk_size``.
        ctc: The model's CTC module, needed when the encoder uses ``interctc_use_conditioning``.
    """

    def __init__(self, encoder: SummaryMixingEncoderBase, chunk_size: Optional[int] = None, ctc=None):
        if not isinstance(encoder, SummaryMixingEncoderBase):
            raise ValueError(f"encoder must be a SummaryMixing encoder, got {type(encoder).__name__}")
        if not (encoder.causal_conv or encoder.chunk_conv):
            raise ValueError(
                "the encoder needs causal_conv=True or chunk_conv=True to be streamed: its "
                "convolutions look ahead"
            )
        chunk_size = encoder.decode_chunk_size if chunk_size is None else chunk_size
        if chunk_size < 1:
            raise ValueError(f"chunk_size={chunk_size} must be a positive number of frames after subsampling")
        embed = encoder.embed
        if type(embed) not in SUBSAMPLING_STEPS and not isinstance(embed, torch.nn.Sequential):
            raise ValueError(f"input layer {type(embed).__name__} cannot be streamed")
        if isinstance(embed, torch.nn.Sequential) and isinstance(embed[0], torch.nn.Embedding):
            raise ValueError("input_layer='embed' (token input) cannot be streamed")
        if encoder.interctc_use_conditioning and (ctc is None or encoder.conditioning_layer is None):
            raise ValueError("this encoder conditions on intermediate CTC: pass ctc=<the model's CTC>")
        self.ctc = ctc
        self.encoder = encoder.eval()
        self.chunk_size = chunk_size
        self.steps = SUBSAMPLING_STEPS.get(type(embed), ())
        self.stride = math.prod(s for _, s in self.steps)
        self.reset()

    def reset(self) -> None:
        """Start a new stream."""
        self.buffer: Optional[torch.Tensor] = None  # input frames not consumed yet (1, n, F)
        self.pending: List[torch.Tensor] = []  # subsampled frames waiting for a full chunk
        self.position = 0  # subsampled frames produced so far
        self.states: List[Optional[tuple]] = [None] * len(self.encoder.encoders)

    @torch.no_grad()
    def _embed(self, feats: torch.Tensor) -> torch.Tensor:
        self.buffer = feats if self.buffer is None else torch.cat([self.buffer, feats], dim=1)
        n = self.buffer.size(1)
        if self.steps:
            n = max(0, subsampled_frames(self.encoder.embed, n))
        if n == 0:
            return self.buffer.new_zeros(1, 0, self.encoder.output_size())
        embed = self.encoder.embed
        pos = embed.out[-1] if self.steps else embed[-1]
        body = embed.out[:-1] if self.steps else embed[:-1]
        if self.steps:
            conv2d = isinstance(embed.conv[0], torch.nn.Conv2d)
            x = embed.conv(self.buffer.unsqueeze(1) if conv2d else self.buffer.transpose(1, 2))
            if x.dim() == 4:  # (1, C, T', F')
                b, c, t, f = x.size()
                x = x.transpose(1, 2).contiguous().view(b, t, c * f)
            else:  # (1, C, T')
                x = x.transpose(1, 2)
            x = body(x)[:, :n]
            self.buffer = self.buffer[:, n * self.stride:]
        else:
            x = body(self.buffer)
            self.buffer = None
        if isinstance(pos, ScaledPositionalEncoding):
            x = x + pos.alpha * _sinusoids(self.position, x.size(1), x.size(2), x)
        elif isinstance(pos, PositionalEncoding):
            x = x * pos.xscale + _sinusoids(self.position, x.size(1), x.size(2), x)
        self.position += x.size(1)
        return x

    @torch.no_grad()
    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        mask = torch.ones(1, 1, x.size(1), dtype=torch.bool, device=x.device)
        enc = self.encoder
        for i, layer in enumerate(enc.encoders):
            x, self.states[i] = layer.step(x, mask, self.states[i])
            if enc.interctc_use_conditioning and i + 1 in enc.interctc_layer_idx:  # frame-wise
                hidden = enc.after_norm(x) if enc._normalize_interctc and enc.after_norm is not None else x
                x = x + enc.conditioning_layer(self.ctc.softmax(hidden))
        if enc.after_norm is not None:
            x = enc.after_norm(x)
        return x

    def accept(self, feats: torch.Tensor) -> torch.Tensor:
        """Add feature frames (1, n, F); return the encoder frames of every completed chunk."""
        if feats.dim() != 3 or feats.size(0) != 1:
            raise ValueError(f"feats must be (1, n, features) for one stream, got {tuple(feats.shape)}")
        self.pending.append(self._embed(feats))
        ready = torch.cat(self.pending, dim=1)
        full = ready.size(1) // self.chunk_size * self.chunk_size
        self.pending = [ready[:, full:]]
        outs = [self._encode(ready[:, k:k + self.chunk_size]) for k in range(0, full, self.chunk_size)]
        if not outs:
            return ready.new_zeros(1, 0, self.encoder.output_size())
        return torch.cat(outs, dim=1)

    def finish(self) -> torch.Tensor:
        """End of the stream: encode the last, partial chunk; the state is reset."""
        rest = torch.cat(self.pending, dim=1)
        out = self._encode(rest) if rest.size(1) else rest
        self.reset()
        return out
