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


setup(cmdclass={"build_py": BuildPyWithPth})
