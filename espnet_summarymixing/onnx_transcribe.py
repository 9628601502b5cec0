"""Transcribe audio files with an exported model, using onnxruntime and NumPy only (no torch, no ESPnet).

    python -m espnet_summarymixing.onnx_transcribe --model_dir onnx_model a.wav b.flac
    python -m espnet_summarymixing.onnx_transcribe --model_dir onnx_model --streaming --show_partial a.wav

Prints ``<file><TAB><text>`` per file (greedy CTC). With ``--streaming`` (a model exported with
``--streaming``) each file is fed ``--block_seconds`` at a time, as if live, through the chunk-by-chunk
graph; ``--show_partial`` prints the growing hypothesis on stderr. The audio must be at the model's sample rate
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
    p.add_argument("--streaming", action="store_true", help="decode chunk by chunk (needs an export with --streaming)")
    p.add_argument("--block_seconds", type=float, default=0.1, help="streaming: audio fed per call")
    p.add_argument("--show_partial", action="store_true", help="streaming: print partial hypotheses on stderr")
    args = p.parse_args(argv)
    if args.streaming and args.int8:
        p.error("--int8 is for the offline graph; the streaming graph is float32")
    if args.block_seconds <= 0:
        p.error(f"--block_seconds {args.block_seconds}: must be positive")
    from espnet_summarymixing.deploy.runtime import OnnxRecognizer, OnnxStreamingRecognizer, read_wave

    try:
        if args.streaming:
            recognizer = OnnxStreamingRecognizer(args.model_dir, threads=args.threads)
        else:
            recognizer = OnnxRecognizer(args.model_dir, int8=args.int8, threads=args.threads)
    except (FileNotFoundError, ValueError, OSError) as err:
        print(f"error: cannot load the model: {err}", file=sys.stderr)
        return 2
    failed = 0
    for path in args.files:
        try:
            if args.streaming:
                text = _stream(recognizer, read_wave(path, recognizer.rate), args.block_seconds,
                               path if args.show_partial else None)
            else:
                text = recognizer.transcribe_file(path)
        except (FileNotFoundError, ValueError) as err:  # one bad file must not stop the others
            failed += 1
            print(f"error: {err}", file=sys.stderr)
            continue
        print(f"{path}\t{text}", flush=True)
    return 1 if failed else 0


def _stream(recognizer, wave, block_seconds: float, show: Optional[str]) -> str:
    block = max(1, int(block_seconds * recognizer.rate))
    shown = ""
    for start in range(0, len(wave), block):
        text = recognizer.accept_audio(wave[start:start + block])
        if show is not None and text != shown:
            shown = text
            print(f"{show} {min(len(wave), start + block) / recognizer.rate:7.2f}s  {text}", file=sys.stderr)
    return recognizer.finish()


if __name__ == "__main__":
    sys.exit(main())
