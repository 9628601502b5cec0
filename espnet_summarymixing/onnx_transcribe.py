"""Transcribe audio files with an exported model, using onnxruntime and NumPy only (no torch, no ESPnet).

    python -m espnet_summarymixing.onnx_transcribe --model onnx_model a.wav b.flac
    python -m espnet_summarymixing.onnx_transcribe --model onnx_model --streaming --show_partial a.wav
    python -m espnet_summarymixing.onnx_transcribe --model onnx_model --wav_scp data/test/wav.scp --output hyp.txt

``--model`` is the folder written by ``python -m espnet_summarymixing.export``, or a packed model (zip,
unpacked, training folder) that carries one. Prints ``<key><TAB><text>`` per file (greedy CTC; the
key of a file given as an argument is its path); with ``--output``, writes Kaldi ``<key> <text>``
lines there instead, as ESPnet's decoding does. Files come as arguments and/or from ``--list``
(``--wav_scp``: ``<path>`` or ``<key> <path>`` per line). With ``--streaming`` (a model exported with
``--streaming``) each file is fed ``--block_seconds`` at a time, as if live, through the
chunk-by-chunk graph; ``--show_partial`` prints the growing hypothesis on stderr. The audio must be
at the model's sample rate (``manifest.json``); multi-channel files are down-mixed. A file that
cannot be read is reported on stderr and the others are still transcribed; stderr ends with the
real-time factor (and, streaming, ``chunk C, look-ahead R, algorithmic latency L ms; compute per chunk:
median / max``; streaming uses one onnxruntime thread unless ``--threads`` says otherwise); exit
status 0 only if every file was transcribed (1 otherwise, 2 if the model cannot be loaded or is not
an ONNX export).
"""

import argparse
import sys
import time
from typing import List, Optional

from espnet_summarymixing.cli.inputs import Entry
from espnet_summarymixing.cli.loop import CommandError, each_file, finish, report_lines, run
from espnet_summarymixing.cli.models import model_for
from espnet_summarymixing.cli.options import add_duration, add_inputs, add_model, add_output, inputs_of, require
from espnet_summarymixing.cli.outputs import keyed_output, write_text

__all__ = ["main"]

# what to do with a model that has no ONNX export
ADVICE = {kind: "export it first (python -m espnet_summarymixing.export), or use python -m "
                "espnet_summarymixing.transcribe" for kind in ("asr", "streaming")}


def parser() -> argparse.ArgumentParser:
    """The command's options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model(p, "the folder written by python -m espnet_summarymixing.export (or a packed model carrying one)")
    add_inputs(p)
    add_output(p, "write Kaldi '<key> <text>' lines to this file instead of stdout")
    p.add_argument("--int8", action="store_true", help="use the 8-bit quantised graph")
    p.add_argument("--threads", type=int,
                   help="onnxruntime threads (default: onnxruntime's choice; 1 with --streaming, where a chunk's "
                        "products are too small to share: 1 thread ran a 6 x 144 stream twice as fast as 2)")
    p.add_argument("--streaming", action="store_true", help="decode chunk by chunk (needs an export with --streaming)")
    add_duration(p, "--block_seconds", 0.1, "streaming: audio fed per call")
    p.add_argument("--show_partial", action="store_true", help="streaming: print partial hypotheses on stderr")
    p.add_argument("--cachedir", help="where archives are unpacked")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command; return its exit status."""
    p = parser()
    args = p.parse_args(argv)
    require(p, args, "model")
    if args.streaming and args.int8:
        p.error("--int8 is for the offline graph; the streaming graph is float32")
    if not 0 < args.block_seconds <= 3600:  # nan and inf too
        p.error(f"--block_seconds {args.block_seconds:g}: must be positive, at most an hour")
    from espnet_summarymixing.deploy.runtime import MAX_THREADS  # its bound, checked before anything is loaded

    if args.threads is not None and not 1 <= args.threads <= MAX_THREADS:
        p.error(f"--threads {args.threads}: must be from 1 to {MAX_THREADS}")
    entries, bad = inputs_of(p, args)
    return run(lambda: _transcribe(args, entries, bad))


def _transcribe(args, entries: List[Entry], bad: List[str]) -> int:
    from espnet_summarymixing.deploy.runtime import OnnxRecognizer, OnnxStreamingRecognizer, read_wave
    from espnet_summarymixing.frames.framing import feed

    try:
        output = keyed_output(args.output, entries, args.list)
    except ValueError as err:
        raise CommandError(str(err)) from None
    source = model_for(args.model, ("onnx",), args.cachedir, build=False, advice=ADVICE).source
    try:
        if args.streaming:
            recognizer = OnnxStreamingRecognizer(source.onnx_dir, threads=args.threads or 1)
        else:
            recognizer = OnnxRecognizer(source.onnx_dir, int8=args.int8, threads=args.threads)
    except (OSError, ValueError) as err:
        raise CommandError(f"cannot load the model: {err}") from None
    report_lines(bad)
    block = max(1, int(args.block_seconds * recognizer.rate))
    totals = {"audio": 0.0, "compute": 0.0, "done": 0}
    lines: List[str] = []
    chunk_seconds: List[float] = []

    def work(entry: Entry) -> str:
        wave = read_wave(entry.path, recognizer.rate)
        start = time.perf_counter()
        if args.streaming:
            def show(seconds: float, text: str) -> None:
                print(f"{entry.key} {seconds:7.2f}s  {text}", file=sys.stderr)

            text = feed(recognizer, wave, block, show if args.show_partial else None)
            chunk_seconds.extend(recognizer.chunk_seconds)
        else:
            text = recognizer([wave])[0]
        totals["compute"] += time.perf_counter() - start
        totals["audio"] += len(wave) / recognizer.rate
        return text

    def done(entry: Entry, text: str) -> None:
        totals["done"] += 1
        if output is not None:
            lines.append(f"{entry.key} {text}".rstrip() + "\n")
        else:
            print(f"{entry.key}\t{text}", flush=True)

    failed = each_file(entries, work, done, short=lambda entry: "")
    if output is not None:
        write_text(output, "".join(lines))
    status = finish(failed + len(bad), len(entries) + len(bad))
    if totals["audio"]:
        print(f"{totals['done']} files, {totals['audio']:.1f} s of audio in {totals['compute']:.2f} s: "
              f"real-time factor {totals['compute'] / totals['audio']:.4f}", file=sys.stderr)
    if args.streaming:
        print(recognizer.summary(chunk_seconds), file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
