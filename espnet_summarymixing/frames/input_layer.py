"""ESPnet's input layers, built and taken apart in one place.

An encoder's ``embed`` is one of ESPnet's subsampling layers (``Conv2dSubsampling*``,
``Conv1dSubsampling*``), a linear projection, a token embedding or nothing, each ending with a
positional encoding. :func:`build_input_layer` builds it from the config; :class:`InputLayer`
reads one back (however ESPnet laid it out) and computes it in the pieces the other paths need:
the projection without positions (:meth:`InputLayer.project`, also in overlapping blocks for a long
recording: :meth:`InputLayer.project_blocked`), the positions from any offset, as a tensor in a
traced graph (:meth:`InputLayer.add_positions`), the output lengths and the validity mask
(:meth:`InputLayer.lengths`, :func:`valid_mask`). Every path of the package (the encoder's
forward, the streaming encoder, the ONNX graphs, the blocked long-form front end) goes through
it, and the frame arithmetic through :class:`~.geometry.Subsampling`.

Shapes: B batch, T input frames, T' output frames, F features, D model size.
"""

import math
from typing import Optional, Union

import torch
from espnet.nets.pytorch_backend.transformer.embedding import (
    PositionalEncoding,
    ScaledPositionalEncoding,
)
from espnet.nets.pytorch_backend.transformer.subsampling import (
    Conv1dSubsampling1,
    Conv1dSubsampling2,
    Conv1dSubsampling3,
    Conv2dSubsampling,
    Conv2dSubsampling1,
    Conv2dSubsampling2,
    Conv2dSubsampling6,
    Conv2dSubsampling8,
    TooShortUttError,
)

from espnet_summarymixing.frames.geometry import NO_SUBSAMPLING, STEPS, Subsampling

__all__ = ["SUBSAMPLING", "INPUT_LAYERS", "POS_ENC_LAYERS", "build_input_layer", "InputLayer", "sinusoids",
           "valid_mask", "TooShortUttError"]

#: ESPnet's subsampling layers by ``input_layer`` name.
SUBSAMPLING = {
    "conv2d": Conv2dSubsampling,
    "conv2d1": Conv2dSubsampling1,
    "conv2d2": Conv2dSubsampling2,
    "conv2d6": Conv2dSubsampling6,
    "conv2d8": Conv2dSubsampling8,
    "conv1d1": Conv1dSubsampling1,
    "conv1d2": Conv1dSubsampling2,
    "conv1d3": Conv1dSubsampling3,
}
_STEPS_BY_CLASS = {cls: STEPS[name] for name, cls in SUBSAMPLING.items()}
#: Accepted ``input_layer`` values (``None`` = no input layer, a Linear if sizes differ).
INPUT_LAYERS = ("linear", *SUBSAMPLING, "embed", None)
#: Accepted ``pos_enc_layer_type`` values that the input layer builds (``none``: no positions).
POS_ENC_LAYERS = {"abs_pos": PositionalEncoding, "scaled_abs_pos": ScaledPositionalEncoding, "none": None}


def build_input_layer(
    input_layer: Optional[str],
    input_size: int,
    output_size: int,
    dropout_rate: float,
    pos_enc_layer_type: str,
    positional_dropout_rate: float,
    max_pos_emb_len: int,
    padding_idx: int,
) -> torch.nn.Module:
    """ESPnet's input layer ``input_layer`` followed by the positional encoding ``pos_enc_layer_type``
    (a ``Dropout`` for ``none``); ValueError for a name that is not in :data:`INPUT_LAYERS`."""
    if input_layer not in INPUT_LAYERS:
        raise ValueError(f"input_layer={input_layer!r} is not supported: choose one of {list(INPUT_LAYERS)}")
    pos_class = POS_ENC_LAYERS[pos_enc_layer_type]
    if pos_class is None:
        pos_enc = torch.nn.Dropout(positional_dropout_rate)
    else:
        pos_enc = pos_class(output_size, positional_dropout_rate, max_pos_emb_len)
    if input_layer in SUBSAMPLING:
        return SUBSAMPLING[input_layer](input_size, output_size, dropout_rate, pos_enc)
    if input_layer == "linear":
        return torch.nn.Sequential(
            torch.nn.Linear(input_size, output_size),
            torch.nn.LayerNorm(output_size),
            torch.nn.Dropout(dropout_rate),
            pos_enc,
        )
    if input_layer == "embed":
        return torch.nn.Sequential(torch.nn.Embedding(input_size, output_size, padding_idx=padding_idx), pos_enc)
    if input_size != output_size:
        return torch.nn.Sequential(torch.nn.Linear(input_size, output_size), pos_enc)
    return torch.nn.Sequential(pos_enc)


def sinusoids(positions: torch.Tensor, size: int) -> torch.Tensor:
    """ESPnet's sinusoidal encoding of ``positions`` (T,) as (1, T, size) float32: sines in the even
    channels, cosines in the odd ones. Plain tensor code: it traces with a symbolic length and a
    position offset that is a graph input."""
    div_term = torch.exp(torch.arange(0, size, 2, dtype=torch.float32, device=positions.device)
                         * -(math.log(10000.0) / size))  # (size / 2,)
    angles = positions.to(torch.float32)[:, None] * div_term[None, :]  # (T, size / 2)
    return torch.stack([torch.sin(angles), torch.cos(angles)], dim=-1).reshape(1, -1, size)  # (1, T, size)


def valid_mask(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    """(B, T) True = valid frame, in memory linear in T. (ESPnet's ``make_pad_mask`` with ``maxlen``
    builds a (T + 1) x (T + 1) matrix on its traceable path: 3.6 GB for 60,000 frames.)"""
    return torch.arange(frames, device=lengths.device)[None, :] < lengths[:, None]  # (B, T)


class InputLayer:
    """One ESPnet input layer (an encoder's ``embed``), read back into its parts.

    Holds references to the module's own parts, never copies: the weights stay the model's.

    Args:
        embed: ``Conv2dSubsampling*`` / ``Conv1dSubsampling*`` (its ``out`` either
            ``Sequential(Linear, pos_enc)`` or a ``Linear`` with a ``pos_enc`` attribute), or a
            ``Sequential`` whose last module is the positional encoding (or a ``Dropout``).

    Attributes:
        geometry (Subsampling): The frame arithmetic (:data:`~.geometry.NO_SUBSAMPLING` without
            subsampling).
        token_input (bool): A token embedding (``input_layer: embed``), not a speech front end.
    """

    def __init__(self, embed: torch.nn.Module):
        self.module = embed
        self.token_input = False
        steps = _STEPS_BY_CLASS.get(type(embed))
        if steps is not None:
            self.geometry = Subsampling(steps)
            self.conv = embed.conv
            self.conv2d = isinstance(embed.conv[0], torch.nn.Conv2d)
            out = embed.out
            if isinstance(out, torch.nn.Sequential) and isinstance(out[0], torch.nn.Linear):
                self.projection, self.positions = out[:-1], out[-1]
            elif isinstance(out, torch.nn.Linear) and isinstance(getattr(embed, "pos_enc", None), torch.nn.Module):
                self.projection, self.positions = out, embed.pos_enc
            else:
                raise ValueError(f"input layer {type(embed).__name__}: its output layer {type(out).__name__} is "
                                 "laid out in a way this package does not know")
        elif isinstance(embed, torch.nn.Sequential) and len(embed) >= 1:
            self.geometry = NO_SUBSAMPLING
            self.conv = None
            self.token_input = isinstance(embed[0], torch.nn.Embedding)
            self.projection, self.positions = embed[:-1], embed[-1]
        else:
            raise ValueError(f"input layer {type(embed).__name__} is not one of ESPnet's input layers "
                             f"({', '.join(str(n) for n in INPUT_LAYERS)})")

    @property
    def subsampling(self) -> bool:
        """Whether the layer subsamples (a convolutional input layer)."""
        return self.conv is not None

    # ------------------------------------------------------------------ frame arithmetic
    def frames_out(self, frames):
        """Output frames for ``frames`` valid input frames (int or tensor; see :class:`Subsampling`)."""
        return self.geometry.frames_out(frames)

    def lengths(self, ilens: torch.Tensor, frames: int) -> torch.Tensor:
        """Output lengths (B,) of inputs of ``ilens`` valid frames, in ``frames`` output frames: only
        the frames that see valid input (ESPnet slices the mask instead, which keeps one frame too many
        per convolution for a padded utterance); an utterance shorter than the receptive field keeps
        one frame, as in ESPnet (alone, it is too short: :meth:`check_length`)."""
        return self.frames_out(ilens).clamp(min=1, max=frames)

    def check_length(self, frames: int) -> None:
        """Raise ESPnet's ``TooShortUttError`` unless ``frames`` input frames give an output frame."""
        if self.subsampling and self.frames_out(frames) < 1:
            field = self.geometry.receptive_field
            raise TooShortUttError(
                f"has {frames} frames and is too short for subsampling (it needs at least {field} frames), "
                "return empty results", frames, field - 1)

    # ------------------------------------------------------------------ computation
    def project(self, x: torch.Tensor) -> torch.Tensor:
        """Input (B, T, F) (token ids (B, T) for a token embedding) -> (B, T', D): the convolutions
        and the projection, no positions."""
        if not self.subsampling:
            return self.projection(x)
        if self.conv2d:
            h = self.conv(x.unsqueeze(1))  # (B, C, T', F')
            b, c, t, f = h.size()
            h = h.transpose(1, 2).reshape(b, t, c * f)  # (B, T', C F')
        else:
            h = self.conv(x.transpose(1, 2)).transpose(1, 2)  # (B, T', C)
        return self.projection(h)

    def project_blocked(self, x: torch.Tensor, block_frames: int) -> torch.Tensor:
        """:meth:`project` computed ``block_frames`` output frames at a time, the input blocks
        overlapping by the receptive field: the same values in the memory of one block."""
        if block_frames < 1:
            raise ValueError(f"block_frames={block_frames} must be at least 1")
        total = int(self.frames_out(x.size(1)))
        if not self.subsampling or total <= block_frames:
            return self.project(x)
        stride, field = self.geometry.stride, self.geometry.receptive_field
        pieces = []
        for o0 in range(0, total, block_frames):
            o1 = min(total, o0 + block_frames)
            pieces.append(self.project(x[:, o0 * stride:(o1 - 1) * stride + field]))  # (B, o1 - o0, D)
        return torch.cat(pieces, dim=1)

    def add_positions(self, x: torch.Tensor, first_position: Union[int, torch.Tensor] = 0) -> torch.Tensor:
        """Add the positional encoding to (B, T', D), positions counted from ``first_position`` (an int,
        or a (1,) / () tensor in a traced graph), then its dropout, as ESPnet's encoding module does."""
        pos = self.positions
        if isinstance(pos, (PositionalEncoding, ScaledPositionalEncoding)):
            positions = torch.arange(x.size(1), device=x.device) + first_position  # (T',)
            table = sinusoids(positions.reshape(-1), x.size(2)).to(x.dtype)  # (1, T', D)
            if isinstance(pos, ScaledPositionalEncoding):
                x = x + pos.alpha * table
            else:
                x = x * pos.xscale + table
            return pos.dropout(x)
        if isinstance(pos, torch.nn.Dropout):
            return pos(x)
        raise ValueError(f"positional encoding {type(pos).__name__} is not supported (abs_pos, scaled_abs_pos, none)")

    def __call__(self, x: torch.Tensor, first_position: Union[int, torch.Tensor] = 0) -> torch.Tensor:
        """The whole input layer: ``add_positions(project(x), first_position)``."""
        return self.add_positions(self.project(x), first_position)
