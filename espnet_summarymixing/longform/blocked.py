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
ESPnet ASR model with ESPnet's default STFT front end and a ``conv2d``-family subsampling, ours or
ESPnet's own encoders; other parts run unblocked.
"""

import contextlib
from typing import Iterator, List, Optional, Tuple

import torch

__all__ = ["blocked", "blocked_frontend_forward", "blocked_subsampling_forward", "subsampling_geometry"]


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


def subsampling_geometry(embed) -> Optional[Tuple[int, int, List[Tuple[int, int]]]]:
    """(receptive field, stride, per-convolution (frames lost, stride)) of a ``conv2d``-family
    subsampling, or None for a layer that is not one."""
    from espnet_summarymixing.encoders.base import SUBSAMPLING_STEPS

    steps = SUBSAMPLING_STEPS.get(type(embed))
    if steps is None or type(embed).__name__.startswith("Conv1d") or _projection(embed) is None:
        return None
    field, stride = 1, 1
    for lost, s in steps:
        field += lost * stride
        stride *= s
    return field, stride, list(steps)


def _projection(embed):
    """(linear projection, positional encoding) after the convolutions: ESPnet keeps them as
    ``out = Sequential(Linear, pos_enc)`` or as ``out = Linear`` and ``pos_enc``."""
    out = getattr(embed, "out", None)
    if isinstance(out, torch.nn.Sequential) and isinstance(out[0], torch.nn.Linear):
        return out[0], out[1:]
    if isinstance(out, torch.nn.Linear) and isinstance(getattr(embed, "pos_enc", None), torch.nn.Module):
        return out, embed.pos_enc
    return None


def blocked_subsampling_forward(embed, block_frames: int):
    """A ``forward(x, mask)`` for ESPnet's ``Conv2dSubsampling*`` that runs the convolutions and the
    linear projection on ``block_frames`` output frames at a time (input blocks overlap by the
    receptive field), then the positional encoding over the whole output: equal to the unblocked call."""
    field, stride, steps = subsampling_geometry(embed)
    original = type(embed).forward
    linear, pos_enc = _projection(embed)

    def forward(x: torch.Tensor, x_mask: Optional[torch.Tensor], *args):
        out_frames = (x.size(1) - field) // stride + 1
        if args or out_frames <= block_frames:
            return original(embed, x, x_mask, *args)
        pieces = []
        for o0 in range(0, out_frames, block_frames):
            o1 = min(out_frames, o0 + block_frames)
            h = embed.conv(x[:, o0 * stride:(o1 - 1) * stride + field].unsqueeze(1))  # (B, C, t, F')
            b, c, t, f = h.size()
            pieces.append(linear(h.transpose(1, 2).reshape(b, t, c * f)))
            del h
        y = pos_enc(torch.cat(pieces, dim=1))
        if x_mask is not None:
            for lost, s in steps:
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
    if embed is not None and subsampling_geometry(embed) is not None:
        hop = frontend.stft.hop_length if parts["frontend"] else 160
        rate = _frontend_rate(frontend) if parts["frontend"] else 16000
        _, stride, _ = subsampling_geometry(embed)
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
