"""The modules the benchmark measures, built from :mod:`.systems`: each system's encoder (with the
lower bound's mixing block swapped out), an ESPnet CTC model around an encoder, autocast dtypes.

Model code holds nothing for the benchmark: the lower bound is made here, by replacing each layer's
mixing block with :class:`NoMixing`.
"""

from pathlib import Path
from typing import List, Optional, Tuple

import torch
# The encoder modules directly: importing espnet2.tasks.asr would cost 5 s per worker.
from espnet2.asr.ctc import CTC
from espnet2.asr.encoder.branchformer_encoder import BranchformerEncoder
from espnet2.asr.encoder.conformer_encoder import ConformerEncoder
from espnet2.asr.encoder.e_branchformer_encoder import EBranchformerEncoder
from espnet2.asr.espnet_model import ESPnetASRModel
from espnet2.asr.frontend.default import DefaultFrontend

from espnet_summarymixing.benchmark.systems import FEATURES, SYSTEMS, encoder_conf
from espnet_summarymixing.encoders.branchformer import SummaryMixingBranchformerEncoder
from espnet_summarymixing.encoders.conformer import SummaryMixingConformerEncoder
from espnet_summarymixing.encoders.e_branchformer import SummaryMixingEBranchformerEncoder

__all__ = ["build_encoder", "NoMixing", "ctc_model", "autocast_dtype"]

_CLASSES = {
    "conformer": ConformerEncoder,
    "branchformer": BranchformerEncoder,
    "e_branchformer": EBranchformerEncoder,
    "summarymixing_conformer": SummaryMixingConformerEncoder,
    "summarymixing_branchformer": SummaryMixingBranchformerEncoder,
    "summarymixing_e_branchformer": SummaryMixingEBranchformerEncoder,
}
_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class NoMixing(torch.nn.Module):
    """The lower bound's mixing block: outputs zeros (a zero-stride view, no memory), so that the
    block's residual adds nothing; what remains of it is one dropout and one addition per layer."""

    def forward(self, x, *args, **kwargs):  # called as the cell is; only x's shape matters
        return x.new_zeros(()).expand_as(x)  # (B, T, D), stride 0


def build_encoder(system: str, size: int, blocks: int, units: int, kernel: int, heads: int):
    """The encoder of one benchmark system, built the way an ESPnet config would build it."""
    family, role = SYSTEMS[system][:2]
    name, conf = encoder_conf(system, size, blocks, units, kernel, heads)
    encoder = _CLASSES[name](input_size=FEATURES, **conf)
    if role == "baseline_sdpa":
        for layer in encoder.encoders:
            layer.self_attn.use_sdpa = True  # ESPnet's MultiHeadedAttention option, not a constructor key
    if role == "lower_bound" and family != "branchformer":  # the Branchformer has use_attn=False
        for layer in encoder.encoders:
            layer.norm_mha = torch.nn.Identity()
            layer.summary_mixing = NoMixing()
    return encoder


def autocast_dtype(name: str) -> Optional[torch.dtype]:
    """The autocast dtype of a ``--dtype`` name; None for fp32 (no autocast)."""
    return _DTYPES[name]


def ctc_model(encoder, vocabulary: int, size: int) -> Tuple[ESPnetASRModel, List[str]]:
    """An ESPnet ASR model around ``encoder``, shaped as a recipe's: ESPnet's default 16 kHz front end
    (25 ms / 10 ms), ``global_mvn`` feature normalisation (statistics of unit variance), a CTC head over
    ``vocabulary`` placeholder tokens; returns (model, tokens)."""
    import tempfile

    import numpy as np
    from espnet2.layers.global_mvn import GlobalMVN

    tokens = ["<blank>", "<unk>", *[f"t{i}" for i in range(vocabulary - 3)], "<sos/eos>"]
    with tempfile.TemporaryDirectory() as tmp:  # GlobalMVN reads its statistics once, when built
        stats = Path(tmp) / "feats_stats.npz"
        np.savez(stats, count=np.array(1000.0), sum=np.zeros(FEATURES), sum_square=1000.0 * np.ones(FEATURES))
        normalize = GlobalMVN(stats)
    model = ESPnetASRModel(vocabulary, tokens, DefaultFrontend(fs=16000, n_fft=512, win_length=400, hop_length=160),
                           None, normalize, None, encoder, None, None, CTC(vocabulary, size), None, ctc_weight=1.0)
    return model, tokens
