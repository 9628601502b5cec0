"""ESPnet's feature normalisation (``global_mvn``, ``utterance_mvn``) in memory linear in the length.

ESPnet's ``GlobalMVN`` and ``UtteranceMVN`` mark the padding with ``make_pad_mask``, whose traceable
path builds a (T + 1) x (T + 1) matrix: 130 GB for the 360,000 feature frames of an hour. These
functions compute the same values with a (B, T) mask, in plain tensor code that also traces into an
exported graph (:class:`~espnet_summarymixing.deploy.graphs.FeatureGraph` uses them).

Shapes: B batch, T frames, F features.
"""

from typing import Optional, Tuple

import torch

from espnet_summarymixing.frames.input_layer import valid_mask

__all__ = ["global_mvn", "utterance_mvn", "normalize"]


def global_mvn(feats: torch.Tensor, lengths: torch.Tensor, mean: Optional[torch.Tensor], std: Optional[torch.Tensor],
               norm_means: bool = True, norm_vars: bool = True) -> torch.Tensor:
    """ESPnet's ``GlobalMVN``: ``(feats - mean) / std`` with the statistics of the training set, padded
    frames zero (before the division, as ESPnet)."""
    padding = ~valid_mask(lengths, feats.size(1))[:, :, None]  # (B, T, 1)
    if norm_means:
        feats = feats - mean.to(feats.dtype)
    feats = feats.masked_fill(padding, 0.0)
    if norm_vars:
        feats = feats / std.to(feats.dtype)
    return feats


def utterance_mvn(feats: torch.Tensor, lengths: torch.Tensor, norm_means: bool = True, norm_vars: bool = False,
                  eps: float = 1.0e-20) -> torch.Tensor:
    """ESPnet's ``UtteranceMVN``: each utterance's own mean (and standard deviation) over its frames,
    padded frames zero. Equal to ESPnet's for an utterance alone; in a padded batch ESPnet also counts
    the padded frames in the standard deviation and leaves them at ``-mean``, which makes an utterance's
    features depend on its batch: here they do not."""
    padding = ~valid_mask(lengths, feats.size(1))[:, :, None]  # (B, T, 1)
    counts = lengths.to(feats.dtype)[:, None, None]  # (B, 1, 1)
    feats = feats.masked_fill(padding, 0.0)
    mean = feats.sum(dim=1, keepdim=True) / counts  # (B, 1, F)
    if norm_vars:
        centred = (feats - mean).masked_fill(padding, 0.0)
        std = torch.clamp((centred.pow(2).sum(dim=1, keepdim=True) / counts).sqrt(), min=eps)  # (B, 1, F)
    if norm_means:
        feats = (feats - mean).masked_fill(padding, 0.0)
    if norm_vars:
        feats = feats / std
    return feats


def normalize(module, feats: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """A model's ``normalize`` module applied as above when it is ESPnet's ``GlobalMVN`` or
    ``UtteranceMVN`` (any other module, or None, as it is): ``(feats, lengths)``."""
    from espnet2.layers.global_mvn import GlobalMVN
    from espnet2.layers.utterance_mvn import UtteranceMVN

    if module is None:
        return feats, lengths
    if isinstance(module, GlobalMVN):
        return global_mvn(feats, lengths, module.mean, module.std, module.norm_means, module.norm_vars), lengths
    if isinstance(module, UtteranceMVN):
        return utterance_mvn(feats, lengths, module.norm_means, module.norm_vars, module.eps), lengths
    return module(feats, lengths)
