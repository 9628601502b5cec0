"""Tiny ESPnet ASR models in the trained format (``config.yaml`` + weights), random weights."""

import argparse
from pathlib import Path

import numpy as np
import torch
import yaml

CONF = {
    "summarymixing_conformer": dict(output_size=32, linear_units=64, num_blocks=2, cnn_module_kernel=7,
                                    macaron_style=True),
    "summarymixing_branchformer": dict(output_size=32, cgmlp_linear_units=64, num_blocks=2,
                                       cgmlp_conv_kernel=7, merge_method="learned_ave"),
    "summarymixing_e_branchformer": dict(output_size=32, cgmlp_linear_units=64, num_blocks=2,
                                         cgmlp_conv_kernel=7, use_ffn=True, macaron_ffn=True, linear_units=64),
}
TOKENS = ["<blank>", "<unk>", *"ABCDEFGHIJKLMNOPQRSTUVWXYZ'", "<space>", "<sos/eos>"]


def make_model(out: Path, encoder: str = "summarymixing_conformer", normalize: str = "global_mvn",
               seed: int = 0, **encoder_conf) -> Path:
    """Write ``out/config.yaml``, ``out/valid.acc.ave.pth`` (and global-MVN statistics); return ``out``."""
    from espnet2.tasks.asr import ASRTask

    out.mkdir(parents=True, exist_ok=True)
    config = {
        "encoder": encoder, "encoder_conf": {**CONF[encoder], **encoder_conf},
        "decoder": "transformer", "decoder_conf": dict(attention_heads=2, linear_units=32, num_blocks=1),
        "model_conf": dict(ctc_weight=0.3), "token_list": TOKENS, "token_type": "char",
        "frontend_conf": dict(n_fft=512, win_length=400, hop_length=160, n_mels=80),
        "normalize": normalize, "input_size": None,
    }
    if normalize == "global_mvn":
        rng = np.random.default_rng(seed)
        count = 1000
        mean = rng.normal(-5.0, 2.0, 80)
        var = rng.uniform(0.5, 4.0, 80)
        np.savez(out / "feats_stats.npz", count=np.array(count), sum=mean * count,
                 sum_square=(var + mean ** 2) * count)
        config["normalize_conf"] = {"stats_file": str(out / "feats_stats.npz")}
    parser = ASRTask.get_parser()
    defaults = vars(parser.parse_args(["--token_list", "x", "--output_dir", str(out)]))
    args = argparse.Namespace(**{**defaults, **config})
    torch.manual_seed(seed)
    model = ASRTask.build_model(args)
    with torch.no_grad():  # livelier than the initial weights: CTC output not all blank
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    (out / "config.yaml").write_text(yaml.safe_dump({k: v for k, v in vars(args).items()}, sort_keys=False))
    torch.save(model.state_dict(), out / "valid.acc.ave.pth")
    return out
