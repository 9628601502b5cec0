"""Encoder speed and memory against utterance length, SummaryMixing vs self-attention.

Every (encoder, length) pair runs in fresh processes, so that the peak memory of one cannot hide in
another's. Time: the fastest of ``--repeats`` training steps (forward + backward on the encoder
output) after ``--warmup`` ones, and the inference real-time factor (no-grad forward time / audio
seconds). Peak memory "above the idle process": on CUDA the allocator's peak minus what is allocated
once model and input exist; on CPU, in a second process that runs one step with glibc's mmap
threshold fixed (so that freed tensors go back to the system), the peak resident set
(``ru_maxrss``) minus the resident set once model and input exist. Ratios are taken against the
self-attention baseline of the same family, same run, same machine. A pair that runs out of memory
(or past ``--timeout``) is reported as such, not as a crash.
"""

import contextlib
import csv
import json
import statistics
import time
from pathlib import Path
from typing import List

import torch

from espnet_summarymixing.benchmark.measure import (
    MEMORY_PHASE_ENV, count_ops, environment, is_oom, peak_rss_bytes, rss_bytes, spawn_one, time_calls,
)
from espnet_summarymixing.benchmark.models import autocast_dtype, build_encoder
from espnet_summarymixing.benchmark.systems import FEATURES, FRAMES_PER_SECOND, SYSTEMS
from espnet_summarymixing.benchmark.tables import FIELDS, add_ratios, format_table, plot, target_report

__all__ = ["run_worker", "spawn", "speed_report"]


def run_worker(spec: dict) -> dict:
    """Measure one (system, length) pair in this process; return the figures."""
    torch.manual_seed(0)
    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    try:
        torch.set_flush_denormal(True)  # CPU backward slows down on denormals otherwise
    except Exception:
        pass
    device = torch.device(spec["device"])
    cuda = device.type == "cuda"
    model = build_encoder(spec["system"], spec["size"], spec["blocks"], spec["units"], spec["kernel"],
                          spec["heads"]).to(device)
    params = sum(p.numel() for p in model.parameters())
    if spec.get("compile"):
        model = torch.compile(model)
    frames = int(round(spec["seconds"] * FRAMES_PER_SECOND))
    b = spec["batch_size"]
    result = {"params": params, "frames": frames, "batch_size": b}
    dtype = autocast_dtype(spec.get("dtype", "fp32"))

    def autocast():  # as ESPnet's use_amp: the model stays float32, autocast picks the op dtypes
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=dtype)

    def sync():
        if cuda:
            torch.cuda.synchronize(device)

    def train_step():
        with autocast():
            out = model(x, ilens)[0]  # (B, T', D)
            if isinstance(out, tuple):
                out = out[0]
        out.float().pow(2).mean().backward()
        model.zero_grad(set_to_none=True)

    def infer():
        with autocast():
            return model(x, ilens)

    def timed(fn):
        # the minimum: noise on a shared machine only ever adds time; the median as well
        times = time_calls(fn, spec["warmup"], spec["repeats"], sync)
        return min(times), statistics.median(times)

    memory_phase = spec.get("phase") == "memory"
    try:
        x = torch.randn(b, frames, FEATURES, device=device)  # (B, T, F)
        ilens = torch.full((b,), frames, dtype=torch.long, device=device)
        model.train()
        if cuda:
            torch.cuda.synchronize(device)
            idle = torch.cuda.memory_allocated(device)
            torch.cuda.reset_peak_memory_stats(device)
        else:
            idle = rss_bytes()
        if memory_phase:  # CPU: one step in a process whose malloc returns freed tensors
            train_step()
        else:
            result["train_step_s"], result["train_step_median_s"] = timed(train_step)
        if cuda or memory_phase:
            peak = torch.cuda.max_memory_allocated(device) if cuda else peak_rss_bytes()
            result["peak_memory_mb"] = max(peak - idle, 0) / 2**20
        if not memory_phase:
            result.update(count_ops(train_step, cuda))
            model.eval()
            with torch.inference_mode():
                fastest, median = timed(infer)
            result["rtf"] = fastest / (b * spec["seconds"])
            result["rtf_median"] = median / (b * spec["seconds"])
        result["status"] = "ok"
    except Exception as err:  # out of memory is a result, anything else is a bug
        if not is_oom(err):
            raise
        result["status"] = "out_of_memory"
    return result


def spawn(spec: dict, timeout: float) -> dict:
    """Measure one pair: on CUDA in one process, on CPU in a timing and a memory process."""
    result = spawn_one(spec, timeout)
    if spec["device"].startswith("cuda") or result["status"] != "ok":
        return result
    memory = spawn_one({**spec, "phase": "memory"}, timeout, MEMORY_PHASE_ENV)
    result["status"] = memory["status"]
    result["peak_memory_mb"] = memory.get("peak_memory_mb")
    return result


def _write_csv(path: Path, rows: List[dict]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def speed_report(args, systems: List[str], lengths: List[float], command: str) -> int:
    """Measure every system at every length; write results.csv (after each pair: a stopped run keeps
    its rows), results.md, environment.json and, unless ``--no_plot``, results.png into ``--output_dir``."""
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    env = environment(args.device, args.threads)
    print(f"# environment: {json.dumps(env)}", flush=True)

    rows, total = [], len(systems) * len(lengths)
    csv_path = out / "results.csv"
    _write_csv(csv_path, rows)
    for k, (seconds, system) in enumerate(((s, m) for s in lengths for m in systems), 1):
        family, role = SYSTEMS[system][:2]
        batch = max(1, int(args.audio_per_step // seconds)) if args.audio_per_step else args.batch_size
        spec = dict(system=system, seconds=seconds, batch_size=batch, device=args.device, dtype=args.dtype,
                    compile=args.compile,
                    threads=args.threads, size=args.size, blocks=args.blocks, units=args.units,
                    kernel=args.kernel, heads=args.heads, warmup=args.warmup, repeats=args.repeats)
        start = time.time()
        result = spawn(spec, args.timeout)
        row = dict(device=args.device, family=family, system=system, role=role, seconds=seconds,
                   batch_size=batch, frames=int(round(seconds * FRAMES_PER_SECOND)), dtype=args.dtype,
                   compiled=args.compile)
        row.update(result)
        rows.append(row)
        summary = (f"train {row['train_step_s']:.3f} s/step, peak {row['peak_memory_mb']:.0f} MB, RTF {row['rtf']:.4f}"
                   if row["status"] == "ok" else row["status"])
        print(f"[{k}/{total}] {system} {seconds:g} s: {summary} ({time.time() - start:.0f} s)", flush=True)
        add_ratios(rows)
        _write_csv(csv_path, rows)

    table = format_table(rows)
    targets = target_report(rows)
    report = [f"Environment: `{json.dumps(env)}`", "", f"Command: `{command}`", "", table, ""]
    if targets:
        report += ["Targets (SummaryMixing Conformer):", ""] + [f"- {t}" for t in targets]
    (out / "results.md").write_text("\n".join(report) + "\n")
    (out / "environment.json").write_text(json.dumps(env, indent=2) + "\n")
    print(table)
    for t in targets:
        print(t)
    if not args.no_plot:
        plot(rows, out / "results.png")
        print(f"plot: {out / 'results.png'}")
    print(f"results: {csv_path}, {out / 'results.md'}")
    return 0
