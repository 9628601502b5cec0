"""Streaming CTC recognition with a chunk-causal SummaryMixing Conformer.

    python -m espnet_summarymixing.stream_decode --model exp/asr/model.zip --chunk_size 8 long.wav
    python -m espnet_summarymixing.stream_decode --model exp/asr/model.zip --chunk_size 8 \
        --wav_scp dump/raw/test/wav.scp --output exp/asr/stream8/text      # a whole set, for scoring

The file is read as if it were live, ``--block_ms`` of audio at a time: features are computed as
soon as their STFT window is complete (identical to the offline frontend), encoded chunk by chunk
(:class:`~espnet_summarymixing.streaming.encoder.StreamingEncoder`) and decoded greedily with CTC; each
time the hypothesis grows, a partial line ``[12.34 s] TEXT`` is printed, then the final text and
the compute time per chunk. Memory stays constant whatever the length of the file. With
``--wav_scp`` every utterance of a Kaldi ``wav.scp`` is streamed the same way and the final texts
go to ``--output`` as ``<utt> <text>`` lines; ``--full_context`` decodes the same set offline (each
utterance encoded whole, same greedy CTC) for an offline-vs-streaming comparison of one model.
"""

import argparse
import contextlib
import logging
import sys
import time
from pathlib import Path
from typing import List

from espnet_summarymixing.publish.loading import load_audio, resolve_model
from espnet_summarymixing.streaming.recognizer import StreamingRecognizer

__all__ = ["main"]


def _compute_summary(chunk_seconds: List[float]) -> str:
    ms = sorted(1000 * s for s in chunk_seconds)
    return f"compute per chunk: median {ms[len(ms) // 2]:.1f} ms, max {ms[-1]:.1f} ms over {len(ms)} steps"


def _read_wav_scp(path: str):
    """(line number, utterance id, audio path) of each entry, and the lines that are not entries."""
    entries, bad = [], []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split(maxsplit=1)
        if len(fields) != 2 or fields[1].rstrip().endswith("|"):
            why = "expected '<utterance id> <audio file>'" + (", not a command" if len(fields) == 2 else "")
            bad.append(f"{path}:{number}: {why}: {line.strip()[:80]!r}")
            continue
        entries.append((number, fields[0], fields[1].strip()))
    return entries, bad


def _decode_set(rec: StreamingRecognizer, args, block: int) -> int:
    """Stream (or, with --full_context, decode offline) every utterance of --wav_scp into --output.
    A bad line or file is reported with its line and utterance and skipped; the others are written."""
    entries, failures = _read_wav_scp(args.wav_scp)
    for message in failures:
        print(f"error: {message}", file=sys.stderr)
    lines, chunk_seconds, audio_seconds, compute = [], [], 0.0, 0.0
    for i, (number, utt, path) in enumerate(entries, 1):
        try:
            wave = load_audio(path, rec.rate)
            start = time.perf_counter()
            text = rec.decode_offline(wave) if args.full_context else rec.stream(wave, block)
        except (FileNotFoundError, ValueError, RuntimeError) as err:
            failures.append(f"{args.wav_scp}:{number}: utterance {utt}: {err}")
            print(f"error: {failures[-1]}", file=sys.stderr)
            continue
        compute += time.perf_counter() - start
        audio_seconds += wave.numel() / rec.rate
        chunk_seconds += rec.chunk_seconds
        lines.append(f"{utt} {text}".rstrip() + "\n")
        if i % max(1, len(entries) // 10) == 0 or i == len(entries):
            print(f"stream_decode: {i}/{len(entries)} utterances", file=sys.stderr, flush=True)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    partial = Path(f"{args.output}.partial")
    partial.write_text("".join(sorted(lines)), encoding="utf-8")
    partial.replace(args.output)
    mode = "offline, full context" if args.full_context else f"streaming, chunk {rec.encoder.chunk_size}"
    rtf = f", real-time factor {compute / audio_seconds:.3f}" if audio_seconds else ""
    print(f"{args.output}: {len(lines)} utterances ({mode}){rtf}", file=sys.stderr)
    if chunk_seconds:
        print(_compute_summary(chunk_seconds), file=sys.stderr)
    if failures:
        print(f"{len(failures)} entries of {args.wav_scp} failed (see above); the others are in {args.output}",
              file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="model.zip, an unpacked model or exp dir")
    p.add_argument("file", nargs="?", help="audio file, read as if it were live")
    p.add_argument("--wav_scp", help="decode every utterance of this Kaldi wav.scp instead of one file")
    p.add_argument("--output", help="with --wav_scp: the text file of hypotheses to write")
    p.add_argument("--full_context", action="store_true",
                   help="with --wav_scp: encode each utterance whole (offline) instead of streaming it; "
                        "any ESPnet ASR model with CTC, streamable or not")
    p.add_argument("--chunk_size", type=int, help="encoder frames per chunk (default: decode_chunk_size)")
    p.add_argument("--block_ms", type=float, default=100.0, help="audio arriving per step, in ms")
    p.add_argument("--device", default="cpu")
    p.add_argument("--cachedir")
    args = p.parse_args(argv)
    if (args.file is None) == (args.wav_scp is None):
        p.error("give either one audio file or --wav_scp")
    if args.wav_scp is not None and args.output is None:
        p.error("--wav_scp needs --output")
    if args.full_context and args.wav_scp is None:
        p.error("--full_context only applies with --wav_scp")
    if not 0 < args.block_ms <= 60000:
        p.error(f"--block_ms {args.block_ms:g}: must be in (0, 60000] ms of audio per step")
    if args.chunk_size is not None and args.chunk_size < 1:
        p.error(f"--chunk_size {args.chunk_size}: must be at least 1 encoder frame")
    if args.wav_scp is not None and not Path(args.wav_scp).is_file():
        p.error(f"--wav_scp {args.wav_scp}: no such file")

    logging.disable(logging.WARNING)
    out = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        try:
            files = resolve_model(args.model, args.cachedir)
            rec = StreamingRecognizer(files["asr_train_config"], files["asr_model_file"], args.chunk_size,
                                      args.device, offline_only=args.full_context)
        except (FileNotFoundError, ValueError, RuntimeError) as err:
            print(f"error: cannot load the model: {err}", file=sys.stderr)
            return 2
        block = max(1, int(rec.rate * args.block_ms / 1000))  # samples arriving per step
        if args.wav_scp is not None:
            return _decode_set(rec, args, block)

        def partial(seconds, text):
            print(f"[{seconds:7.2f} s] {text}", file=out, flush=True)

        try:
            wave = load_audio(args.file, rec.rate)
            final = rec.stream(wave, block, partial)
        except (FileNotFoundError, ValueError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        print(final, file=out, flush=True)
        if rec.chunk_seconds:
            print(_compute_summary(rec.chunk_seconds), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
