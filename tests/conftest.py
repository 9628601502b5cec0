"""Shared helpers: tiny encoders and padded batches."""

import os
from pathlib import Path

import pytest
import torch

from espnet_summarymixing.branchformer_encoder import SummaryMixingBranchformerEncoder
from espnet_summarymixing.conformer_encoder import SummaryMixingConformerEncoder
from espnet_summarymixing.e_branchformer_encoder import SummaryMixingEBranchformerEncoder

ROOT = Path(__file__).resolve().parents[1]
AN4 = Path(os.environ.get("AN4_ROOT", ROOT.parent / "shared" / "data" / "an4"))

ENCODERS = {
    "conformer": SummaryMixingConformerEncoder,
    "branchformer": SummaryMixingBranchformerEncoder,
    "e_branchformer": SummaryMixingEBranchformerEncoder,
}
TINY = {
    "conformer": dict(output_size=16, linear_units=24, num_blocks=2, cnn_module_kernel=3),
    "branchformer": dict(output_size=16, cgmlp_linear_units=24, num_blocks=2, cgmlp_conv_kernel=3),
    "e_branchformer": dict(
        output_size=16, cgmlp_linear_units=24, num_blocks=2, cgmlp_conv_kernel=3, linear_units=24
    ),
}
FEATS = 20


def tiny(name, input_size=FEATS, **kwargs):
    options = dict(TINY[name])
    options.update(kwargs)
    return ENCODERS[name](input_size, **options)


def batch(lengths, feats=FEATS, seed=0, tokens=False):
    """A padded batch (B, T, feats) (or token ids) with garbage in the padding."""
    g = torch.Generator().manual_seed(seed)
    t = max(lengths)
    if tokens:
        x = torch.randint(1, feats, (len(lengths), t), generator=g)
    else:
        x = torch.randn(len(lengths), t, feats, generator=g)
    for i, n in enumerate(lengths):
        if tokens:
            x[i, n:] = feats - 1
        else:
            x[i, n:] = 7.0 + torch.randn(t - n, feats, generator=g)
    return x, torch.tensor(lengths)


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    torch.set_num_threads(2)
