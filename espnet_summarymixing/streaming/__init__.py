"""Streaming: chunk-by-chunk encoding with carried state (:mod:`.encoder`) and CTC recognition from
audio as it arrives (:mod:`.recognizer`). Imports the encoders, and :mod:`espnet_summarymixing.publish`
to load models."""
