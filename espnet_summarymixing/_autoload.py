"""Start-up hook, run by ``espnet_summarymixing.pth``: register our encoder names in ESPnet.

At interpreter start it only puts a finder on ``sys.meta_path`` (no torch, no ESPnet import).
When any ``espnet2.tasks.*`` module is imported later, the finder lets the normal loader run
it and then adds our encoders to its choice lists, before ESPnet builds an argument parser
or rebuilds a saved model. Set ``ESPNET_SUMMARYMIXING_AUTOLOAD=0`` to disable it.
"""

import importlib.abc
import os
import sys
import warnings

_PREFIX = "espnet2.tasks."


class AfterImport(importlib.abc.Loader):
    """A module's own loader, then ``then(module)`` once the module has run (the hook of this file,
    and :mod:`espnet_summarymixing.cli.quiet`'s quiet nltk)."""

    def __init__(self, loader, then):
        self._loader, self._then = loader, then

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        self._then(module)

    def __getattr__(self, name):  # get_source, get_code, ... for tools that ask
        return getattr(self._loader, name)


def _register(module) -> None:
    try:
        from espnet_summarymixing.registration import register_module

        register_module(module)
    except Exception as err:  # never break ESPnet because of us
        warnings.warn(f"espnet_summarymixing: could not register encoders in {module.__name__}: {err!r}")


class _TaskFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if not fullname.startswith(_PREFIX):
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = AfterImport(spec.loader, _register)
                return spec
        return None


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (once) and register in loaded task modules."""
    if os.environ.get("ESPNET_SUMMARYMIXING_AUTOLOAD", "1") == "0":
        return
    if not any(isinstance(f, _TaskFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _TaskFinder())
    if any(name.startswith(_PREFIX) for name in list(sys.modules)):
        from espnet_summarymixing.registration import register

        register()


install()
