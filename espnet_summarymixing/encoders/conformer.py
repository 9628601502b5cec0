"""SummaryMixing Conformer encoder: ESPnet's Conformer with SummaryMixing in the attention slot.

Block (macaron style): FFN/2 -> SummaryMixing -> convolution module -> FFN/2 -> LayerNorm,
each with ESPnet's residuals, dropout and stochastic depth. Shapes: (B, T, D), D = output_size.
"""

from typing import List, Optional, Union

import torch
from espnet.nets.pytorch_backend.conformer.convolution import ConvolutionModule
from espnet.nets.pytorch_backend.transformer.layer_norm import LayerNorm
from espnet.nets.pytorch_backend.transformer.multi_layer_conv import (
    Conv1dLinear,
    MultiLayeredConv1d,
)
from espnet.nets.pytorch_backend.transformer.positionwise_feed_forward import (
    PositionwiseFeedForward,
)
from typeguard import typechecked

from espnet_summarymixing.encoders.base import SummaryMixingEncoderBase, check_choice, check_range, per_block
from espnet_summarymixing.layers import masked as _masked
from espnet_summarymixing.layers.summary_mixing import SummaryMixing, make_activation

__all__ = ["SummaryMixingConformerEncoder"]

POSITIONWISE_LAYERS = ("linear", "conv1d", "conv1d-linear")


class _ConformerLayer(torch.nn.Module):
    """One Conformer block with SummaryMixing; ESPnet's ``EncoderLayer`` parameter names."""

    def __init__(
        self,
        size: int,
        summary_mixing: SummaryMixing,
        feed_forward: torch.nn.Module,
        feed_forward_macaron: Optional[torch.nn.Module],
        conv_module: Optional[ConvolutionModule],
        dropout_rate: float,
        normalize_before: bool,
        concat_after: bool,
        stochastic_depth_rate: float,
        conv_context: str = "full",
    ):
        super().__init__()
        self.size = size
        self.conv_context = conv_context  # what the time convolutions see: full, chunk or causal
        self.summary_mixing = summary_mixing
        self.feed_forward = feed_forward
        self.feed_forward_macaron = feed_forward_macaron
        self.conv_module = conv_module
        self.norm_ff = LayerNorm(size)
        self.norm_mha = LayerNorm(size)  # before the mixing module, ESPnet's name
        if feed_forward_macaron is not None:
            self.norm_ff_macaron = LayerNorm(size)
        self.ff_scale = 0.5 if feed_forward_macaron is not None else 1.0
        if conv_module is not None:
            self.norm_conv = LayerNorm(size)
            self.norm_final = LayerNorm(size)
        self.dropout = torch.nn.Dropout(dropout_rate)
        self.normalize_before = normalize_before
        self.concat_after = concat_after
        if concat_after:
            self.concat_linear = torch.nn.Linear(size + size, size)
        self.stochastic_depth_rate = stochastic_depth_rate

    def _residual(self, x, norm, fn, scale):
        y = norm(x) if self.normalize_before else x
        x = x + scale * self.dropout(fn(y))
        return x if self.normalize_before else norm(x)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, chunk_size: int = 0,
                valid: Optional[torch.Tensor] = None, spans=None) -> torch.Tensor:
        """x (B, T, D), mask (B, 1, T) True = valid -> (B, T, D).

        ``chunk_size`` > 0 makes the summary chunk-causal (each frame sees the utterance up to
        the end of its chunk); with ``conv_context`` ``causal`` the convolutions see no future frame,
        with ``chunk`` none beyond the end of the chunk.
        """
        coeff = 1.0
        if self.training and self.stochastic_depth_rate > 0:
            if torch.rand(1).item() < self.stochastic_depth_rate:
                return x
            coeff = 1.0 / (1.0 - self.stochastic_depth_rate)
        valid = _masked.valid_frames(mask, x.dtype) if valid is None else valid  # (B, T, 1)

        def mix(y):
            return self.summary_mixing(y, mask, chunk_size=chunk_size, valid=valid, spans=spans)

        def conv(y):
            return _masked.conv_module(self.conv_module, y, valid, self.conv_context, chunk_size)

        return self._blocks(x, valid, mix, conv, coeff)

    def step(self, x: torch.Tensor, mask: torch.Tensor, state: Optional[tuple]):
        """Streaming: one chunk x (B, c, D) with the state of the previous chunks (None at
        the start) -> output (B, c, D) and the new state (running summary, conv cache)."""
        mix_state, conv_cache = state if state is not None else (None, None)
        valid = _masked.valid_frames(mask, x.dtype)
        new = {}

        def mix(y):
            out, new["mix"] = self.summary_mixing.forward_streaming(y, mask, mix_state)
            return out

        def conv(y):
            out, new["conv"] = _masked.conv_module(self.conv_module, y, valid, self.conv_context,
                                                   cache=conv_cache, streaming=True)
            return out

        x = self._blocks(x, valid, mix, conv, 1.0)
        return x, (new.get("mix"), new.get("conv"))

    def _blocks(self, x, valid, mix, conv, coeff):
        def ffn(module):
            return lambda y: _masked.feed_forward(module, y, valid)

        if self.feed_forward_macaron is not None:
            x = self._residual(
                x, self.norm_ff_macaron, ffn(self.feed_forward_macaron), coeff * self.ff_scale
            )
        if self.concat_after:
            y = self.norm_mha(x) if self.normalize_before else x
            x = x + coeff * self.concat_linear(torch.cat((y, mix(y)), dim=-1))
            if not self.normalize_before:
                x = self.norm_mha(x)
        else:
            x = self._residual(x, self.norm_mha, mix, coeff)
        if self.conv_module is not None:
            x = self._residual(x, self.norm_conv, conv, coeff)
        x = self._residual(x, self.norm_ff, ffn(self.feed_forward), coeff * self.ff_scale)
        if self.conv_module is not None:
            x = self.norm_final(x)
        return x


class SummaryMixingConformerEncoder(SummaryMixingEncoderBase):
    """Conformer encoder whose self-attention is replaced by SummaryMixing (linear in T).

    Registered in ESPnet as ``encoder: summarymixing_conformer``. Every ConformerEncoder key
    keeps its meaning and default; the ``summary_*`` keys configure the cell. Keys that only
    configure self-attention are accepted so that a stock config runs unchanged, and a
    warning names them (they have no effect).

    Args:
        input_size (int): Input feature dimension (or vocabulary size with ``embed``).
        output_size (int): Model dimension D (default 256).
        linear_units (int): Hidden units of the feed-forward modules (default 2048).
        num_blocks (int): Number of Conformer blocks (default 6).
        dropout_rate (float): Dropout in every residual branch (default 0.1).
        positional_dropout_rate (float): Dropout after the positional encoding (default 0.1).
        input_layer (Optional[str]): ``conv2d`` (default, 4x), ``conv2d1``, ``conv2d2``,
            ``conv2d6``, ``conv2d8``, ``conv1d1``, ``conv1d2``, ``conv1d3``, ``linear``,
            ``embed`` or None.
        normalize_before (bool): Pre-LayerNorm residual blocks (default True).
        concat_after (bool): Mix as ``x + Linear([x; mix(x)])`` (default False).
        positionwise_layer_type (str): ``linear`` (default), ``conv1d`` or ``conv1d-linear``.
        positionwise_conv_kernel_size (int): Kernel of the conv1d feed-forward (default 3).
        macaron_style (bool): Two half-step feed-forward modules (default False).
        pos_enc_layer_type (str): ``abs_pos`` (default, sinusoids as in the authors'
            Conformer release), ``scaled_abs_pos`` or ``none``; ``rel_pos`` and
            ``legacy_rel_pos`` are mapped to ``abs_pos`` with a warning.
        activation_type (str): Activation of the feed-forward and convolution modules
            (default ``swish``).
        use_cnn_module (bool): Use the convolution module (default True).
        cnn_module_kernel (int): Odd kernel size of the depthwise convolution (default 31).
        ctc_trim (bool): Trim confident trailing blanks after intermediate CTC (default False).
        stochastic_depth_rate (Union[float, List[float]]): Per-block skip probability
            (default 0.0).
        summary_activation (str): Activation inside the cell (default ``swish``, as in the
            authors' Conformer recipes).
        {shared_args}
        selfattention_layer_type (Optional[str]): Accepted for config compatibility, no effect.

    Example:
        >>> enc = SummaryMixingConformerEncoder(20, output_size=16, linear_units=32,
        ...                                     num_blocks=2, cnn_module_kernel=3)
        >>> out, olens, _ = enc(torch.randn(2, 50, 20), torch.tensor([50, 30]))
        >>> out.shape, olens.tolist()
        (torch.Size([2, 11, 16]), [11, 6])
    """

    NAME = "summarymixing_conformer"

    @typechecked
    def __init__(
        self,
        input_size: int,
        output_size: int = 256,
        linear_units: int = 2048,
        num_blocks: int = 6,
        dropout_rate: float = 0.1,
        positional_dropout_rate: float = 0.1,
        input_layer: Optional[str] = "conv2d",
        normalize_before: bool = True,
        concat_after: bool = False,
        positionwise_layer_type: str = "linear",
        positionwise_conv_kernel_size: int = 3,
        macaron_style: bool = False,
        pos_enc_layer_type: str = "abs_pos",
        activation_type: str = "swish",
        use_cnn_module: bool = True,
        cnn_module_kernel: int = 31,
        padding_idx: int = -1,
        interctc_layer_idx: Optional[List[int]] = None,
        interctc_use_conditioning: bool = False,
        ctc_trim: bool = False,
        stochastic_depth_rate: Union[float, List[float]] = 0.0,
        layer_drop_rate: float = 0.0,
        max_pos_emb_len: int = 5000,
        gradient_checkpoint_layers: Optional[List[int]] = None,
        conv_context: str = "full",
        dynamic_chunk_training: bool = False,
        chunk_size_range: Optional[List[int]] = None,
        full_context_prob: float = 0.5,
        decode_chunk_size: int = 0,
        lookahead_frames: int = 0,
        summary_mode: str = "mixing",
        summary_heads: int = 1,
        summary_hidden_units: Optional[int] = None,
        summary_activation: str = "swish",
        summary_branch_norm: Optional[bool] = None,
        summary_dropout_rate: float = 0.0,
        summary_recompute: bool = False,
        compile_blocks: bool = False,
        attention_heads: Optional[int] = None,
        attention_dropout_rate: Optional[float] = None,
        selfattention_layer_type: Optional[str] = None,
        rel_pos_type: Optional[str] = None,
        zero_triu: Optional[bool] = None,
        qk_norm: Optional[bool] = None,
        use_flash_attn: Optional[bool] = None,
        causal_conv: Optional[bool] = None,
        chunk_conv: Optional[bool] = None,
    ):
        super().__init__(locals())

    def _build_layers(self, args, cell):
        size, units = args["output_size"], args["linear_units"]
        positionwise_layer_type, kernel = args["positionwise_layer_type"], args["cnn_module_kernel"]
        check_choice("positionwise_layer_type", positionwise_layer_type, POSITIONWISE_LAYERS)
        if units <= 0:
            raise ValueError(f"linear_units={units} must be a positive integer")
        if args["use_cnn_module"] and (kernel < 1 or kernel % 2 == 0):
            raise ValueError(
                f"cnn_module_kernel={kernel} must be a positive odd number "
                "(the convolution is centred on each frame)"
            )
        if positionwise_layer_type != "linear" and args["positionwise_conv_kernel_size"] % 2 == 0:
            raise ValueError(
                f"positionwise_conv_kernel_size={args['positionwise_conv_kernel_size']} must be odd "
                "(an even kernel shifts the output by half a frame)"
            )
        if positionwise_layer_type != "linear" and args["conv_context"] != "full":
            raise ValueError(
                f"positionwise_layer_type={positionwise_layer_type!r} convolves over time and cannot be "
                f"made causal or chunk-aware: use 'linear' with conv_context={args['conv_context']!r}"
            )
        depth_rates = per_block("stochastic_depth_rate", args["stochastic_depth_rate"], args["num_blocks"])
        for p in depth_rates:
            check_range("stochastic_depth_rate", p, 0.0, 1.0)
        activation = args["activation_type"]
        make_activation(activation, "activation_type")

        def positionwise():
            if positionwise_layer_type == "linear":
                return PositionwiseFeedForward(size, units, args["dropout_rate"], make_activation(activation))
            conv_class = MultiLayeredConv1d if positionwise_layer_type == "conv1d" else Conv1dLinear
            return conv_class(size, units, args["positionwise_conv_kernel_size"], args["dropout_rate"])

        return [
            _ConformerLayer(
                size,
                cell(),
                positionwise(),
                positionwise() if args["macaron_style"] else None,
                ConvolutionModule(size, kernel, make_activation(activation)) if args["use_cnn_module"] else None,
                args["dropout_rate"],
                args["normalize_before"],
                args["concat_after"],
                depth_rates[i],
                args["conv_context"],
            )
            for i in range(args["num_blocks"])
        ]
