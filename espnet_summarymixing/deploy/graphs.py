"""The computations that are exported to ONNX, written with operators every exporter translates.

An ESPnet ASR model recognises with ``speech -> frontend -> normalize -> encoder -> CTC``. Each part
is rebuilt here from the trained model's own weights and settings, as plain tensor code with no
data-dependent Python (``torch.export`` traces it with symbolic batch and time sizes):

- :class:`FeatureGraph`: ESPnet's ``DefaultFrontend`` (STFT as a convolution with the windowed
  Fourier basis, power, mel filterbank, log) and its ``global_mvn`` / ``utterance_mvn``
  normalisation; equal to ESPnet's features of the same padded batch (tested);
- :class:`EncoderGraph`: a SummaryMixing encoder's subsampling, with the sinusoidal positions
  computed in the graph (any length, and an offset for streaming), its blocks and output norm;
- :class:`RecognizerGraph`: waveform -> CTC log-probabilities, the offline graph;
- :class:`StreamingStepGraph`: one chunk of features + the state -> the chunk's CTC
  log-probabilities + the new state, the computation of ``StreamingEncoder``.

Nothing here changes the model: the graphs hold references to its modules.
"""

import math
from typing import List, Tuple

import torch

from espnet_summarymixing.encoders.base import SummaryMixingEncoderBase
from espnet_summarymixing.frames.input_layer import valid_mask
from espnet_summarymixing.frames.normalize import global_mvn, utterance_mvn

__all__ = ["FeatureGraph", "EncoderGraph", "RecognizerGraph", "StreamingStepGraph", "ExportError",
           "check_exportable"]


class ExportError(ValueError):
    """A model (or an option) that cannot be exported; the message names what and why."""


def check_exportable(model, streaming: bool = False) -> None:
    """Raise :class:`ExportError` unless ``model`` is an ESPnet ASR model that these graphs rebuild."""
    from espnet2.asr.frontend.default import DefaultFrontend
    from espnet2.layers.global_mvn import GlobalMVN
    from espnet2.layers.utterance_mvn import UtteranceMVN

    encoder = getattr(model, "encoder", None)
    if not isinstance(encoder, SummaryMixingEncoderBase):
        raise ExportError(
            f"the model's encoder is {type(encoder).__name__}: only SummaryMixing encoders "
            "(summarymixing_conformer, summarymixing_branchformer, summarymixing_e_branchformer) are exported"
        )
    if getattr(model, "ctc", None) is None:
        raise ExportError("the model has no CTC output layer (ctc_weight = 0?): the exported recogniser decodes CTC")
    frontend = model.frontend
    # (DefaultFrontend's optional WPE / beamformer act on multi-channel input only)
    if frontend is not None and not (isinstance(frontend, DefaultFrontend) and frontend.stft is not None):
        raise ExportError(
            f"front end {type(frontend).__name__}: only ESPnet's default STFT + log-mel front end "
            "(frontend: default, single channel) is exported"
        )
    if model.normalize is not None and not isinstance(model.normalize, (GlobalMVN, UtteranceMVN)):
        raise ExportError(f"normalize: {type(model.normalize).__name__} is not supported (global_mvn, utterance_mvn)")
    if getattr(model, "preencoder", None) is not None or getattr(model, "postencoder", None) is not None:
        raise ExportError("a pre-encoder or post-encoder is not supported by the export")
    if encoder.interctc_use_conditioning or encoder.ctc_trim:
        raise ExportError("self-conditioned or CTC-trimmed intermediate CTC is not supported by the export")
    try:
        input_layer = encoder.input_layer
    except ValueError as err:
        raise ExportError(str(err)) from None
    if input_layer.token_input:
        raise ExportError("input_layer='embed' (token input) is not a speech encoder: nothing to export")
    if streaming:
        if encoder.conv_context == "full":
            raise ExportError(
                "--streaming needs a model trained to stream (conv_context: chunk or causal, with "
                "dynamic_chunk_training): this encoder's convolutions look ahead"
            )
        if isinstance(model.normalize, UtteranceMVN):
            raise ExportError(
                "--streaming: normalize=utterance_mvn needs the whole utterance before its first frame; "
                "train with global_mvn to stream"
            )


class FeatureGraph(torch.nn.Module):
    """ESPnet's default front end and feature normalisation, from a padded waveform batch.

    Args:
        frontend: The model's ``DefaultFrontend`` (or None: the input is already features).
        normalize: The model's ``GlobalMVN``, ``UtteranceMVN`` or None.

    ``forward(speech (B, N) float32, lengths (B,) int64) -> (feats (B, T, F), feats_lengths (B,))``,
    with ``speech`` padded to its longest utterance, as ESPnet's model trims it.
    """

    def __init__(self, frontend, normalize):
        super().__init__()
        from espnet2.layers.global_mvn import GlobalMVN

        self.has_frontend = frontend is not None
        if frontend is not None:
            stft = frontend.stft
            if stft.normalized or not stft.onesided:
                raise ExportError("STFT with normalized=True or onesided=False is not supported by the export")
            n_fft, hop = stft.n_fft, stft.hop_length
            win_length = stft.win_length or n_fft
            if stft.window is not None:
                window = getattr(torch, f"{stft.window}_window")(win_length, dtype=torch.float64)
            else:
                window = torch.ones(win_length, dtype=torch.float64)
            left = (n_fft - win_length) // 2  # torch.stft centres a shorter window in n_fft
            window = torch.nn.functional.pad(window, (left, n_fft - win_length - left))
            bins = n_fft // 2 + 1
            t = torch.arange(n_fft, dtype=torch.float64)
            k = torch.arange(bins, dtype=torch.float64)
            angle = 2 * math.pi * k[:, None] * t[None, :] / n_fft  # (bins, n_fft)
            basis = torch.cat([torch.cos(angle), -torch.sin(angle)]) * window  # (2 bins, n_fft)
            self.register_buffer("basis", basis.to(torch.float32)[:, None, :], persistent=False)
            self.register_buffer("melmat", frontend.logmel.melmat.detach().to(torch.float32).clone(),
                                 persistent=False)
            self.n_fft, self.hop, self.bins, self.center = n_fft, hop, bins, stft.center
            log_base = frontend.logmel.log_base
            self.log_scale = 1.0 if log_base is None else 1.0 / math.log(float(log_base))
        self.norm = "none"
        if normalize is not None:
            self.norm = "global" if isinstance(normalize, GlobalMVN) else "utterance"
            self.norm_means, self.norm_vars = normalize.norm_means, normalize.norm_vars
            if self.norm == "global":
                self.register_buffer("mean", normalize.mean.detach().to(torch.float32).clone(), persistent=False)
                self.register_buffer("std", normalize.std.detach().to(torch.float32).clone(), persistent=False)
            else:
                self.eps = float(normalize.eps)

    def features(self, speech: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Log-mel features (B, T, F) zero after each utterance's frames, and their counts."""
        x = speech[:, None, :]  # (B, 1, N)
        if self.center:
            pad = self.n_fft // 2
            x = torch.nn.functional.pad(x, (pad, pad), mode="reflect")
            lengths = lengths + 2 * pad
        spec = torch.nn.functional.conv1d(x, self.basis, stride=self.hop)  # (B, 2 bins, T)
        power = spec[:, :self.bins] ** 2 + spec[:, self.bins:] ** 2  # (B, bins, T)
        mel = torch.matmul(power.transpose(1, 2), self.melmat).clamp(min=1e-10)  # (B, T, F)
        feats = mel.log() * self.log_scale if self.log_scale != 1.0 else mel.log()
        feats_lengths = torch.div(lengths - self.n_fft, self.hop, rounding_mode="trunc") + 1
        return feats, feats_lengths

    def forward(self, speech: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        if self.has_frontend:
            feats, lengths = self.features(speech, lengths)
        else:
            feats = speech
        if self.norm == "global":
            feats = global_mvn(feats, lengths, self.mean, self.std, self.norm_means, self.norm_vars)
        elif self.norm == "utterance":
            feats = utterance_mvn(feats, lengths, self.norm_means, self.norm_vars, self.eps)
        else:
            feats = feats.masked_fill(~valid_mask(lengths, feats.size(1))[:, :, None], 0.0)  # (B, T, F)
        return feats, lengths


class EncoderGraph(torch.nn.Module):
    """A SummaryMixing encoder in eval mode, with positions computed in the graph.

    ``forward(feats (B, T, F), lengths (B,)) -> (out (B, T', D), out_lengths (B,))``, equal to the
    encoder's ``forward`` (full context, or ``decode_chunk_size`` chunks). The input layer and the
    block loop are the encoder's own (:class:`~espnet_summarymixing.frames.input_layer.InputLayer`,
    ``encode_frames``); nothing is re-derived here.
    """

    def __init__(self, encoder: SummaryMixingEncoderBase):
        super().__init__()
        self.encoder = encoder
        self.input_layer = encoder.input_layer

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        enc = self.encoder
        x = self.input_layer(feats)  # (B, T', D)
        out_lengths = self.input_layer.lengths(lengths, x.size(1))  # a new tensor, also without subsampling
        masks = valid_mask(out_lengths, x.size(1))[:, None, :]  # (B, 1, T')
        x, _, _ = enc.encode_frames(x, masks, enc.decode_chunk_size)
        return x, out_lengths


class RecognizerGraph(torch.nn.Module):
    """The offline graph: ``(speech (B, N), lengths (B,)) -> (log_probs (B, T', V), out_lengths (B,))``,
    CTC log-probabilities of a padded waveform batch (or feature batch, for a model without front end)."""

    def __init__(self, model):
        super().__init__()
        check_exportable(model)
        self.features = FeatureGraph(model.frontend, model.normalize)
        self.encoder = EncoderGraph(model.encoder)
        self.ctc_lo = model.ctc.ctc_lo

    def forward(self, speech: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        feats, feats_lengths = self.features(speech, lengths)
        # feats after the last valid frame are zero; ESPnet's encoder then masks them (the same)
        out, out_lengths = self.encoder(feats, feats_lengths)
        return torch.log_softmax(self.ctc_lo(out), dim=-1), out_lengths


class StreamingStepGraph(torch.nn.Module):
    """One step of ``StreamingEncoder`` as a graph with explicit state tensors.

    ``forward(feats (1, n, F), position (1,) int64, *state) -> (log_probs (1, n', V), *new_state)``:
    ``feats`` are the normalised feature frames whose subsampled frames form one chunk (n' =
    ``geometry.frames_out(n)``, the chunk size except at the end of a stream), ``position`` the index
    of its first encoder frame in the stream, ``state`` every layer's running summary (sum and
    count) and convolution caches, flattened in :attr:`state_spec` order (all zeros at the start
    of a stream, the same as no state).

    With ``lookahead_frames`` R > 0 the signature is ``forward(feats, position, ahead (1,) int64,
    *state)``: ``feats`` give the chunk's frames and R frames more (n' = frames of the chunk + R),
    of which the first ``ahead`` are real (R, or fewer at the end of a stream: the others count as
    zeros, as past the end of an utterance); only the chunk's frames come out.
    """

    def __init__(self, model, chunk_size: int):
        super().__init__()
        from torch.utils._pytree import tree_flatten

        from espnet_summarymixing.streaming.encoder import StreamingEncoder

        check_exportable(model, streaming=True)
        self.encoder = model.encoder
        self.input_layer = model.encoder.input_layer
        self.ctc_lo = model.ctc.ctc_lo
        self.chunk_size = chunk_size
        self.lookahead = model.encoder.lookahead
        # the state's structure and shapes: one PyTorch step on a chunk of zeros
        stream = StreamingEncoder(model.encoder, chunk_size)
        self.lookahead_frames = stream.lookahead_frames
        self.input_frames = stream.frames_waited  # the chunk's frames, its look-ahead, the subsampling's
        with torch.no_grad():
            stream.accept(torch.zeros(1, self.input_frames, model.encoder._input_size))
        leaves, self.state_spec = tree_flatten(stream.states)
        self.state_shapes = [tuple(leaf.shape) for leaf in leaves]

    def initial_state(self) -> List[torch.Tensor]:
        return [torch.zeros(shape) for shape in self.state_shapes]

    def forward(self, feats: torch.Tensor, position: torch.Tensor, *state: torch.Tensor):
        from torch.utils._pytree import tree_flatten, tree_unflatten

        x = self.input_layer(feats, position)  # (1, n', D), positions from the graph input
        if self.lookahead is not None:
            ahead, state = state[0], state[1:]
            real = x.size(1) - self.lookahead_frames + ahead  # (1,): frames before the zeros
            x = x * valid_mask(real, x.size(1))[:, :, None].to(x.dtype)
            x = self.lookahead.frames_ready(x)  # (1, n' - R, D)
        states = tree_unflatten(list(state), self.state_spec)
        x, new_states = self.encoder.step_frames(x, states)
        leaves, _ = tree_flatten(new_states)
        return (torch.log_softmax(self.ctc_lo(x), dim=-1), *leaves)
