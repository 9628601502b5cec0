"""SummaryMixing Branchformer encoder: a SummaryMixing branch beside ESPnet's cgMLP branch.

Block: x + Merge(SummaryMixing(LN(x)), cgMLP(LN(x))) -> LayerNorm, merged as ESPnet's
Branchformer does (concat + linear, learned average, fixed average). Shapes: (B, T, D).
"""

from typing import List, Optional, Union

import torch
from espnet.nets.pytorch_backend.transformer.layer_norm import LayerNorm
from espnet2.asr.layers.cgmlp import ConvolutionalGatingMLP
from typeguard import typechecked

from espnet_summarymixing.encoders.base import (
    SummaryMixingEncoderBase,
    check_cgmlp_options,
    check_choice,
    check_range,
    per_block,
)
from espnet_summarymixing.layers import masked as _masked
from espnet_summarymixing.layers.summary_mixing import SummaryMixing

__all__ = ["SummaryMixingBranchformerEncoder"]

MERGE_METHODS = ("concat", "learned_ave", "fixed_ave")


def _pool_weight(x: torch.Tensor, mask: torch.Tensor, pooling, weight, size: int) -> torch.Tensor:
    """Attention-pool x (B, T, D) over valid frames and score it: (B, 1)."""
    score = pooling(x).transpose(1, 2) / size**0.5  # (B, 1, T)
    score = score.masked_fill(~mask, torch.finfo(score.dtype).min)
    score = torch.softmax(score, dim=-1).masked_fill(~mask, 0.0)  # (B, 1, T)
    return weight(torch.matmul(score, x).squeeze(1))  # (B, 1)


class _BranchformerLayer(torch.nn.Module):
    """One Branchformer block with SummaryMixing; ESPnet's parameter names."""

    def __init__(
        self,
        size: int,
        summary_mixing: Optional[SummaryMixing],
        cgmlp: Optional[ConvolutionalGatingMLP],
        dropout_rate: float,
        merge_method: str,
        cgmlp_weight: float,
        attn_branch_drop_rate: float,
        stochastic_depth_rate: float,
        conv_context: str = "full",
    ):
        super().__init__()
        self.conv_context = conv_context  # what the cgMLP convolution sees: full, chunk or causal
        if merge_method == "fixed_ave" and cgmlp_weight == 0.0:
            cgmlp = None
        if merge_method == "fixed_ave" and cgmlp_weight == 1.0:
            summary_mixing = None
        self.size = size
        self.summary_mixing = summary_mixing
        self.cgmlp = cgmlp
        self.merge_method = merge_method
        self.cgmlp_weight = cgmlp_weight
        self.attn_branch_drop_rate = attn_branch_drop_rate
        self.stochastic_depth_rate = stochastic_depth_rate
        self.use_two_branches = summary_mixing is not None and cgmlp is not None
        if summary_mixing is not None:
            self.norm_mha = LayerNorm(size)
        if cgmlp is not None:
            self.norm_mlp = LayerNorm(size)
        self.norm_final = LayerNorm(size)
        self.dropout = torch.nn.Dropout(dropout_rate)
        if self.use_two_branches and merge_method == "concat":
            self.merge_proj = torch.nn.Linear(size + size, size)
        elif self.use_two_branches and merge_method == "learned_ave":
            self.pooling_proj1 = torch.nn.Linear(size, 1)
            self.pooling_proj2 = torch.nn.Linear(size, 1)
            self.weight_proj1 = torch.nn.Linear(size, 1)
            self.weight_proj2 = torch.nn.Linear(size, 1)
            self.merge_proj = torch.nn.Linear(size, size)
        elif merge_method == "fixed_ave":
            self.merge_proj = torch.nn.Linear(size, size)
        else:
            self.merge_proj = torch.nn.Identity()

    def forward(self, x: torch.Tensor, mask: torch.Tensor, chunk_size: int = 0,
                valid: Optional[torch.Tensor] = None, spans=None) -> torch.Tensor:
        """x (B, T, D), mask (B, 1, T) True = valid -> (B, T, D); chunk_size as the Conformer's."""
        coeff = 1.0
        if self.training and self.stochastic_depth_rate > 0:
            if torch.rand(1).item() < self.stochastic_depth_rate:
                return x
            coeff = 1.0 / (1.0 - self.stochastic_depth_rate)
        valid = _masked.valid_frames(mask, x.dtype) if valid is None else valid  # (B, T, 1)
        x1 = x2 = None
        if self.summary_mixing is not None:
            x1 = self.summary_mixing(self.norm_mha(x), mask, chunk_size=chunk_size, valid=valid, spans=spans)
        if self.cgmlp is not None:
            x2 = _masked.cgmlp(self.cgmlp, self.norm_mlp(x), valid, self.conv_context, chunk_size)
        return self._merge(x, x1, x2, mask, coeff)

    def step(self, x: torch.Tensor, mask: torch.Tensor, state):
        """Streaming: one chunk with the previous chunks' state (None at the start)."""
        mix_state, conv_cache = state if state is not None else (None, None)
        valid = _masked.valid_frames(mask, x.dtype)
        x1 = x2 = None
        if self.summary_mixing is not None:
            x1, mix_state = self.summary_mixing.forward_streaming(self.norm_mha(x), mask, mix_state)
        if self.cgmlp is not None:
            x2, conv_cache = _masked.cgmlp(self.cgmlp, self.norm_mlp(x), valid, self.conv_context, cache=conv_cache,
                                           streaming=True)
        return self._merge(x, x1, x2, mask, 1.0), (mix_state, conv_cache)

    def _merge(self, x, x1, x2, mask, coeff):
        x1 = None if x1 is None else self.dropout(x1)  # (B, T, D)
        x2 = None if x2 is None else self.dropout(x2)  # (B, T, D)
        if not self.use_two_branches:
            merged = x1 if x2 is None else x2
        elif self.merge_method == "concat":
            merged = torch.cat([x1, x2], dim=-1)  # (B, T, 2D)
        elif self.merge_method == "learned_ave":
            if self.training and self.attn_branch_drop_rate > 0 and (
                torch.rand(1).item() < self.attn_branch_drop_rate
            ):
                merged = x2
            else:
                w = torch.cat(
                    [
                        _pool_weight(x1, mask, self.pooling_proj1, self.weight_proj1, self.size),
                        _pool_weight(x2, mask, self.pooling_proj2, self.weight_proj2, self.size),
                    ],
                    dim=-1,
                )  # (B, 2)
                w = torch.softmax(w, dim=-1)[:, :, None, None]  # (B, 2, 1, 1)
                merged = w[:, 0] * x1 + w[:, 1] * x2
        else:  # fixed_ave
            merged = (1.0 - self.cgmlp_weight) * x1 + self.cgmlp_weight * x2
        x = x + coeff * self.dropout(self.merge_proj(merged))
        return self.norm_final(x)


class SummaryMixingBranchformerEncoder(SummaryMixingEncoderBase):
    """Branchformer encoder whose attention branch is SummaryMixing (linear in T).

    Registered in ESPnet as ``encoder: summarymixing_branchformer``. Every
    BranchformerEncoder key keeps its meaning and default except ``pos_enc_layer_type``
    (default ``none``: the paper's Branchformer used no positional encoding; the cgMLP
    convolutions carry position). Intermediate CTC, layer drop and gradient checkpointing
    are added. Self-attention-only keys are accepted for config compatibility with a warning.

    Args:
        input_size (int): Input feature dimension (or vocabulary size with ``embed``).
        output_size (int): Model dimension D (default 256).
        use_attn (bool): Use the SummaryMixing branch (default True).
        pos_enc_layer_type (str): ``none`` (default), ``abs_pos`` or ``scaled_abs_pos``;
            relative encodings map to ``abs_pos`` with a warning.
        use_cgmlp (bool): Use the cgMLP branch (default True).
        cgmlp_linear_units (int): Even hidden size of the cgMLP (default 2048).
        cgmlp_conv_kernel (int): Odd kernel of the cgMLP's depthwise conv (default 31).
        use_linear_after_conv (bool): Linear after the cgMLP conv (default False).
        gate_activation (str): Gate activation of the cgMLP (default ``identity``).
        merge_method (str): ``concat`` (default), ``learned_ave`` or ``fixed_ave``.
        cgmlp_weight (Union[float, List[float]]): cgMLP weight for ``fixed_ave``, in [0, 1]
            (default 0.5), one per block or one for all.
        attn_branch_drop_rate (Union[float, List[float]]): Probability of dropping the
            SummaryMixing branch with ``learned_ave`` (default 0.0).
        num_blocks (int): Number of blocks (default 12).
        dropout_rate (float): Dropout (default 0.1).
        positional_dropout_rate (float): Dropout after the positional encoding (default 0.1).
        input_layer (Optional[str]): As in the Conformer (default ``conv2d``).
        stochastic_depth_rate (Union[float, List[float]]): Per-block skip probability (0.0).
        summary_activation (str): Activation in the cell (default ``gelu``, as in the
            authors' Branchformer recipes).
        {shared_args}
        attention_layer_type (Optional[str]): Accepted for config compatibility, no effect.

    Example:
        >>> enc = SummaryMixingBranchformerEncoder(20, output_size=16, cgmlp_linear_units=32,
        ...                                        num_blocks=2, cgmlp_conv_kernel=3)
        >>> out, olens, _ = enc(torch.randn(2, 50, 20), torch.tensor([50, 30]))
        >>> out.shape, olens.tolist()
        (torch.Size([2, 11, 16]), [11, 6])
    """

    NAME = "summarymixing_branchformer"

    @typechecked
    def __init__(
        self,
        input_size: int,
        output_size: int = 256,
        use_attn: bool = True,
        pos_enc_layer_type: str = "none",
        use_cgmlp: bool = True,
        cgmlp_linear_units: int = 2048,
        cgmlp_conv_kernel: int = 31,
        use_linear_after_conv: bool = False,
        gate_activation: str = "identity",
        merge_method: str = "concat",
        cgmlp_weight: Union[float, List[float]] = 0.5,
        attn_branch_drop_rate: Union[float, List[float]] = 0.0,
        num_blocks: int = 12,
        dropout_rate: float = 0.1,
        positional_dropout_rate: float = 0.1,
        input_layer: Optional[str] = "conv2d",
        padding_idx: int = -1,
        stochastic_depth_rate: Union[float, List[float]] = 0.0,
        layer_drop_rate: float = 0.0,
        max_pos_emb_len: int = 5000,
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
        size, num_blocks, merge_method = args["output_size"], args["num_blocks"], args["merge_method"]
        if not (args["use_attn"] or args["use_cgmlp"]):
            raise ValueError("use_attn=False and use_cgmlp=False: a block needs at least one branch")
        check_choice("merge_method", merge_method, MERGE_METHODS)
        chunked = args["conv_context"] != "full" or args["dynamic_chunk_training"] or args["decode_chunk_size"]
        if merge_method == "learned_ave" and chunked:
            raise ValueError(
                "merge_method='learned_ave' pools each branch over the whole utterance, which "
                "a chunk-causal model must not see: use 'concat' or 'fixed_ave'"
            )
        check_cgmlp_options(args["cgmlp_linear_units"], args["cgmlp_conv_kernel"], args["gate_activation"])
        cgmlp_weight = per_block("cgmlp_weight", args["cgmlp_weight"], num_blocks)
        for w in cgmlp_weight:
            if not 0.0 <= w <= 1.0:
                raise ValueError(f"cgmlp_weight={w} must be in [0, 1]")
        attn_branch_drop_rate = per_block("attn_branch_drop_rate", args["attn_branch_drop_rate"], num_blocks)
        stochastic_depth_rate = per_block("stochastic_depth_rate", args["stochastic_depth_rate"], num_blocks)
        for p in attn_branch_drop_rate + stochastic_depth_rate:
            check_range("attn_branch_drop_rate/stochastic_depth_rate", p, 0.0, 1.0)
        return [
            _BranchformerLayer(
                size,
                cell() if args["use_attn"] else None,
                ConvolutionalGatingMLP(
                    size, args["cgmlp_linear_units"], args["cgmlp_conv_kernel"], args["dropout_rate"],
                    args["use_linear_after_conv"], args["gate_activation"],
                )
                if args["use_cgmlp"]
                else None,
                args["dropout_rate"],
                merge_method,
                cgmlp_weight[i],
                attn_branch_drop_rate[i],
                stochastic_depth_rate[i],
                args["conv_context"],
            )
            for i in range(num_blocks)
        ]
