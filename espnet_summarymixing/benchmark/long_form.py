"""Whole recordings of ``--long_seconds`` transcribed in one pass (front end, global-MVN normalisation,
encoder, CTC over a ``--vocabulary``-token output, greedy decoding: a recipe's model without its
attention decoder; :mod:`espnet_summarymixing.longform`) by ours and
ESPnet's self-attention Conformer of equal size: peak resident memory of the process and real-time
factor, each (system, length) in its own process under ``--memory_limit_gb``.
"""

import json
import resource
import time
from argparse import Namespace
from pathlib import Path

import torch

from espnet_summarymixing.benchmark.measure import environment, is_oom, peak_rss_bytes, rss_bytes, spawn_one
from espnet_summarymixing.benchmark.models import build_encoder, ctc_model
from espnet_summarymixing.longform.recognizer import LongFormRecognizer

__all__ = ["LONG_FORM_SYSTEMS", "long_form_worker", "long_form_report"]

LONG_FORM_SYSTEMS = ("conformer_summarymixing", "conformer_selfattn")
RATE = 16000  # the sample rate of ctc_model's front end


def long_form_worker(spec: dict) -> dict:
    """Transcribe ``spec["minutes"]`` of audio in one pass in this process: peak memory and RTF."""
    limit = int(spec["memory_limit_gb"] * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))  # fail cleanly instead of swapping the machine
    torch.manual_seed(0)
    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    encoder = build_encoder(spec["system"], spec["size"], spec["blocks"], spec["units"], spec["kernel"], spec["heads"])
    model, tokens = ctc_model(encoder, spec["vocabulary"], spec["size"])
    recognizer = LongFormRecognizer(model, Namespace(token_list=tokens, token_type="word", bpemodel=None), RATE,
                                    decoding="greedy", timestamps=False)
    seconds = spec["minutes"] * 60
    result = {"params": sum(p.numel() for p in encoder.parameters())}
    try:
        recognizer(0.05 * torch.randn(RATE))  # first-call costs (allocator, kernels) are not the length's
        wave = 0.05 * torch.randn(int(seconds * RATE))  # (samples,)
        idle = rss_bytes()
        start = time.perf_counter()
        recognizer(wave)
        elapsed = time.perf_counter() - start
        peak = peak_rss_bytes()
        result.update(status="ok", seconds_taken=elapsed, rtf=elapsed / seconds,
                      peak_memory_mb=peak / 2**20, above_idle_mb=max(peak - idle, 0) / 2**20)
    except Exception as err:
        if not is_oom(err):
            raise
        result["status"] = "out_of_memory"
    return result


def long_form_report(args) -> int:
    """Peak memory and RTF of one-pass transcription against recording length, ours and ESPnet's;
    writes long_form.json and long_form.md into ``--output_dir``."""
    try:
        minutes = [float(v) / 60 for v in args.long_seconds.split(",") if v]
    except ValueError:
        raise SystemExit(f"--long_seconds must be comma-separated seconds, got {args.long_seconds!r}")
    env = environment("cpu", args.threads)
    print(f"# environment: {json.dumps(env)}", flush=True)
    rows = ["| system | minutes | status | peak memory (MB) | above idle (MB) | time (s) | RTF |",
            "|---|---|---|---|---|---|---|"]
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    systems = [s for s in args.systems.split(",") if s] or list(LONG_FORM_SYSTEMS)
    bad = [s for s in systems if s not in LONG_FORM_SYSTEMS]
    if bad:
        raise SystemExit(f"--systems: {bad} not measured by --long_form; choose from {list(LONG_FORM_SYSTEMS)}")
    for m in minutes:
        for system in systems:
            spec = dict(system=system, minutes=m, threads=args.threads, size=args.size, blocks=args.blocks,
                        units=args.units, kernel=args.kernel, heads=args.heads, vocabulary=args.vocabulary,
                        memory_limit_gb=args.memory_limit_gb, long_form=True)
            r = {**spec, **spawn_one(spec, args.timeout)}
            results.append(r)
            if r["status"] == "ok":
                rows.append(f"| {system} | {m:g} | ok | {r['peak_memory_mb']:.0f} | {r['above_idle_mb']:.0f} "
                            f"| {r['seconds_taken']:.1f} | {r['rtf']:.4f} |")
            else:
                limit = f" (limit {args.memory_limit_gb:g} GB)" if r["status"] == "out_of_memory" else (
                    f" (> {args.timeout:g} s)")
                rows.append(f"| {system} | {m:g} | {r['status']}{limit} | - | - | - | - |")
            print(rows[-1], flush=True)
    (out / "long_form.json").write_text(json.dumps({"environment": env, "results": results}, indent=2) + "\n")
    (out / "long_form.md").write_text(f"Environment: `{json.dumps(env)}`\n\n" + "\n".join(rows) + "\n")
    print("\n".join(rows))
    print(f"results: {out / 'long_form.md'}")
    return 0
