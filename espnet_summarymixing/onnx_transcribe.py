"""Transcribe audio files with an exported model, using onnxruntime and NumPy only (no torch, no ESPnet).

    python -m espnet_summarymixing.onnx_transcribe --model_dir onnx_model a.wav b.flac
    python -m espnet_summarymixing.onnx_transcribe --model_dir onnx_model --streaming --show_partial a.wav
    python -m espnet_summarymixing.onnx_transcribe --model_dir onnx_model --wav_scp data/test/wav.scp --output hyp.txt

Prints ``<file><TAB><text>`` per file (greedy CTC); with ``--wav_scp`` (Kaldi ``<utt-id> <path>``
lines) writes ``<utt-id> <text>`` lines to ``--output``, as ESPnet's decoding does. With
``--streaming`` (a model exported with ``--streaming``) each file is fed ``--block_seconds`` at a
time, as if live, through the chunk-by-chunk graph; ``--show_partial`` prints the growing hypothesis
on stderr. The audio must be at the model's sample rate (``manifest.json``); multi-channel files are
down-mixed. A file that cannot be read is reported on stderr and the others are still transcribed;
the last stderr line gives the real-time factor; exit status 0 only if every file was transcribed (1
otherwise, 2 if the model cannot be loaded).
"""

import argparse
import sys
import time
from pathlib import Path
from typing import List, Optional, Tuple

__all__ = ["main"]


def _inputs(args, p) -> List[Tuple[str, str]]:
    """(name, path) pairs: the files, or the lines of --wav_scp."""
    if not args.wav_scp:
        return [(f, f) for f in args.files]
    if not Path(args.wav_scp).is_file():
        p.error(f"--wav_scp {args.wav_scp}: no such file")
    pairs = []
    for number, line in enumerate(Path(args.wav_scp).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or parts[1].rstrip().endswith("|"):
            p.error(f"--wav_scp {args.wav_scp}:{number}: expected '<utt-id> <audio file>' (no pipes), got {line!r}")
        pairs.append((parts[0], parts[1].strip()))
    return pairs


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model_dir", required=True, help="the folder written by python -m espnet_summarymixing.export")
    p.add_argument("files", nargs="*", help="audio files")
    p.add_argument("--wav_scp", help="decode every utterance of this Kaldi wav.scp instead of files")
    p.add_argument("--output", help="with --wav_scp: the text file of hypotheses to write")
    p.add_argument("--int8", action="store_true", help="use the 8-bit quantised graph")
    p.add_argument("--threads", type=int, help="onnxruntime threads (default: onnxruntime's choice)")
    p.add_argument("--streaming", action="store_true", help="decode chunk by chunk (needs an export with --streaming)")
    p.add_argument("--block_seconds", type=float, default=0.1, help="streaming: audio fed per call")
    p.add_argument("--show_partial", action="store_true", help="streaming: print partial hypotheses on stderr")
    args = p.parse_args(argv)
    if bool(args.files) == bool(args.wav_scp):
        p.error("give audio files or --wav_scp (not both)")
    if args.wav_scp and not args.output:
        p.error("--wav_scp needs --output")
    if args.streaming and args.int8:
        p.error("--int8 is for the offline graph; the streaming graph is float32")
    if args.block_seconds <= 0:
        p.error(f"--block_seconds {args.block_seconds}: must be positive")
    inputs = _inputs(args, p)
    from espnet_summarymixing.deploy.runtime import OnnxRecognizer, OnnxStreamingRecognizer, read_wave

    try:
        if args.streaming:
            recognizer = OnnxStreamingRecognizer(args.model_dir, threads=args.threads)
        else:
            recognizer = OnnxRecognizer(args.model_dir, int8=args.int8, threads=args.threads)
    except (FileNotFoundError, ValueError, OSError) as err:
        print(f"error: cannot load the model: {err}", file=sys.stderr)
        return 2
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    failed, audio_seconds, compute_seconds = 0, 0.0, 0.0
    try:
        for name, path in inputs:
            try:
                wave = read_wave(path, recognizer.rate)
                start = time.perf_counter()
                if args.streaming:
                    text = _stream(recognizer, wave, args.block_seconds, path if args.show_partial else None)
                else:
                    text = recognizer([wave])[0]
                compute_seconds += time.perf_counter() - start
                audio_seconds += len(wave) / recognizer.rate
            except (FileNotFoundError, ValueError) as err:  # one bad file must not stop the others
                failed += 1
                print(f"error: {err}" if str(err).startswith(path) else f"error: {path}: {err}", file=sys.stderr)
                continue
            print(f"{name} {text}" if args.wav_scp else f"{name}\t{text}", file=out, flush=True)
    finally:
        if args.output:
            out.close()
    if audio_seconds:
        print(f"{len(inputs) - failed} files, {audio_seconds:.1f} s of audio in {compute_seconds:.2f} s: "
              f"real-time factor {compute_seconds / audio_seconds:.4f}", file=sys.stderr)
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
