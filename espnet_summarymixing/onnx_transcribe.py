"""Transcribe audio files with an exported model, using onnxruntime and NumPy only (no torch, no ESPnet).

    python -m espnet_summarymixing.onnx_transcribe --model_dir onnx_model a.wav b.flac

Prints ``<file><TAB><text>`` per file (greedy CTC). The audio must be at the model's sample rate
(``manifest.json``); multi-channel files are down-mixed. A file that cannot be read is reported on
stderr and the others are still transcribed; exit status 0 only if every file was transcribed (1
otherwise, 2 if the model cannot be loaded).
"""

import argparse
import sys
from typing import List, Optional

__all__ = ["main"]


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model_dir", required=True, help="the folder written by python -m espnet_summarymixing.export")
    p.add_argument("files", nargs="+", help="audio files")
    p.add_argument("--int8", action="store_true", help="use the 8-bit quantised graph")
    p.add_argument("--threads", type=int, help="onnxruntime threads (default: onnxruntime's choice)")
    args = p.parse_args(argv)
    from espnet_summarymixing.deploy.runtime import OnnxRecognizer

    try:
        recognizer = OnnxRecognizer(args.model_dir, int8=args.int8, threads=args.threads)
    except (FileNotFoundError, ValueError, OSError) as err:
        print(f"error: cannot load the model: {err}", file=sys.stderr)
        return 2
    failed = 0
    for path in args.files:
        try:
            text = recognizer.transcribe_file(path)
        except (FileNotFoundError, ValueError) as err:  # one bad file must not stop the others
            failed += 1
            print(f"error: {err}", file=sys.stderr)
            continue
        print(f"{path}\t{text}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
