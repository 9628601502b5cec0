"""Export a trained model to ONNX files that recognise speech with onnxruntime alone.

    python -m espnet_summarymixing.export --model exp/asr_train/model.zip --out onnx_model [--quantize int8]
    python -m espnet_summarymixing.onnx_transcribe --model_dir onnx_model a.wav b.flac

The graph takes the waveform (the front end is in the graph) and returns CTC log-probabilities;
see :mod:`espnet_summarymixing.deploy.export` for the files written and the check every export
passes. Exit status: 0 done, 2 the model cannot be loaded or exported (the message says why).
"""

import argparse
import contextlib
import logging
import sys
from typing import List, Optional

__all__ = ["main"]


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="model.zip, an unpacked model or exp dir, or a hub id")
    source.add_argument("--asr_train_config", help="a training config.yaml (with --asr_model_file)")
    p.add_argument("--asr_model_file", help="the checkpoint to export with --asr_train_config")
    p.add_argument("--out", required=True, help="folder to write the ONNX model into")
    p.add_argument("--quantize", choices=["int8"], help="also write model.int8.onnx (8-bit weights)")
    p.add_argument("--streaming", action="store_true", help="also export the chunk-by-chunk graph")
    p.add_argument("--chunk_size", type=int, help="streaming: frames after subsampling per chunk")
    p.add_argument("--tolerance", type=float, default=1e-3,
                   help="largest accepted |onnxruntime - PyTorch| of the log-probabilities in the check")
    p.add_argument("--cachedir", help="where archives are unpacked")
    args = p.parse_args(argv)
    if bool(args.asr_train_config) != bool(args.asr_model_file):
        p.error("--asr_train_config and --asr_model_file go together")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # e.g. "torchvision is not installed" per op
    with contextlib.redirect_stdout(sys.stderr):  # ESPnet prints notices while importing
        from espnet_summarymixing.deploy.export import ExportError, export

        try:
            manifest = export(args.model, args.out, quantize=args.quantize, cachedir=args.cachedir,
                              tolerance=args.tolerance, streaming=args.streaming, chunk_size=args.chunk_size,
                              asr_train_config=args.asr_train_config, asr_model_file=args.asr_model_file)
        except (FileNotFoundError, ExportError, ValueError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    print(manifest.parent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
