"""The local parts of an ESPnet ASR model computed in blocks, so that a whole recording goes
through the encoder in one pass with bounded working memory.

An ESPnet model encodes ``speech -> frontend -> normalize -> encoder.embed -> blocks``. The front
end (STFT, mel filterbank) and the convolutional subsampling are local: a feature frame depends on
~32 ms of audio, a subsampled frame on 7 feature frames (``conv2d``). Computed in one piece they
are the largest tensors of a long input (ESPnet's ``conv2d`` subsampling of one hour of 80-dim
features holds a 256 x 180,000 x 39 float map, 7 GB, and the STFT of an hour ~2 GB); in blocks
with the overlap each block's edge frames need, they give the same values (float rounding aside)
in the memory of one block. The encoder blocks then see the whole sequence: a SummaryMixing
encoder's memory is linear in its length.

:func:`blocked` patches, for the time of a ``with`` statement, the ``forward`` of the model's
front end and of its encoder's subsampling (isinstance checks and weights are untouched), for any
ESPnet ASR model with ESPnet's default STFT front end and a convolutional subsampling, ours or
ESPnet's own encoders (the subsampling is taken apart by
:class:`~espnet_summarymixing.frames.input_layer.InputLayer`); other parts run unblocked.
"""

import contextlib
from typing import Iterator, List, Optional

import torch

from espnet_summarymixing.frames.input_layer import InputLayer

__all__ = ["blocked", "blocked_frontend_forward", "blocked_subsampling_forward", "blockable_input_layer"]


def _frontend_blockable(frontend) -> bool:
    from espnet2.asr.frontend.default import DefaultFrontend

    # its optional enhancement front end (WPE, beamformer) acts on multi-channel input only,
    # which is never blocked
    return isinstance(frontend, DefaultFrontend) and frontend.stft is not None


def blocked_frontend_forward(frontend, block_frames: int):
    """A ``forward(speech, lengths)`` for ESPnet's ``DefaultFrontend`` that computes the features of
    ``block_frames`` frames at a time, equal to the unblocked call.

    With ``center=True`` feature frame ``f`` is the window centred on sample ``f * hop``; a block of
    frames [f0, f1) is computed from the samples [(f0 - k) hop, (f1 + k) hop) with k hops covering
    half a window, and the frames of its margins (whose windows would meet the block's reflected
    edges) are dropped. At the recording's own ends the block starts or stops with it, so ESPnet's
    reflection padding there is the same.
    """
    stft = frontend.stft
    hop = stft.hop_length
    margin = -(-(stft.n_fft // 2) // hop)  # hops that cover half a window
    original = type(frontend).forward

    def forward(speech: torch.Tensor, lengths: torch.Tensor):
        whole = speech.dim() == 2 and speech.size(0) == 1 and int(lengths[0]) == speech.size(1)
        if not (stft.center and whole):  # a padded batch, multi-channel audio, an uncentred STFT
            return original(frontend, speech, lengths)
        total = speech.size(1)
        frames = total // hop + 1
        if frames <= block_frames + 2 * margin:
            return original(frontend, speech, lengths)
        pieces: List[torch.Tensor] = []
        for f0 in range(0, frames, block_frames):
            f1 = min(frames, f0 + block_frames)
            start = max(0, (f0 - margin) * hop)
            end = min(total, (f1 + margin) * hop)
            piece = speech[:, start:end]
            feats, _ = original(frontend, piece, torch.full_like(lengths, end - start))
            offset = f0 - start // hop
            pieces.append(feats[:, offset:offset + f1 - f0])
        return torch.cat(pieces, dim=1), lengths // hop + 1

    return forward


def blockable_input_layer(embed) -> Optional[InputLayer]:
    """The input layer read back into its parts if it is a convolutional subsampling, else None."""
    try:
        layer = InputLayer(embed)
    except ValueError:
        return None
    return layer if layer.subsampling else None


def blocked_subsampling_forward(embed, block_frames: int):
    """A ``forward(x, mask)`` for ESPnet's convolutional subsampling that runs the convolutions and
    the projection on ``block_frames`` output frames at a time (input blocks overlap by the receptive
    field), then the positional encoding over the whole output: equal to the unblocked call."""
    layer = blockable_input_layer(embed)
    original = type(embed).forward

    def forward(x: torch.Tensor, x_mask: Optional[torch.Tensor], *args):
        if args or layer.frames_out(x.size(1)) <= block_frames:
            return original(embed, x, x_mask, *args)
        y = layer.positions(layer.project_blocked(x, block_frames))  # ESPnet's encoding module, any kind
        if x_mask is not None:
            for lost, s in layer.geometry.steps:  # ESPnet's own slicing of the mask
                x_mask = x_mask[:, :, :-lost:s]
        return y, x_mask

    return forward


@contextlib.contextmanager
def blocked(model, block_seconds: float = 60.0) -> Iterator[dict]:
    """Within the ``with``, ``model.encode`` computes its front end and subsampling in blocks of
    ``block_seconds``; yields which parts are blocked (``{"frontend": bool, "subsampling": bool}``)."""
    if block_seconds <= 0:
        raise ValueError(f"block_seconds={block_seconds} must be positive")
    patched = []
    parts = {"frontend": False, "subsampling": False}
    frontend = getattr(model, "frontend", None)
    if frontend is not None and _frontend_blockable(frontend):
        frames = max(64, int(block_seconds * _frontend_rate(frontend) / frontend.stft.hop_length))
        patched.append((frontend, blocked_frontend_forward(frontend, frames)))
        parts["frontend"] = True
    embed = getattr(getattr(model, "encoder", None), "embed", None)
    layer = blockable_input_layer(embed) if embed is not None else None
    if layer is not None:
        hop = frontend.stft.hop_length if parts["frontend"] else 160
        rate = _frontend_rate(frontend) if parts["frontend"] else 16000
        stride = layer.geometry.stride
        patched.append((embed, blocked_subsampling_forward(embed, max(16, int(block_seconds * rate / hop / stride)))))
        parts["subsampling"] = True
    for module, forward in patched:
        module.forward = forward
    try:
        yield parts
    finally:
        for module, _ in patched:
            module.__dict__.pop("forward", None)


def _frontend_rate(frontend) -> int:
    """The sample rate of ESPnet's default front end (its mel filterbank knows it)."""
    logmel = getattr(frontend, "logmel", None)
    fs = getattr(logmel, "mel_options", {}).get("sr") if logmel is not None else None
    return int(fs or 16000)
