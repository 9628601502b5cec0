"""Deployment: ONNX export of trained models (:mod:`.graphs`, :mod:`.export`, needs torch and ESPnet)
and recognition with onnxruntime and NumPy alone (:mod:`.runtime`). Importing this package imports
neither torch nor ESPnet."""
