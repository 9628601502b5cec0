"""Per-chunk compute of a streamed SummaryMixing Conformer (12 x 256, kernel 31, random weights by
default) from the first to the last minute of a long stream (``--stream_seconds``), for each
``--chunk_sizes``, and the size of the state it carries.
"""

import statistics
import time

import torch
from torch.utils._pytree import tree_flatten

from espnet_summarymixing.benchmark.systems import FEATURES, FRAMES_PER_SECOND
from espnet_summarymixing.encoders.conformer import SummaryMixingConformerEncoder
from espnet_summarymixing.streaming.encoder import StreamingEncoder

__all__ = ["measure_chunk_compute", "streaming_report"]


def measure_chunk_compute(encoder, chunk_size: int, minutes: float, features: int = FEATURES) -> dict:
    """Stream ``minutes`` of random features; per-chunk compute in the first and last minute."""
    stream = StreamingEncoder(encoder, chunk_size)
    step = stream.input_layer.geometry.input_frames_consumed(chunk_size)  # input frames per chunk of output
    times = []
    for _ in range(0, int(minutes * 60 * FRAMES_PER_SECOND), step):
        x = torch.randn(1, step, features)  # (1, T, F)
        start = time.perf_counter()
        stream.accept(x)
        times.append(time.perf_counter() - start)
    per_minute = max(1, int(len(times) / minutes))
    leaves, _ = tree_flatten(stream.states)
    state = sum(leaf.numel() for leaf in leaves if isinstance(leaf, torch.Tensor))
    return {
        "chunk_ms": step * 1000 // FRAMES_PER_SECOND,
        "first_minute_ms": 1000 * statistics.median(times[min(5, len(times) - 1):per_minute] or times),
        "last_minute_ms": 1000 * statistics.median(times[-per_minute:]),
        "chunks": len(times),
        "state_floats": state,
    }


def streaming_report(args) -> int:
    """Per-chunk compute from the first to the last minute of a long stream (a ``--blocks`` x ``--size``
    streaming Conformer, ``--kernel``, ``--conv`` convolutions, random weights); prints a table."""
    torch.set_num_threads(args.threads or 2)
    torch.manual_seed(0)
    encoder = SummaryMixingConformerEncoder(FEATURES, output_size=args.size, linear_units=4 * args.size,
                                            num_blocks=args.blocks, macaron_style=True, cnn_module_kernel=args.kernel,
                                            conv_context=args.conv).eval()
    print("| chunk | compute per chunk, minute 1 | last minute | ratio | RTF | state (floats) |")
    print("|---|---|---|---|---|---|")
    for chunk in [int(c) for c in args.chunk_sizes.split(",")]:
        r = measure_chunk_compute(encoder, chunk, args.stream_seconds / 60)
        print(f"| {r['chunk_ms']} ms | {r['first_minute_ms']:.1f} ms | {r['last_minute_ms']:.1f} ms "
              f"| {r['last_minute_ms'] / r['first_minute_ms']:.2f} | {r['last_minute_ms'] / r['chunk_ms']:.3f} "
              f"| {r['state_floats']:,} |", flush=True)
    return 0
