"""Speed, memory and real-time factor against utterance length, SummaryMixing vs self-attention.

    python -m espnet_summarymixing.benchmark                       # full run, CPU or CUDA
    python -m espnet_summarymixing.benchmark --quick --out bench   # seconds, for tests
    python -m espnet_summarymixing.benchmark --streaming           # per-chunk compute over 10 minutes
    python -m espnet_summarymixing.benchmark --onnx --model exp/asr_train --chunk_sizes 4,16  # onnxruntime vs PyTorch

Every (encoder, length) pair runs in fresh processes, so that the peak memory of one cannot
hide in another's. Time: the fastest of ``--repeats`` training steps (forward + backward on the
encoder output) after ``--warmup`` ones, and the inference real-time factor (no-grad forward
time / audio seconds). Peak memory "above the idle process": on CUDA the allocator's peak minus
what is allocated once model and input exist; on CPU, in a second process that runs one step
with glibc's mmap threshold fixed (so that freed tensors go back to the system), the peak
resident set (``ru_maxrss``) minus the resident set once model and input exist.
Ratios are taken against the self-attention baseline of the same family, same run, same machine.
A pair that runs out of memory (or past ``--timeout``) is reported as such, not as a crash.

With ``--streaming``, per-chunk compute of a streamed 12 x 256 Conformer instead: first against
last minute of a long stream (``--minutes``), for each ``--chunk_sizes``, and the state size.

With ``--long_form``, whole recordings of ``--long_minutes`` transcribed in one pass (front end,
encoder, CTC over a ``--vocabulary``-token output, greedy decoding; :mod:`espnet_summarymixing.longform`)
by ours and ESPnet's self-attention Conformer of equal size: peak resident memory of the process
and real-time factor, each (system, length) in its own process under ``--memory_limit_gb``.

With ``--onnx``, onnxruntime against PyTorch on the same model, same process, same thread count:
offline real-time factor (``--onnx_lengths``, float32 and int8 graphs), streaming compute per chunk
(``--chunk_sizes``), and the file sizes; for the 12 x 256 Conformer (random weights, chunk-trained
configuration, ``--vocabulary`` tokens) and, with ``--model``, a trained model (offline only unless
it streams).

Families (equal configuration inside each): ``conformer`` (ESPnet's rel-pos Conformer, ours,
and ours without its mixing block = the lower bound), ``branchformer`` (ESPnet's with
self-attention and with ``fast_selfattn``, ours, cgMLP only) and ``e_branchformer``.
"""

import argparse
import contextlib
import csv
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

__all__ = ["main", "SYSTEMS", "FIELDS"]

FRAMES_PER_SECOND = 100  # 10 ms feature shift
FEATURES = 80

# system name -> (family, role, encoder name as in an ESPnet config, extra encoder keys)
SYSTEMS: Dict[str, tuple] = {
    "conformer_selfattn": ("conformer", "baseline", "conformer", {}),
    # ESPnet's Conformer with plain multi-head attention through PyTorch's SDPA (the attention a GPU
    # user picks for speed): abs_pos, selfattn, use_sdpa on every layer
    "conformer_selfattn_sdpa": ("conformer", "baseline_sdpa", "conformer", {}),
    "conformer_summarymixing": ("conformer", "ours", "summarymixing_conformer", {}),
    "conformer_no_mixing": ("conformer", "lower_bound", "summarymixing_conformer", {}),
    "conformer_summarymixing_fast": ("conformer", "variant", "summarymixing_conformer", {"summary_mode": "fast"}),
    "conformer_summarymixing_lite": ("conformer", "variant", "summarymixing_conformer", {"summary_mode": "lite"}),
    # the cell recomputed in the backward pass: the memory it saves and the time it costs
    "conformer_summarymixing_recompute": ("conformer", "variant", "summarymixing_conformer",
                                          {"summary_recompute": True}),
    "branchformer_selfattn": ("branchformer", "baseline", "branchformer", {}),
    "branchformer_fastformer": ("branchformer", "alternative", "branchformer", {}),
    "branchformer_summarymixing": ("branchformer", "ours", "summarymixing_branchformer", {}),
    "branchformer_no_mixing": ("branchformer", "lower_bound", "summarymixing_branchformer", {}),
    "e_branchformer_selfattn": ("e_branchformer", "baseline", "e_branchformer", {}),
    "e_branchformer_summarymixing": ("e_branchformer", "ours", "summarymixing_e_branchformer", {}),
    "e_branchformer_no_mixing": ("e_branchformer", "lower_bound", "summarymixing_e_branchformer", {}),
}
FIELDS = [
    "device", "family", "system", "role", "seconds", "frames", "batch_size", "params", "status",
    "train_step_s", "train_ratio", "peak_memory_mb", "memory_ratio", "rtf", "rtf_ratio",
    "train_ms_per_frame", "train_step_median_s", "rtf_median", "sdpa_train_ratio", "sdpa_memory_ratio",
    "ops_per_step", "kernels_per_step", "dtype", "compiled",
]


def _encoder_conf(family: str, size: int, blocks: int, units: int, kernel: int, heads: int) -> dict:
    if family == "conformer":
        return dict(output_size=size, linear_units=units, num_blocks=blocks, macaron_style=True,
                    cnn_module_kernel=kernel)
    if family == "branchformer":
        return dict(output_size=size, cgmlp_linear_units=units, num_blocks=blocks,
                    cgmlp_conv_kernel=kernel)
    return dict(output_size=size, cgmlp_linear_units=units, num_blocks=blocks, cgmlp_conv_kernel=kernel,
                use_ffn=True, macaron_ffn=True, linear_units=units)


def build_encoder(system: str, size: int, blocks: int, units: int, kernel: int, heads: int):
    """The encoder of one benchmark system, built the way an ESPnet config would build it."""
    # The encoder modules directly: importing espnet2.tasks.asr would cost 5 s per worker.
    from espnet2.asr.encoder.branchformer_encoder import BranchformerEncoder
    from espnet2.asr.encoder.conformer_encoder import ConformerEncoder
    from espnet2.asr.encoder.e_branchformer_encoder import EBranchformerEncoder

    from espnet_summarymixing.encoders.branchformer import SummaryMixingBranchformerEncoder
    from espnet_summarymixing.encoders.conformer import SummaryMixingConformerEncoder
    from espnet_summarymixing.encoders.e_branchformer import SummaryMixingEBranchformerEncoder

    classes = {
        "conformer": ConformerEncoder,
        "branchformer": BranchformerEncoder,
        "e_branchformer": EBranchformerEncoder,
        "summarymixing_conformer": SummaryMixingConformerEncoder,
        "summarymixing_branchformer": SummaryMixingBranchformerEncoder,
        "summarymixing_e_branchformer": SummaryMixingEBranchformerEncoder,
    }
    family, role, name, extra = SYSTEMS[system]
    conf = _encoder_conf(family, size, blocks, units, kernel, heads)
    if name.startswith("summarymixing"):
        if system == "branchformer_no_mixing":
            conf["use_attn"] = False
    else:
        conf.update(attention_heads=heads, use_flash_attn=False)
        if system == "branchformer_fastformer":
            conf.update(attention_layer_type="fast_selfattn", pos_enc_layer_type="abs_pos")
        elif role == "baseline_sdpa":
            conf.update(selfattention_layer_type="selfattn", pos_enc_layer_type="abs_pos")
        else:
            conf.update(rel_pos_type="latest", pos_enc_layer_type="rel_pos")
            key = "selfattention_layer_type" if family == "conformer" else "attention_layer_type"
            conf[key] = "rel_selfattn"
    encoder = classes[name](input_size=FEATURES, **conf, **extra)
    if role == "baseline_sdpa":
        for layer in encoder.encoders:
            layer.self_attn.use_sdpa = True  # ESPnet's MultiHeadedAttention option, not a constructor key
    if role == "lower_bound" and family != "branchformer":  # the Branchformer has use_attn=False
        import torch

        for layer in encoder.encoders:
            layer.norm_mha = torch.nn.Identity()
            layer.summary_mixing = _no_mixing()
    return encoder


def _autocast_dtype(name: str):
    """The autocast dtype of a ``--dtype`` name; None for fp32 (no autocast)."""
    import torch

    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[name]


def _no_mixing():
    """The lower bound's mixing block: outputs zeros (a zero-stride view, no memory), so that the
    block's residual adds nothing; what remains of it is one dropout and one addition per layer."""
    import torch

    class NoMixing(torch.nn.Module):
        def forward(self, x, mask=None, chunk_size=0, valid=None):
            return x.new_zeros(()).expand_as(x)

    return NoMixing()


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _is_oom(err: BaseException) -> bool:
    return isinstance(err, MemoryError) or "out of memory" in str(err).lower() or (
        "DefaultCPUAllocator" in str(err)
    )


def run_worker(spec: dict) -> dict:
    """Measure one (system, length) pair in this process; return the figures."""
    import torch

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
    dtype = _autocast_dtype(spec.get("dtype", "fp32"))

    def autocast():  # as ESPnet's use_amp: the model stays float32, autocast picks the op dtypes
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=dtype)

    def sync():
        if cuda:
            torch.cuda.synchronize(device)

    def train_step():
        with autocast():
            out = model(x, ilens)[0]
            if isinstance(out, tuple):
                out = out[0]
        out.float().pow(2).mean().backward()
        model.zero_grad(set_to_none=True)

    def infer():
        with autocast():
            return model(x, ilens)

    def timed(fn, warmup, repeats):
        import statistics

        for _ in range(warmup):
            fn()
        times = []
        for _ in range(repeats):
            sync()
            start = time.perf_counter()
            fn()
            sync()
            times.append(time.perf_counter() - start)
        # the minimum: noise on a shared machine only ever adds time; the median as well
        return min(times), statistics.median(times)

    memory_phase = spec.get("phase") == "memory"
    try:
        x = torch.randn(b, frames, FEATURES, device=device)
        ilens = torch.full((b,), frames, dtype=torch.long, device=device)
        model.train()
        if cuda:
            torch.cuda.synchronize(device)
            idle = torch.cuda.memory_allocated(device)
            torch.cuda.reset_peak_memory_stats(device)
        else:
            idle = _rss_bytes()
        if memory_phase:  # CPU: one step in a process whose malloc returns freed tensors
            train_step()
        else:
            result["train_step_s"], result["train_step_median_s"] = timed(train_step, spec["warmup"], spec["repeats"])
        if cuda or memory_phase:
            peak = torch.cuda.max_memory_allocated(device) if cuda else (
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            )
            result["peak_memory_mb"] = max(peak - idle, 0) / 2**20
        if not memory_phase:
            result.update(_count_ops(train_step, cuda))
            model.eval()
            with torch.inference_mode():
                fastest, median = timed(infer, spec["warmup"], spec["repeats"])
            result["rtf"] = fastest / (b * spec["seconds"])
            result["rtf_median"] = median / (b * spec["seconds"])
        result["status"] = "ok"
    except Exception as err:  # out of memory is a result, anything else is a bug
        if not _is_oom(err):
            raise
        result["status"] = "out_of_memory"
    return result


def _count_ops(step, cuda: bool) -> dict:
    """ATen operator calls (nested calls included) and, on CUDA, GPU kernels of one call of ``step``,
    from torch.profiler."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        step()
    events = prof.events()
    counts = {"ops_per_step": sum(1 for e in events if e.name.startswith("aten::"))}
    if cuda:
        counts["kernels_per_step"] = sum(1 for e in events if e.device_type == DeviceType.CUDA)
    return counts


# glibc's malloc raises its mmap threshold each time a large block is freed, after which
# freed tensors stay in the heap: the resident set then measures the allocator's history,
# not the tensors alive at the peak (measured here: 2029 MB vs 1135 MB for the same step).
# A fixed threshold disables that adjustment, so the memory phase sees the live tensors.
# It slows allocation down, which is why time is measured in a separate process without it.
_MEMORY_PHASE_ENV = {"MALLOC_MMAP_THRESHOLD_": "131072"}


def _spawn_one(spec: dict, timeout: float, env: Optional[dict] = None) -> dict:
    cmd = [sys.executable, "-m", "espnet_summarymixing.benchmark", "--worker", json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired:
        return {"status": "timeout"}
    if proc.returncode in (-9, 137) or (proc.returncode != 0 and "bad_alloc" in proc.stderr):
        return {"status": "out_of_memory"}  # the kernel's out-of-memory killer, or C++ out of memory
    if proc.returncode != 0:
        length = f"{spec['seconds']} s" if "seconds" in spec else f"{spec['minutes']} min"
        raise RuntimeError(f"benchmark worker failed for {spec['system']} at {length}:\n"
                           f"{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _spawn(spec: dict, timeout: float) -> dict:
    """Measure one pair: on CUDA in one process, on CPU in a timing and a memory process."""
    result = _spawn_one(spec, timeout)
    if spec["device"].startswith("cuda") or result["status"] != "ok":
        return result
    memory = _spawn_one({**spec, "phase": "memory"}, timeout, _MEMORY_PHASE_ENV)
    result["status"] = memory["status"]
    result["peak_memory_mb"] = memory.get("peak_memory_mb")
    return result


def _ratio(value, base) -> Optional[float]:
    if value in (None, "") or base in (None, "", 0):
        return None
    return value / base


def add_ratios(rows: List[dict]) -> None:
    """Fill the ratio columns against the family's baseline at the same length."""
    base = {(r["family"], r["seconds"]): r for r in rows if r["role"] == "baseline" and r["status"] == "ok"}
    sdpa = {(r["family"], r["seconds"]): r for r in rows if r["role"] == "baseline_sdpa" and r["status"] == "ok"}
    for r in rows:
        b = base.get((r["family"], r["seconds"]), {})
        q = sdpa.get((r["family"], r["seconds"]), {})
        r["sdpa_train_ratio"] = _ratio(r.get("train_step_s"), q.get("train_step_s"))
        r["sdpa_memory_ratio"] = _ratio(r.get("peak_memory_mb"), q.get("peak_memory_mb"))
        r["train_ratio"] = _ratio(r.get("train_step_s"), b.get("train_step_s"))
        r["memory_ratio"] = _ratio(r.get("peak_memory_mb"), b.get("peak_memory_mb"))
        r["rtf_ratio"] = _ratio(r.get("rtf"), b.get("rtf"))
        if r.get("train_step_s"):
            r["train_ms_per_frame"] = 1000 * r["train_step_s"] / (r["frames"] * r["batch_size"])


def _fmt(value, spec="{:.3f}") -> str:
    return "-" if value in (None, "") else spec.format(value)


def format_table(rows: List[dict]) -> str:
    """Markdown table of every measurement, with ratios against the baseline."""
    lines = ["| family | system | length (s) | batch | params (M) | train step (s), min / median | ×base | ×sdpa "
             "| peak mem (MB) | ×base | ×sdpa | RTF | ×base | ATen ops / kernels per step | status |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        kernels = f" / {r['kernels_per_step']}" if r.get("kernels_per_step") not in (None, "") else ""
        lines.append(
            f"| {r['family']} | {r['system']} | {r['seconds']:g} | {r.get('batch_size', '-')} "
            f"| {_fmt(r['params'] / 1e6 if r.get('params') else None, '{:.2f}')} "
            f"| {_fmt(r.get('train_step_s'))} / {_fmt(r.get('train_step_median_s'))} "
            f"| {_fmt(r.get('train_ratio'), '{:.2f}')} | {_fmt(r.get('sdpa_train_ratio'), '{:.2f}')} "
            f"| {_fmt(r.get('peak_memory_mb'), '{:.0f}')} | {_fmt(r.get('memory_ratio'), '{:.2f}')} "
            f"| {_fmt(r.get('sdpa_memory_ratio'), '{:.2f}')} "
            f"| {_fmt(r.get('rtf'), '{:.4f}')} | {_fmt(r.get('rtf_ratio'), '{:.2f}')} "
            f"| {_fmt(r.get('ops_per_step'), '{:,}')}{kernels} | {r['status']} |"
        )
    return "\n".join(lines)


def target_report(rows: List[dict]) -> List[str]:
    """The targets of the SummaryMixing Conformer (issue 4) that this run's lengths allow."""
    get = {(r["system"], r["seconds"]): r for r in rows if r["status"] == "ok"}
    out = []

    def check(label, value, limit):
        if value is not None:
            out.append(f"{label}: {value:.2f} (target <= {limit}) {'met' if value <= limit else 'MISSED'}")

    ours = "conformer_summarymixing"
    for seconds, limit in ((20, 0.75), (60, 0.3)):
        check(f"train step vs self-attention at {seconds} s", get.get((ours, seconds), {}).get("train_ratio"), limit)
    for seconds, limit in ((60, 0.6), (120, 0.35)):
        check(f"peak memory vs self-attention at {seconds} s", get.get((ours, seconds), {}).get("memory_ratio"), limit)
    if any(str(r.get("device", "")).startswith("cuda") for r in rows):  # the GPU targets (issue 16)
        check("train step vs SDPA MHSA at 20 s", get.get((ours, 20), {}).get("sdpa_train_ratio"), 0.65)
        check("peak memory vs SDPA MHSA at 10 s", get.get((ours, 10), {}).get("sdpa_memory_ratio"), 0.6)
    short, long_ = get.get((ours, 5)), get.get((ours, 120))
    if short and long_:
        check("time per frame at 120 s vs 5 s", long_["train_ms_per_frame"] / short["train_ms_per_frame"], 1.15)
    for (system, seconds), r in sorted(get.items(), key=lambda kv: kv[0][1]):
        low = get.get(("conformer_no_mixing", seconds))
        if system == ours and low:
            check(f"train step vs no-mixing lower bound at {seconds:g} s", r["train_step_s"] / low["train_step_s"], 1.1)
    return out


def plot(rows: List[dict], path: Path) -> None:
    """Time, memory and RTF against length, one panel each, one line per system (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("train_step_s", "training step (s)"), ("peak_memory_mb", "peak memory (MB)"), ("rtf", "inference RTF")]
    families = list(dict.fromkeys(r["family"] for r in rows))
    fig, axes = plt.subplots(len(families), 3, figsize=(15, 4 * len(families)), squeeze=False)
    styles = {"baseline": "-o", "baseline_sdpa": "--o", "ours": "-s", "lower_bound": ":^", "alternative": "--d", "variant": "-.x"}
    for i, family in enumerate(families):
        for j, (key, label) in enumerate(panels):
            ax = axes[i][j]
            for system in [s for s in SYSTEMS if SYSTEMS[s][0] == family]:
                pts = [(r["seconds"], r[key]) for r in rows
                       if r["system"] == system and r["status"] == "ok" and r.get(key)]
                if pts:
                    xs, ys = zip(*sorted(pts))
                    ax.plot(xs, ys, styles[SYSTEMS[system][1]], label=system)
                oom = [r["seconds"] for r in rows if r["system"] == system and r["status"] != "ok"]
                for s in oom:
                    ax.axvline(s, color="red", alpha=0.2)
            ax.set_xlabel("utterance length (s)")
            ax.set_ylabel(label)
            ax.set_yscale("log")
            ax.grid(True, which="both", alpha=0.3)
            ax.set_title(f"{family}: {label}")
            if j == 0:
                ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def environment(device: str, threads: int) -> dict:
    import torch

    env = {"python": platform.python_version(), "torch": torch.__version__, "machine": platform.machine(),
           "cpu_count": os.cpu_count(), "threads": threads or torch.get_num_threads(), "device": device}
    try:
        import espnet

        env["espnet"] = espnet.__version__
    except Exception:
        pass
    try:
        with open("/proc/cpuinfo") as f:
            env["cpu"] = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except Exception:
        pass
    if device.startswith("cuda"):
        env["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return env


LONG_FORM_SYSTEMS = ("conformer_summarymixing", "conformer_selfattn")


def ctc_model(encoder, vocabulary: int, size: int):
    """An ESPnet ASR model around ``encoder``: ESPnet's default 16 kHz front end (25 ms / 10 ms), no
    normalisation, a CTC head over ``vocabulary`` placeholder tokens; returns (model, tokens)."""
    from espnet2.asr.ctc import CTC
    from espnet2.asr.espnet_model import ESPnetASRModel
    from espnet2.asr.frontend.default import DefaultFrontend

    tokens = ["<blank>", "<unk>", *[f"t{i}" for i in range(vocabulary - 3)], "<sos/eos>"]
    model = ESPnetASRModel(vocabulary, tokens, DefaultFrontend(fs=16000, n_fft=512, win_length=400, hop_length=160),
                           None, None, None, encoder, None, None, CTC(vocabulary, size), None, ctc_weight=1.0)
    return model, tokens


def long_form_worker(spec: dict) -> dict:
    """Transcribe ``spec["minutes"]`` of audio in one pass in this process: peak memory and RTF."""
    from argparse import Namespace

    import torch

    from espnet_summarymixing.longform.recognizer import LongFormRecognizer

    limit = int(spec["memory_limit_gb"] * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))  # fail cleanly instead of swapping the machine
    torch.manual_seed(0)
    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    encoder = build_encoder(spec["system"], spec["size"], spec["blocks"], spec["units"], spec["kernel"], spec["heads"])
    model, tokens = ctc_model(encoder, spec["vocabulary"], spec["size"])
    recognizer = LongFormRecognizer(model, Namespace(token_list=tokens, token_type="word", bpemodel=None), 16000,
                                    decoding="greedy", timestamps=False)
    seconds = spec["minutes"] * 60
    result = {"params": sum(p.numel() for p in encoder.parameters())}
    try:
        recognizer(0.05 * torch.randn(16000))  # first-call costs (allocator, kernels) are not the length's
        wave = 0.05 * torch.randn(int(seconds * 16000))
        idle = _rss_bytes()
        start = time.perf_counter()
        recognizer(wave)
        elapsed = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        result.update(status="ok", seconds_taken=elapsed, rtf=elapsed / seconds,
                      peak_memory_mb=peak / 2**20, above_idle_mb=max(peak - idle, 0) / 2**20)
    except Exception as err:
        if not _is_oom(err):
            raise
        result["status"] = "out_of_memory"
    return result


def long_form_report(args) -> int:
    """Peak memory and RTF of one-pass transcription against recording length, ours and ESPnet's."""
    try:
        minutes = [float(v) for v in args.long_minutes.split(",") if v]
    except ValueError:
        raise SystemExit(f"--long_minutes must be comma-separated minutes, got {args.long_minutes!r}")
    env = environment("cpu", args.threads)
    print(f"# environment: {json.dumps(env)}", flush=True)
    rows = ["| system | minutes | status | peak memory (MB) | above idle (MB) | time (s) | RTF |",
            "|---|---|---|---|---|---|---|"]
    out = Path(args.out)
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
            r = {**spec, **_spawn_one(spec, args.timeout)}
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


def _median_seconds(fn, warmup: int, repeats: int) -> float:
    import statistics

    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _onnx_random_model(args):
    """The 12 x 256 SummaryMixing Conformer (chunk-trained configuration) with a CTC head, random weights."""
    from argparse import Namespace

    import torch

    from espnet_summarymixing.encoders.conformer import SummaryMixingConformerEncoder

    torch.manual_seed(0)
    encoder = SummaryMixingConformerEncoder(FEATURES, output_size=args.size, linear_units=4 * args.size,
                                            num_blocks=args.blocks, macaron_style=True, cnn_module_kernel=args.kernel,
                                            chunk_conv=True, dynamic_chunk_training=True, chunk_size_range=[1, 25])
    model, tokens = ctc_model(encoder, args.vocabulary, args.size)
    train_args = Namespace(token_list=tokens, token_type="word", encoder="summarymixing_conformer",
                           normalize=None, frontend_conf={"fs": 16000})
    return model.eval(), train_args


def onnx_report(args) -> int:
    """onnxruntime vs PyTorch: offline RTF, streaming compute per chunk, file sizes."""
    import tempfile

    import numpy as np
    import onnxruntime
    import torch

    from espnet_summarymixing.deploy.export import export_model
    from espnet_summarymixing.deploy.graphs import chunk_input_frames
    from espnet_summarymixing.publish.loading import load_asr_model, resolve_model
    from espnet_summarymixing.streaming.encoder import StreamingEncoder

    threads = args.threads or 2
    torch.set_num_threads(threads)
    env = environment("cpu", threads)
    print(f"# environment: {json.dumps(env)}", flush=True)
    models = [(f"SummaryMixing Conformer {args.blocks} x {args.size}, random weights", *_onnx_random_model(args))]
    if args.model:
        files = resolve_model(args.model)
        model, train_args = load_asr_model(files["asr_train_config"], files["asr_model_file"])
        models.insert(0, (args.model, model.eval(), train_args))
    lengths = [float(v) for v in args.onnx_lengths.split(",") if v]
    chunks = [int(c) for c in args.chunk_sizes.split(",") if c]
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    # onnxruntime's threads spin after each run by default, which would steal the CPU from PyTorch's
    # next measurement on a small machine
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    rows = [f"| model | input | PyTorch | onnxruntime float32 | onnxruntime int8 | ratio float32 / int8 |",
            "|---|---|---|---|---|---|"]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, model, train_args in models:
            out = Path(tmp) / f"m{len(results)}"
            export_model(model, train_args, str(out), {"model": name}, quantize="int8")
            sizes = {f: (out / f).stat().st_size / 1e6 for f in ("model.onnx", "model.int8.onnx")}
            sessions = {kind: onnxruntime.InferenceSession(str(out / f), options, providers=["CPUExecutionProvider"])
                        for kind, f in (("float32", "model.onnx"), ("int8", "model.int8.onnx"))}
            for seconds in lengths:
                wave = (0.05 * torch.randn(1, int(seconds * 16000)))
                lens = torch.tensor([wave.size(1)])

                def pytorch():
                    with torch.no_grad():
                        enc, _ = model.encode(wave, lens)
                        enc = enc[0] if isinstance(enc, tuple) else enc
                        torch.log_softmax(model.ctc.ctc_lo(enc), dim=-1)

                feed = {"speech": wave.numpy(), "speech_lengths": lens.numpy()}
                t = {"pytorch": _median_seconds(pytorch, 1, args.repeats)}
                for kind, session in sessions.items():
                    t[kind] = _median_seconds(lambda: session.run(None, feed), 1, args.repeats)
                r = {"model": name, "seconds": seconds, **{k: v / seconds for k, v in t.items()}}
                results.append(r)
                rows.append(f"| {name} | {seconds:g} s offline (RTF) | {r['pytorch']:.4f} | {r['float32']:.4f} "
                            f"| {r['int8']:.4f} | {r['float32'] / r['pytorch']:.2f} / {r['int8'] / r['pytorch']:.2f} |")
                print(rows[-1], flush=True)
            encoder = model.encoder
            if not (encoder.causal_conv or encoder.chunk_conv) or not encoder.dynamic_chunk_training:
                rows.append(f"| {name} | sizes | {sizes['model.onnx']:.1f} MB float32, "
                            f"{sizes['model.int8.onnx']:.1f} MB int8 | | | |")
                continue
            for chunk in chunks:
                sdir = Path(tmp) / f"s{len(results)}_{chunk}"
                export_model(model, train_args, str(sdir), {"model": name}, streaming=True, chunk_size=chunk)
                manifest = json.loads((sdir / "manifest.json").read_text())["streaming"]
                session = onnxruntime.InferenceSession(str(sdir / "streaming.onnx"), options,
                                                       providers=["CPUExecutionProvider"])
                n_in, step = chunk_input_frames(encoder.embed, chunk), manifest["input_frames_per_chunk"]
                count = max(20, int(60 / manifest["chunk_seconds"]))  # a minute of stream
                feats = torch.randn(1, n_in + count * step, FEATURES)
                stream = StreamingEncoder(encoder, chunk)
                torch_times, ort_times = [], []
                for k in range(count):  # PyTorch's stream, then onnxruntime's: neither waits on the other
                    x = feats[:, k * step:k * step + (n_in if k == 0 else step)]
                    start = time.perf_counter()
                    with torch.no_grad():
                        torch.log_softmax(model.ctc.ctc_lo(stream.accept(x)), dim=-1)
                    torch_times.append(time.perf_counter() - start)
                state = {s["name"]: np.zeros(s["shape"], dtype=np.float32) for s in manifest["state"]}
                position = 0
                for k in range(count):
                    window = feats[:, k * step:k * step + n_in].numpy()
                    start = time.perf_counter()
                    result = session.run(None, {"feats": window, "position": np.array([position]), **state})
                    ort_times.append(time.perf_counter() - start)
                    state = dict(zip(state, result[1:]))
                    position += result[0].shape[1]
                pt, ot = float(np.median(torch_times[5:])) * 1000, float(np.median(ort_times[5:])) * 1000
                results.append({"model": name, "chunk": chunk, "pytorch_ms": pt, "onnx_ms": ot})
                rows.append(f"| {name} | {manifest['chunk_seconds'] * 1000:.0f} ms chunks (ms per chunk) | {pt:.2f} "
                            f"| {ot:.2f} | - | {ot / pt:.2f} |")
                print(rows[-1], flush=True)
            rows.append(f"| {name} | sizes | {sizes['model.onnx']:.1f} MB float32, "
                        f"{sizes['model.int8.onnx']:.1f} MB int8 | | | |")
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "onnx.json").write_text(json.dumps({"environment": env, "results": results}, indent=2) + "\n")
    (out_dir / "onnx.md").write_text(f"Environment: `{json.dumps(env)}`\n\n" + "\n".join(rows) + "\n")
    print("\n".join(rows))
    print(f"results: {out_dir / 'onnx.md'}")
    return 0


def measure_chunk_compute(encoder, chunk_size: int, minutes: float, features: int = FEATURES) -> dict:
    """Stream ``minutes`` of random features; per-chunk compute in the first and last minute."""
    import statistics

    import torch

    from espnet_summarymixing.streaming.encoder import StreamingEncoder

    stream = StreamingEncoder(encoder, chunk_size)
    step = chunk_size * stream.stride  # input frames per chunk of output
    times = []
    for _ in range(0, int(minutes * 6000), step):
        x = torch.randn(1, step, features)
        start = time.perf_counter()
        stream.accept(x)
        times.append(time.perf_counter() - start)
    per_minute = max(1, int(len(times) / minutes))
    state = sum(p.numel() for s in stream.states if s for p in (s[0][0], s[0][1], s[1]))
    return {
        "chunk_ms": chunk_size * stream.stride * 10,
        "first_minute_ms": 1000 * statistics.median(times[min(5, len(times) - 1):per_minute] or times),
        "last_minute_ms": 1000 * statistics.median(times[-per_minute:]),
        "chunks": len(times),
        "state_floats": state,
    }


def streaming_report(args) -> int:
    """Per-chunk compute from the first to the last minute of a long stream (12 x 256 streaming
    Conformer, kernel 31, random weights)."""
    import torch

    from espnet_summarymixing.encoders.conformer import SummaryMixingConformerEncoder

    torch.set_num_threads(args.threads or 2)
    torch.manual_seed(0)
    encoder = SummaryMixingConformerEncoder(FEATURES, output_size=args.size, linear_units=4 * args.size,
                                            num_blocks=args.blocks, macaron_style=True, cnn_module_kernel=args.kernel,
                                            **{f"{args.conv}_conv": True}).eval()
    print("| chunk | compute per chunk, minute 1 | last minute | ratio | RTF | state (floats) |")
    print("|---|---|---|---|---|---|")
    for chunk in [int(c) for c in args.chunk_sizes.split(",")]:
        r = measure_chunk_compute(encoder, chunk, args.minutes)
        print(f"| {r['chunk_ms']} ms | {r['first_minute_ms']:.1f} ms | {r['last_minute_ms']:.1f} ms "
              f"| {r['last_minute_ms'] / r['first_minute_ms']:.2f} | {r['last_minute_ms'] / r['chunk_ms']:.3f} "
              f"| {r['state_floats']:,} |", flush=True)
    return 0


def ops_report(args, systems: List[str]) -> int:
    """ATen operator calls (and, on CUDA, GPU kernels) of one forward + backward, fp32 and ``--dtype``:
    one SummaryMixing cell (``--size``, one group, at the subsampled length), then each encoder."""
    import torch

    from espnet_summarymixing.layers.summary_mixing import SummaryMixing

    torch.manual_seed(0)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    seconds = float(args.lengths.split(",")[0])
    frames = int(round(seconds * FRAMES_PER_SECOND))
    b = args.batch_size

    def count(module, *inputs, dtype):
        def step():
            module.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                out = module(*inputs)
            (out[0] if isinstance(out, tuple) else out).float().sum().backward()

        step()  # warm-up: the first call allocates and initialises
        return _count_ops(step, cuda)

    lines = [f"Command: `python -m espnet_summarymixing.benchmark {' '.join(sys.argv[1:])}`", "",
             f"One forward + backward, batch {b}, {seconds:g} s ({frames} frames, {frames // 4} after "
             f"subsampling), device {args.device}.", "",
             "| module | dtype | ATen calls | GPU kernels |", "|---|---|---|---|"]
    for name in dict.fromkeys(["fp32", args.dtype]):
        dtype = _autocast_dtype(name)
        cell = SummaryMixing(args.size, activation="swish").to(device)
        x = torch.randn(b, frames // 4, args.size, device=device, requires_grad=True)
        measured = [("SummaryMixing cell", count(cell, x, dtype=dtype))]
        for system in systems:
            encoder = build_encoder(system, args.size, args.blocks, args.units, args.kernel, args.heads).to(device)
            xs = torch.randn(b, frames, FEATURES, device=device)
            measured.append((system, count(encoder.train(), xs, torch.full((b,), frames, device=device),
                                           dtype=dtype)))
        for label, counts in measured:
            lines.append(f"| {label} | {name} | {counts['ops_per_step']:,} | "
                         f"{counts.get('kernels_per_step', 'n/a (CPU)')} |")
            print(lines[-1], flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ops.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out / 'ops.md'}")
    return 0


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--families", default="conformer,branchformer,e_branchformer",
                   help="comma-separated families: conformer, branchformer, e_branchformer")
    p.add_argument("--systems", default="", help="comma-separated systems (default: all of the families)")
    p.add_argument("--lengths", default="5,10,20,30,60,120", help="utterance lengths in seconds")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--audio_per_step", type=float, default=0.0,
                   help="seconds of audio per step: batch = audio_per_step // length, as ESPnet's numel "
                        "batching (overrides --batch-size; 1920 as in ESPnet's large-batch GPU training)")
    p.add_argument("--dtype", choices=["fp32", "bf16", "fp16"], default="fp32",
                   help="bf16/fp16: the step under torch.autocast, as ESPnet's use_amp")
    p.add_argument("--compile", action="store_true", help="torch.compile each encoder before timing")
    p.add_argument("--device", default="cuda" if _cuda_available() else "cpu")
    p.add_argument("--threads", type=int, default=0, help="torch threads per worker (0 = torch's default)")
    p.add_argument("--size", type=int, default=256, help="output_size D")
    p.add_argument("--blocks", type=int, default=12)
    p.add_argument("--units", type=int, default=1024, help="linear_units / cgmlp_linear_units")
    p.add_argument("--kernel", type=int, default=31, help="convolution kernel")
    p.add_argument("--heads", type=int, default=4, help="attention heads of the baselines")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5, help="timed runs; the fastest is reported")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per measurement")
    p.add_argument("--out", default="benchmark_results", help="folder for results.csv, results.md, results.png")
    p.add_argument("--quick", action="store_true",
                   help="tiny models and lengths (1, 2 s), one repeat: checks the pipeline in seconds")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--streaming", action="store_true",
                   help="per-chunk compute of a streamed Conformer over a long stream instead")
    p.add_argument("--minutes", type=float, default=10.0, help="--streaming: length of the stream")
    p.add_argument("--chunk_sizes", default="4,16", help="--streaming: encoder frames per chunk (40 ms each)")
    p.add_argument("--conv", choices=["chunk", "causal"], default="chunk",
                   help="--streaming: chunk-aware (chunk_conv) or left-only (causal_conv) convolutions")
    p.add_argument("--long_form", action="store_true",
                   help="peak memory and RTF of one-pass transcription against recording length instead")
    p.add_argument("--long_minutes", default="1,5,10,30,60", help="--long_form: recording lengths in minutes")
    p.add_argument("--vocabulary", type=int, default=5000, help="--long_form: CTC output tokens")
    p.add_argument("--memory_limit_gb", type=float, default=16.0,
                   help="--long_form: address-space limit of each worker; more is reported as out of memory")
    p.add_argument("--onnx", action="store_true",
                   help="onnxruntime vs PyTorch: offline RTF, streaming compute per chunk, file sizes")
    p.add_argument("--onnx_lengths", default="5,30,120", help="--onnx: offline input lengths in seconds")
    p.add_argument("--model", help="--onnx: also measure this trained model (zip, exp dir or hub id)")
    p.add_argument("--ops", action="store_true",
                   help="ATen calls (CUDA: kernels) of one forward + backward of the cell and of each system, "
                        "at the first of --lengths, fp32 and --dtype, instead")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.size, args.blocks, args.units, args.kernel, args.heads = 32, 2, 64, 7, 2
        args.lengths, args.warmup, args.repeats = "1,2", 1, 1
    return args


def _cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:
        return False


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        spec = json.loads(args.worker)
        print(json.dumps(long_form_worker(spec) if spec.get("long_form") else run_worker(spec)))
        return 0
    if args.streaming:
        return streaming_report(args)
    if args.long_form:
        return long_form_report(args)
    if args.onnx:
        return onnx_report(args)
    families = [f for f in args.families.split(",") if f]
    unknown = sorted(set(families) - {v[0] for v in SYSTEMS.values()})
    if unknown:
        raise SystemExit(f"--families: unknown {unknown}; choose from conformer, branchformer, e_branchformer")
    systems = [s for s in (args.systems.split(",") if args.systems else SYSTEMS) if s]
    bad = [s for s in systems if s not in SYSTEMS]
    if bad:
        raise SystemExit(f"--systems: unknown {bad}; choose from {list(SYSTEMS)}")
    systems = [s for s in systems if SYSTEMS[s][0] in families]
    if args.ops:
        return ops_report(args, systems)
    try:
        lengths = [float(v) for v in args.lengths.split(",") if v]
    except ValueError:
        raise SystemExit(f"--lengths must be comma-separated seconds, got {args.lengths!r}")
    if not lengths or min(lengths) <= 0:
        raise SystemExit(f"--lengths must be positive seconds, got {args.lengths!r}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = environment(args.device, args.threads)
    print(f"# environment: {json.dumps(env)}", flush=True)

    rows, total = [], len(systems) * len(lengths)
    csv_path = out / "results.csv"
    with csv_path.open("w", newline="") as f:
        csv.DictWriter(f, FIELDS).writeheader()
    for k, (seconds, system) in enumerate(((s, m) for s in lengths for m in systems), 1):
        family, role = SYSTEMS[system][:2]
        batch = max(1, int(args.audio_per_step // seconds)) if args.audio_per_step else args.batch_size
        spec = dict(system=system, seconds=seconds, batch_size=batch, device=args.device, dtype=args.dtype,
                    compile=args.compile,
                    threads=args.threads, size=args.size, blocks=args.blocks, units=args.units,
                    kernel=args.kernel, heads=args.heads, warmup=args.warmup, repeats=args.repeats)
        start = time.time()
        result = _spawn(spec, args.timeout)
        row = dict(device=args.device, family=family, system=system, role=role, seconds=seconds,
                   batch_size=batch, frames=int(round(seconds * FRAMES_PER_SECOND)), dtype=args.dtype,
                   compiled=args.compile)
        row.update(result)
        rows.append(row)
        summary = (f"train {row['train_step_s']:.3f} s/step, peak {row['peak_memory_mb']:.0f} MB, RTF {row['rtf']:.4f}"
                   if row["status"] == "ok" else row["status"])
        print(f"[{k}/{total}] {system} {seconds:g} s: {summary} ({time.time() - start:.0f} s)", flush=True)
        add_ratios(rows)
        with csv_path.open("w", newline="") as f:  # rewritten each time: a stopped run keeps its rows
            writer = csv.DictWriter(f, FIELDS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)

    table = format_table(rows)
    targets = target_report(rows)
    report = [f"Environment: `{json.dumps(env)}`", "",
              "Command: `python -m espnet_summarymixing.benchmark " + " ".join(argv or sys.argv[1:]) + "`", "",
              table, ""]
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


if __name__ == "__main__":
    sys.exit(main())
