"""What every benchmark tool measures with: call timings, operator counts, resident memory, the
machine's description, and one measurement in a fresh process (out of memory is a result there).
"""

import json
import os
import platform
import resource
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

__all__ = ["time_calls", "count_ops", "rss_bytes", "peak_rss_bytes", "is_oom", "environment", "spawn_one",
           "MEMORY_PHASE_ENV"]

# glibc's malloc raises its mmap threshold each time a large block is freed, after which
# freed tensors stay in the heap: the resident set then measures the allocator's history,
# not the tensors alive at the peak (measured here: 2029 MB vs 1135 MB for the same step).
# A fixed threshold disables that adjustment, so the memory phase sees the live tensors.
# It slows allocation down, which is why time is measured in a separate process without it.
MEMORY_PHASE_ENV = {"MALLOC_MMAP_THRESHOLD_": "131072"}


def time_calls(fn: Callable[[], object], warmup: int, repeats: int,
               sync: Callable[[], None] = lambda: None) -> List[float]:
    """Seconds of each of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones; ``sync`` runs
    before and after each timed call (a CUDA synchronisation, so that the time covers the kernels)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return times


def count_ops(step: Callable[[], object], cuda: bool) -> Dict[str, int]:
    """ATen operator calls (nested calls included) and, on CUDA, GPU kernels of one call of ``step``,
    from torch.profiler."""
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        step()
    events = prof.events()
    counts = {"ops_per_step": sum(1 for e in events if e.name.startswith("aten::"))}
    if cuda:
        counts["kernels_per_step"] = sum(1 for e in events if e.device_type == DeviceType.CUDA)
    return counts


def rss_bytes() -> int:
    """The resident set of this process now."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    """The largest resident set this process has had (``ru_maxrss``)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def is_oom(err: BaseException) -> bool:
    """Whether ``err`` is running out of memory (Python's, PyTorch's CPU or CUDA allocator's)."""
    return isinstance(err, MemoryError) or "out of memory" in str(err).lower() or (
        "DefaultCPUAllocator" in str(err)
    )


def environment(device: str, threads: int) -> dict:
    """Versions, CPU, thread count and device of this run, for the results' header."""
    env = {"python": platform.python_version(), "torch": torch.__version__, "machine": platform.machine(),
           "cpu_count": os.cpu_count(), "threads": threads or torch.get_num_threads(), "device": device}
    try:
        import espnet  # the version only; ESPnet is imported by the tools that build models

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


def spawn_one(spec: dict, timeout: float, env: Optional[dict] = None) -> dict:
    """Run ``python -m espnet_summarymixing.benchmark --worker SPEC`` and return the figures it prints.

    A worker killed by the kernel, out of C++ memory or past ``timeout`` is a result (``status``);
    any other failure raises RuntimeError with the worker's error output.
    """
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
