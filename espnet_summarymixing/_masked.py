"""Padding-safe forwards for ESPnet's time-convolution blocks.

ESPnet's convolution module, cgMLP and convolutional feed-forward layers convolve over time
without looking at the mask, so whatever sits in the padding of a batch leaks into the valid
frames next to it: an utterance decoded alone and inside a padded batch give different
results. These functions run the very same ESPnet modules (same parameters, same names in
checkpoints) but zero the padded frames right before every convolution over time.

``valid`` is always a (B, T, 1) float tensor of 0/1, see :func:`valid_frames`.
"""

from typing import Optional

import torch
from espnet.nets.pytorch_backend.conformer.convolution import ConvolutionModule
from espnet.nets.pytorch_backend.transformer.multi_layer_conv import (
    Conv1dLinear,
    MultiLayeredConv1d,
)
from espnet2.asr.layers.cgmlp import ConvolutionalGatingMLP

__all__ = ["valid_frames", "conv_module", "cgmlp", "feed_forward", "depthwise_conv", "causal_conv_step"]


def valid_frames(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """ESPnet mask (B, 1, T), True = valid, to a (B, T, 1) tensor of 0/1 in ``dtype``."""
    return mask.transpose(1, 2).to(dtype)  # (B, T, 1)


def _causal_conv(conv: torch.nn.Conv1d, h: torch.Tensor, cache: Optional[torch.Tensor]):
    """Left-context-only convolution of h (B, C, T), with the k - 1 previous frames in
    ``cache`` (zeros when None). Returns the output (B, C, T) and the next cache."""
    k = conv.kernel_size[0]
    if cache is None:
        cache = h.new_zeros(h.size(0), h.size(1), k - 1)
    h = torch.cat([cache, h], dim=2)  # (B, C, k - 1 + T)
    out = torch.nn.functional.conv1d(h, conv.weight, conv.bias, groups=conv.groups)  # (B, C, T)
    return out, h[:, :, h.size(2) - (k - 1):]


def depthwise_conv(
    conv: torch.nn.Conv1d, x: torch.Tensor, valid: torch.Tensor, causal: bool = False
) -> torch.Tensor:
    """Apply a time convolution to x (B, T, C) after zeroing its padded frames; with
    ``causal`` the output at t sees frames t - k + 1 .. t only."""
    if causal:
        return causal_conv_step(conv, x, valid, None)[0]
    return conv((x * valid).transpose(1, 2)).transpose(1, 2)  # (B, T, C)


def causal_conv_step(conv: torch.nn.Conv1d, x: torch.Tensor, valid: torch.Tensor, cache: Optional[torch.Tensor]):
    """Streaming form of ``depthwise_conv(..., causal=True)``: x (B, T, C) and the previous
    frames in ``cache`` -> output (B, T, C) and the next cache."""
    out, cache = _causal_conv(conv, (x * valid).transpose(1, 2), cache)
    return out.transpose(1, 2), cache


def conv_module(
    module: ConvolutionModule,
    x: torch.Tensor,
    valid: torch.Tensor,
    causal: bool = False,
    cache: Optional[torch.Tensor] = None,
    streaming: bool = False,
):
    """Conformer convolution module on x (B, T, D), padding excluded from the depthwise conv.

    With ``streaming`` (which implies causal), returns the output and the depthwise conv's next
    cache (B, D, k - 1), so that a stream of chunks gives the same output as the whole sequence.
    """
    x = module.pointwise_conv1(x.transpose(1, 2))  # (B, 2D, T)
    x = torch.nn.functional.glu(x, dim=1)  # (B, D, T)
    x = x * valid.transpose(1, 2)
    if causal or streaming:
        x, cache = _causal_conv(module.depthwise_conv, x, cache)  # (B, D, T)
    else:
        x = module.depthwise_conv(x)  # (B, D, T)
    x = module.activation(module.norm(x))
    out = module.pointwise_conv2(x).transpose(1, 2)  # (B, T, D)
    return (out, cache) if streaming else out


def cgmlp(
    module: ConvolutionalGatingMLP,
    x: torch.Tensor,
    valid: torch.Tensor,
    causal: bool = False,
    cache: Optional[torch.Tensor] = None,
    streaming: bool = False,
):
    """cgMLP on x (B, T, D), padding excluded from the spatial gating unit's convolution.

    With ``streaming`` (which implies causal), returns the output and the conv's next cache.
    """
    csgu = module.csgu
    x = module.channel_proj1(x)  # (B, T, U)
    x_r, x_g = x.chunk(2, dim=-1)  # (B, T, U/2) each
    if streaming:
        x_g, cache = causal_conv_step(csgu.conv, csgu.norm(x_g), valid, cache)  # (B, T, U/2)
    else:
        x_g = depthwise_conv(csgu.conv, csgu.norm(x_g), valid, causal)  # (B, T, U/2)
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
