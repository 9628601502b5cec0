"""The benchmark, ``python -m espnet_summarymixing.benchmark``: speed, memory and real-time factor
of SummaryMixing against self-attention, one module per tool:

- :mod:`.cli`: the flags and :func:`main`, which runs the mode they select;
- :mod:`.systems`: the systems compared (family, role, ESPnet encoder configuration);
- :mod:`.models`: the encoders built from them, the lower bound, a CTC model around an encoder;
- :mod:`.measure`: timings, operator counts, resident memory, the environment, one measurement in a
  fresh process;
- :mod:`.speed`: encoder training step, peak memory and RTF against utterance length (the default);
- :mod:`.tables`: its CSV columns, ratios, Markdown table, targets and plot;
- :mod:`.long_form`: one-pass transcription of long recordings (``--long_form``);
- :mod:`.streaming`: per-chunk compute over a long stream (``--streaming``);
- :mod:`.onnx_compare`: onnxruntime against PyTorch (``--onnx``);
- :mod:`.ops`: ATen calls and GPU kernels per step (``--ops``).

Importing this package imports neither torch nor ESPnet.
"""

from espnet_summarymixing.benchmark.cli import main
from espnet_summarymixing.benchmark.systems import SYSTEMS
from espnet_summarymixing.benchmark.tables import FIELDS

__all__ = ["main", "SYSTEMS", "FIELDS"]
