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
from typing import List

from espnet_summarymixing.publish.loading import load_audio, resolve_model
from espnet_summarymixing.streaming.recognizer import StreamingRecognizer

__all__ = ["main"]


def _compute_summary(chunk_seconds: List[float]) -> str:
    ms = sorted(1000 * s for s in chunk_seconds)
    return f"compute per chunk: median {ms[len(ms) // 2]:.1f} ms, max {ms[-1]:.1f} ms over {len(ms)} steps"


def _decode_set(rec: StreamingRecognizer, args, load_audio) -> int:
    """Stream (or, with --full_context, decode offline) every utterance of --wav_scp into --output."""
    from pathlib import Path

    entries = [line.split(maxsplit=1) for line in Path(args.wav_scp).read_text().splitlines() if line.strip()]
    block = max(1, int(rec.rate * args.block_ms / 1000))
    lines, chunk_seconds, audio_seconds, compute = [], [], 0.0, 0.0
    for i, (utt, path) in enumerate(entries, 1):
        wave = load_audio(path.strip(), rec.rate)
        start = time.perf_counter()
        text = rec.decode_offline(wave) if args.full_context else rec.stream(wave, block)
        compute += time.perf_counter() - start
        audio_seconds += wave.numel() / rec.rate
        chunk_seconds += rec.chunk_seconds
        lines.append(f"{utt} {text}".rstrip() + "\n")
        if i % max(1, len(entries) // 10) == 0 or i == len(entries):
            print(f"stream_decode: {i}/{len(entries)} utterances", file=sys.stderr, flush=True)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text("".join(sorted(lines)))
    mode = "offline, full context" if args.full_context else f"streaming, chunk {rec.encoder.chunk_size}"
    print(f"{args.output}: {len(lines)} utterances ({mode}), real-time factor {compute / audio_seconds:.3f}",
          file=sys.stderr)
    if chunk_seconds:
        print(_compute_summary(chunk_seconds), file=sys.stderr)
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

    logging.disable(logging.WARNING)
    out = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        try:
            files = resolve_model(args.model, args.cachedir)
            rec = StreamingRecognizer(files["asr_train_config"], files["asr_model_file"], args.chunk_size,
                                      args.device, offline_only=args.full_context)
            if args.wav_scp is not None:
                return _decode_set(rec, args, load_audio)
            wave = load_audio(args.file, rec.rate)
        except (FileNotFoundError, ValueError, RuntimeError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2

        def partial(seconds, text):
            print(f"[{seconds:7.2f} s] {text}", file=out, flush=True)

        final = rec.stream(wave, max(1, int(rec.rate * args.block_ms / 1000)), partial)
        print(final, file=out, flush=True)
        if rec.chunk_seconds:
            print(_compute_summary(rec.chunk_seconds), file=sys.stderr)
    return 0

if __name__ == "__main__":
    sys.exit(main())
