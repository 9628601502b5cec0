"""Paths of the recipe templates (asr1, cls1) and a loader for their Python helpers (``pyscripts/*.py``)."""

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "egs2" / "TEMPLATE" / "asr1"
CLS_TEMPLATE = ROOT / "egs2" / "TEMPLATE" / "cls1"
PYSCRIPTS = TEMPLATE / "pyscripts"
UTILS = TEMPLATE / "utils"


def load_pyscript(name: str):
    """Import ``egs2/TEMPLATE/asr1/pyscripts/<name>.py`` as a module (they are scripts, not a package)."""
    key = f"_pyscripts_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, PYSCRIPTS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]
