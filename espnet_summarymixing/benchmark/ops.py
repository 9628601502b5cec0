"""ATen operator calls (and, on CUDA, GPU kernels) of one forward + backward, fp32 and ``--dtype``:
one SummaryMixing cell (``--size``, one group, at the subsampled length), then each encoder; counted
by torch.profiler and written as a Markdown table (ops.md).
"""

from pathlib import Path
from typing import List

import torch

from espnet_summarymixing.benchmark.measure import count_ops
from espnet_summarymixing.benchmark.models import autocast_dtype, build_encoder
from espnet_summarymixing.benchmark.systems import FEATURES, FRAMES_PER_SECOND
from espnet_summarymixing.layers.summary_mixing import SummaryMixing

__all__ = ["ops_report"]

SUBSAMPLING = 4  # the encoders' default input layer (conv2d) keeps one frame in four


def _count(module, *inputs, dtype, cuda: bool) -> dict:
    """The counts of one forward + backward of ``module``, after one warm-up call."""
    device_type = "cuda" if cuda else "cpu"

    def step():
        module.zero_grad(set_to_none=True)
        with torch.autocast(device_type, dtype=dtype, enabled=dtype is not None):
            out = module(*inputs)
        (out[0] if isinstance(out, tuple) else out).float().sum().backward()

    step()  # warm-up: the first call allocates and initialises
    return count_ops(step, cuda)


def ops_report(args, systems: List[str], command: str) -> int:
    """Count the cell and each of ``systems`` at the first of ``--lengths``; write ops.md into ``--output_dir``."""
    torch.manual_seed(0)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    seconds = float(args.lengths.split(",")[0])
    frames = int(round(seconds * FRAMES_PER_SECOND))
    b = args.batch_size
    lines = [f"Command: `{command}`", "",
             f"One forward + backward, batch {b}, {seconds:g} s ({frames} frames, {frames // SUBSAMPLING} after "
             f"subsampling), device {args.device}.", "",
             "| module | dtype | ATen calls | GPU kernels |", "|---|---|---|---|"]
    for name in dict.fromkeys(["fp32", args.dtype]):
        dtype = autocast_dtype(name)
        cell = SummaryMixing(args.size, activation="swish").to(device)
        x = torch.randn(b, frames // SUBSAMPLING, args.size, device=device, requires_grad=True)  # (B, T', D)
        measured = [("SummaryMixing cell", _count(cell, x, dtype=dtype, cuda=cuda))]
        for system in systems:
            encoder = build_encoder(system, args.size, args.blocks, args.units, args.kernel, args.heads).to(device)
            xs = torch.randn(b, frames, FEATURES, device=device)  # (B, T, F)
            measured.append((system, _count(encoder.train(), xs, torch.full((b,), frames, device=device),
                                            dtype=dtype, cuda=cuda)))
        for label, counts in measured:
            lines.append(f"| {label} | {name} | {counts['ops_per_step']:,} | "
                         f"{counts.get('kernels_per_step', 'n/a (CPU)')} |")
            print(lines[-1], flush=True)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ops.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out / 'ops.md'}")
    return 0
