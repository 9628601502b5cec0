"""onnxruntime against PyTorch on the same model, same process, same thread count: offline real-time
factor (``--onnx_lengths``, float32 and int8 graphs), streaming compute per chunk (``--chunk_sizes``),
and the file sizes; for the 12 x 256 Conformer (random weights, chunk-trained configuration,
``--vocabulary`` tokens) and, with ``--model``, a trained model (offline only unless it streams).

Needs the ``onnx`` extra (onnx, onnxruntime, onnxscript); this module is imported only by ``--onnx``.
"""

import json
import statistics
import tempfile
import time
from argparse import Namespace
from pathlib import Path

import numpy as np
import onnxruntime
import torch

from espnet_summarymixing.benchmark.measure import environment, time_calls
from espnet_summarymixing.benchmark.models import ctc_model
from espnet_summarymixing.benchmark.systems import FEATURES
from espnet_summarymixing.deploy.export import export_model
from espnet_summarymixing.encoders.conformer import SummaryMixingConformerEncoder
from espnet_summarymixing.loading.models import load_asr_model, resolve_model
from espnet_summarymixing.streaming.encoder import StreamingEncoder

__all__ = ["onnx_report"]

RATE = 16000  # the sample rate of ctc_model's front end


def _median_seconds(fn, warmup: int, repeats: int) -> float:
    return statistics.median(time_calls(fn, warmup, repeats))


def _random_model(args):
    """The ``--blocks`` x ``--size`` SummaryMixing Conformer (chunk-trained configuration) with a CTC
    head, random weights; returns (model, train_args)."""
    torch.manual_seed(0)
    encoder = SummaryMixingConformerEncoder(FEATURES, output_size=args.size, linear_units=4 * args.size,
                                            num_blocks=args.blocks, macaron_style=True, cnn_module_kernel=args.kernel,
                                            conv_context="chunk", dynamic_chunk_training=True, chunk_size_range=[1, 25])
    model, tokens = ctc_model(encoder, args.vocabulary, args.size)
    train_args = Namespace(token_list=tokens, token_type="word", encoder="summarymixing_conformer",
                           normalize=None, frontend_conf={"fs": RATE})
    return model.eval(), train_args


def _session_options(threads: int) -> onnxruntime.SessionOptions:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    # onnxruntime's threads spin after each run by default, which would steal the CPU from PyTorch's
    # next measurement on a small machine
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def _offline_rows(name, model, sessions, lengths, repeats, results, rows) -> None:
    """Offline RTF of PyTorch and of each onnxruntime session, one row per length."""
    for seconds in lengths:
        wave = 0.05 * torch.randn(1, int(seconds * RATE))  # (1, samples)
        lens = torch.tensor([wave.size(1)])

        def pytorch():
            with torch.no_grad():
                enc, _ = model.encode(wave, lens)
                enc = enc[0] if isinstance(enc, tuple) else enc
                torch.log_softmax(model.ctc.ctc_lo(enc), dim=-1)

        feed = {"speech": wave.numpy(), "speech_lengths": lens.numpy()}
        t = {"pytorch": _median_seconds(pytorch, 1, repeats)}
        for kind, session in sessions.items():
            t[kind] = _median_seconds(lambda: session.run(None, feed), 1, repeats)
        r = {"model": name, "seconds": seconds, **{k: v / seconds for k, v in t.items()}}
        results.append(r)
        rows.append(f"| {name} | {seconds:g} s offline (RTF) | {r['pytorch']:.4f} | {r['float32']:.4f} "
                    f"| {r['int8']:.4f} | {r['float32'] / r['pytorch']:.2f} / {r['int8'] / r['pytorch']:.2f} |")
        print(rows[-1], flush=True)


def _streaming_row(name, model, train_args, chunk, sdir: Path, options, results, rows) -> None:
    """Median compute per chunk over a minute of stream, PyTorch's StreamingEncoder vs the ONNX step."""
    encoder = model.encoder
    export_model(model, train_args, str(sdir), {"model": name}, streaming=True, chunk_size=chunk)
    manifest = json.loads((sdir / "manifest.json").read_text())["streaming"]
    session = onnxruntime.InferenceSession(str(sdir / "streaming.onnx"), options, providers=["CPUExecutionProvider"])
    n_in, step = encoder.input_layer.geometry.frames_in(chunk), manifest["input_frames_per_chunk"]
    count = max(20, int(60 / manifest["chunk_seconds"]))  # a minute of stream
    feats = torch.randn(1, n_in + count * step, FEATURES)  # (1, T, F)
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


def onnx_report(args) -> int:
    """onnxruntime vs PyTorch: offline RTF, streaming compute per chunk, file sizes; writes onnx.json
    and onnx.md into ``--output_dir``."""
    threads = args.threads or 2
    torch.set_num_threads(threads)
    env = environment("cpu", threads)
    print(f"# environment: {json.dumps(env)}", flush=True)
    models = [(f"SummaryMixing Conformer {args.blocks} x {args.size}, random weights", *_random_model(args))]
    if args.model:
        files = resolve_model(args.model)
        model, train_args = load_asr_model(files["asr_train_config"], files["asr_model_file"])
        models.insert(0, (args.model, model.eval(), train_args))
    lengths = [float(v) for v in args.onnx_lengths.split(",") if v]
    chunks = [int(c) for c in args.chunk_sizes.split(",") if c]
    options = _session_options(threads)
    rows = ["| model | input | PyTorch | onnxruntime float32 | onnxruntime int8 | ratio float32 / int8 |",
            "|---|---|---|---|---|---|"]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, model, train_args in models:
            out = Path(tmp) / f"m{len(results)}"
            export_model(model, train_args, str(out), {"model": name}, quantize="int8")
            sizes = {f: (out / f).stat().st_size / 1e6 for f in ("model.onnx", "model.int8.onnx")}
            sessions = {kind: onnxruntime.InferenceSession(str(out / f), options, providers=["CPUExecutionProvider"])
                        for kind, f in (("float32", "model.onnx"), ("int8", "model.int8.onnx"))}
            _offline_rows(name, model, sessions, lengths, args.repeats, results, rows)
            encoder = model.encoder
            if encoder.conv_context != "full" and encoder.dynamic_chunk_training:
                for chunk in chunks:
                    _streaming_row(name, model, train_args, chunk, Path(tmp) / f"s{len(results)}_{chunk}",
                                   options, results, rows)
            rows.append(f"| {name} | sizes | {sizes['model.onnx']:.1f} MB float32, "
                        f"{sizes['model.int8.onnx']:.1f} MB int8 | | | |")
    out_dir = Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "onnx.json").write_text(json.dumps({"environment": env, "results": results}, indent=2) + "\n")
    (out_dir / "onnx.md").write_text(f"Environment: `{json.dumps(env)}`\n\n" + "\n".join(rows) + "\n")
    print("\n".join(rows))
    print(f"results: {out_dir / 'onnx.md'}")
    return 0
