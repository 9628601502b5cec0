"""Chunk-by-chunk encoding with a SummaryMixing encoder, state carried between chunks.

Each layer keeps one running (sum, count) of its summary branch and the previous frames of each
time convolution (k - 1 with ``conv_context`` causal, (k - 1) / 2 with chunk); the subsampling
keeps the input frames whose outputs are not complete yet, and a look-ahead (``lookahead_frames``
R) the last R embedded frames, until the frames after them arrive.
Memory is constant per chunk whatever the length of the stream, and the output equals the
encoder's forward in eval mode with ``decode_chunk_size`` = ``chunk_size`` (tested).

    >>> import torch
    >>> from espnet_summarymixing.encoders.conformer import SummaryMixingConformerEncoder
    >>> enc = SummaryMixingConformerEncoder(20, output_size=16, linear_units=32, num_blocks=2,
    ...                                     cnn_module_kernel=3, conv_context="chunk").eval()
    >>> stream = StreamingEncoder(enc, chunk_size=4)
    >>> outs = [stream.accept(torch.randn(1, 10, 20)) for _ in range(5)] + [stream.finish()]
    >>> sum(o.size(1) for o in outs), enc(torch.randn(1, 50, 20), torch.tensor([50]))[0].size(1)
    (11, 11)
"""

from typing import List, Optional

import torch

from espnet_summarymixing.encoders.base import SummaryMixingEncoderBase

__all__ = ["StreamingEncoder", "trained_chunk_size"]


def trained_chunk_size(encoder, chunk_size: Optional[int] = None) -> int:
    """The chunk size to stream a model with: ``chunk_size``, or the encoder's ``decode_chunk_size``;
    ValueError unless the model was trained for it (its ``chunk_size_range`` with dynamic chunk
    training, else its ``decode_chunk_size``): summaries over chunks of other sizes were never seen."""
    if getattr(encoder, "dynamic_chunk_training", False):
        low, high = encoder.chunk_size_range
        allowed, what = range(low, high + 1), f"{low}..{high} (its chunk_size_range)"
    elif getattr(encoder, "decode_chunk_size", 0):
        allowed, what = [encoder.decode_chunk_size], f"{encoder.decode_chunk_size} (its decode_chunk_size)"
    else:
        raise ValueError("the model was not trained with chunks (dynamic_chunk_training) and has no "
                         "decode_chunk_size: its summaries never saw a partial utterance")
    if chunk_size is None:
        chunk_size = encoder.decode_chunk_size or None
        if chunk_size is None:
            raise ValueError(f"give a chunk size, one of {what}")
    if chunk_size not in allowed:
        raise ValueError(f"chunk size {chunk_size}: the model was trained for chunks of {what} encoder frames")
    return chunk_size


class StreamingEncoder:
    """Feed features as they arrive; get encoder frames as soon as a chunk is complete.

    Args:
        encoder (SummaryMixingEncoderBase): Any of the three SummaryMixing encoders, built with
            ``conv_context`` ``chunk`` or ``causal``.
        chunk_size (Optional[int]): Frames after subsampling per chunk; default the encoder's
            ``decode_chunk_size``.
        ctc: The model's CTC module, needed when the encoder uses ``interctc_use_conditioning``.
    """

    def __init__(self, encoder: SummaryMixingEncoderBase, chunk_size: Optional[int] = None, ctc=None):
        if not isinstance(encoder, SummaryMixingEncoderBase):
            raise ValueError(f"encoder must be a SummaryMixing encoder, got {type(encoder).__name__}")
        if encoder.conv_context == "full":
            raise ValueError(
                "the encoder needs conv_context='chunk' or 'causal' to be streamed, not 'full': its "
                "convolutions look ahead"
            )
        chunk_size = encoder.decode_chunk_size if chunk_size is None else chunk_size
        if chunk_size < 1:
            raise ValueError(f"chunk_size={chunk_size} must be a positive number of frames after subsampling")
        self.input_layer = encoder.input_layer
        if self.input_layer.token_input:
            raise ValueError("input_layer='embed' (token input) cannot be streamed")
        if encoder.interctc_use_conditioning and (ctc is None or encoder.conditioning_layer is None):
            raise ValueError("this encoder conditions on intermediate CTC: pass ctc=<the model's CTC>")
        self.ctc = ctc
        self.encoder = encoder.eval()
        self.chunk_size = chunk_size
        self.lookahead_frames = encoder.lookahead.frames if encoder.lookahead is not None else 0
        self.reset()

    @property
    def frames_waited(self) -> int:
        """Input frames a stream waits for past the start of a chunk before it can encode it: the
        chunk's, its look-ahead's, and the subsampling's own look-ahead."""
        return self.input_layer.geometry.frames_in(self.chunk_size + self.lookahead_frames)

    def reset(self) -> None:
        """Start a new stream."""
        self.buffer: Optional[torch.Tensor] = None  # input frames not consumed yet (1, n, F)
        self.pending: List[torch.Tensor] = []  # subsampled frames waiting for a full chunk
        self.position = 0  # subsampled frames produced so far
        self.ahead: Optional[torch.Tensor] = None  # the last embedded frames, waiting for their look-ahead
        self.states: List[Optional[tuple]] = [None] * len(self.encoder.encoders)

    @torch.no_grad()
    def _embed(self, feats: torch.Tensor) -> torch.Tensor:
        """Embed every input frame whose subsampled frame is complete; keep the rest for later."""
        layer = self.input_layer
        self.buffer = feats if self.buffer is None else torch.cat([self.buffer, feats], dim=1)
        n = max(0, layer.frames_out(self.buffer.size(1)))
        if n == 0:
            return self.buffer.new_zeros(1, 0, self.encoder.output_size())
        x = layer.project(self.buffer)[:, :n]  # (1, n, D)
        self.buffer = self.buffer[:, layer.geometry.input_frames_consumed(n):]
        x = layer.add_positions(x, self.position)
        self.position += n
        return x

    @torch.no_grad()
    def _look_ahead(self, x: torch.Tensor, final: bool = False) -> torch.Tensor:
        """Embedded frames (1, n, D) in; out, every frame whose next ``lookahead_frames`` frames are
        known, with its look-ahead (all of them when ``final``: zeros past the end, as in the forward)."""
        look = self.encoder.lookahead
        if look is None:
            return x
        x = x if self.ahead is None else torch.cat([self.ahead, x], dim=1)
        if final:
            x = torch.nn.functional.pad(x, (0, 0, 0, look.frames))
        ready = x.size(1) - look.frames
        if ready <= 0:
            self.ahead = x
            return x[:, :0]
        self.ahead = x[:, ready:]
        return look.frames_ready(x)

    @torch.no_grad()
    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        x, self.states = self.encoder.step_frames(x, self.states, self.ctc)
        return x

    def accept(self, feats: torch.Tensor) -> torch.Tensor:
        """Add feature frames (1, n, F); return the encoder frames of every completed chunk."""
        if feats.dim() != 3 or feats.size(0) != 1:
            raise ValueError(f"feats must be (1, n, features) for one stream, got {tuple(feats.shape)}")
        self.pending.append(self._look_ahead(self._embed(feats)))
        ready = torch.cat(self.pending, dim=1)
        full = ready.size(1) // self.chunk_size * self.chunk_size
        self.pending = [ready[:, full:]]
        outs = [self._encode(ready[:, k:k + self.chunk_size]) for k in range(0, full, self.chunk_size)]
        if not outs:
            return ready.new_zeros(1, 0, self.encoder.output_size())
        return torch.cat(outs, dim=1)

    def finish(self) -> torch.Tensor:
        """End of the stream: encode what is left (the frames held for their look-ahead, then a last,
        partial chunk); the state is reset."""
        none = torch.zeros(1, 0, self.encoder.output_size())
        rest = torch.cat([*self.pending, self._look_ahead(none, final=True)], dim=1)
        outs = [self._encode(rest[:, k:k + self.chunk_size]) for k in range(0, rest.size(1), self.chunk_size)]
        self.reset()
        return torch.cat(outs, dim=1) if outs else rest
