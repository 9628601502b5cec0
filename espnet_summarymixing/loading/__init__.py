"""Loading what the commands work on: a trained model given as a zip/tar archive, an unpacked
model, a training folder or a Hub id, found and unpacked safely with its weights read as weights
only (:mod:`.models`, :mod:`.archive`); its kind (ASR offline, ASR trained to stream, classifier,
ONNX export) told from its config before anything is built (:mod:`.kinds`); audio at the model's
sample rate (:mod:`.audio`). Importing it, or :mod:`.models` and :mod:`.kinds`, imports no torch."""
