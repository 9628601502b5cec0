"""The systems the benchmark compares: their family, their role in the comparison and the ESPnet
encoder configuration that builds each one (plain data: no torch, no ESPnet).

Families (equal configuration inside each): ``conformer`` (ESPnet's rel-pos Conformer, ours, and ours
without its mixing block = the lower bound), ``branchformer`` (ESPnet's with self-attention and with
``fast_selfattn``, ours, cgMLP only) and ``e_branchformer``.
"""

from typing import Dict, Tuple

__all__ = ["SYSTEMS", "FAMILIES", "FEATURES", "FRAMES_PER_SECOND", "encoder_conf"]

FRAMES_PER_SECOND = 100  # 10 ms feature shift
FEATURES = 80  # filterbank channels of the encoders' input

# system name -> (family, role, encoder name as in an ESPnet config, extra encoder keys)
SYSTEMS: Dict[str, tuple] = {
    "conformer_selfattn": ("conformer", "baseline", "conformer", {}),
    # ESPnet's Conformer with plain multi-head attention through PyTorch's SDPA (the attention a GPU
    # user picks for speed): abs_pos, selfattn, use_sdpa on every layer
    "conformer_selfattn_sdpa": ("conformer", "baseline_sdpa", "conformer", {}),
    "conformer_summarymixing": ("conformer", "ours", "summarymixing_conformer", {}),
    "conformer_no_mixing": ("conformer", "lower_bound", "summarymixing_conformer", {}),
    "conformer_summarymixing_fast": ("conformer", "variant", "summarymixing_conformer", {"summary_mode": "fast"}),
    "conformer_summarymixing_lite": ("conformer", "variant", "summarymixing_conformer", {"summary_mode": "lite"}),
    # the cell recomputed in the backward pass: the memory it saves and the time it costs
    "conformer_summarymixing_recompute": ("conformer", "variant", "summarymixing_conformer",
                                          {"summary_recompute": True}),
    "branchformer_selfattn": ("branchformer", "baseline", "branchformer", {}),
    "branchformer_fastformer": ("branchformer", "alternative", "branchformer", {}),
    "branchformer_summarymixing": ("branchformer", "ours", "summarymixing_branchformer", {}),
    "branchformer_no_mixing": ("branchformer", "lower_bound", "summarymixing_branchformer", {}),
    "e_branchformer_selfattn": ("e_branchformer", "baseline", "e_branchformer", {}),
    "e_branchformer_summarymixing": ("e_branchformer", "ours", "summarymixing_e_branchformer", {}),
    "e_branchformer_no_mixing": ("e_branchformer", "lower_bound", "summarymixing_e_branchformer", {}),
}
FAMILIES = tuple(dict.fromkeys(v[0] for v in SYSTEMS.values()))


def _family_conf(family: str, size: int, blocks: int, units: int, kernel: int) -> dict:
    """The keys every system of ``family`` shares, in the family's own ESPnet names."""
    if family == "conformer":
        return dict(output_size=size, linear_units=units, num_blocks=blocks, macaron_style=True,
                    cnn_module_kernel=kernel)
    if family == "branchformer":
        return dict(output_size=size, cgmlp_linear_units=units, num_blocks=blocks, cgmlp_conv_kernel=kernel)
    return dict(output_size=size, cgmlp_linear_units=units, num_blocks=blocks, cgmlp_conv_kernel=kernel,
                use_ffn=True, macaron_ffn=True, linear_units=units)


def encoder_conf(system: str, size: int, blocks: int, units: int, kernel: int, heads: int) -> Tuple[str, dict]:
    """(encoder name, encoder_conf) of one system, as an ESPnet config would hold them.

    >>> name, conf = encoder_conf("conformer_selfattn", 256, 12, 1024, 31, 4)
    >>> name, conf["selfattention_layer_type"], conf["pos_enc_layer_type"]
    ('conformer', 'rel_selfattn', 'rel_pos')
    """
    if system not in SYSTEMS:
        raise ValueError(f"system={system!r} is not a benchmark system; choose from {list(SYSTEMS)}")
    family, role, name, extra = SYSTEMS[system]
    conf = _family_conf(family, size, blocks, units, kernel)
    if name.startswith("summarymixing"):
        if system == "branchformer_no_mixing":
            conf["use_attn"] = False
    else:
        conf.update(attention_heads=heads, use_flash_attn=False)
        if system == "branchformer_fastformer":
            conf.update(attention_layer_type="fast_selfattn", pos_enc_layer_type="abs_pos")
        elif role == "baseline_sdpa":
            conf.update(selfattention_layer_type="selfattn", pos_enc_layer_type="abs_pos")
        else:
            conf.update(rel_pos_type="latest", pos_enc_layer_type="rel_pos")
            key = "selfattention_layer_type" if family == "conformer" else "attention_layer_type"
            conf[key] = "rel_selfattn"
    return name, {**conf, **extra}
