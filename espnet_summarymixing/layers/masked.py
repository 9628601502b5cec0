"""Padding-safe forwards for ESPnet's time-convolution blocks.

ESPnet's convolution module, cgMLP and convolutional feed-forward layers convolve over time
without looking at the mask, so whatever sits in the padding of a batch leaks into the valid
frames next to it: an utterance decoded alone and inside a padded batch give different
results. These functions run the very same ESPnet modules (same parameters, same names in
checkpoints) but zero the padded frames right before every convolution over time.

``valid`` is always a (B, T, 1) float tensor of 0/1, see :func:`valid_frames`. ``context`` is one of
:data:`CONV_CONTEXTS`: what a time convolution may see (the encoders' ``conv_context`` key).
"""

from typing import Optional

import torch
from espnet.nets.pytorch_backend.conformer.convolution import ConvolutionModule
from espnet.nets.pytorch_backend.transformer.multi_layer_conv import (
    Conv1dLinear,
    MultiLayeredConv1d,
)
from espnet2.asr.layers.cgmlp import ConvolutionalGatingMLP

__all__ = ["CONV_CONTEXTS", "valid_frames", "conv_module", "cgmlp", "feed_forward", "depthwise_conv", "conv_step"]

#: What a time convolution sees: ``full`` (centred, the offline model), ``chunk`` (centred, but in a
#: chunked forward or a stream no frame beyond the end of its chunk) or ``causal`` (past frames only,
#: in every mode). ``chunk`` and ``causal`` can stream.
CONV_CONTEXTS = ("full", "chunk", "causal")


def valid_frames(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """ESPnet mask (B, 1, T), True = valid, to a (B, T, 1) tensor of 0/1 in ``dtype``."""
    return mask.transpose(1, 2).to(dtype)  # (B, T, 1)


def _conv(conv: torch.nn.Conv1d, h: torch.Tensor, taps: slice = slice(None), bias: bool = True) -> torch.Tensor:
    """``conv``'s weights (only the kernel ``taps`` given; its bias unless ``bias`` is False) over h
    (B, C, T) without padding."""
    return torch.nn.functional.conv1d(h, conv.weight[:, :, taps], conv.bias if bias else None,
                                      groups=conv.groups)


def _chunk_aware_conv(conv: torch.nn.Conv1d, h: torch.Tensor, chunk_size: int) -> torch.Tensor:
    """Centred convolution of h (B, C, T) that sees no frame beyond the end of each frame's chunk
    of ``chunk_size`` frames (the frames after it count as zeros).

    The kernel is split at its centre: the taps on the current and past frames never cross a chunk
    end and run as one causal convolution over the whole sequence; the r = (k - 1) / 2 future taps
    run inside each chunk (a frame c - 1 - i frames before its chunk end uses at most that many), on
    a copy of h cut into chunks with min(r, c - 1) zeros after each: at most twice h's memory, and
    nothing at all for one-frame chunks."""
    r = (conv.kernel_size[0] - 1) // 2
    b, d, t = h.shape
    if chunk_size >= t or r == 0:
        return conv(h)
    past = _conv(conv, torch.nn.functional.pad(h, (r, 0)), slice(0, r + 1))  # (B, C, T); tap r = frame t
    ahead = min(r, chunk_size - 1)
    if ahead == 0:
        return past
    n = (t + chunk_size - 1) // chunk_size  # not -(-t // c): exported to ONNX, integer division truncates
    chunks = torch.nn.functional.pad(h, (0, n * chunk_size - t)).view(b, d, n, chunk_size)
    chunks = torch.nn.functional.pad(chunks[..., 1:], (0, ahead))  # frames t + 1 .. of each chunk
    chunks = chunks.transpose(1, 2).reshape(b * n, d, chunk_size - 1 + ahead)
    future = _conv(conv, chunks, slice(r + 1, r + 1 + ahead), bias=False)  # (B n, C, c)
    future = future.view(b, n, d, chunk_size).transpose(1, 2).reshape(b, d, n * chunk_size)[:, :, :t]
    return past + future


def _time_conv(conv: torch.nn.Conv1d, h: torch.Tensor, context: str, chunk_size: int) -> torch.Tensor:
    """A time convolution over h (B, C, T) in its ``context``, zero outside the sequence: ``full``
    (centred), ``causal`` (frames t - k + 1 .. t) or ``chunk`` (centred, but with ``chunk_size`` > 0
    cut at the end of each chunk; ``chunk_size`` 0 is full context)."""
    if context == "causal":
        return _conv_step(conv, h, None, "causal")[0]
    if context == "chunk" and chunk_size > 0:
        return _chunk_aware_conv(conv, h, chunk_size)
    if context not in CONV_CONTEXTS:
        raise ValueError(f"context={context!r} is not supported: choose one of {list(CONV_CONTEXTS)}")
    return conv(h)


def _conv_step(conv: torch.nn.Conv1d, h: torch.Tensor, cache: Optional[torch.Tensor], context: str):
    """Streaming convolution of one chunk h (B, C, T), with the previous frames in ``cache`` (zeros
    when None): ``causal`` keeps k - 1 frames of left context, ``chunk`` (k - 1) / 2 on the left and
    zeros for the (k - 1) / 2 frames after the chunk. Returns (B, C, T), next cache. A ``full``
    convolution would need frames of the next chunk: it cannot stream."""
    if context not in ("chunk", "causal"):
        raise ValueError(f"context={context!r} cannot stream: choose 'chunk' or 'causal'")
    k = conv.kernel_size[0]
    right = 0 if context == "causal" else (k - 1) // 2
    left = k - 1 - right
    if cache is None:
        cache = h.new_zeros(h.size(0), h.size(1), left)
    h = torch.cat([cache, h], dim=2)  # (B, C, left + T)
    out = _conv(conv, torch.nn.functional.pad(h, (0, right)))  # (B, C, T)
    return out, h[:, :, h.size(2) - left:]


def depthwise_conv(
    conv: torch.nn.Conv1d, x: torch.Tensor, valid: torch.Tensor, context: str = "full",
    chunk_size: int = 0,
) -> torch.Tensor:
    """Apply a time convolution to x (B, T, C) after zeroing its padded frames, in its ``context``:
    ``full`` (centred), ``causal`` (the output at t sees frames t - k + 1 .. t only) or ``chunk``
    (centred, cut at the end of each chunk of ``chunk_size`` > 0 frames)."""
    return _time_conv(conv, (x * valid).transpose(1, 2), context, chunk_size).transpose(1, 2)


def conv_step(conv: torch.nn.Conv1d, x: torch.Tensor, valid: torch.Tensor, cache: Optional[torch.Tensor],
              context: str = "causal"):
    """Streaming form of ``depthwise_conv``, ``causal`` or ``chunk``: x (B, T, C), one chunk, and the
    previous frames in ``cache`` -> output (B, T, C) and the next cache."""
    out, cache = _conv_step(conv, (x * valid).transpose(1, 2), cache, context)
    return out.transpose(1, 2), cache


def conv_module(
    module: ConvolutionModule,
    x: torch.Tensor,
    valid: torch.Tensor,
    context: str = "full",
    chunk_size: int = 0,
    cache: Optional[torch.Tensor] = None,
    streaming: bool = False,
):
    """Conformer convolution module on x (B, T, D), padding excluded from the depthwise conv.

    ``context`` / ``chunk_size`` choose the depthwise convolution's context (see ``depthwise_conv``).
    With ``streaming``, x is one chunk: returns the output and the depthwise conv's next cache
    (``context`` ``causal`` or ``chunk``), so that a stream of chunks gives the output of the chunked
    forward over the whole sequence.
    """
    x = module.pointwise_conv1(x.transpose(1, 2))  # (B, 2D, T)
    x = torch.nn.functional.glu(x, dim=1)  # (B, D, T)
    x = x * valid.transpose(1, 2)
    if streaming:
        x, cache = _conv_step(module.depthwise_conv, x, cache, context)  # (B, D, T)
    else:
        x = _time_conv(module.depthwise_conv, x, context, chunk_size)  # (B, D, T)
    x = module.activation(module.norm(x))
    out = module.pointwise_conv2(x).transpose(1, 2)  # (B, T, D)
    return (out, cache) if streaming else out


def cgmlp(
    module: ConvolutionalGatingMLP,
    x: torch.Tensor,
    valid: torch.Tensor,
    context: str = "full",
    chunk_size: int = 0,
    cache: Optional[torch.Tensor] = None,
    streaming: bool = False,
):
    """cgMLP on x (B, T, D), padding excluded from the spatial gating unit's convolution.

    Contexts and ``streaming`` as in :func:`conv_module`.
    """
    csgu = module.csgu
    x = module.channel_proj1(x)  # (B, T, U)
    x_r, x_g = x.chunk(2, dim=-1)  # (B, T, U/2) each
    if streaming:
        x_g, cache = conv_step(csgu.conv, csgu.norm(x_g), valid, cache, context)  # (B, T, U/2)
    else:
        x_g = depthwise_conv(csgu.conv, csgu.norm(x_g), valid, context, chunk_size)  # (B, T, U/2)
    if csgu.linear is not None:
        x_g = csgu.linear(x_g)
    out = module.channel_proj2(csgu.dropout(x_r * csgu.act(x_g)))  # (B, T, D)
    return (out, cache) if streaming else out


def feed_forward(module: torch.nn.Module, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Position-wise feed-forward of any of ESPnet's three kinds, padding-safe."""
    if isinstance(module, MultiLayeredConv1d):
        h = torch.relu(depthwise_conv(module.w_1, x, valid))  # (B, T, U)
        return depthwise_conv(module.w_2, module.dropout(h), valid)  # (B, T, D)
    if isinstance(module, Conv1dLinear):
        h = torch.relu(depthwise_conv(module.w_1, x, valid))  # (B, T, U)
        return module.w_2(module.dropout(h))  # (B, T, D)
    return module(x)  # frame-wise: padding cannot leak
