"""SummaryMixing for ESPnet2: a linear-time replacement of self-attention in speech encoders.

The package by role, imports flowing one way (a module imports only from its own folder and from
the folders listed after it):

- the modules (and the ``benchmark`` folder) at the top are the commands, ``python -m
  espnet_summarymixing.<command>`` or the console script ``summarymixing-<command>``: ``pack``,
  ``transcribe``, ``classify``, ``upload``, ``stream_decode``, ``benchmark``, ``export``,
  ``onnx_transcribe``;
- :mod:`.cli`: what the commands share: flags, input lists, outputs, the model of the right kind;
- :mod:`.deploy`: ONNX export, and recognition with onnxruntime alone;
- :mod:`.longform`: whole recordings in one pass, CTC decoding, word timings, subtitles;
- :mod:`.streaming`: chunk-by-chunk encoding and streaming recognition;
- :mod:`.publish`: packing, model cards, the Hub;
- :mod:`.loading`: models (and their kind) from a zip, a folder or a hub id, safely; audio;
- :mod:`.registration` (and its start-up hook ``_autoload``): our encoder names in ESPnet's tasks;
- :mod:`.encoders`: the Conformer, Branchformer and E-Branchformer encoders;
- :mod:`.layers`: the SummaryMixing cell and padding-safe ESPnet blocks;
- :mod:`.frames`: ESPnet's frame pipeline (subsampling arithmetic, input layers, streaming framing).

Importing this package imports neither torch nor ESPnet; the public classes load on first use.
"""

__version__ = "0.2.0"

_LAZY = {
    "SummaryMixing": "espnet_summarymixing.layers.summary_mixing",
    "SummaryMixingConformerEncoder": "espnet_summarymixing.encoders.conformer",
    "SummaryMixingBranchformerEncoder": "espnet_summarymixing.encoders.branchformer",
    "SummaryMixingEBranchformerEncoder": "espnet_summarymixing.encoders.e_branchformer",
    "StreamingEncoder": "espnet_summarymixing.streaming.encoder",
    "StreamingRecognizer": "espnet_summarymixing.streaming.recognizer",
    "LongFormRecognizer": "espnet_summarymixing.longform.recognizer",
    "register": "espnet_summarymixing.registration",
}

__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'espnet_summarymixing' has no attribute {name!r}")
