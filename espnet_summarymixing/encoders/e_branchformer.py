"""SummaryMixing E-Branchformer encoder: SummaryMixing as the global branch of E-Branchformer.

Block: [FFN/2] -> x + Merge(SummaryMixing(LN(x)), cgMLP(LN(x))) -> [FFN/2] -> LayerNorm, where
Merge = Linear(concat + depthwise-conv(concat)) as in ESPnet's E-Branchformer. Shapes: (B, T, D).
"""

from typing import List, Optional

import torch
from espnet.nets.pytorch_backend.transformer.layer_norm import LayerNorm
from espnet.nets.pytorch_backend.transformer.positionwise_feed_forward import (
    PositionwiseFeedForward,
)
from espnet2.asr.layers.cgmlp import ConvolutionalGatingMLP
from typeguard import typechecked

from espnet_summarymixing.encoders.base import SummaryMixingEncoderBase, check_cgmlp_options, check_choice
from espnet_summarymixing.layers import masked as _masked
from espnet_summarymixing.layers.summary_mixing import SummaryMixing, make_activation

__all__ = ["SummaryMixingEBranchformerEncoder"]


class _EBranchformerLayer(torch.nn.Module):
    """One E-Branchformer block with SummaryMixing; ESPnet's parameter names."""

    def __init__(
        self,
        size: int,
        summary_mixing: SummaryMixing,
        cgmlp: ConvolutionalGatingMLP,
        feed_forward: Optional[torch.nn.Module],
        feed_forward_macaron: Optional[torch.nn.Module],
        dropout_rate: float,
        merge_conv_kernel: int,
        conv_context: str = "full",
    ):
        super().__init__()
        self.conv_context = conv_context  # what the time convolutions see: full, chunk or causal
        self.size = size
        self.summary_mixing = summary_mixing
        self.cgmlp = cgmlp
        self.feed_forward = feed_forward
        self.feed_forward_macaron = feed_forward_macaron
        self.ff_scale = 0.5 if feed_forward_macaron is not None else 1.0
        if feed_forward is not None:
            self.norm_ff = LayerNorm(size)
        if feed_forward_macaron is not None:
            self.norm_ff_macaron = LayerNorm(size)
        self.norm_mha = LayerNorm(size)
        self.norm_mlp = LayerNorm(size)
        self.norm_final = LayerNorm(size)
        self.dropout = torch.nn.Dropout(dropout_rate)
        self.depthwise_conv_fusion = torch.nn.Conv1d(
            2 * size, 2 * size, merge_conv_kernel, padding=(merge_conv_kernel - 1) // 2,
            groups=2 * size,
        )
        self.merge_proj = torch.nn.Linear(2 * size, size)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, chunk_size: int = 0,
                valid: Optional[torch.Tensor] = None, spans=None) -> torch.Tensor:
        """x (B, T, D), mask (B, 1, T) True = valid -> (B, T, D); chunk_size as the Conformer's."""
        valid = _masked.valid_frames(mask, x.dtype) if valid is None else valid  # (B, T, 1)

        def branches(x):
            x2 = _masked.cgmlp(self.cgmlp, self.norm_mlp(x), valid, self.conv_context, chunk_size)
            x1 = self.summary_mixing(self.norm_mha(x), mask, chunk_size=chunk_size, valid=valid, spans=spans)
            return x1, x2

        def fuse(x_concat):
            return _masked.depthwise_conv(self.depthwise_conv_fusion, x_concat, valid, self.conv_context,
                                          chunk_size)

        return self._block(x, branches, fuse)

    def step(self, x: torch.Tensor, mask: torch.Tensor, state):
        """Streaming: one chunk with the previous chunks' state (None at the start)."""
        mix_state, cgmlp_cache, fusion_cache = state if state is not None else (None, None, None)
        valid = _masked.valid_frames(mask, x.dtype)
        new = {}

        def branches(x):
            x2, new["cgmlp"] = _masked.cgmlp(self.cgmlp, self.norm_mlp(x), valid, self.conv_context,
                                             cache=cgmlp_cache, streaming=True)
            x1, new["mix"] = self.summary_mixing.forward_streaming(self.norm_mha(x), mask, mix_state)
            return x1, x2

        def fuse(x_concat):
            out, new["fusion"] = _masked.conv_step(self.depthwise_conv_fusion, x_concat, valid,
                                                   fusion_cache, self.conv_context)
            return out

        x = self._block(x, branches, fuse)
        return x, (new["mix"], new["cgmlp"], new["fusion"])

    def _block(self, x, branches, fuse):
        if self.feed_forward_macaron is not None:
            y = self.feed_forward_macaron(self.norm_ff_macaron(x))
            x = x + self.ff_scale * self.dropout(y)
        x1, x2 = branches(x)
        x1, x2 = self.dropout(x1), self.dropout(x2)  # (B, T, D) each
        x_concat = torch.cat([x1, x2], dim=-1)  # (B, T, 2D)
        x = x + self.dropout(self.merge_proj(x_concat + fuse(x_concat)))
        if self.feed_forward is not None:
            x = x + self.ff_scale * self.dropout(self.feed_forward(self.norm_ff(x)))
        return self.norm_final(x)


class SummaryMixingEBranchformerEncoder(SummaryMixingEncoderBase):
    """E-Branchformer encoder whose global (attention) branch is SummaryMixing.

    Registered in ESPnet as ``encoder: summarymixing_e_branchformer``. Every
    EBranchformerEncoder key keeps its meaning and default except ``pos_enc_layer_type``
    (default ``none``, as the SummaryMixing Branchformer). Self-attention-only keys are
    accepted for config compatibility with a warning.

    Args:
        input_size (int): Input feature dimension (or vocabulary size with ``embed``).
        output_size (int): Model dimension D (default 256).
        pos_enc_layer_type (str): ``none`` (default), ``abs_pos`` or ``scaled_abs_pos``;
            relative encodings map to ``abs_pos`` with a warning.
        cgmlp_linear_units (int): Even hidden size of the cgMLP (default 2048).
        cgmlp_conv_kernel (int): Odd kernel of the cgMLP's depthwise conv (default 31).
        use_linear_after_conv (bool): Linear after the cgMLP conv (default False).
        gate_activation (str): Gate activation of the cgMLP (default ``identity``).
        num_blocks (int): Number of blocks (default 12).
        dropout_rate (float): Dropout (default 0.1).
        positional_dropout_rate (float): Dropout after the positional encoding (default 0.1).
        input_layer (Optional[str]): As in the Conformer (default ``conv2d``).
        use_ffn (bool): Feed-forward module after the merge (default False).
        macaron_ffn (bool): Also one before the branches, both half-step (default False).
        ffn_activation_type (str): Feed-forward activation (default ``swish``).
        linear_units (int): Feed-forward hidden units (default 2048).
        positionwise_layer_type (str): ``linear`` (the only kind, default).
        merge_conv_kernel (int): Odd kernel of the merge depthwise conv (default 3).
        summary_activation (str): Activation in the cell (default ``gelu``, as the
            SummaryMixing Branchformer).
        {shared_args}
        attention_layer_type (Optional[str]): Accepted for config compatibility, no effect.

    Example:
        >>> enc = SummaryMixingEBranchformerEncoder(20, output_size=16, cgmlp_linear_units=32,
        ...                                         num_blocks=2, cgmlp_conv_kernel=3)
        >>> out, olens, _ = enc(torch.randn(2, 50, 20), torch.tensor([50, 30]))
        >>> out.shape, olens.tolist()
        (torch.Size([2, 11, 16]), [11, 6])
    """

    NAME = "summarymixing_e_branchformer"

    @typechecked
    def __init__(
        self,
        input_size: int,
        output_size: int = 256,
        pos_enc_layer_type: str = "none",
        cgmlp_linear_units: int = 2048,
        cgmlp_conv_kernel: int = 31,
        use_linear_after_conv: bool = False,
        gate_activation: str = "identity",
        num_blocks: int = 12,
        dropout_rate: float = 0.1,
        positional_dropout_rate: float = 0.1,
        input_layer: Optional[str] = "conv2d",
        padding_idx: int = -1,
        layer_drop_rate: float = 0.0,
        max_pos_emb_len: int = 5000,
        use_ffn: bool = False,
        macaron_ffn: bool = False,
        ffn_activation_type: str = "swish",
        linear_units: int = 2048,
        positionwise_layer_type: str = "linear",
        merge_conv_kernel: int = 3,
        interctc_layer_idx: Optional[List[int]] = None,
        interctc_use_conditioning: bool = False,
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
        summary_activation: str = "gelu",
        summary_branch_norm: Optional[bool] = None,
        summary_dropout_rate: float = 0.0,
        summary_recompute: bool = False,
        compile_blocks: bool = False,
        attention_heads: Optional[int] = None,
        attention_layer_type: Optional[str] = None,
        rel_pos_type: Optional[str] = None,
        attention_dropout_rate: Optional[float] = None,
        zero_triu: Optional[bool] = None,
        qk_norm: Optional[bool] = None,
        use_flash_attn: Optional[bool] = None,
        causal_conv: Optional[bool] = None,
        chunk_conv: Optional[bool] = None,
    ):
        super().__init__(locals())

    def _build_layers(self, args, cell):
        size, units, merge_conv_kernel = args["output_size"], args["linear_units"], args["merge_conv_kernel"]
        check_cgmlp_options(args["cgmlp_linear_units"], args["cgmlp_conv_kernel"], args["gate_activation"])
        check_choice("positionwise_layer_type", args["positionwise_layer_type"], ["linear"])
        if merge_conv_kernel < 1 or merge_conv_kernel % 2 == 0:
            raise ValueError(f"merge_conv_kernel={merge_conv_kernel} must be a positive odd number")
        if args["macaron_ffn"] and not args["use_ffn"]:
            raise ValueError("macaron_ffn=True needs use_ffn=True (the macaron pair is two FFNs)")
        if args["use_ffn"] and units <= 0:
            raise ValueError(f"linear_units={units} must be positive")
        make_activation(args["ffn_activation_type"], "ffn_activation_type")

        def ffn():
            activation = make_activation(args["ffn_activation_type"])
            return PositionwiseFeedForward(size, units, args["dropout_rate"], activation)

        return [
            _EBranchformerLayer(
                size,
                cell(),
                ConvolutionalGatingMLP(
                    size, args["cgmlp_linear_units"], args["cgmlp_conv_kernel"], args["dropout_rate"],
                    args["use_linear_after_conv"], args["gate_activation"],
                ),
                ffn() if args["use_ffn"] else None,
                ffn() if args["use_ffn"] and args["macaron_ffn"] else None,
                args["dropout_rate"],
                merge_conv_kernel,
                args["conv_context"],
            )
            for _ in range(args["num_blocks"])
        ]
