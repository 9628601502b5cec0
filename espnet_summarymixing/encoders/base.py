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
from espnet2.asr.ctc import CTC
from espnet2.asr.encoder.abs_encoder import AbsEncoder

from espnet_summarymixing.frames.input_layer import (
    POS_ENC_LAYERS,
    InputLayer,
    build_input_layer,
    valid_mask,
)
from espnet_summarymixing.layers.lookahead import LookAhead
from espnet_summarymixing.layers.masked import CONV_CONTEXTS, valid_frames
from espnet_summarymixing.layers.summary_mixing import SummaryMixing, summary_spans

# Relative encodings only make sense inside self-attention; they are mapped to ``abs_pos`` with a
# warning (see ``resolve_pos_enc``).
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
conv_context (str): What the time convolutions see: ``full`` (default), centred, the
    offline model; ``chunk``, centred as usual in full context, but in a chunked forward
    (and when streaming) a frame sees no frame beyond the end of its chunk (dynamic chunk
    convolution, Li et al., ICASSP 2023), the usually more accurate way to make the model
    streamable: its full-context model is the offline encoder; ``causal``, past frames
    only, in every mode. Chunked modes and streaming need ``chunk`` or ``causal``.
dynamic_chunk_training (bool): In training, each batch draws a chunk size from
    ``chunk_size_range`` or, with probability ``full_context_prob``, full context, so that
    one model serves offline and streaming decoding (default False).
chunk_size_range (Optional[List[int]]): [min, max] chunk size in frames after
    subsampling (default [1, 25]).
full_context_prob (float): Probability of a full-context batch (default 0.5).
decode_chunk_size (int): Chunk size of the forward in eval mode, 0 = full context
    (default 0); ``StreamingEncoder`` decodes chunk by chunk with the same result.
lookahead_frames (int): Frames after subsampling that every frame sees ahead of it, in
    every mode, through one depthwise look-ahead over the embedded frames before the blocks
    (``LookAhead``; default 0, none). A stream waits that many frames more than its chunk
    (latency + lookahead_frames frame shifts); it does not compound through the layers.
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
use_flash_attn (Optional[bool]): Accepted for config compatibility, no effect.
causal_conv (Optional[bool]): Deprecated, read with a warning: ``true`` is
    ``conv_context: causal``.
chunk_conv (Optional[bool]): Deprecated, read with a warning: ``true`` is
    ``conv_context: chunk``.\
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
        self.lookahead_frames = args["lookahead_frames"]
        self.lookahead = LookAhead(args["output_size"], self.lookahead_frames) if self.lookahead_frames else None
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
        ``num_blocks`` blocks, each called as ``block(x, mask, chunk_size=0, valid=None, spans=None) -> x``
        and, streamed,
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

    def _setup_chunks(self, args: Dict[str, Any]) -> None:
        """Validate and store ``conv_context`` and the chunk-causal (streaming) options.

        The deprecated booleans ``conv_context`` replaced still load with a warning: ``causal_conv:
        true`` is ``conv_context: causal`` and ``chunk_conv: true`` is ``conv_context: chunk`` (the
        default ``full`` gives way to them). Both true, or an old key that contradicts
        ``conv_context``, is a ValueError naming both. The result is written back to
        ``args["conv_context"]`` for ``_build_layers``.
        """
        given = conv_context = args["conv_context"]
        check_choice("conv_context", given, CONV_CONTEXTS)
        if args.get("causal_conv") and args.get("chunk_conv"):
            raise ValueError(
                "causal_conv=True and chunk_conv=True exclude each other (both are deprecated): write "
                "conv_context: causal (left-only convolutions) or conv_context: chunk (convolutions cut "
                "at the end of each chunk)"
            )
        for key, context in (("causal_conv", "causal"), ("chunk_conv", "chunk")):
            value = args.get(key)
            if value is None:
                continue
            # true asks for ``context`` (the default ``full`` gives way); false forbids it
            contradicts = given not in ("full", context) if value else given == context
            if contradicts:
                raise ValueError(
                    f"{key}={value} contradicts conv_context={given!r}: {key} is deprecated, "
                    f"remove it and keep conv_context (one of {list(CONV_CONTEXTS)})"
                )
            if value:
                conv_context = context
                logging.warning("%s: %s=True is deprecated: write conv_context: %s instead.", self.NAME, key, context)
            else:
                logging.warning("%s: %s=False is deprecated: remove it (conv_context replaces it).", self.NAME, key)
        args["conv_context"] = conv_context
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
        lookahead_frames = args["lookahead_frames"]
        if isinstance(lookahead_frames, bool) or not isinstance(lookahead_frames, int) or lookahead_frames < 0:
            raise ValueError(f"lookahead_frames={lookahead_frames!r} must be 0 (no look-ahead) or a positive "
                             "number of frames after subsampling")
        if (dynamic_chunk_training or decode_chunk_size) and conv_context == "full":
            raise ValueError(
                "dynamic_chunk_training/decode_chunk_size need conv_context='chunk' or 'causal', not "
                "'full': a centred convolution would let every chunk see frames of the next one"
            )
        self.conv_context = conv_context
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

    @property
    def input_layer(self) -> InputLayer:
        """The input layer ``embed`` read back into its parts (:class:`~espnet_summarymixing.frames.
        input_layer.InputLayer`): projection, positions, frame arithmetic."""
        return InputLayer(self.embed)

    def forward(
        self,
        xs_pad: torch.Tensor,
        ilens: torch.Tensor,
        prev_states: torch.Tensor = None,
        masks: torch.Tensor = None,
        ctc: CTC = None,
        return_all_hs: bool = False,
        summary_window: int = 0,
        summary_segments: Optional[Sequence[int]] = None,
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
            summary_window (int): Inference on recordings much longer than the training
                utterances, full context: each frame's summary is the mean over the frames within
                this many encoder frames of it (cumulative sums, linear in T); 0 (default): the
                whole utterance's, as trained.
            summary_segments (Optional[Sequence[int]]): Inference on a long recording made of
                separate utterances (one recording per batch): the encoder frames where a new
                segment starts; each frame's summary is then its own segment's. Excludes
                ``summary_window``.

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
        spans = None
        if summary_window or summary_segments is not None:
            if summary_segments is not None and xs_pad.size(0) != 1:
                raise ValueError(f"summary_segments cut one recording: got a batch of {xs_pad.size(0)}")
            spans = summary_spans(xs_pad.size(1), summary_window, summary_segments, xs_pad.device)
        xs_pad, masks, intermediate_outs = self.encode_frames(
            xs_pad, masks, self._chunk_size(), ctc=ctc, return_all_hs=return_all_hs, spans=spans)
        olens = masks.squeeze(1).sum(1)
        if intermediate_outs:
            return (xs_pad, intermediate_outs), olens, None
        return xs_pad, olens, None

    def encode_frames(
        self,
        xs: torch.Tensor,
        masks: torch.Tensor,
        chunk_size: int = 0,
        ctc: CTC = None,
        return_all_hs: bool = False,
        spans: Optional[Tuple[torch.Tensor, torch.Tensor]] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor, list]:
        """The block loop over embedded frames, written once for every whole-sequence path (the
        forward, the ONNX graph): blocks, intermediate CTC, output norm, zeros at padded frames.

        Args:
            xs (torch.Tensor): Embedded frames (B, T', D).
            masks (torch.Tensor): (B, 1, T') True = valid.
            chunk_size (int): 0 = full context, c > 0 = chunks of c frames.
            ctc, return_all_hs: As in :meth:`forward`.
            spans: Per-frame summary spans (:func:`~espnet_summarymixing.layers.summary_mixing.
                summary_spans`), or None.

        Returns:
            ``(output (B, T', D), masks (B, 1, T'), intermediate outputs)``.
        """
        extra = (chunk_size,) if chunk_size else ()  # only chunk-capable layers ever get a chunk size
        more = {"spans": spans} if spans is not None else {}
        valid = None  # the mask as (B, T', 1) 0/1 in the frames' dtype, built once for all layers
        if self.lookahead is not None:
            xs = self.lookahead(xs, valid_frames(masks, xs.dtype))
        intermediate_outs = []
        for idx, layer in enumerate(self.encoders):
            if self.training and self.layer_drop_rate > 0 and torch.rand(1).item() < self.layer_drop_rate:
                continue
            if valid is None or valid.dtype != xs.dtype:
                valid = valid_frames(masks, xs.dtype)
            if idx + 1 in self.gradient_checkpoint_layers:
                xs = self._run(layer, xs, masks, *extra, valid=valid, **more)
            else:
                xs = layer(xs, masks, *extra, valid=valid, **more)
            if return_all_hs:
                intermediate_outs.append(xs)
            elif idx + 1 in self.interctc_layer_idx:
                encoder_out = self._interctc_input(xs)
                intermediate_outs.append((idx + 1, encoder_out))
                if self.interctc_use_conditioning:
                    xs = self._condition(xs, encoder_out, ctc)
                if self.ctc_trim and ctc is not None:
                    xs, masks, _ = trim_by_ctc_posterior(xs, ctc.softmax(encoder_out), masks)
                    valid = None
        if self.after_norm is not None:
            xs = self.after_norm(xs)
        xs = xs * masks.transpose(1, 2).to(xs.dtype)  # padded frames are zero
        return xs, masks, intermediate_outs

    def step_frames(self, xs: torch.Tensor, states: List[Optional[tuple]], ctc: CTC = None
                    ) -> Tuple[torch.Tensor, List[Optional[tuple]]]:
        """The block loop for one streaming step, written once for every streaming path (the
        streaming encoder, the ONNX step graph): a chunk of embedded frames (1, c, D) with every
        layer's state (None at the start of a stream) -> the chunk's output (1, c, D), the new states.
        Intermediate CTC conditions frame by frame, as in the chunked forward."""
        mask = torch.ones(1, 1, xs.size(1), dtype=torch.bool, device=xs.device)
        new_states = []
        for idx, (layer, state) in enumerate(zip(self.encoders, states)):
            xs, state = layer.step(xs, mask, state)
            new_states.append(state)
            if self.interctc_use_conditioning and idx + 1 in self.interctc_layer_idx:
                xs = self._condition(xs, self._interctc_input(xs), ctc)
        if self.after_norm is not None:
            xs = self.after_norm(xs)
        return xs, new_states

    def _interctc_input(self, xs: torch.Tensor) -> torch.Tensor:
        if self._normalize_interctc and self.after_norm is not None:
            return self.after_norm(xs)
        return xs

    def _condition(self, xs: torch.Tensor, encoder_out: torch.Tensor, ctc: CTC) -> torch.Tensor:
        if ctc is None or self.conditioning_layer is None:
            raise ValueError(
                "interctc_use_conditioning=True needs forward(..., ctc=<CTC>) and "
                "a conditioning_layer (ESPnet's ASR model sets it)"
            )
        return xs + self.conditioning_layer(ctc.softmax(encoder_out))

    def _embed(self, xs_pad: torch.Tensor, masks: torch.Tensor):
        """Input layer: (B, T, F) features, (B, 1, T) mask -> (B, T', D) frames, (B, 1, T') mask."""
        layer = self.input_layer
        layer.check_length(xs_pad.size(1))
        # ESPnet's own module computes the offline path (a long-form pass may have it blocked,
        # :mod:`espnet_summarymixing.longform.blocked`); the lengths are the frame pipeline's
        run = self._run if 0 in self.gradient_checkpoint_layers else (lambda f, *a: f(*a))
        if not layer.subsampling:
            return run(self.embed, xs_pad), masks
        xs_pad, _ = run(self.embed, xs_pad, masks)
        lengths = layer.lengths(masks.squeeze(1).sum(-1), xs_pad.size(1))  # (B,)
        return xs_pad, valid_mask(lengths, xs_pad.size(1))[:, None, :]  # (B, T', D), (B, 1, T')

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
