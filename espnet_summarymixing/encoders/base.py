"""What the three SummaryMixing encoders share: input layer, option checks, the forward loop.

Shapes: B batch, T frames (after subsampling once embedded), D = output_size.
"""

import logging
import re
from abc import abstractmethod
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
from espnet.nets.pytorch_backend.nets_utils import trim_by_ctc_posterior
from espnet.nets.pytorch_backend.transformer.layer_norm import LayerNorm
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
    check_short_utt,
)
from espnet2.asr.ctc import CTC
from espnet2.asr.encoder.abs_encoder import AbsEncoder

from espnet_summarymixing.layers.masked import valid_frames
from espnet_summarymixing.layers.summary_mixing import SummaryMixing

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
# How each subsampling shortens a sequence: (frames lost, stride) per convolution. ESPnet
# slices the padding mask instead, which counts one frame too many per stage for a padded
# utterance (a frame whose receptive field reaches into the padding): the lengths are
# recomputed from these, so that an utterance gets the same frames alone and in a batch.
SUBSAMPLING_STEPS = {
    Conv2dSubsampling: ((2, 2), (2, 2)),
    Conv2dSubsampling1: ((2, 1), (2, 1)),
    Conv2dSubsampling2: ((2, 2), (2, 1)),
    Conv2dSubsampling6: ((2, 2), (4, 3)),
    Conv2dSubsampling8: ((2, 2), (2, 2), (2, 2)),
    Conv1dSubsampling1: ((2, 1), (2, 1)),
    Conv1dSubsampling2: ((2, 1), (2, 2)),
    Conv1dSubsampling3: ((2, 1), (4, 3)),
}
#: Accepted ``input_layer`` values (``None`` = no input layer, a Linear if sizes differ).
INPUT_LAYERS = ("linear", *SUBSAMPLING, "embed", None)
#: Accepted ``pos_enc_layer_type`` values. Relative encodings only make sense inside
#: self-attention; they are mapped to ``abs_pos`` with a warning (see ``resolve_pos_enc``).
POS_ENC_LAYERS = {"abs_pos": PositionalEncoding, "scaled_abs_pos": ScaledPositionalEncoding, "none": None}
_ATTENTION_ONLY_POS_ENC = ("rel_pos", "legacy_rel_pos")

# The encoder keys that configure the cell, and the cell argument each one feeds.
_CELL_KEYS = {
    "mode": "summary_mode",
    "heads": "summary_heads",
    "hidden_units": "summary_hidden_units",
    "activation": "summary_activation",
    "dropout_rate": "summary_dropout_rate",
    "branch_norm": "summary_branch_norm",
    "recompute": "summary_recompute",
    "size": "output_size",
}
#: Keys that only configure self-attention: accepted (a stock ESPnet config runs with only
#: ``encoder:`` changed), reported by a warning, no effect.
ATTENTION_ONLY_KEYS = ("attention_heads", "attention_dropout_rate", "selfattention_layer_type",
                       "attention_layer_type", "rel_pos_type", "zero_triu", "qk_norm", "use_flash_attn")
#: Gate activations ESPnet's cgMLP can build.
GATE_ACTIVATIONS = ("identity", "hardtanh", "tanh", "relu", "selu", "swish")


#: The documentation of the keys all three encoders share, one entry per key: each encoder's
#: docstring says ``{shared_args}`` where it goes (see ``SummaryMixingEncoderBase.__init_subclass__``).
SHARED_ARGS_DOC = """\
padding_idx (int): Padding index for ``input_layer="embed"`` (default -1).
max_pos_emb_len (int): Initial length of the positional table (default 5000).
interctc_layer_idx (Optional[List[int]]): Layers (1-based, < num_blocks) whose
    outputs feed intermediate CTC (default None).
interctc_use_conditioning (bool): Self-conditioned CTC (default False).
layer_drop_rate (float): Probability of dropping each layer in training (default 0.0).
gradient_checkpoint_layers (Optional[List[int]]): Layers to recompute in the backward
    pass, 0 = input layer (default None).
causal_conv (bool): Time convolutions see past frames only (default False), in every
    mode. One way to make the model streamable.
chunk_conv (bool): Chunk-aware time convolutions (default False): centred as usual in full
    context, but in a chunked forward (and when streaming) a frame sees no frame beyond
    the end of its chunk (dynamic chunk convolution, Li et al., ICASSP 2023). The other,
    usually more accurate way to make the model streamable: the full-context model is the
    offline encoder. ``causal_conv`` or ``chunk_conv`` is needed for chunked modes.
dynamic_chunk_training (bool): In training, each batch draws a chunk size from
    ``chunk_size_range`` or, with probability ``full_context_prob``, full context, so that
    one model serves offline and streaming decoding (default False).
chunk_size_range (Optional[List[int]]): [min, max] chunk size in frames after
    subsampling (default [1, 25]).
full_context_prob (float): Probability of a full-context batch (default 0.5).
decode_chunk_size (int): Chunk size of the forward in eval mode, 0 = full context
    (default 0); ``StreamingEncoder`` decodes chunk by chunk with the same result.
summary_mode (str): ``mixing`` (default, the paper's SummaryMixing), ``lite``
    (SummaryMixing-lite) or ``fast`` (SummaryMixing-fast).
summary_heads (int): Block-diagonal groups of the cell's branches (default 1).
summary_hidden_units (Optional[int]): Hidden size of the branches (default D).
summary_branch_norm (Optional[bool]): LayerNorm on the cell's branches; None (default)
    follows the published cell of ``summary_mode``: on in ``mixing``, off in ``lite``
    and ``fast`` (see ``SummaryMixing``).
summary_dropout_rate (float): Dropout before the combiner (default 0.0, the paper).
summary_recompute (bool): Recompute each cell in the backward pass instead of keeping its
    activations (default False): less training memory, a little more time.
compile_blocks (bool): Compile every block with ``torch.compile(fullgraph=True,
    dynamic=True)`` (default False): one graph serves all blocks, batch sizes and lengths, in
    training and inference (one more for batch size 1, which dynamo specialises; compiling the whole encoder instead recompiles for each new length
    in training, on a stride guard of the Conv2d subsampling's backward). The input layer stays
    eager. Fewer, fused kernels on a GPU; no gain on a CPU. Excludes stochastic depth and
    branch dropout (their coin flips read numbers); each chunk size compiles once.
attention_heads (Optional[int]): Accepted for config compatibility, no effect (warned).
attention_dropout_rate (Optional[float]): Accepted for config compatibility, no effect.
rel_pos_type (Optional[str]): Accepted for config compatibility, no effect.
zero_triu (Optional[bool]): Accepted for config compatibility, no effect.
qk_norm (Optional[bool]): Accepted for config compatibility, no effect.
use_flash_attn (Optional[bool]): Accepted for config compatibility, no effect.\
"""


def check_choice(argument: str, value, allowed: Sequence) -> None:
    """Raise a ValueError naming ``argument``, its ``value`` and the ``allowed`` values."""
    if value not in allowed:
        raise ValueError(f"{argument}={value!r} is not supported: choose one of {list(allowed)}")


def check_range(argument: str, value: float, low: float, high: float) -> None:
    """Raise a ValueError unless ``low <= value < high``."""
    if not low <= value < high:
        raise ValueError(f"{argument}={value!r} must be in [{low}, {high})")


def per_block(argument: str, value: Union[float, List[float]], num_blocks: int) -> List[float]:
    """Expand a float to one value per block, or check a list has ``num_blocks`` items."""
    if isinstance(value, (int, float)):
        return [float(value)] * num_blocks
    if len(value) != num_blocks:
        raise ValueError(
            f"{argument} has {len(value)} values but num_blocks={num_blocks}: give one value "
            "per block or a single float"
        )
    return [float(v) for v in value]


def warn_attention_only(encoder: str, options: Dict[str, Any]) -> None:
    """Log the self-attention options a user kept from a stock config: they have no effect.

    They are accepted so that a stock ESPnet config runs with only ``encoder:`` changed.
    Only options that were set (not None) are reported.
    """
    kept = {k: v for k, v in options.items() if k in ATTENTION_ONLY_KEYS and v is not None}
    if kept:
        logging.warning(
            "%s: %s configure self-attention, which SummaryMixing replaces; they have no effect.",
            encoder,
            ", ".join(f"{k}={v!r}" for k, v in kept.items()),
        )


def resolve_pos_enc(encoder: str, pos_enc_layer_type: str) -> str:
    """Validate ``pos_enc_layer_type``; map relative encodings to ``abs_pos`` with a warning."""
    if pos_enc_layer_type in _ATTENTION_ONLY_POS_ENC:
        logging.warning(
            "%s: pos_enc_layer_type=%r needs self-attention to use relative positions; "
            "absolute sinusoidal encodings ('abs_pos') are used instead.",
            encoder,
            pos_enc_layer_type,
        )
        return "abs_pos"
    check_choice("pos_enc_layer_type", pos_enc_layer_type, [*POS_ENC_LAYERS, *_ATTENTION_ONLY_POS_ENC])
    return pos_enc_layer_type


def build_cell(size: int, **cell_options) -> SummaryMixing:
    """Build the cell; its errors name the encoder's ``summary_*`` keys, not the cell's."""
    try:
        return SummaryMixing(size, **cell_options)
    except ValueError as err:
        message = str(err)
        for cell_key, encoder_key in _CELL_KEYS.items():
            message = re.sub(rf"\b{cell_key}=", f"{encoder_key}=", message)
        raise ValueError(message) from None


def check_cgmlp_options(cgmlp_linear_units: int, cgmlp_conv_kernel: int, gate_activation: str) -> None:
    """Validate the cgMLP keys of both Branchformers."""
    if cgmlp_linear_units <= 0 or cgmlp_linear_units % 2:
        raise ValueError(
            f"cgmlp_linear_units={cgmlp_linear_units} must be a positive even number "
            "(the gating unit splits it in two halves)"
        )
    if cgmlp_conv_kernel < 1 or cgmlp_conv_kernel % 2 == 0:
        raise ValueError(f"cgmlp_conv_kernel={cgmlp_conv_kernel} must be a positive odd number")
    check_choice("gate_activation", gate_activation, GATE_ACTIVATIONS)


def build_input_layer(
    input_layer: Optional[str],
    input_size: int,
    output_size: int,
    dropout_rate: float,
    pos_enc_layer_type: str,
    positional_dropout_rate: float,
    max_pos_emb_len: int,
    padding_idx: int,
) -> Optional[torch.nn.Module]:
    """ESPnet's input layers, followed by the chosen positional encoding (or none)."""
    check_choice("input_layer", input_layer, INPUT_LAYERS)
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
        return torch.nn.Sequential(
            torch.nn.Embedding(input_size, output_size, padding_idx=padding_idx), pos_enc
        )
    if input_size != output_size:
        return torch.nn.Sequential(torch.nn.Linear(input_size, output_size), pos_enc)
    return torch.nn.Sequential(pos_enc)


def subsampled_frames(embed: torch.nn.Module, frames):
    """Frames that ``embed`` outputs from ``frames`` valid input frames (int or tensor), counting
    only outputs whose receptive field lies inside the input (may be 0 or negative)."""
    for lost, stride in SUBSAMPLING_STEPS[type(embed)]:
        frames = (frames - lost + stride - 1) // stride
    return frames


def subsampled_mask(embed: torch.nn.Module, masks: torch.Tensor, frames: int) -> torch.Tensor:
    """Validity mask (B, 1, frames) after ``embed``: frames that see only valid input.

    An utterance shorter than the subsampling's receptive field keeps one frame, as in
    ESPnet (alone, it raises TooShortUttError).
    """
    lengths = subsampled_frames(embed, masks.squeeze(1).sum(-1)).clamp(min=1, max=frames)  # (B,)
    return valid_mask(lengths, frames)[:, None, :]  # (B, 1, T')


def valid_mask(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    """(B, T) True = valid frame, in memory linear in T. (ESPnet's ``make_pad_mask`` with ``maxlen``
    builds a (T + 1) x (T + 1) matrix on its traceable path: 3.6 GB for 60,000 frames.)"""
    return torch.arange(frames, device=lengths.device)[None, :] < lengths[:, None]  # (B, T)


class SummaryMixingEncoderBase(AbsEncoder):
    """What the three SummaryMixing encoders share: construction, options, the forward loop.

    An encoder family subclasses it with ESPnet's explicit constructor signature (ESPnet reads
    the keys and defaults from it) whose body is only ``super().__init__(locals())``. This
    constructor then, in order: logs the self-attention keys that have no effect, validates the
    shared keys (sizes, dropout, positional encoding, the ``summary_*`` cell keys, the chunk and
    intermediate-CTC keys), builds the input layer ``embed``, asks the family for its blocks
    (:meth:`_build_layers`, which validates the family's own keys first) and adds ``after_norm``
    (a LayerNorm, or None for a post-LayerNorm Conformer). ``NAME`` is the config name, used in
    messages.
    """

    NAME = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__doc__ and "{shared_args}" in cls.__doc__:
            indent = " " * 8
            text = "\n".join(indent + line if line else line for line in SHARED_ARGS_DOC.splitlines())
            cls.__doc__ = cls.__doc__.replace(indent + "{shared_args}", text)

    def __init__(self, arguments: Dict[str, Any]):
        super().__init__()
        args = {k: v for k, v in arguments.items() if k not in ("self", "__class__")}
        warn_attention_only(self.NAME, args)
        args["pos_enc_layer_type"] = resolve_pos_enc(self.NAME, args["pos_enc_layer_type"])
        check_range("dropout_rate", args["dropout_rate"], 0.0, 1.0)
        check_range("positional_dropout_rate", args["positional_dropout_rate"], 0.0, 1.0)
        if args["output_size"] <= 0:
            raise ValueError(f"output_size={args['output_size']} must be a positive integer")
        if args["num_blocks"] <= 0:
            raise ValueError(f"num_blocks={args['num_blocks']} must be a positive integer")
        cell_options = dict(
            hidden_units=args["summary_hidden_units"], heads=args["summary_heads"], mode=args["summary_mode"],
            activation=args["summary_activation"], branch_norm=args["summary_branch_norm"],
            dropout_rate=args["summary_dropout_rate"], recompute=args["summary_recompute"],
        )
        build_cell(args["output_size"], **cell_options)  # raises before anything large is built
        self._setup_chunks(args)
        self._setup_interctc(args)
        self._output_size = args["output_size"]
        self._input_size = args["input_size"]
        self.embed = build_input_layer(
            args["input_layer"], args["input_size"], args["output_size"], args["dropout_rate"],
            args["pos_enc_layer_type"], args["positional_dropout_rate"], args["max_pos_emb_len"],
            args["padding_idx"],
        )
        self.encoders = torch.nn.ModuleList(
            self._build_layers(args, lambda: build_cell(args["output_size"], **cell_options))
        )
        # ESPnet's Conformer normalises the output (and the intermediate CTC inputs) only with
        # pre-LayerNorm blocks; the Branchformers always normalise the output, never the
        # intermediate ones.
        self.normalize_before = args.get("normalize_before", True)
        self.after_norm = LayerNorm(args["output_size"]) if self.normalize_before else None
        self._normalize_interctc = args.get("normalize_before", False)
        self.compile_blocks = args["compile_blocks"]
        if self.compile_blocks:
            drops = [f"{k}={args[k]}" for k in ("stochastic_depth_rate", "attn_branch_drop_rate")
                     if k in args and any(per_block(k, args[k], args["num_blocks"]))]
            if drops:
                raise ValueError(
                    f"compile_blocks=True cannot be combined with {', '.join(drops)}: the per-block "
                    "coin flip reads a number inside the compiled graph"
                )
        self.set_compiled(self.compile_blocks)

    def set_compiled(self, compiled: bool) -> None:
        """Run the blocks through ``torch.compile(fullgraph=True, dynamic=True)`` (compiled at their
        first call) or eagerly; the parameters are the same either way (see ``compile_blocks``)."""
        for layer in self.encoders:
            if compiled:
                layer.compile(fullgraph=True, dynamic=True)
            else:
                layer._compiled_call_impl = None  # what nn.Module.compile set

    @abstractmethod
    def _build_layers(self, args: Dict[str, Any], cell: Callable[[], SummaryMixing]) -> List[torch.nn.Module]:
        """Validate the family's own keys in ``args`` (the constructor's arguments) and return its
        ``num_blocks`` blocks, each called as ``block(x, mask, chunk_size=0) -> x`` and, streamed,
        ``block.step(x, mask, state) -> (x, state)``; ``cell()`` builds one SummaryMixing cell."""

    def _setup_interctc(self, args: Dict[str, Any]) -> None:
        """Validate and store intermediate CTC, layer drop and gradient checkpointing."""
        num_blocks = args["num_blocks"]
        interctc_layer_idx = list(args.get("interctc_layer_idx") or [])
        bad = [i for i in interctc_layer_idx if not 0 < i < num_blocks]
        if bad:
            raise ValueError(
                f"interctc_layer_idx={interctc_layer_idx} has {bad} outside 1..{num_blocks - 1} "
                f"(layer numbers start at 1 and the last layer, {num_blocks}, is the output)"
            )
        interctc_use_conditioning = args.get("interctc_use_conditioning", False)
        if interctc_use_conditioning and not interctc_layer_idx:
            raise ValueError(
                "interctc_use_conditioning=True needs at least one intermediate layer in "
                "interctc_layer_idx"
            )
        ctc_trim = args.get("ctc_trim", False)
        if ctc_trim and not interctc_layer_idx:
            raise ValueError("ctc_trim=True needs at least one layer in interctc_layer_idx")
        check_range("layer_drop_rate", args["layer_drop_rate"], 0.0, 1.0)
        checkpoints = list(args.get("gradient_checkpoint_layers") or [])
        bad = [i for i in checkpoints if not 0 <= i <= num_blocks]
        if bad:
            raise ValueError(
                f"gradient_checkpoint_layers={checkpoints} has {bad} outside 0..{num_blocks} "
                "(0 is the input layer, 1..num_blocks the encoder layers)"
            )
        self.interctc_layer_idx = interctc_layer_idx
        self.interctc_use_conditioning = interctc_use_conditioning
        self.conditioning_layer = None  # set by ESPnet's model when conditioning is used
        self.ctc_trim = ctc_trim
        self.layer_drop_rate = args["layer_drop_rate"]
        self.gradient_checkpoint_layers = checkpoints

    def output_size(self) -> int:
        return self._output_size

    def set_summary_window(self, frames: int) -> None:
        """Inference option for recordings much longer than the training utterances: every cell's
        summary becomes, for each frame, the mean over the frames within ``frames`` encoder frames of
        it (a sliding window, computed with cumulative sums in linear time) instead of the mean over
        the whole recording; 0 restores the trained behaviour. Chunked modes are unaffected."""
        if not isinstance(frames, int) or frames < 0:
            raise ValueError(f"summary window {frames!r} must be a whole number of encoder frames >= 0 (0 = off)")
        for module in self.modules():
            if isinstance(module, SummaryMixing):
                module.summary_window = frames
                module.summary_segments = None

    def set_summary_segments(self, starts: Optional[Sequence[int]]) -> None:
        """Inference option for a long recording made of separate utterances: every cell's summary
        becomes, for each frame, the mean over its own segment, the segments starting at the encoder
        frames ``starts`` (the first at 0); None restores the trained behaviour. For one recording at a
        time (every utterance of a batch would be cut at the same frames)."""
        if starts is not None:
            starts = tuple(int(b) for b in starts)
            if any(b < 0 for b in starts):
                raise ValueError(f"summary segments {starts}: frame indices must be >= 0")
        for module in self.modules():
            if isinstance(module, SummaryMixing):
                module.summary_segments = starts
                module.summary_window = 0

    def _setup_chunks(self, args: Dict[str, Any]) -> None:
        """Validate and store the chunk-causal (streaming) options."""
        causal_conv, chunk_conv = args["causal_conv"], args["chunk_conv"]
        dynamic_chunk_training, full_context_prob = args["dynamic_chunk_training"], args["full_context_prob"]
        chunk_size_range, decode_chunk_size = args["chunk_size_range"], args["decode_chunk_size"]
        chunk_size_range = list(chunk_size_range) if chunk_size_range is not None else [1, 25]
        if len(chunk_size_range) != 2 or not 1 <= chunk_size_range[0] <= chunk_size_range[1]:
            raise ValueError(
                f"chunk_size_range={chunk_size_range} must be [min, max] with 1 <= min <= max "
                "(frames after subsampling)"
            )
        check_range("full_context_prob", full_context_prob, 0.0, 1.0 + 1e-9)
        if decode_chunk_size < 0:
            raise ValueError(f"decode_chunk_size={decode_chunk_size} must be 0 (full context) or positive")
        if causal_conv and chunk_conv:
            raise ValueError(
                "causal_conv=True and chunk_conv=True exclude each other: choose left-only "
                "convolutions (causal_conv) or convolutions cut at the end of each chunk (chunk_conv)"
            )
        if (dynamic_chunk_training or decode_chunk_size) and not (causal_conv or chunk_conv):
            raise ValueError(
                "dynamic_chunk_training/decode_chunk_size need causal_conv=True or chunk_conv=True: "
                "a centred convolution would let every chunk see frames of the next one"
            )
        self.causal_conv = causal_conv
        self.chunk_conv = chunk_conv
        self.dynamic_chunk_training = dynamic_chunk_training
        self.chunk_size_range = chunk_size_range
        self.full_context_prob = full_context_prob
        self.decode_chunk_size = decode_chunk_size

    def _chunk_size(self) -> int:
        """0 (full context) or the chunk size of this batch."""
        if self.training and self.dynamic_chunk_training:
            if torch.rand(1).item() < self.full_context_prob:
                return 0
            low, high = self.chunk_size_range
            return int(torch.randint(low, high + 1, (1,)).item())
        return 0 if self.training else self.decode_chunk_size

    def _run(self, module, *args, **kwargs):
        if self.training and torch.is_grad_enabled():
            return torch.utils.checkpoint.checkpoint(module, *args, use_reentrant=False, **kwargs)
        return module(*args, **kwargs)

    def forward(
        self,
        xs_pad: torch.Tensor,
        ilens: torch.Tensor,
        prev_states: torch.Tensor = None,
        masks: torch.Tensor = None,
        ctc: CTC = None,
        return_all_hs: bool = False,
    ) -> Tuple[Union[torch.Tensor, Tuple], torch.Tensor, None]:
        """Encode a padded batch.

        Args:
            xs_pad (torch.Tensor): Features (B, T, input_size), or token ids (B, T) when
                ``input_layer="embed"``.
            ilens (torch.Tensor): Valid lengths (B,), each in 1..T.
            prev_states: Unused (ESPnet's interface).
            masks (torch.Tensor): Optional padding mask (B, T), True = padding (ESPnet's
                convention for this argument); computed from ``ilens`` when omitted.
            ctc (CTC): ESPnet's CTC module, needed with ``interctc_use_conditioning``.
            return_all_hs (bool): Also return every layer's output.

        Returns:
            Output (B, T', D) zero at padded frames, or ``(output, [(layer, hidden), ...])``
            with intermediate CTC; output lengths (B,); None.
        """
        self._check_inputs(xs_pad, ilens)
        if masks is None:
            masks = valid_mask(ilens.to(xs_pad.device), xs_pad.size(1))[:, None, :]  # (B, 1, T)
        else:
            masks = ~masks[:, None, :]  # (B, 1, T), True = valid
        if xs_pad.dim() == 3:  # padded frames are zeros before anything reads them: NaN or Inf there
            xs_pad = xs_pad.masked_fill(~masks.transpose(1, 2), 0.0)  # would reach valid frames (0 * NaN)
        xs_pad, masks = self._embed(xs_pad, masks)  # (B, T', D), (B, 1, T')
        if self.compile_blocks and xs_pad._base is not None:
            xs_pad = xs_pad.clone()  # compiled blocks given a view would compile a second graph for it

        chunk = self._chunk_size()
        extra = (chunk,) if chunk else ()  # only chunk-capable layers ever get a chunk size
        valid = None  # the mask as (B, T', 1) 0/1 in the frames' dtype, built once for all layers
        intermediate_outs = []
        for idx, layer in enumerate(self.encoders):
            if self.training and self.layer_drop_rate > 0 and torch.rand(1).item() < self.layer_drop_rate:
                continue
            if valid is None or valid.dtype != xs_pad.dtype:
                valid = valid_frames(masks, xs_pad.dtype)
            if idx + 1 in self.gradient_checkpoint_layers:
                xs_pad = self._run(layer, xs_pad, masks, *extra, valid=valid)
            else:
                xs_pad = layer(xs_pad, masks, *extra, valid=valid)
            if return_all_hs:
                intermediate_outs.append(xs_pad)
            elif idx + 1 in self.interctc_layer_idx:
                encoder_out = xs_pad
                if self._normalize_interctc and self.after_norm is not None:
                    encoder_out = self.after_norm(encoder_out)
                intermediate_outs.append((idx + 1, encoder_out))
                if self.interctc_use_conditioning:
                    if ctc is None or self.conditioning_layer is None:
                        raise ValueError(
                            "interctc_use_conditioning=True needs forward(..., ctc=<CTC>) and "
                            "a conditioning_layer (ESPnet's ASR model sets it)"
                        )
                    xs_pad = xs_pad + self.conditioning_layer(ctc.softmax(encoder_out))
                if self.ctc_trim and ctc is not None:
                    xs_pad, masks, _ = trim_by_ctc_posterior(
                        xs_pad, ctc.softmax(encoder_out), masks
                    )
                    valid = None

        if self.after_norm is not None:
            xs_pad = self.after_norm(xs_pad)
        xs_pad = xs_pad * masks.transpose(1, 2).to(xs_pad.dtype)  # padded frames are zero
        olens = masks.squeeze(1).sum(1)
        if intermediate_outs:
            return (xs_pad, intermediate_outs), olens, None
        return xs_pad, olens, None

    def _embed(self, xs_pad: torch.Tensor, masks: torch.Tensor):
        embed = self.embed
        if isinstance(embed, tuple(SUBSAMPLING.values())):
            too_short, limit = check_short_utt(embed, xs_pad.size(1))
            if too_short:
                raise TooShortUttError(
                    f"has {xs_pad.size(1)} frames and is too short for subsampling "
                    f"(it needs more than {limit} frames), return empty results",
                    xs_pad.size(1),
                    limit,
                )
            if 0 in self.gradient_checkpoint_layers:
                xs_pad, _ = self._run(embed, xs_pad, masks)
            else:
                xs_pad, _ = embed(xs_pad, masks)
            return xs_pad, subsampled_mask(embed, masks, xs_pad.size(1))
        if 0 in self.gradient_checkpoint_layers:
            return self._run(embed, xs_pad), masks
        return embed(xs_pad), masks

    def _check_inputs(self, xs_pad: torch.Tensor, ilens: torch.Tensor) -> None:
        token_input = isinstance(self.embed, torch.nn.Sequential) and isinstance(
            self.embed[0], torch.nn.Embedding
        )
        want = 2 if token_input else 3
        if xs_pad.dim() != want:
            shape = "(B, T) token ids" if token_input else f"(B, T, {self._input_size}) features"
            raise ValueError(f"xs_pad must be {shape}, got shape {tuple(xs_pad.shape)}")
        if xs_pad.size(0) == 0:
            raise ValueError("xs_pad is an empty batch (B = 0): give at least one utterance")
        if not token_input and xs_pad.size(2) != self._input_size:
            raise ValueError(
                f"xs_pad has {xs_pad.size(2)} features per frame, but this encoder was built with "
                f"input_size={self._input_size}"
            )
        weight_dtype = next(self.parameters()).dtype
        if not token_input and xs_pad.dtype != weight_dtype and not torch.is_autocast_enabled(xs_pad.device.type):
            raise ValueError(
                f"xs_pad is {xs_pad.dtype} but the encoder's weights are {weight_dtype}: convert the input "
                f"(xs_pad.to({weight_dtype})) or the encoder, or run under torch.autocast"
            )
        if ilens.dim() != 1 or ilens.size(0) != xs_pad.size(0):
            raise ValueError(
                f"ilens must have shape ({xs_pad.size(0)},) to match xs_pad, got {tuple(ilens.shape)}"
            )
        if torch.compiler.is_compiling():
            return  # the length values are data: reading them would break the graph (shapes are checked)
        low, high = torch.stack(torch.aminmax(ilens.detach())).tolist() if ilens.numel() else (1, 1)
        if low < 1:
            raise ValueError(
                f"ilens has an utterance of {low} frames: every utterance needs at least one "
                "frame (remove empty utterances from the data)"
            )
        if high > xs_pad.size(1):
            raise ValueError(f"ilens has a length {high} beyond the {xs_pad.size(1)} frames of xs_pad")
