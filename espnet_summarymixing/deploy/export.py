"""Export a trained ESPnet ASR model with a SummaryMixing encoder to ONNX files that run without torch.

The offline graph takes the **waveform** (B, N) and its lengths and returns CTC log-probabilities:
the front end is inside the graph (:class:`~.graphs.FeatureGraph`, equal to ESPnet's features),
so that a deployment feeds audio samples and needs no feature code of its own, and a model is one
file whose features cannot drift from the ones it was trained on. The folder written:

- ``model.onnx`` (and ``model.int8.onnx`` with ``quantize="int8"``: onnxruntime's dynamic quantisation
  of the weights, or, given ``calibration`` audio, static QDQ quantisation: 8-bit weights per channel
  and 8-bit activations with ranges measured on that audio, which is what makes int8 faster than
  float32 on a CPU; the front end stays float32 either way);
- ``tokens.txt``: the token list, one per line (blank first);
- ``feats_stats.npz``: the global-MVN statistics, a copy for reference (the graph holds them);
- ``manifest.json``: sample rate, frame shift, subsampling, input and output names, token type, the
  SHA-256 of the source weights, the versions used and the check below.

Every export is checked before it is reported done: onnxruntime runs the graph on two utterances of
lengths never seen when tracing, and the largest difference to PyTorch is written to the manifest
(an export whose difference exceeds ``tolerance`` is an error).
"""

import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch

from espnet_summarymixing.deploy.graphs import (
    ExportError,
    FeatureGraph,
    RecognizerGraph,
    StreamingStepGraph,
    check_exportable,
)

__all__ = ["export", "export_model", "ExportError", "FORMAT_VERSION"]

FORMAT_VERSION = 1
OPSET = 18


def _geometry(model, rate: int) -> Dict[str, float]:
    stride = model.encoder.input_layer.geometry.stride
    hop = model.frontend.stft.hop_length if model.frontend is not None else None
    return {
        "frame_shift_seconds": hop / rate if hop else None,
        "subsampling": stride,
        "encoder_frame_seconds": hop * stride / rate if hop else None,
    }


def _example(model, rate: int, seconds, seed: int = 0):
    """A padded batch of noise-like speech of the given durations (or feature frames)."""
    g = torch.Generator().manual_seed(seed)
    if model.frontend is None:
        frames = [int(s * 100) for s in seconds]
        x = torch.randn(len(frames), max(frames), model.encoder._input_size, generator=g)
        lengths = torch.tensor(frames)
    else:
        samples = [int(s * rate) for s in seconds]
        x = 0.1 * torch.randn(len(samples), max(samples), generator=g)
        lengths = torch.tensor(samples)
    for i, n in enumerate(lengths.tolist()):
        x[i, n:] = 0.0
    return x, lengths


def _check(graph: torch.nn.Module, path: Path, model, rate: int) -> float:
    """Largest |onnxruntime - PyTorch| over a batch of lengths the export never saw."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x, lengths = _example(model, rate, (2.37, 1.13), seed=1)
    with torch.no_grad():
        ref, ref_lengths = graph(x, lengths)
    got, got_lengths = session.run(None, {"speech": x.numpy(), "speech_lengths": lengths.numpy()})
    if got.shape != tuple(ref.shape) or got_lengths.tolist() != ref_lengths.tolist():
        raise ExportError(f"{path}: the ONNX graph returned shape {got.shape}, lengths {got_lengths.tolist()}; "
                          f"PyTorch {tuple(ref.shape)}, {ref_lengths.tolist()}")
    valid = torch.arange(ref.size(1))[None, :] < ref_lengths[:, None]
    return float((torch.from_numpy(got) - ref).abs()[valid].max())


def _front_end_nodes(path: Path):
    """Names of the nodes that use the front end's constants (Fourier basis, mel filterbank, MVN): they
    stay float32 in the int8 graph. (Quantised, an 8-bit Fourier basis ruins the features: AN4 test WER
    12.2 -> 93.8 with every Conv and MatMul quantised.)"""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return [node.name for node in graph.node if any(i.startswith("features.") for i in node.input)]


def _chunk_size(encoder, chunk_size: Optional[int]) -> int:
    """The chunk size to export (:func:`~espnet_summarymixing.streaming.encoder.trained_chunk_size`)."""
    from espnet_summarymixing.streaming.encoder import trained_chunk_size

    try:
        return trained_chunk_size(encoder, chunk_size)
    except ValueError as err:
        raise ExportError(f"--streaming: {err}") from None


def _save(graph, example, path: Path, input_names, output_names, dynamic_shapes) -> None:
    partial = path.with_name(path.name + ".partial")
    with torch.no_grad():
        program = torch.onnx.export(graph, example, dynamo=True, opset_version=OPSET, verbose=False,
                                    input_names=input_names, output_names=output_names,
                                    dynamic_shapes=dynamic_shapes)
    program.save(str(partial), external_data=False)
    partial.replace(path)  # a half-written file never has the final name


def _export_streaming(model, out_dir: Path, chunk_size: int, rate: int, tolerance: float) -> dict:
    """``features.onnx`` (waveform segment -> normalised features) and ``streaming.onnx`` (one step),
    checked over 40 chunks against ``StreamingEncoder``; returns the manifest's streaming entry."""
    import onnxruntime

    from espnet_summarymixing.streaming.encoder import StreamingEncoder

    dynamic = torch.export.Dim.DYNAMIC
    features = FeatureGraph(model.frontend, model.normalize).eval()
    speech, lengths = _example(model, rate, (1.0,))
    _save(features, (speech, lengths), out_dir / "features.onnx", ["speech", "speech_lengths"],
          ["feats", "feats_lengths"], {"speech": {1: dynamic}, "lengths": None})
    step = StreamingStepGraph(model, chunk_size).eval()
    state = step.initial_state()
    names = [f"state_{i}" for i in range(len(state))]
    lookahead = step.lookahead_frames
    ahead = {"ahead": torch.tensor([lookahead])} if lookahead else {}  # an input only with a look-ahead
    feats = torch.randn(1, step.input_frames, model.encoder._input_size)
    _save(step, (feats, torch.tensor([0]), *ahead.values(), *state), out_dir / "streaming.onnx",
          ["feats", "position", *ahead, *names], ["log_probs", *[f"next_{n}" for n in names]],
          {"feats": {1: dynamic}, "position": None, "state": tuple([None] * (len(ahead) + len(state)))})
    # check: 40 chunks driven through onnxruntime equal StreamingEncoder + CTC
    session = onnxruntime.InferenceSession(str(out_dir / "streaming.onnx"), providers=["CPUExecutionProvider"])
    geometry = model.encoder.input_layer.geometry
    stride = geometry.stride
    g = torch.Generator().manual_seed(2)
    stream_feats = torch.randn(1, step.input_frames + 39 * chunk_size * stride, model.encoder._input_size,
                               generator=g)
    with torch.no_grad():
        ref = torch.log_softmax(model.ctc.ctc_lo(StreamingEncoder(model.encoder, chunk_size).accept(stream_feats)), -1)
    outs, position, current = [], 0, [s.numpy() for s in state]
    for k in range(40):
        window = stream_feats[:, k * chunk_size * stride:][:, :step.input_frames].numpy()
        result = session.run(None, {"feats": window, "position": torch.tensor([position]).numpy(),
                                    **{k: v.numpy() for k, v in ahead.items()}, **dict(zip(names, current))})
        outs.append(result[0])
        current = result[1:]
        position += result[0].shape[1]
    import numpy as np

    got = np.concatenate(outs, axis=1)
    if got.shape != tuple(ref.shape):
        raise ExportError(f"streaming.onnx: 40 chunks gave {got.shape}, StreamingEncoder {tuple(ref.shape)}")
    difference = float(np.abs(got - ref.numpy()).max())
    if difference > tolerance:
        raise ExportError(f"streaming.onnx differs from StreamingEncoder by {difference:.3g} (> {tolerance})")
    stft = model.frontend.stft if model.frontend is not None else None
    return {
        "chunk_size": chunk_size,
        "chunk_seconds": chunk_size * stride * stft.hop_length / rate if stft else None,
        "lookahead_frames": lookahead,
        "input_frames": step.input_frames,
        "input_frames_per_chunk": geometry.input_frames_consumed(chunk_size),
        "subsampling_steps": [list(s) for s in geometry.steps],
        "n_fft": stft.n_fft if stft else None,
        "hop_length": stft.hop_length if stft else None,
        "state": [{"name": n, "shape": list(s)} for n, s in zip(names, step.state_shapes)],
        "check": {"max_abs_difference": difference, "what": "log-probabilities of 40 chunks of noise "
                  "features, onnxruntime vs StreamingEncoder"},
    }


def missing_modules(quantize: Optional[str] = None) -> List[str]:
    """The modules an export needs that are not installed (onnxruntime's quantisation with ``int8``)."""
    import importlib.util

    missing = [m for m in ("onnx", "onnxruntime", "onnxscript") if importlib.util.find_spec(m) is None]
    if quantize == "int8" and not missing:
        try:
            import onnxruntime.quantization  # noqa: F401
        except ImportError:
            missing.append("onnxruntime.quantization")
    return missing


def check_target(out, force: bool = False) -> None:
    """An export may go to ``out``: it is missing, empty or an earlier export (``manifest.json``), or
    ``force`` is given; ExportError otherwise (nothing is written then)."""
    target = Path(out)
    if target.exists() and not target.is_dir():
        raise ExportError(f"{target}: exists and is not a folder")
    if target.is_dir() and any(target.iterdir()) and not (target / "manifest.json").is_file() and not force:
        raise ExportError(f"{target}: a folder with other files in it, not an earlier export: give another "
                          "--output_dir, or --force to replace it")


def export(model: Optional[str], out: str, quantize: Optional[str] = None, cachedir: Optional[str] = None,
           tolerance: float = 1e-3, streaming: bool = False, chunk_size: Optional[int] = None,
           asr_train_config: Optional[str] = None, asr_model_file: Optional[str] = None,
           calibration: Optional[Sequence[str]] = None) -> Path:
    """Export ``model`` (zip, unpacked model, training folder or Hub id), or the model of
    ``asr_train_config`` + ``asr_model_file``, to the folder ``out``; return the manifest's path.
    Raises :class:`ExportError` for a model or option that cannot be exported."""
    from espnet_summarymixing.loading.models import file_sha256, load_asr_model, resolve_model

    if quantize not in (None, "int8"):
        raise ExportError(f"quantize={quantize!r}: choose int8 (or leave it out for float32 only)")
    missing = missing_modules(quantize)
    if missing:
        raise ExportError(f"the export needs {', '.join(missing)}: pip install 'espnet-summarymixing[onnx]'")
    if model is not None:
        files = resolve_model(model, cachedir)
    elif asr_train_config and asr_model_file:
        for what, path in (("asr_train_config", asr_train_config), ("asr_model_file", asr_model_file)):
            if not Path(path).is_file():
                raise FileNotFoundError(f"--{what} {path}: no such file")
        files = {"asr_train_config": str(asr_train_config), "asr_model_file": str(asr_model_file)}
        model = str(asr_model_file)
    else:
        raise ExportError("give a model, or asr_train_config and asr_model_file")
    asr_model, args = load_asr_model(files["asr_train_config"], files["asr_model_file"])
    source = {"model": str(model), "weights_sha256": file_sha256(files["asr_model_file"])}
    return export_model(asr_model, args, out, source, quantize=quantize, tolerance=tolerance,
                        streaming=streaming, chunk_size=chunk_size, calibration=calibration)


def export_model(asr_model, args, out: str, source: dict, quantize: Optional[str] = None, tolerance: float = 1e-3,
                 streaming: bool = False, chunk_size: Optional[int] = None, force: bool = False,
                 calibration: Optional[Sequence[str]] = None) -> Path:
    """Export a loaded ESPnet ASR model (``args``: its training arguments: ``token_list``, ``encoder``,
    ``normalize``, ``frontend_conf``...) to the folder ``out``; ``source`` goes to the manifest.
    ``calibration``: audio files that make ``quantize="int8"`` static (see the module's docstring).

    The folder is built beside ``out`` and then takes its place whole: an earlier export there is
    replaced (no file of it is left), a folder with other files is refused unless ``force``."""
    from espnet_summarymixing.loading.models import sample_rate

    if quantize not in (None, "int8"):
        raise ExportError(f"quantize={quantize!r}: choose int8 (or leave it out for float32 only)")
    if not (isinstance(tolerance, (int, float)) and 0 < tolerance < float("inf")):
        raise ExportError(f"tolerance={tolerance!r}: expected a positive finite number (nan would turn the "
                          "check off)")
    if chunk_size is not None and not streaming:
        raise ExportError(f"chunk_size={chunk_size} is for the streaming graph: export with streaming")
    if calibration is not None and quantize != "int8":
        raise ExportError("calibration audio is for quantize=int8 (static quantisation): add it, or leave the "
                          "audio out")
    if calibration is not None and not calibration:
        raise ExportError("calibration: no audio file given (static quantisation measures its ranges on audio)")
    check_target(out, force)
    missing = missing_modules(quantize)
    if missing:
        raise ExportError(f"the export needs {', '.join(missing)}: pip install 'espnet-summarymixing[onnx]'")
    asr_model.eval()
    check_exportable(asr_model, streaming=streaming)
    asr_model.encoder.set_compiled(False)  # the ONNX graphs are traced from the eager blocks
    chunk = _chunk_size(asr_model.encoder, chunk_size) if streaming else None  # before anything is written
    rate = sample_rate(args)
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    # written in a staging folder beside the target and renamed in once checked: a failed export
    # leaves nothing behind, a folder exported before stays whole until the new one replaces it
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    old = None
    try:
        _write(asr_model, args, staging, source, quantize, tolerance, chunk, rate, calibration)
        staging.chmod(0o755)  # mkdtemp's 0700 would hide the export from other users
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            target.rename(old / "export")
        staging.rename(target)
    except BaseException:
        if old is not None and (old / "export").exists() and not target.exists():
            (old / "export").rename(target)  # put the earlier export back
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return target / "manifest.json"


def _calibration_reader(paths: Sequence[str], rate: int):
    """onnxruntime's calibration input: each audio file alone, as the offline graph's inputs."""
    import numpy as np
    from onnxruntime.quantization import CalibrationDataReader

    from espnet_summarymixing.deploy.runtime import read_wave

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.files = iter(paths)

        def get_next(self):
            path = next(self.files, None)
            if path is None:
                return None
            try:
                wave = read_wave(path, rate)
            except (OSError, ValueError) as err:
                raise ExportError(f"calibration audio {path}: {err}") from None
            return {"speech": wave[None].astype("float32"), "speech_lengths": np.array([len(wave)], dtype=np.int64)}

    return Reader()


def _quantize(onnx_path: Path, int8: Path, calibration: Optional[Sequence[str]], rate: int) -> dict:
    """``model.int8.onnx``, dynamic or (with calibration audio) static QDQ; the manifest's entry."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_dynamic, quantize_static

    keep = _front_end_nodes(onnx_path)
    if calibration is None:
        quantize_dynamic(str(onnx_path), str(int8), weight_type=QuantType.QInt8, nodes_to_exclude=keep)
        return {"method": "dynamic: int8 weights, activations quantised at run time"}
    quantize_static(str(onnx_path), str(int8), _calibration_reader(calibration, rate), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                    nodes_to_exclude=keep, op_types_to_quantize=["MatMul", "Gemm", "Conv"],
                    calibrate_method=CalibrationMethod.MinMax)
    return {"method": "static QDQ: int8 weights per channel, uint8 activations, min-max ranges",
            "calibration_files": len(calibration)}


def _write(asr_model, args, out_dir: Path, source: dict, quantize: Optional[str], tolerance: float,
           chunk: Optional[int], rate: int, calibration: Optional[Sequence[str]] = None) -> None:
    """Every file of the export folder, into ``out_dir``."""
    streaming = chunk is not None
    graph = RecognizerGraph(asr_model).eval()
    onnx_path = out_dir / "model.onnx"
    example = _example(asr_model, rate, (3.0, 2.0))
    dynamic = torch.export.Dim.DYNAMIC  # batch and time: any size (ranges inferred by torch.export)
    logging.info("exporting %s to %s", source.get("model"), onnx_path)
    _save(graph, example, onnx_path, ["speech", "speech_lengths"], ["log_probs", "log_probs_lengths"],
          {"speech": {0: dynamic, 1: dynamic}, "lengths": {0: dynamic}})
    difference = _check(graph, onnx_path, asr_model, rate)
    if difference > tolerance:
        raise ExportError(f"{onnx_path}: onnxruntime differs from PyTorch by {difference:.3g} "
                          f"(> {tolerance}): the export is wrong, please report it")
    graphs = {"offline": onnx_path.name}
    int8_manifest = None
    if quantize == "int8":
        int8 = out_dir / "model.int8.onnx"
        int8_manifest = _quantize(onnx_path, int8, calibration, rate)
        graphs["offline_int8"] = int8.name
    streaming_manifest = None
    if streaming:
        streaming_manifest = _export_streaming(asr_model, out_dir, chunk, rate, tolerance)
        graphs.update(features="features.onnx", streaming="streaming.onnx")
    token_list = list(args.token_list)
    (out_dir / "tokens.txt").write_text("\n".join(token_list) + "\n", encoding="utf-8")
    stats = (getattr(args, "normalize_conf", None) or {}).get("stats_file")
    if stats and Path(stats).is_file():
        shutil.copy(stats, out_dir / "feats_stats.npz")
    import espnet
    import onnx

    manifest = {
        "format_version": FORMAT_VERSION,
        "graphs": graphs,
        "input": "waveform" if asr_model.frontend is not None else "features",
        "inputs": {"speech": "(batch, samples) float32, padded with zeros to the longest",
                   "speech_lengths": "(batch,) int64"},
        "outputs": {"log_probs": "(batch, frames, vocabulary) float32, CTC log-probabilities",
                    "log_probs_lengths": "(batch,) int64"},
        "sample_rate": rate,
        **_geometry(asr_model, rate),
        "token_list": "tokens.txt",
        "token_type": getattr(args, "token_type", None),
        "blank_id": 0,
        "vocabulary_size": len(token_list),
        "encoder": getattr(args, "encoder", None),
        "normalize": getattr(args, "normalize", None),
        "source": source,
        "versions": {"torch": torch.__version__, "espnet": espnet.__version__, "onnx": onnx.__version__,
                     "opset": OPSET},
        "streaming": streaming_manifest,
        "int8": int8_manifest,
        "check": {"max_abs_difference": difference, "what": "log-probabilities, onnxruntime vs PyTorch, "
                  "2.37 s + 1.13 s of noise in one batch"},
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
