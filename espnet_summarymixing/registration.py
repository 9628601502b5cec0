"""Make the SummaryMixing encoders selectable by name in ESPnet's tasks.

ESPnet has no plugin mechanism: a name exists once it is in a task's ``ClassChoices``.
:func:`register` adds ours wherever ESPnet offers its own Conformer, Branchformer or
E-Branchformer (ASR, SLU, ST, S2T, enhancement + S2T, ...), so a config may say
``encoder: summarymixing_conformer``. It is idempotent and changes nothing else.
The package's ``.pth`` hook (see :mod:`espnet_summarymixing._autoload`) calls it as soon as
an ``espnet2.tasks`` module is imported, so users never import this package themselves.
"""

import importlib
import sys
from types import ModuleType
from typing import Dict, List, Optional

__all__ = ["ENCODERS", "register", "register_module"]

#: Encoder name in configs -> "module:Class".
ENCODERS: Dict[str, str] = {
    "summarymixing_conformer": "espnet_summarymixing.encoders.conformer:SummaryMixingConformerEncoder",
    "summarymixing_branchformer": "espnet_summarymixing.encoders.branchformer:SummaryMixingBranchformerEncoder",
    "summarymixing_e_branchformer": "espnet_summarymixing.encoders.e_branchformer:SummaryMixingEBranchformerEncoder",
}
# A choice list offers our encoders when it offers one of these (ESPnet's own names).
_ESPNET_PEERS = ("conformer", "branchformer", "e_branchformer")


def _load(path: str) -> type:
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


def register_module(module: ModuleType) -> List[str]:
    """Add our encoders to every encoder ``ClassChoices`` of one imported task module.

    Returns the names of the choice lists that were extended (empty if none applied or all
    were already registered).
    """
    from espnet2.train.class_choices import ClassChoices

    changed = []
    for attr, choices in list(vars(module).items()):
        if not isinstance(choices, ClassChoices):
            continue
        if not any(peer in choices.classes for peer in _ESPNET_PEERS):
            continue
        added = False
        for name, path in ENCODERS.items():
            if name in choices.classes:
                continue
            cls = _load(path)
            if choices.base_type is not None and not issubclass(cls, choices.base_type):
                continue
            choices.classes[name] = cls
            added = True
        if added:
            changed.append(f"{module.__name__}.{attr}")
    return changed


def register(task_modules: Optional[List[str]] = None) -> List[str]:
    """Register the encoders in ESPnet task modules.

    Args:
        task_modules: Module names to import and extend, e.g. ``["espnet2.tasks.asr"]``.
            None (default) extends every ``espnet2.tasks.*`` module already imported.

    Returns:
        The choice lists extended by this call, as ``"module.attribute"``.
    """
    if task_modules is None:
        modules = [m for n, m in list(sys.modules.items()) if n.startswith("espnet2.tasks.") and m]
    else:
        modules = [importlib.import_module(n) for n in task_modules]
    changed = []
    for module in modules:
        changed.extend(register_module(module))
    return changed
