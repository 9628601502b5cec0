"""ONNX export: the graphs equal PyTorch, the runtime needs neither torch nor ESPnet, bad input is named."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import torch
import yaml

from conftest import command
from recipe_tools import ROOT
from tiny_asr_models import make_model

from espnet_summarymixing.deploy.export import ExportError, export
from espnet_summarymixing.deploy.graphs import FeatureGraph
from espnet_summarymixing.loading.models import load_asr_model

# An ONNX export per encoder (module fixtures, ~20 s each) and the tests that export themselves: the slow tier
pytestmark = pytest.mark.slow

ENCODERS = ["summarymixing_conformer", "summarymixing_branchformer", "summarymixing_e_branchformer"]


def _waves(data, part="test"):
    return [torch.tensor(soundfile.read(line.split()[1], dtype="float32")[0])
            for line in (data[part] / "wav.scp").read_text().splitlines()]


def _pad(waves):
    lengths = torch.tensor([len(w) for w in waves])
    speech = torch.zeros(len(waves), int(lengths.max()))
    for i, w in enumerate(waves):
        speech[i, :len(w)] = w
    return speech, lengths


def _pytorch_log_probs(model, speech, lengths):
    with torch.no_grad():
        enc, enc_lengths = model.encode(speech, lengths)
        return torch.log_softmax(model.ctc.ctc_lo(enc), dim=-1), enc_lengths


@pytest.fixture(scope="module", params=ENCODERS)
def exported(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param)
    model_dir = make_model(root / "model", request.param)
    export(str(model_dir), str(root / "onnx"), quantize="int8")
    model, _ = load_asr_model(str(model_dir / "config.yaml"), str(model_dir / "valid.acc.ave.pth"))
    return model.eval(), root / "onnx"


@pytest.mark.parametrize("normalize", ["global_mvn", "utterance_mvn"])
def test_feature_graph_equals_espnet_front_end(normalize, data, tmp_path):
    model, _ = load_asr_model(*(str(p) for p in _model_files(make_model(tmp_path / "m", normalize=normalize))))
    speech, lengths = _pad(_waves(data, "train")[:5])
    with torch.no_grad():
        ref, ref_lengths = model._extract_feats(speech, lengths)
        ref, _ = model.normalize(ref, ref_lengths)
        got, got_lengths = FeatureGraph(model.frontend, model.normalize)(speech, lengths)
    assert got_lengths.tolist() == ref_lengths.tolist()
    assert got.shape == ref.shape
    # every valid frame equal; after them ours are zero (ESPnet's utterance_mvn leaves -mean there,
    # which its encoders never read)
    valid = torch.arange(ref.size(1))[None, :] < ref_lengths[:, None]
    torch.testing.assert_close(got[valid], ref[valid], rtol=0, atol=1e-4)
    assert not got[~valid].any()


def _model_files(model_dir):
    return model_dir / "config.yaml", model_dir / "valid.acc.ave.pth"


def test_onnx_equals_pytorch_batched_and_alone(exported, data):
    import onnxruntime

    model, onnx_dir = exported
    session = onnxruntime.InferenceSession(str(onnx_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    waves = _waves(data, "test") + _waves(data, "valid")  # 7 real utterances, 1.3-5 s
    assert len({len(w) for w in waves}) == len(waves)
    groups = [waves] + [[w] for w in waves] + [[waves[3][:12345]]]  # a batch, each alone, a cut one
    for group in groups:
        speech, lengths = _pad(group)
        ref, ref_lengths = _pytorch_log_probs(model, speech, lengths)
        got, got_lengths = session.run(None, {"speech": speech.numpy(), "speech_lengths": lengths.numpy()})
        assert got_lengths.tolist() == ref_lengths.tolist()
        for i, n in enumerate(ref_lengths.tolist()):
            np.testing.assert_allclose(got[i, :n], ref[i, :n].numpy(), rtol=0, atol=1e-4)
    manifest = json.loads((onnx_dir / "manifest.json").read_text())
    assert manifest["sample_rate"] == 16000 and manifest["subsampling"] == 4
    assert manifest["check"]["max_abs_difference"] < 1e-4
    assert (onnx_dir / "tokens.txt").read_text().splitlines() == list(model.token_list)


def test_int8_graph_is_smaller_and_close(exported, data):
    from espnet_summarymixing.deploy.runtime import OnnxRecognizer

    _, onnx_dir = exported
    import onnx

    def weight_bytes(name):  # the model's weights, the front end's constants apart
        graph = onnx.load(str(onnx_dir / name)).graph
        return sum(len(i.raw_data) for i in graph.initializer if not i.name.startswith("features."))

    assert weight_bytes("model.int8.onnx") < 0.4 * weight_bytes("model.onnx")
    waves = [w.numpy() for w in _waves(data, "test")]
    full = OnnxRecognizer(str(onnx_dir)).log_probs(waves)
    int8 = OnnxRecognizer(str(onnx_dir), int8=True).log_probs(waves)
    for a, b in zip(full, int8):
        assert a.shape == b.shape
        assert np.abs(np.exp(a) - np.exp(b)).max() < 0.5  # posteriors move, they are not garbage
    # the front end stays float32: an 8-bit Fourier basis ruined the features (AN4 WER 12.2 -> 93.8)
    graph = onnx.load(str(onnx_dir / "model.int8.onnx")).graph
    kept = {i.name: i.data_type for i in graph.initializer if i.name.startswith("features.")}
    assert kept.get("features.basis") == onnx.TensorProto.FLOAT and kept.get("features.melmat") == onnx.TensorProto.FLOAT


def test_static_int8_is_calibrated_on_audio_and_close(data, tmp_path):
    import onnx

    from espnet_summarymixing.deploy.runtime import OnnxRecognizer

    model_dir = make_model(tmp_path / "model")
    calibration = [line.split()[1] for line in (data["train"] / "wav.scp").read_text().splitlines()][:8]
    manifest = export(str(model_dir), str(tmp_path / "onnx"), quantize="int8", calibration=calibration)
    int8 = json.loads(manifest.read_text())["int8"]
    assert int8["method"].startswith("static QDQ") and int8["calibration_files"] == 8
    graph = onnx.load(str(tmp_path / "onnx" / "model.int8.onnx")).graph
    ops = {node.op_type for node in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops  # activations quantised too, not only the weights
    quantized_inputs = {i for node in graph.node if node.op_type == "QuantizeLinear" for i in node.input}
    assert not any(name.startswith("features.") for name in quantized_inputs)  # the front end stays float32
    waves = [w.numpy() for w in _waves(data, "test")]
    full = OnnxRecognizer(str(tmp_path / "onnx")).log_probs(waves)
    static = OnnxRecognizer(str(tmp_path / "onnx"), int8=True).log_probs(waves)
    for a, b in zip(full, static):
        assert a.shape == b.shape and np.abs(np.exp(a) - np.exp(b)).max() < 0.5
    missing = tmp_path / "missing.wav"
    with pytest.raises(ExportError, match=f"calibration audio {missing}"):
        export(str(model_dir), str(tmp_path / "bad"), quantize="int8", calibration=[str(missing)])
    with pytest.raises(ExportError, match="calibration audio is for quantize=int8"):
        export(str(model_dir), str(tmp_path / "bad"), calibration=calibration)
    with pytest.raises(ExportError, match="calibration: no audio file given"):
        export(str(model_dir), str(tmp_path / "bad"), quantize="int8", calibration=[])
    assert not (tmp_path / "bad").exists()
    proc = command("export", "--model", model_dir, "--output_dir", tmp_path / "c", "--calibration", "x.scp")
    assert proc.returncode == 2 and "--calibration x.scp is for static quantisation: add --quantize int8" in proc.stderr


# The runtime must run where torch and ESPnet are not installed: they are made unimportable.
_NO_TORCH = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('torch', 'espnet', 'espnet2', 'torchaudio'):
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
from espnet_summarymixing.onnx_transcribe import main
code = main(sys.argv[1:])
assert not [m for m in sys.modules if m.split('.')[0] in ('torch', 'espnet', 'espnet2')]
sys.exit(code)
"""


def test_runtime_needs_neither_torch_nor_espnet(exported, data, tmp_path):
    from espnet_summarymixing.deploy.runtime import greedy_ctc, tokens_to_text

    model, onnx_dir = exported
    paths = [line.split()[1] for line in (data["test"] / "wav.scp").read_text().splitlines()]
    env = {**os.environ, "ESPNET_SUMMARYMIXING_AUTOLOAD": "0"}
    proc = subprocess.run([sys.executable, "-c", _NO_TORCH, "--model", str(onnx_dir), *paths],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert [line.split("\t")[0] for line in lines] == paths
    for path, line in zip(paths, lines):  # the same text as greedy CTC on PyTorch's log-probabilities
        wave = torch.tensor(soundfile.read(path, dtype="float32")[0])
        ref, _ = _pytorch_log_probs(model, wave[None], torch.tensor([len(wave)]))
        text = tokens_to_text([model.token_list[t] for t in greedy_ctc(ref[0].numpy())])
        assert line.split("\t")[1] == text
    assert any(line.split("\t")[1] for line in lines)  # the test model does emit tokens


def test_runtime_bad_files_stop_nothing(exported, data, tmp_path):
    _, onnx_dir = exported
    good = (data["test"] / "wav.scp").read_text().split()[1]
    wave, rate = soundfile.read(good, dtype="float32")
    soundfile.write(tmp_path / "at8k.wav", wave[::2], 8000)
    (tmp_path / "junk.wav").write_bytes(b"RIFF not really a wave file")
    soundfile.write(tmp_path / "tiny.wav", wave[:200], rate)  # 12.5 ms: shorter than the STFT's padding
    nan = wave.copy()
    nan[10] = np.nan
    soundfile.write(tmp_path / "nan.wav", nan, rate, subtype="FLOAT")
    files = [tmp_path / "missing.wav", tmp_path / "at8k.wav", tmp_path / "junk.wav", tmp_path / "tiny.wav",
             tmp_path / "nan.wav", good]
    proc = command("onnx_transcribe", "--model", onnx_dir, *files)
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == [f"{tmp_path / 'tiny.wav'}\t", *proc.stdout.splitlines()[1:]]
    assert proc.stdout.splitlines()[1].startswith(f"{good}\t")
    err = proc.stderr
    assert f"{tmp_path / 'missing.wav'}: error: no such file" in err
    assert f"{tmp_path / 'at8k.wav'}: error: sampled at 8000 Hz, but the model expects 16000 Hz" in err
    assert f"{tmp_path / 'junk.wav'}: error: not an audio file libsndfile can read" in err  # the one reader's words
    assert f"{tmp_path / 'tiny.wav'}: warning: too short for the model's front end" in err
    assert f"{tmp_path / 'nan.wav'}: error: 1 of its {len(wave)} samples are NaN or infinite" in err
    assert "4 of 6 files failed" in err


def test_runtime_bad_model_folders(exported, tmp_path):
    from espnet_summarymixing.deploy.runtime import OnnxRecognizer

    _, onnx_dir = exported
    with pytest.raises(FileNotFoundError, match="no manifest.json"):
        OnnxRecognizer(str(tmp_path))
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("manifest.json", "tokens.txt"):
        (broken / name).write_bytes((onnx_dir / name).read_bytes())
    (broken / "model.onnx").write_bytes((onnx_dir / "model.onnx").read_bytes()[:5000])  # cut short
    with pytest.raises(ValueError, match=r"model.onnx: not a loadable ONNX model"):
        OnnxRecognizer(str(broken))
    manifest = json.loads((onnx_dir / "manifest.json").read_text())
    del manifest["graphs"]["offline_int8"]
    (broken / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=r"no offline_int8 graph \(export with --quantize int8\)"):
        OnnxRecognizer(str(broken), int8=True)


def test_export_refuses_what_it_cannot_export(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        export(str(tmp_path / "nothing.zip"), str(tmp_path / "out"))
    offline = make_model(tmp_path / "offline")
    with pytest.raises(ExportError, match="--streaming needs a model trained to stream"):
        export(str(offline), str(tmp_path / "out"), streaming=True)
    with pytest.raises(ExportError, match="quantize='int4'"):
        export(str(offline), str(tmp_path / "out"), quantize="int4")
    assert not (tmp_path / "out" / "model.onnx").exists()


def test_export_refuses_espnet_encoders(tmp_path):
    from espnet_summarymixing.deploy.graphs import check_exportable
    from espnet2.asr.encoder.conformer_encoder import ConformerEncoder

    model, _ = load_asr_model(*(str(p) for p in _model_files(make_model(tmp_path / "m"))))
    model.encoder = ConformerEncoder(80, output_size=32, attention_heads=2, linear_units=32, num_blocks=1)
    with pytest.raises(ExportError, match="encoder is ConformerEncoder: only SummaryMixing encoders"):
        check_exportable(model)


def test_export_command_exit_status(tmp_path):
    def run(model):
        return command("export", "--model", model, "--output_dir", tmp_path / "out", "--cachedir", tmp_path / "cache")

    proc = run(tmp_path / "missing")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: cannot load the model: --model") and "no such file" in proc.stderr
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 this is not the rest of a zip")
    proc = run(tmp_path / "broken.zip")
    assert proc.returncode == 2 and "broken.zip" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_an_export_replaces_an_earlier_one_whole_and_refuses_a_foreign_folder(tmp_path):
    model_dir = make_model(tmp_path / "model")
    out = tmp_path / "out"
    export(str(model_dir), str(out), quantize="int8")
    assert (out / "model.int8.onnx").is_file()
    export(str(model_dir), str(out))  # without int8 now: the old int8 graph must not survive
    assert sorted(p.name for p in out.iterdir()) == ["feats_stats.npz", "manifest.json", "model.onnx", "tokens.txt"]
    assert "offline_int8" not in json.loads((out / "manifest.json").read_text())["graphs"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]  # no staging or old folder left
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"jpeg")
    with pytest.raises(ExportError, match="photos: a folder with other files in it, not an earlier export"):
        export(str(model_dir), str(foreign))
    assert sorted(p.name for p in foreign.iterdir()) == ["holiday.jpg"]
    for bad, message in ((dict(tolerance=float("nan")), "tolerance=nan: expected a positive finite number"),
                         (dict(chunk_size=4), "chunk_size=4 is for the streaming graph")):
        with pytest.raises(ExportError, match=message):
            export(str(model_dir), str(tmp_path / "new"), **bad)
    assert not (tmp_path / "new").exists()


STREAMING_CONF = {"conv_context": "chunk", "dynamic_chunk_training": True, "chunk_size_range": [1, 8]}


# The AN4 recipe's streaming configuration with a look-ahead, shrunk: its encoder keys but the tiny sizes
AN4_STREAMING = (ROOT / "egs2/an4/asr1/conf/tuning"
                 / "train_asr_summarymixing_conformer_e6_size144_mlp576_k15_chunk2-8_ahead2.yaml")
SIZES = ("output_size", "linear_units", "num_blocks", "cnn_module_kernel")


@pytest.fixture(scope="module", params=[*ENCODERS, "an4_streaming_lookahead"])
def exported_streaming(request, tmp_path_factory):
    root = tmp_path_factory.mktemp("stream_" + request.param)
    if request.param == "an4_streaming_lookahead":  # 2 frames past each chunk, through every graph and the runtime
        recipe = {k: v for k, v in yaml.safe_load(AN4_STREAMING.read_text())["encoder_conf"].items() if k not in SIZES}
        assert recipe["lookahead_frames"] == 2 and recipe["conv_context"] == "chunk"
        model_dir = make_model(root / "model", "summarymixing_conformer", **recipe)
    else:
        extra = {"merge_method": "concat"} if request.param == "summarymixing_branchformer" else {}
        model_dir = make_model(root / "model", request.param, **extra, **STREAMING_CONF)
    export(str(model_dir), str(root / "onnx"), streaming=True, chunk_size=4)
    return model_dir, root / "onnx"


def _long_wave(data, seconds):
    waves = [w.numpy() for w in _waves(data, "train")]
    one = np.concatenate(waves)
    return np.tile(one, int(np.ceil(seconds * 16000 / len(one))))[:int(seconds * 16000)]


def test_streaming_graph_equals_streaming_encoder_over_100_chunks(exported_streaming, data):
    import onnxruntime

    from espnet_summarymixing.streaming.encoder import StreamingEncoder

    model_dir, onnx_dir = exported_streaming
    model, _ = load_asr_model(*(str(p) for p in _model_files(model_dir)))
    model.eval()
    wave = torch.tensor(_long_wave(data, 18.0))[None]  # real speech, 112 chunks of 4 frames
    with torch.no_grad():
        feats, _ = model._extract_feats(wave, torch.tensor([wave.size(1)]))
        feats, _ = model.normalize(feats, torch.tensor([feats.size(1)]))
    stream = StreamingEncoder(model.encoder, chunk_size=4)
    ref = []
    for start in range(0, feats.size(1), 37):  # features arriving in uneven pieces
        ref.append(stream.accept(feats[:, start:start + 37]))
    ref.append(stream.finish())
    with torch.no_grad():
        ref = torch.log_softmax(model.ctc.ctc_lo(torch.cat(ref, dim=1)), dim=-1)[0].numpy()
    manifest = json.loads((onnx_dir / "manifest.json").read_text())["streaming"]
    session = onnxruntime.InferenceSession(str(onnx_dir / "streaming.onnx"), providers=["CPUExecutionProvider"])
    state = {s["name"]: np.zeros(s["shape"], dtype=np.float32) for s in manifest["state"]}
    got, position, chunks = [], 0, 0
    x = feats[0].numpy()
    chunk, lookahead = manifest["chunk_size"], manifest["lookahead_frames"]
    while len(x) >= 7:  # the last, partial chunks too (7 frames make one subsampled frame, 4 more one more)
        real = (len(x) - 3) // 4  # subsampled frames left
        frames = min(chunk, real)
        window = np.zeros((4 * (frames + lookahead) + 3, x.shape[1]), dtype=np.float32)  # the frames they need
        window[:len(x)] = x[:len(window)]
        ahead = {"ahead": np.array([min(lookahead, real - frames)])} if lookahead else {}
        out = session.run(None, {"feats": window[None], "position": np.array([position]), **ahead, **state})
        state = dict(zip(state, out[1:]))
        assert out[0].shape[1] == frames
        got.append(out[0][0])
        position += frames
        chunks += 1
        x = x[4 * frames:]
    got = np.concatenate(got)
    assert chunks >= 100
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-4)


def test_streaming_runtime_partials_equal_pytorch_streaming(exported_streaming, data):
    from espnet_summarymixing.deploy.runtime import OnnxStreamingRecognizer
    from espnet_summarymixing.streaming.recognizer import StreamingRecognizer

    model_dir, onnx_dir = exported_streaming
    wave = _long_wave(data, 6.0)
    ours = OnnxStreamingRecognizer(str(onnx_dir))
    reference = StreamingRecognizer(*load_asr_model(*(str(p) for p in _model_files(model_dir))), chunk_size=4)
    # every frame's log-probabilities, the last chunks' included, not only the text
    onnx_frames, torch_frames = [], []
    step, encoder = ours.step, reference.encoder

    class Recorded:
        def run(self, names, inputs):
            outputs = step.run(names, inputs)
            onnx_frames.append(outputs[0][0])
            return outputs

    def recorded(method):
        def run(*args):
            out = method(*args)
            torch_frames.append(torch.log_softmax(reference.model.ctc.ctc_lo(out), dim=-1)[0].detach().numpy())
            return out
        return run

    ours.step = Recorded()
    encoder.accept, encoder.finish = recorded(encoder.accept), recorded(encoder.finish)
    partials = []
    for start in range(0, len(wave), 1234):
        block = wave[start:start + 1234]
        partials.append((ours.accept_audio(block), reference.accept_audio(torch.tensor(block))))
    final = (ours.finish(), reference.finish())
    assert final[0] == final[1] and final[0]
    assert [a for a, _ in partials] == [b for _, b in partials]
    assert len({a for a, _ in partials}) > 3  # the hypothesis grows while the audio arrives
    np.testing.assert_allclose(np.concatenate(onnx_frames), np.concatenate(torch_frames), rtol=0, atol=1e-4)


def test_streaming_export_refuses_chunk_sizes_it_was_not_trained_for(exported_streaming, tmp_path):
    model_dir, _ = exported_streaming
    with pytest.raises(ExportError, match=r"chunk size 12: the model was trained for chunks of [12]\.\.8"):
        export(str(model_dir), str(tmp_path / "out"), streaming=True, chunk_size=12)
    with pytest.raises(ExportError, match=r"give a chunk size, one of [12]\.\.8"):
        export(str(model_dir), str(tmp_path / "out"), streaming=True)
    assert not (tmp_path / "out").exists()
    per_utterance = make_model(tmp_path / "utt", normalize="utterance_mvn", **STREAMING_CONF)
    with pytest.raises(ExportError, match="normalize=utterance_mvn needs the whole utterance"):
        export(str(per_utterance), str(tmp_path / "out"), streaming=True, chunk_size=4)
    assert not (tmp_path / "out").exists()


def test_streaming_command_and_offline_only_folders(exported_streaming, exported, data):
    model_dir, onnx_dir = exported_streaming
    good = (data["test"] / "wav.scp").read_text().split()[1]
    proc = command("onnx_transcribe", "--model", onnx_dir, "--streaming", "--show_partial", good)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lookahead = json.loads((onnx_dir / "manifest.json").read_text())["streaming"]["lookahead_frames"]
    # 4 frames of 40 ms and the look-ahead, 30 ms of subsampling look-ahead, 16 ms of half a window
    assert (f"chunk 4, look-ahead {lookahead}, algorithmic latency {206 + 40 * lookahead} ms; compute per chunk: "
            "median") in proc.stderr
    from espnet_summarymixing.streaming.recognizer import StreamingRecognizer

    reference = StreamingRecognizer(*load_asr_model(*(str(p) for p in _model_files(model_dir))), chunk_size=4)
    assert proc.stdout == f"{good}\t{reference.stream(torch.tensor(soundfile.read(good, dtype='float32')[0]), 1600)}\n"
    proc = command("onnx_transcribe", "--model_dir", exported[1], "--streaming", good)
    assert proc.returncode == 2 and "no streaming graph (export with --streaming)" in proc.stderr
    assert proc.stderr.startswith("warning: --model_dir is an old name of --model; use --model\n")  # still works


def test_packed_model_carries_its_onnx_files_and_card(exported, tmp_path):
    import zipfile

    from espnet_summarymixing.loading.models import resolve_model
    from espnet_summarymixing.publish.pack import pack_model

    model, onnx_dir = exported
    model_dir = onnx_dir.parent / "model"
    zip_path = pack_model(model_dir / "config.yaml", model_dir / "valid.acc.ave.pth", tmp_path / "model.zip",
                          onnx_dir=onnx_dir)
    names = zipfile.ZipFile(zip_path).namelist()
    for name in ("manifest.json", "model.onnx", "model.int8.onnx", "tokens.txt", "feats_stats.npz"):
        assert f"exp/asr_train/onnx/{name}" in names
    card = zipfile.ZipFile(zip_path).read("README.md").decode()
    assert "## Deploying with ONNX" in card and "| `exp/asr_train/onnx/model.int8.onnx` |" in card
    # the unpacked archive's ONNX folder transcribes without torch, like the exported one
    resolve_model(str(zip_path), str(tmp_path / "cache"))  # unpacked safely, as transcribe does
    (unpacked,) = [p.parent for p in (tmp_path / "cache").rglob("exp/asr_train/onnx/manifest.json")]
    from espnet_summarymixing.deploy.runtime import OnnxRecognizer

    wave = np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32)
    a = OnnxRecognizer(str(unpacked)).log_probs([wave])[0]
    b = OnnxRecognizer(str(onnx_dir)).log_probs([wave])[0]
    np.testing.assert_array_equal(a, b)
    # a folder whose manifest names a missing file is refused before anything is written
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("manifest.json", "tokens.txt"):  # the graphs are missing
        (broken / name).write_bytes((onnx_dir / name).read_bytes())
    with pytest.raises(FileNotFoundError, match=r"--onnx_dir .*graphs.offline: 'model.onnx' is not a file of the export folder"):
        pack_model(model_dir / "config.yaml", model_dir / "valid.acc.ave.pth", tmp_path / "b.zip", onnx_dir=broken)
    assert not (tmp_path / "b.zip").exists()


def test_wav_scp_in_kaldi_text_out(exported, data, tmp_path):
    _, onnx_dir = exported
    scp = data["test"] / "wav.scp"
    out = tmp_path / "hyp.txt"
    proc = command("onnx_transcribe", "--model", onnx_dir, "--wav_scp", scp, "--output", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ids = [line.split()[0] for line in scp.read_text().splitlines()]
    assert [line.split(" ", 1)[0] for line in out.read_text().splitlines()] == ids
    assert "real-time factor" in proc.stderr.splitlines()[-1]
    (tmp_path / "piped.scp").write_text("utt1 sox a.wav -t wav - |\n")
    proc = command("onnx_transcribe", "--model", onnx_dir, "--wav_scp", tmp_path / "piped.scp", "--output", out)
    assert proc.returncode == 1 and "piped.scp:1: error: a command (ending in '|'), not an audio file" in proc.stderr
    assert out.read_text() == ""  # the set had nothing else
