"""Streaming CTC recognition with a SummaryMixing model trained to stream.

    python -m espnet_summarymixing.stream_decode --model exp/asr/model.zip --chunk_size 8 long.wav
    python -m espnet_summarymixing.stream_decode --model exp/asr/model.zip --chunk_size 8 \\
        --wav_scp dump/raw/test/wav.scp --output exp/asr/stream8/text      # a whole set, for scoring

The file is read as if it were live, ``--block_seconds`` of audio at a time: features are computed
as soon as their STFT window is complete (identical to the offline frontend), encoded chunk by chunk
(:class:`~espnet_summarymixing.streaming.encoder.StreamingEncoder`) and decoded greedily with CTC; each
time the hypothesis grows, a partial line ``[12.34 s] TEXT`` is printed, then the final text and,
on stderr, ``chunk C, look-ahead R, algorithmic latency L ms; compute per chunk: median / max``.
Memory stays constant whatever the length of the file. Several files, or ``--list`` (``--wav_scp``:
``<path>`` or ``<key> <path>`` per line), are streamed the same way and their final texts printed
as ``<key><TAB><text>``, or written to ``--output`` as Kaldi ``<key> <text>`` lines;
``--full_context`` decodes them offline instead (each utterance encoded whole, same greedy CTC), for
an offline-vs-streaming comparison of one model: any ESPnet ASR model with CTC.
Exit status: 0 every file decoded, 1 some failed, 2 nothing could start (a bad option, a model that
cannot be loaded or cannot stream).
"""

import argparse
import logging
import sys
import time
from typing import List, Optional

from espnet_summarymixing.cli.inputs import Entry
from espnet_summarymixing.cli.loop import CommandError, each_file, finish, report_lines, run
from espnet_summarymixing.cli.models import model_for
from espnet_summarymixing.cli.options import add_duration, add_inputs, add_model, add_output, inputs_of, require
from espnet_summarymixing.cli.outputs import keyed_output, write_text
from espnet_summarymixing.cli.quiet import quiet_startup

__all__ = ["main"]

NOT_STREAMING = ("it was not trained to stream: use python -m espnet_summarymixing.transcribe (or "
                 "stream_decode --full_context for greedy CTC over the whole utterance)")
ADVICE = {"asr": NOT_STREAMING, "onnx": "use python -m espnet_summarymixing.onnx_transcribe --streaming"}


def parser() -> argparse.ArgumentParser:
    """The command's options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model(p, "model.zip, an unpacked model, a training folder or a hub id")
    add_inputs(p, "audio files, read as if they were live")
    add_output(p, "write Kaldi '<key> <text>' lines to this file instead of stdout")
    p.add_argument("--full_context", action="store_true",
                   help="encode each utterance whole (offline) instead of streaming it; any ESPnet ASR model "
                        "with CTC, streamable or not")
    p.add_argument("--chunk_size", type=int, help="encoder frames per chunk (default: decode_chunk_size)")
    add_duration(p, "--block_seconds", 0.1, "audio arriving per step", old_ms="--block_ms")
    p.add_argument("--device", default="cpu")
    p.add_argument("--cachedir", help="where archives are unpacked")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command; return its exit status."""
    p = parser()
    args = p.parse_args(argv)
    require(p, args, "model")
    if not 0 < args.block_seconds <= 60:
        p.error(f"--block_seconds {args.block_seconds:g}: must be in (0, 60] seconds of audio per step")
    if args.chunk_size is not None and args.chunk_size < 1:
        p.error(f"--chunk_size {args.chunk_size}: must be at least 1 encoder frame")
    entries, bad = inputs_of(p, args)
    return run(lambda: _decode(args, entries, bad))


def _decode(args, entries: List[Entry], bad: List[str]) -> int:
    from espnet_summarymixing.loading.audio import load_audio
    from espnet_summarymixing.loading.models import sample_rate

    try:
        output = keyed_output(args.output, entries, args.list)
    except ValueError as err:
        raise CommandError(str(err)) from None
    live = len(entries) == 1 and not bad and not args.list and output is None and not args.full_context
    out = sys.stdout
    with quiet_startup(logging.WARNING):
        kinds = ("asr", "streaming") if args.full_context else ("streaming",)
        loaded = model_for(args.model, kinds, args.cachedir, args.device, advice=ADVICE)
        model, train_args = loaded.model, loaded.train_args
        rate = sample_rate(train_args)
        if args.full_context:
            from espnet_summarymixing.streaming.recognizer import full_context_text

            rec = None
        else:
            from espnet_summarymixing.streaming.recognizer import StreamingRecognizer

            try:
                rec = StreamingRecognizer(model, train_args, args.chunk_size)
            except ValueError as err:
                raise CommandError(f"{args.model} cannot be streamed: {err}") from None
        block = max(1, int(rate * args.block_seconds))  # samples arriving per step
        report_lines(bad)
        chunk_seconds: List[float] = []
        totals = {"audio": 0.0, "compute": 0.0, "done": 0}
        lines: List[str] = []

        def partial(seconds: float, text: str) -> None:
            print(f"[{seconds:7.2f} s] {text}", file=out, flush=True)

        def work(entry: Entry) -> str:
            wave = load_audio(entry.path, rate)
            start = time.perf_counter()
            if rec is None:
                text = full_context_text(model, train_args, wave)
            else:
                text = rec.stream(wave, block, partial if live else None)
                chunk_seconds.extend(rec.chunk_seconds)
            totals["compute"] += time.perf_counter() - start
            totals["audio"] += wave.numel() / rate
            return text

        def done(entry: Entry, text: str) -> None:
            totals["done"] += 1
            if live:
                print(text, file=out, flush=True)
            elif output is not None:
                lines.append(f"{entry.key} {text}".rstrip() + "\n")
            else:
                print(f"{entry.key}\t{text}", file=out, flush=True)
            if not live and (totals["done"] % max(1, len(entries) // 10) == 0 or totals["done"] == len(entries)):
                print(f"stream_decode: {totals['done']}/{len(entries)} utterances", file=sys.stderr, flush=True)

        failed = each_file(entries, work, done, short=lambda entry: "")
    if output is not None:
        write_text(output, "".join(lines))
    if not live:
        mode = "offline, full context" if rec is None else f"streaming, chunk {rec.encoder.chunk_size}"
        rtf = f", real-time factor {totals['compute'] / totals['audio']:.3f}" if totals["audio"] else ""
        print(f"{args.output or 'stdout'}: {totals['done']} utterances ({mode}){rtf}", file=sys.stderr)
    if rec is not None:
        print(rec.summary(chunk_seconds), file=sys.stderr)
    return finish(failed + len(bad), len(entries) + len(bad))


if __name__ == "__main__":
    sys.exit(main())
