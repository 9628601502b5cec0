"""The SummaryMixing cell: a linear-time drop-in for multi-head self-attention.

Reference: Parcollet, van Dalen, Zhang, Bhattacharya, "SummaryMixing: A Linear-Complexity
Alternative to Self-Attention for Speech Recognition and Understanding", Interspeech 2024.

Shapes use one convention throughout: B batch, T frames, D model size, H heads,
U hidden units of the local (F) and summary (S) branches, C chunks.
"""

from typing import Optional, Sequence, Tuple

import torch

__all__ = ["SummaryMixing", "MODES", "ACTIVATIONS", "summary_spans"]

#: Cell variants: ``mixing`` (the paper's default), ``lite`` (summary only) and
#: ``fast`` (one fused projection for both branches).
MODES = ("mixing", "lite", "fast")

#: Activation names accepted by the cell, ESPnet's spelling (``swish`` is SiLU).
ACTIVATIONS = {
    "gelu": torch.nn.GELU,
    "swish": torch.nn.SiLU,
    "relu": torch.nn.ReLU,
    "tanh": torch.nn.Tanh,
    "hardtanh": torch.nn.Hardtanh,
    "selu": torch.nn.SELU,
}


def summary_spans(frames: int, window: int = 0, segments: Optional[Sequence[int]] = None,
                  device: Optional[torch.device] = None) -> Optional[Tuple[torch.Tensor, torch.Tensor]]:
    """The frames ``[lo_t, hi_t)`` whose summary frame ``t`` of ``frames`` receives, for inference on
    recordings much longer than the training utterances, or None for the trained behaviour (the mean
    over the whole utterance).

    Args:
        frames: Frames of the sequence (T).
        window: W > 0: each frame's summary is the mean over the frames within W frames of it (a
            sliding window); 0: off.
        segments: Frame indices where a new segment starts (the first at 0): each frame's summary is
            its own segment's, as if the segments were utterances laid end to end. Excludes ``window``.

    Returns:
        ``(lo, hi)``, two (T,) int64 tensors, or None when every frame would see the whole sequence.

    >>> lo, hi = summary_spans(6, window=1)
    >>> lo.tolist(), hi.tolist()
    ([0, 0, 1, 2, 3, 4], [2, 3, 4, 5, 6, 6])
    >>> [t.tolist() for t in summary_spans(6, segments=[0, 4])]
    [[0, 0, 0, 0, 4, 4], [4, 4, 4, 4, 6, 6]]
    """
    if not isinstance(window, int) or window < 0:
        raise ValueError(f"summary window {window!r} must be a whole number of encoder frames >= 0 (0 = off)")
    if window and segments is not None:
        raise ValueError("a summary window and summary segments exclude each other: give one")
    index = torch.arange(frames, device=device)
    if window:
        if window >= frames - 1:
            return None  # every window covers the whole sequence
        return (index - window).clamp(min=0), (index + window + 1).clamp(max=frames)
    if segments is None:
        return None
    segments = [int(b) for b in segments]
    if any(b < 0 for b in segments):
        raise ValueError(f"summary segments {segments}: frame indices must be >= 0")
    starts = torch.tensor(sorted({0, *(b for b in segments if 0 < b < frames)}), device=device)
    if starts.numel() == 1:
        return None
    ends = torch.cat([starts[1:], starts.new_tensor([frames])])
    segment = torch.searchsorted(starts, index, right=True) - 1
    return starts[segment], ends[segment]


def make_activation(name: str, argument: str = "activation") -> torch.nn.Module:
    """Return a fresh activation module for ``name`` or raise a ValueError naming ``argument``."""
    if name not in ACTIVATIONS:
        raise ValueError(
            f"{argument}={name!r} is not supported: choose one of {sorted(ACTIVATIONS)}"
        )
    return ACTIVATIONS[name]()


class _GroupedLinear(torch.nn.Module):
    """Block-diagonal linear layer: ``groups`` independent ``Linear(in/G, out/G)``.

    The weight is stored as ``(out, in/G)`` (the layout of a grouped 1x1 convolution) so
    that ESPnet's fan-in based initialisations see the true fan-in of each block.
    """

    def __init__(self, in_features: int, out_features: int, groups: int):
        super().__init__()
        assert in_features % groups == 0 and out_features % groups == 0
        self.groups = groups
        self.in_features = in_features
        self.out_features = out_features
        self.weight = torch.nn.Parameter(torch.empty(out_features, in_features // groups))
        self.bias = torch.nn.Parameter(torch.empty(out_features))
        bound = (groups / in_features) ** 0.5
        torch.nn.init.uniform_(self.weight, -bound, bound)
        torch.nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = self.groups
        lead = x.shape[:-1]
        x = x.reshape(-1, g, self.in_features // g)  # (N, H, in/H)
        w = self.weight.view(g, self.out_features // g, -1)  # (H, out/H, in/H)
        y = torch.einsum("ngi,goi->ngo", x, w)  # (N, H, out/H)
        return y.reshape(*lead, self.out_features) + self.bias  # (..., out)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, groups={self.groups}"


def _linear(in_features: int, out_features: int, groups: int) -> torch.nn.Module:
    if groups == 1:
        return torch.nn.Linear(in_features, out_features)
    return _GroupedLinear(in_features, out_features, groups)


class SummaryMixing(torch.nn.Module):
    """SummaryMixing: per-frame transformation plus one mean over the utterance.

    For frames ``x_t`` with validity mask ``m_t`` (mode ``mixing``)::

        f_t = F(x_t)                           local branch, 2-layer MLP
        s_t = S(x_t)                           summary branch, 2-layer MLP
        s   = sum_t m_t s_t / max(1, sum_t m_t)
        y_t = act(C_f LN(f_t) + C_s LN(s) + b)  combiner Linear(2U -> D), split in two halves

    The summary half of the combiner is computed once per utterance and added as a bias:
    nothing of size ``T x T`` and no ``T``-fold copy of the summary is ever built.
    Padded output frames are exactly zero.

    With default arguments each mode computes the published cell of the same name (the
    authors' SpeechBrain code, "SummaryMixing", "SummaryMixing-lite", "SummaryMixing-fast"):

    - ``mixing``: the SpeechBrain-0.5 cell whose results are in the paper, LayerNorms on
      ``f_t`` and on the summary (also the default of the authors' SpeechBrain-1.0 release);
    - ``lite``: ``y_t = s`` for every valid frame, no LayerNorm, no combiner (both releases);
    - ``fast``: ``[f_t; s_t] = act(W x_t + c)`` in one projection (f the first U outputs,
      s the last U, with ``heads=1``), then the combiner; no LayerNorm (both releases).

    Args:
        size (int): Input and output dimension D.
        hidden_units (Optional[int]): Hidden and output size U of the F and S branches;
            ``None`` (default) means ``size``, as in the paper's models.
        heads (int): Number of block-diagonal groups H of F and S (default 1). These are not
            attention heads: each group is an independent small MLP over D/H features,
            which divides the parameters and FLOPs of F and S by H.
        mode (str): ``"mixing"`` (default, the paper's cell), ``"lite"`` (no local branch and
            no combiner: every valid frame receives the summary) or ``"fast"`` (a single
            fused projection ``act(W x)`` yields f and s, followed by the combiner).
        activation (str): Activation after every layer of F, S and C (default ``"gelu"``);
            one of :data:`ACTIVATIONS`.
        branch_norm (Optional[bool]): LayerNorm on the branches before they are mixed: on
            ``f_t`` and on the summary in modes ``mixing`` and ``fast``, on the summary (the
            output) in mode ``lite``. ``None`` (default) follows the published cell of the mode:
            True for ``mixing``, False for ``lite`` and ``fast``. ``False`` with ``mixing`` is the
            cell of the authors' ``use_layernorm: False`` option. A checkpoint of a ``lite`` or
            ``fast`` cell trained with LayerNorms (this package's default before version 0.2)
            still loads into a cell built with ``None``: its LayerNorm weights turn them on.
        dropout_rate (float): Dropout on ``f_t`` and the summary before the combiner
            (default 0.0, as in the paper; the authors' later release uses 0.1).
        recompute (bool): In training, keep only the cell's input for the backward pass and
            compute the cell again there (activation checkpointing of the cell alone; default
            False). Saves the cell's activations (about 9 x B x T x D numbers per cell for
            ``mixing``) for about one more cell forward per step. Outputs and gradients unchanged.

    Example:
        >>> cell = SummaryMixing(size=8, heads=2)
        >>> x = torch.randn(2, 5, 8)
        >>> mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2]).unsqueeze(1)
        >>> y = cell(x, mask)
        >>> y.shape
        torch.Size([2, 5, 8])
        >>> bool((y[1, 3:] == 0).all())
        True
    """

    def __init__(
        self,
        size: int,
        hidden_units: Optional[int] = None,
        heads: int = 1,
        mode: str = "mixing",
        activation: str = "gelu",
        branch_norm: Optional[bool] = None,
        dropout_rate: float = 0.0,
        recompute: bool = False,
    ):
        super().__init__()
        hidden_units = size if hidden_units is None else hidden_units
        if mode not in MODES:
            raise ValueError(f"mode={mode!r} is not supported: choose one of {list(MODES)}")
        if size <= 0:
            raise ValueError(f"size={size} must be a positive integer")
        if hidden_units <= 0:
            raise ValueError(f"hidden_units={hidden_units} must be a positive integer")
        if heads <= 0:
            raise ValueError(f"heads={heads} must be a positive integer")
        if size % heads != 0:
            raise ValueError(
                f"heads={heads} must divide size={size}: the block-diagonal branches "
                "split the features into equal groups"
            )
        if hidden_units % heads != 0:
            raise ValueError(
                f"heads={heads} must divide hidden_units={hidden_units}: the block-diagonal "
                "branches split the hidden units into equal groups"
            )
        if not 0.0 <= dropout_rate < 1.0:
            raise ValueError(f"dropout_rate={dropout_rate} must be in [0, 1)")
        make_activation(activation)  # validates the name before any layer is built

        self.size = size
        self.hidden_units = hidden_units
        self.heads = heads
        self.mode = mode
        self.activation_type = activation
        self._branch_norm_given = branch_norm is not None
        if branch_norm is None:
            branch_norm = mode == "mixing"
        self.branch_norm = branch_norm
        self.dropout_rate = dropout_rate
        self.recompute = recompute
        u, h = hidden_units, heads

        if mode == "mixing":
            self.local_proj = torch.nn.Sequential(
                _linear(size, u, h), make_activation(activation),
                _linear(u, u, h), make_activation(activation),
            )
        if mode in ("mixing", "lite"):
            summary_out = size if mode == "lite" else u
            self.summary_proj = torch.nn.Sequential(
                _linear(size, u, h), make_activation(activation),
                _linear(u, summary_out, h), make_activation(activation),
            )
        if mode == "fast":
            # One GEMM gives f and s side by side; each group keeps [f_g; s_g] adjacent.
            self.fused_proj = torch.nn.Sequential(
                _linear(size, 2 * u, h), make_activation(activation)
            )
        if mode in ("mixing", "fast"):
            self.combiner = torch.nn.Linear(2 * u, size)
            self.combiner_activation = make_activation(activation)
        self.local_norm: Optional[torch.nn.LayerNorm] = None
        self.summary_norm: Optional[torch.nn.LayerNorm] = None
        if branch_norm:
            self._add_branch_norms()
        self.dropout = torch.nn.Dropout(dropout_rate)

    def _add_branch_norms(self) -> None:
        like = next(self.parameters())
        if self.mode in ("mixing", "fast"):
            self.local_norm = torch.nn.LayerNorm(self.hidden_units).to(like)
        self.summary_norm = torch.nn.LayerNorm(self.size if self.mode == "lite" else self.hidden_units).to(like)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # A cell left at the default branch_norm takes the LayerNorms its checkpoint has: models
        # trained before the default followed the published cells had them in every mode.
        if not self.branch_norm and not self._branch_norm_given and f"{prefix}summary_norm.weight" in state_dict:
            self._add_branch_norms()
            self.branch_norm = True
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # ------------------------------------------------------------------ branches
    def _branches(self, x: torch.Tensor) -> Tuple[Optional[torch.Tensor], torch.Tensor]:
        """Return the local and summary frames f (B, T, U) or None, s (B, T, U)."""
        if self.mode == "fast":
            fs = self.fused_proj(x)  # (B, T, 2U), grouped as H x [f_g; s_g]
            b, t, _ = fs.shape
            fs = fs.view(b, t, self.heads, 2, -1)  # (B, T, H, 2, U/H)
            f = fs[:, :, :, 0].reshape(b, t, self.hidden_units)  # (B, T, U)
            s = fs[:, :, :, 1].reshape(b, t, self.hidden_units)  # (B, T, U)
            return f, s
        if self.mode == "mixing" and self.heads == 1:
            return self._paired_branches(x)
        f = self.local_proj(x) if self.mode == "mixing" else None  # (B, T, U)
        return f, self.summary_proj(x)  # (B, T, U) or (B, T, D) for lite

    def _paired_branches(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """F and S of the ``mixing`` cell (one group) as two GEMMs instead of four, on the same
        parameters: one projection of x to both hidden layers, then both output layers as one
        batched product. Forward and backward launch half the matrix products of two separate MLPs
        (same FLOPs: on a CPU the time is the same, on a GPU there are fewer, larger kernels)."""
        (f1, act, f2, _), (s1, _, s2, _) = self.local_proj, self.summary_proj
        u = self.hidden_units
        hidden = act(torch.nn.functional.linear(
            x, torch.cat([f1.weight, s1.weight]), torch.cat([f1.bias, s1.bias])))  # (B, T, 2U)
        b, t, _ = hidden.shape
        hidden = hidden.view(b * t, 2, u).transpose(0, 1)  # (2, B T, U): [f; s], strided views
        weight = torch.stack([f2.weight, s2.weight]).transpose(1, 2)  # (2, U, U)
        bias = torch.stack([f2.bias, s2.bias]).unsqueeze(1)  # (2, 1, U)
        f, s = act(torch.baddbmm(bias, hidden, weight)).unbind(0)  # (B T, U) each
        return f.view(b, t, u), s.view(b, t, u)

    def _combine(
        self, f: Optional[torch.Tensor], summary: torch.Tensor, valid: torch.Tensor
    ) -> torch.Tensor:
        """Mix local frames with the summary.

        Args:
            f: Local frames (B, T, U), None in lite mode.
            summary: (B, 1, U) one summary per utterance, (B, C, 1, U) one per chunk
                when ``f`` has been viewed as (B, C, c, U), or (B, T, U) one per frame.
            valid: Float validity of the output frames, broadcastable to the output.
        """
        if self.summary_norm is not None:
            summary = self.summary_norm(summary)
        if self.dropout_rate:
            summary = self.dropout(summary)
        if self.mode == "lite":
            return summary * valid  # (B, T, D): the only T-sized tensor is the output
        if self.local_norm is not None:
            f = self.local_norm(f)
        if self.dropout_rate:
            f = self.dropout(f)
        u = self.hidden_units
        w_local, w_summary = self.combiner.weight.split(u, dim=1)  # one backward op, not two slices
        # Summary half once per utterance (or chunk), used as a per-utterance bias.
        bias = torch.nn.functional.linear(summary, w_summary, self.combiner.bias)
        y = torch.nn.functional.linear(f, w_local) + bias  # (B, T, D)
        return self.combiner_activation(y) * valid

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        x: torch.Tensor,
        mask: Optional[torch.Tensor] = None,
        chunk_size: int = 0,
        valid: Optional[torch.Tensor] = None,
        spans: Optional[Tuple[torch.Tensor, torch.Tensor]] = None,
    ) -> torch.Tensor:
        """Mix the frames of each utterance.

        Args:
            x (torch.Tensor): Input frames (B, T, D).
            mask (Optional[torch.Tensor]): ESPnet validity mask (B, 1, T) or (B, T),
                True (or 1) = valid frame; ``None`` means every frame is valid.
            chunk_size (int): 0 (default) for full context. A positive value c makes the
                summary chunk-causal: frame t sees the mean over all valid frames up to the
                end of its own chunk of c frames (cumulative sums, linear in T).
            valid (Optional[torch.Tensor]): The same mask as a (B, T, 1) tensor of 0/1 in x's
                dtype, when the caller already has it (an encoder builds it once for all its
                layers); ``mask`` is then not read.
            spans (Optional[Tuple[torch.Tensor, torch.Tensor]]): Inference on long recordings, full
                context only: ``(lo, hi)`` (T,) from :func:`summary_spans`; frame t's summary is then
                the mean over the valid frames in ``[lo_t, hi_t)`` instead of the whole utterance.

        Returns:
            torch.Tensor: Output frames (B, T, D), zero at padded frames.
        """
        if x.dim() != 3 or x.size(-1) != self.size:
            raise ValueError(
                f"x must have shape (B, T, {self.size}), got {tuple(x.shape)}"
            )
        if chunk_size < 0:
            raise ValueError(f"chunk_size={chunk_size} must be 0 (full context) or positive")
        b, t, _ = x.shape
        if valid is None:
            valid = self._valid(mask, b, t, x)  # (B, T, 1) in x's dtype
        elif valid.shape != (b, t, 1):
            raise ValueError(f"valid must have shape ({b}, {t}, 1) to match x, got {tuple(valid.shape)}")
        if self.recompute and self.training and torch.is_grad_enabled():
            return torch.utils.checkpoint.checkpoint(self._mix, x, valid, chunk_size, spans, use_reentrant=False)
        return self._mix(x, valid, chunk_size, spans)

    def _mix(self, x: torch.Tensor, valid: torch.Tensor, chunk_size: int,
             spans: Optional[Tuple[torch.Tensor, torch.Tensor]] = None) -> torch.Tensor:
        t = x.size(1)
        f, s = self._branches(x)
        if spans is not None and (chunk_size == 0 or chunk_size >= t):
            if spans[0].shape != (t,) or spans[1].shape != (t,):
                raise ValueError(f"spans must be two ({t},) tensors to match x, got "
                                 f"{tuple(spans[0].shape)} and {tuple(spans[1].shape)}")
            return self._combine(f, self._windowed(s, valid, *spans), valid)
        if chunk_size == 0 or chunk_size >= t:
            counts = valid.sum(dim=1, keepdim=True).clamp(min=1.0)  # (B, 1, 1)
            # Normalised weights keep the sum finite in float16: the weights add up to 1.
            weights = (valid / counts).transpose(1, 2).to(s.dtype)  # (B, 1, T)
            summary = torch.bmm(weights, s)  # (B, 1, U)
            return self._combine(f, summary, valid)
        return self._chunk_causal(f, s, valid, chunk_size)

    @staticmethod
    def _windowed(s: torch.Tensor, valid: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
        """Per-frame summaries (B, T, U): the mean of ``s`` over the valid frames in [lo_t, hi_t),
        from cumulative sums (linear in T), in float64 so that an hour of frames loses no precision."""
        b, t, _ = s.shape
        zero = s.new_zeros(b, 1, s.size(2), dtype=torch.float64)
        sums = torch.cat([zero, torch.cumsum(s.double() * valid.double(), dim=1)], dim=1)  # (B, T+1, U)
        counts = torch.cat([zero[..., :1], torch.cumsum(valid.double(), dim=1)], dim=1)  # (B, T+1, 1)
        summary = (sums[:, hi] - sums[:, lo]) / (counts[:, hi] - counts[:, lo]).clamp(min=1.0)
        return summary.to(s.dtype)

    def _chunk_causal(
        self, f: Optional[torch.Tensor], s: torch.Tensor, valid: torch.Tensor, c: int
    ) -> torch.Tensor:
        b, t, _ = s.shape
        n_chunks = (t + c - 1) // c  # not -(-t // c): exported to ONNX, integer division truncates
        pad = n_chunks * c - t
        # Sums in float32: a running sum over a long utterance overflows float16.
        sums = torch.cumsum(s.float() * valid.float(), dim=1)  # (B, T, U)
        counts = torch.cumsum(valid.float(), dim=1)  # (B, T, 1)
        ends = torch.arange(c - 1, n_chunks * c, c, device=s.device).clamp(max=t - 1)
        summary = sums[:, ends] / counts[:, ends].clamp(min=1.0)  # (B, C, U)
        summary = summary.to(s.dtype).unsqueeze(2)  # (B, C, 1, U)
        # padded even by 0 frames: a branch on ``pad`` would be fixed at its traced value in an
        # exported graph (ONNX), which then fails on lengths that need another
        valid = torch.nn.functional.pad(valid, (0, 0, 0, pad))
        if f is not None:
            f = torch.nn.functional.pad(f, (0, 0, 0, pad))
        valid = valid.view(b, n_chunks, c, 1)  # (B, C, c, 1)
        if f is not None:
            f = f.view(b, n_chunks, c, -1)  # (B, C, c, U)
        y = self._combine(f, summary, valid)  # (B, C, c, D)
        return y.reshape(b, n_chunks * c, -1)[:, :t]  # (B, T, D)

    def forward_streaming(
        self,
        x: torch.Tensor,
        mask: Optional[torch.Tensor] = None,
        state: Optional[Tuple[torch.Tensor, torch.Tensor]] = None,
    ) -> Tuple[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
        """Process one chunk, carrying the running summary from the previous chunks.

        Args:
            x (torch.Tensor): The frames of the current chunk (B, c, D).
            mask (Optional[torch.Tensor]): Validity of those frames, (B, 1, c) or (B, c).
            state (Optional[Tuple]): ``(sum (B, U) float32, count (B, 1) float32)`` returned
                by the previous call, or None at the start of the stream.

        Returns:
            Tuple: Output (B, c, D), zero at padded frames, and the new state. Memory is
            constant per chunk whatever the length of the stream.
        """
        b, t, _ = x.shape
        valid = self._valid(mask, b, t, x)  # (B, c, 1)
        f, s = self._branches(x)
        chunk_sum = torch.bmm(valid.transpose(1, 2).float(), s.float()).squeeze(1)  # (B, U)
        chunk_count = valid.float().sum(dim=1)  # (B, 1)
        if state is not None:
            chunk_sum = chunk_sum + state[0]
            chunk_count = chunk_count + state[1]
        summary = (chunk_sum / chunk_count.clamp(min=1.0)).to(s.dtype).unsqueeze(1)
        return self._combine(f, summary, valid), (chunk_sum, chunk_count)

    @staticmethod
    def _valid(mask: Optional[torch.Tensor], b: int, t: int, x: torch.Tensor) -> torch.Tensor:
        """Turn an ESPnet mask into a (B, T, 1) tensor of 0/1 in x's dtype, on x's device."""
        if mask is None:
            return x.new_ones(b, t, 1)
        if mask.dim() == 3:
            if mask.size(1) != 1:
                raise ValueError(
                    f"mask must be (B, 1, T) or (B, T) with True = valid frame, "
                    f"got {tuple(mask.shape)}"
                )
            mask = mask.squeeze(1)
        if mask.shape != (b, t):
            raise ValueError(
                f"mask shape {tuple(mask.shape)} does not match the input's (B, T) = ({b}, {t})"
            )
        return mask.to(device=x.device, dtype=x.dtype).unsqueeze(-1)  # (B, T, 1)

    def extra_repr(self) -> str:
        return (
            f"size={self.size}, hidden_units={self.hidden_units}, heads={self.heads}, "
            f"mode={self.mode!r}, activation={self.activation_type!r}, "
            f"branch_norm={self.branch_norm}, dropout_rate={self.dropout_rate}"
            + (", recompute=True" if self.recompute else "")
        )
