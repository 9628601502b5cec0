"""SummaryMixing for ESPnet2: a linear-time replacement of self-attention in speech encoders.

Importing this package imports neither torch nor ESPnet; the public classes load on first use.
"""

__version__ = "0.1.0"

_LAZY = {
    "SummaryMixing": "espnet_summarymixing.summary_mixing",
    "SummaryMixingConformerEncoder": "espnet_summarymixing.conformer_encoder",
    "SummaryMixingBranchformerEncoder": "espnet_summarymixing.branchformer_encoder",
    "SummaryMixingEBranchformerEncoder": "espnet_summarymixing.e_branchformer_encoder",
    "register": "espnet_summarymixing.registration",
}

__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'espnet_summarymixing' has no attribute {name!r}")
