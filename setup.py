"""Build script: setup.cfg holds the metadata; this only ships ``espnet_summarymixing.pth``.

The .pth file sits at the root of site-packages and makes the encoder names resolve in
ESPnet without any user import (see espnet_summarymixing/_autoload.py).
"""

import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

PTH = "espnet_summarymixing.pth"


class BuildPyWithPth(build_py):
    def run(self):
        super().run()
        target = os.path.join(self.build_lib, PTH)
        self.mkpath(self.build_lib)
        shutil.copyfile(PTH, target)

    def get_outputs(self, include_bytecode=True):
        return super().get_outputs(include_bytecode) + [os.path.join(self.build_lib, PTH)]


cmdclass = {"build_py": BuildPyWithPth}

try:  # editable installs (pip install -e .) build their wheel through another command
    from setuptools.command.editable_wheel import editable_wheel
except ImportError:  # setuptools < 64: no PEP 660 editable wheels
    editable_wheel = None

if editable_wheel is not None:

    class _StrategyWithPth:
        def __init__(self, strategy):
            self._strategy = strategy

        def __enter__(self):
            self._strategy.__enter__()
            return self

        def __exit__(self, *exc):
            return self._strategy.__exit__(*exc)

        def __call__(self, wheel, files, mapping):
            self._strategy(wheel, files, mapping)
            with open(PTH, "rb") as f:
                wheel.writestr(PTH, f.read())

    class EditableWheelWithPth(editable_wheel):
        def _select_strategy(self, *args, **kwargs):
            return _StrategyWithPth(super()._select_strategy(*args, **kwargs))

    cmdclass["editable_wheel"] = EditableWheelWithPth

setup(cmdclass=cmdclass)
