"""The command line of ``python -m espnet_summarymixing.benchmark``: its flags, their checks, and
:func:`main`, which hands each mode to its tool (the worker processes come back in here too).
"""

import argparse
import json
import sys
from pathlib import Path
from typing import List, Optional

from espnet_summarymixing.benchmark.systems import FAMILIES, SYSTEMS
from espnet_summarymixing.cli.options import add_alias

__all__ = ["main", "parse_args"]

DESCRIPTION = "Speed, memory and real-time factor against utterance length, SummaryMixing vs self-attention."
EPILOG = """\
    python -m espnet_summarymixing.benchmark                       # full run, CPU or CUDA
    python -m espnet_summarymixing.benchmark --quick --output_dir bench   # seconds, for tests
    python -m espnet_summarymixing.benchmark --streaming           # per-chunk compute over 600 s
    python -m espnet_summarymixing.benchmark --long_form           # one-pass transcription, 60-3600 s
    python -m espnet_summarymixing.benchmark --onnx --model exp/asr_train --chunk_sizes 4,16  # onnxruntime vs PyTorch
    python -m espnet_summarymixing.benchmark --ops --lengths 10    # ATen calls per step

Families (equal configuration inside each): conformer (ESPnet's rel-pos Conformer, ours, and ours
without its mixing block = the lower bound), branchformer (ESPnet's with self-attention and with
fast_selfattn, ours, cgMLP only) and e_branchformer.
"""


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _cuda_available() -> bool:
    try:
        import torch  # only to pick --device's default; the tools import it themselves

        return torch.cuda.is_available()
    except Exception:
        return False


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """The benchmark's flags; ``--quick`` replaces the model size, lengths and repeats by tiny ones."""
    # run as python -m, argv[0] is this package's __main__.py: name the command as it was typed
    prog = "python -m espnet_summarymixing.benchmark" if Path(sys.argv[0]).name == "__main__.py" else None
    p = argparse.ArgumentParser(prog=prog, description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--families", default="conformer,branchformer,e_branchformer",
                   help="comma-separated families: conformer, branchformer, e_branchformer")
    p.add_argument("--systems", default="", help="comma-separated systems (default: all of the families)")
    p.add_argument("--lengths", default="5,10,20,30,60,120", help="utterance lengths in seconds")
    p.add_argument("--batch_size", "--batch-size", type=int, default=1)
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
    p.add_argument("--output_dir", default="benchmark_results",
                   help="folder for results.csv, results.md, results.png")
    add_alias(p, "--out", "--output_dir", "output_dir")
    p.add_argument("--quick", action="store_true",
                   help="tiny models and lengths (1, 2 s), one repeat: checks the pipeline in seconds")
    p.add_argument("--no_plot", "--no-plot", action="store_true")
    p.add_argument("--streaming", action="store_true",
                   help="per-chunk compute of a streamed Conformer over a long stream instead")
    p.add_argument("--stream_seconds", type=float, default=600.0, help="--streaming: length of the stream, in seconds")
    add_alias(p, "--minutes", "--stream_seconds", "stream_seconds", type=float, convert=lambda m: 60.0 * m,
              unit="durations are in seconds now")
    p.add_argument("--chunk_sizes", default="4,16", help="--streaming: encoder frames per chunk (40 ms each)")
    p.add_argument("--conv", choices=["chunk", "causal"], default="chunk",
                   help="--streaming: conv_context of the encoder: chunk-aware or left-only convolutions")
    p.add_argument("--long_form", action="store_true",
                   help="peak memory and RTF of one-pass transcription against recording length instead")
    p.add_argument("--long_seconds", default="60,300,600,1800,3600",
                   help="--long_form: recording lengths in seconds, comma-separated")
    add_alias(p, "--long_minutes", "--long_seconds", "long_seconds",
              convert=lambda m: ",".join(f"{60 * float(v):g}" if _number(v) else v for v in m.split(",")),
              unit="durations are in seconds now")
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


def _systems(args) -> List[str]:
    """The systems that ``--families`` and ``--systems`` select, in SYSTEMS' order unless listed."""
    families = [f for f in args.families.split(",") if f]
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        raise SystemExit(f"--families: unknown {unknown}; choose from {', '.join(FAMILIES)}")
    systems = [s for s in (args.systems.split(",") if args.systems else SYSTEMS) if s]
    bad = [s for s in systems if s not in SYSTEMS]
    if bad:
        raise SystemExit(f"--systems: unknown {bad}; choose from {list(SYSTEMS)}")
    return [s for s in systems if SYSTEMS[s][0] in families]


def _lengths(args) -> List[float]:
    try:
        lengths = [float(v) for v in args.lengths.split(",") if v]
    except ValueError:
        raise SystemExit(f"--lengths must be comma-separated seconds, got {args.lengths!r}")
    if not lengths or min(lengths) <= 0:
        raise SystemExit(f"--lengths must be positive seconds, got {args.lengths!r}")
    return lengths


def main(argv: Optional[List[str]] = None) -> int:
    """Run the benchmark mode that ``argv`` (default: the command line) selects; 0 when done."""
    args = parse_args(argv)
    command = "python -m espnet_summarymixing.benchmark " + " ".join(sys.argv[1:] if argv is None else argv)
    # Each tool is imported when its mode runs: ESPnet, onnxruntime (the onnx extra, needed by --onnx
    # alone) and the tool's own dependencies load only for the tool that needs them, and
    # `import espnet_summarymixing.benchmark` imports no torch.
    if args.worker:
        spec = json.loads(args.worker)
        if spec.get("long_form"):
            from espnet_summarymixing.benchmark.long_form import long_form_worker as worker
        else:
            from espnet_summarymixing.benchmark.speed import run_worker as worker
        print(json.dumps(worker(spec)))
        return 0
    if args.streaming:
        from espnet_summarymixing.benchmark.streaming import streaming_report

        return streaming_report(args)
    if args.long_form:
        from espnet_summarymixing.benchmark.long_form import long_form_report

        return long_form_report(args)
    if args.onnx:
        from espnet_summarymixing.benchmark.onnx_compare import onnx_report

        return onnx_report(args)
    systems = _systems(args)
    if args.ops:
        from espnet_summarymixing.benchmark.ops import ops_report

        return ops_report(args, systems, command)
    lengths = _lengths(args)
    from espnet_summarymixing.benchmark.speed import speed_report

    return speed_report(args, systems, lengths, command)
