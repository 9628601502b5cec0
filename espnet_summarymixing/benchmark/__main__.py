"""``python -m espnet_summarymixing.benchmark``: see :mod:`espnet_summarymixing.benchmark.cli`."""

import sys

from espnet_summarymixing.benchmark.cli import main

if __name__ == "__main__":
    sys.exit(main())
