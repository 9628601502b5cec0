"""Every model kind x every command: each cell works (checked on its real output) or fails with exit
status 2 and one stderr line naming the command to use, never a traceback.

The kinds are tiny real models made once per session: an offline ASR model, a streaming-trained ASR
model and a classifier (random weights, ESPnet's trained format), each packed by the pack command
(the pack cells), and the ONNX folder the export command writes from the offline model (the export
cell). Commands run in this process (``main(argv)``): an exception other than an exit fails the test.

| command \\ kind | ASR | ASR trained to stream | classifier | ONNX folder |
|---|---|---|---|---|
| transcribe | works | works (decoded offline) | refused: classify | refused: onnx_transcribe |
| stream_decode | refused: transcribe (or --full_context, which works) | works | refused: classify | refused: onnx_transcribe --streaming |
| classify | refused: transcribe | refused: stream_decode | works | refused: onnx_transcribe |
| export | works | works, offline and with --streaming | refused: classify | refused: onnx_transcribe |
| onnx_transcribe | refused: export it, or transcribe | refused: export it, or transcribe | refused: classify | works |
| pack (training folder) | works | works | works | refused: pack --onnx_dir |
| upload --dry_run | works | works | works | refused: pack --onnx_dir |
"""

import argparse
import importlib
import importlib.util
from pathlib import Path

import pytest
import torch
import yaml

from conftest import ROOT, run_command

# Every kind of model is packed (and the ASR one exported) once per session: tens of seconds, the slow tier
SLOW_FIXTURES = ("packed", "exported", "models")

_spec = importlib.util.spec_from_file_location("tiny_asr_models", ROOT / "tests" / "deploy" / "tiny_asr_models.py")
tiny_asr_models = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tiny_asr_models)

STREAMING_CONF = dict(conv_context="chunk", dynamic_chunk_training=True, chunk_size_range=[1, 8], decode_chunk_size=4)
LABELS = ["yes", "no", "up"]


def make_classifier(out: Path, seed: int = 0) -> Path:
    """A classifier in ESPnet's trained format (``config.yaml``, ``valid.acc.ave.pth``): a SummaryMixing
    Conformer, mean pooling, three labels; random weights."""
    from espnet2.tasks.cls import CLSTask

    out.mkdir(parents=True, exist_ok=True)
    config = {
        "encoder": "summarymixing_conformer",
        "encoder_conf": dict(output_size=32, linear_units=64, num_blocks=2, cnn_module_kernel=7),
        "decoder": "linear", "decoder_conf": {"pooling": "mean"},
        "model_conf": {"classification_type": "multi-class"},
        "frontend_conf": dict(n_fft=512, win_length=400, hop_length=160, n_mels=80),
        "normalize": "utterance_mvn", "token_list": [*LABELS, "<unk>"], "input_size": None,
    }
    defaults = vars(CLSTask.get_parser().parse_args(["--token_list", "x", "--output_dir", str(out)]))
    args = argparse.Namespace(**{**defaults, **config})
    torch.manual_seed(seed)
    model = CLSTask.build_model(args)
    (out / "config.yaml").write_text(yaml.safe_dump(vars(args), sort_keys=False))
    torch.save(model.state_dict(), out / "valid.acc.ave.pth")
    return out


@pytest.fixture(scope="session")
def folders(tmp_path_factory):
    """{kind: training folder} of the three PyTorch kinds."""
    root = tmp_path_factory.mktemp("kinds")
    return {
        "asr": tiny_asr_models.make_model(root / "asr"),
        "streaming": tiny_asr_models.make_model(root / "streaming", **STREAMING_CONF),
        "classifier": make_classifier(root / "classifier"),
    }


@pytest.fixture(scope="session")
def packed(folders, tmp_path_factory):
    """{kind: (exit status, stdout, stderr, zip)} of the pack command on each training folder."""
    root = tmp_path_factory.mktemp("zips")
    runs = {}
    for kind, folder in folders.items():
        target = root / kind / "model.zip"
        runs[kind] = (*run_command("pack", "--model", folder, "--output", target), target)
    return runs


@pytest.fixture(scope="session")
def exported(packed, tmp_path_factory):
    """(exit status, stdout, stderr, folder) of the export command on the offline ASR zip."""
    root = tmp_path_factory.mktemp("onnx")
    target = root / "onnx_model"
    return (*run_command("export", "--model", packed["asr"][3], "--output_dir", target, "--cachedir", root / "cache"),
            target)


@pytest.fixture(scope="session")
def models(packed, exported):
    """{kind: what --model is given for that kind}: the zips, and the ONNX folder."""
    return {**{kind: run[3] for kind, run in packed.items()}, "onnx": exported[3]}


@pytest.fixture(scope="session")
def clips(data):
    """Three real AN4 test recordings (16 kHz flac) and a wav.scp listing them."""
    lines = (data["test"] / "wav.scp").read_text().splitlines()
    return [line.split(maxsplit=1) for line in lines], data["test"] / "wav.scp"


@pytest.fixture(scope="session")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


KINDS = ("asr", "streaming", "classifier", "onnx")
COMMANDS = ("transcribe", "stream_decode", "classify", "export", "onnx_transcribe", "pack", "upload")
STREAM = "use python -m espnet_summarymixing.transcribe (or stream_decode --full_context for greedy CTC over the whole utterance)"
EXPORT_FIRST = "export it first (python -m espnet_summarymixing.export), or use python -m espnet_summarymixing.transcribe"
PACK_ONNX = "python -m espnet_summarymixing.pack --model <training folder> --onnx_dir <this folder>"
# (command, kind): the one stderr line after "error: <model> is "
REFUSED = {
    ("transcribe", "classifier"): "a classifier: use python -m espnet_summarymixing.classify",
    ("transcribe", "onnx"): "an ONNX export: use python -m espnet_summarymixing.onnx_transcribe",
    ("stream_decode", "asr"): f"an ASR model: it was not trained to stream: {STREAM}",
    ("stream_decode", "classifier"): "a classifier: use python -m espnet_summarymixing.classify",
    ("stream_decode", "onnx"): "an ONNX export: use python -m espnet_summarymixing.onnx_transcribe --streaming",
    ("classify", "asr"): "an ASR model: use python -m espnet_summarymixing.transcribe",
    ("classify", "streaming"): "an ASR model trained to stream: use python -m espnet_summarymixing.stream_decode",
    ("classify", "onnx"): "an ONNX export: use python -m espnet_summarymixing.onnx_transcribe",
    ("export", "classifier"): "a classifier: ONNX export is for ASR models; use python -m espnet_summarymixing.classify",
    ("export", "onnx"): "an ONNX export: already exported; use python -m espnet_summarymixing.onnx_transcribe",
    ("onnx_transcribe", "asr"): f"an ASR model: {EXPORT_FIRST}",
    ("onnx_transcribe", "streaming"): f"an ASR model trained to stream: {EXPORT_FIRST}",
    ("onnx_transcribe", "classifier"): "a classifier: use python -m espnet_summarymixing.classify",
    ("pack", "onnx"): f"an ONNX export: pack it with its model: {PACK_ONNX}",
    ("upload", "onnx"): f"an ONNX export: pack it with its model first: {PACK_ONNX}",
}
# the cells that work, each checked by the test named
WORKS = {
    ("transcribe", "asr"): "test_transcribe", ("transcribe", "streaming"): "test_transcribe",
    ("stream_decode", "streaming"): "test_stream_decode_streams",
    ("classify", "classifier"): "test_classify",
    ("export", "asr"): "test_export_and_onnx_transcribe", ("onnx_transcribe", "onnx"): "test_export_and_onnx_transcribe",
    ("export", "streaming"): "test_streaming_export_and_streamed_onnx_decoding",
    **{("pack", kind): "test_pack" for kind in ("asr", "streaming", "classifier")},
    **{("upload", kind): "test_upload_dry_run" for kind in ("asr", "streaming", "classifier")},
}


def test_the_matrix_has_every_cell_once():
    cells = {(c, k) for c in COMMANDS for k in KINDS}
    assert set(REFUSED) | set(WORKS) == cells and not set(REFUSED) & set(WORKS)
    assert all(name in globals() for name in WORKS.values())


def _argv(command, model, tmp_path, cache, wavs, scp):
    return {
        "transcribe": ["--decoding", "greedy", "--mode", "one_pass", "--word_pause_seconds", "0", *wavs],
        "stream_decode": ["--list", scp, "--output", tmp_path / "out" / "text", "--block_seconds", "0.5"],
        "classify": ["--top_k", "3", *wavs],
        "export": ["--output_dir", tmp_path / "out"],
        "onnx_transcribe": wavs,
        "pack": ["--output", tmp_path / "out" / "model.zip"],
        "upload": ["--repo", "me/tiny", "--dry_run", tmp_path / "out"],
    }[command] + ([] if command == "pack" else ["--cachedir", cache]) + ["--model", model]


@pytest.mark.parametrize("command, kind", sorted(REFUSED))
def test_refused(command, kind, models, folders, clips, cache, tmp_path):
    pairs, scp = clips
    model = folders[kind] if command == "pack" and kind != "onnx" else models[kind]
    status, out, err = run_command(command, *_argv(command, model, tmp_path, cache, [p for _, p in pairs], scp))
    assert status == 2, (out, err)
    assert err.splitlines() == [f"error: {model} is {REFUSED[command, kind]}"]
    assert out == "" and not (tmp_path / "out").exists()


def _wave(path):
    from espnet_summarymixing.loading.audio import load_audio

    return load_audio(path, 16000)


def _loaded(folder):
    from espnet_summarymixing.loading.kinds import inspect_model, load_model

    return load_model(inspect_model(str(folder)))


def _greedy(model, args, wave) -> str:
    """Greedy CTC over the model's own forward (with its decode_chunk_size): the reference text."""
    from espnet2.text.build_tokenizer import build_tokenizer
    from espnet2.text.token_id_converter import TokenIDConverter

    with torch.no_grad():
        enc, _ = model.encode(wave[None], torch.tensor([wave.numel()]))
    enc = enc[0] if isinstance(enc, tuple) else enc
    best = model.ctc.argmax(enc)[0].tolist()
    ids = [t for i, t in enumerate(best) if t != 0 and (i == 0 or t != best[i - 1])]
    tokens = TokenIDConverter(token_list=args.token_list).ids2tokens(ids)
    return build_tokenizer(token_type=args.token_type, bpemodel=args.bpemodel).tokens2text(tokens)


@pytest.mark.parametrize("kind", ["asr", "streaming"])
def test_transcribe(kind, models, folders, clips, cache, tmp_path):
    pairs, _ = clips
    status, out, err = run_command("transcribe", *_argv("transcribe", models[kind], tmp_path, cache,
                                                    [p for _, p in pairs], None))
    assert status == 0, err
    model, args = _loaded(folders[kind])
    assert out == "".join(f"{path}\t{_greedy(model, args, _wave(path))}\n" for _, path in pairs)
    assert any(line.split("\t")[1] for line in out.splitlines())  # the tiny model does emit tokens


def test_stream_decode_streams(models, folders, clips, cache, tmp_path):
    from espnet_summarymixing.streaming.recognizer import StreamingRecognizer, full_context_text

    pairs, scp = clips
    status, out, err = run_command("stream_decode", *_argv("stream_decode", models["streaming"], tmp_path, cache, [], scp))
    assert status == 0, err
    rec = StreamingRecognizer(*_loaded(folders["streaming"]))
    assert (tmp_path / "out" / "text").read_text() == "".join(
        f"{key} {rec.stream(_wave(path), 8000)}".rstrip() + "\n" for key, path in pairs)
    # an offline model is refused above; with --full_context it decodes
    status, out, err = run_command("stream_decode", "--model", models["asr"], "--cachedir", cache, "--full_context",
                               *[path for _, path in pairs])
    assert status == 0, err
    model, args = _loaded(folders["asr"])
    assert out == "".join(f"{path}\t{full_context_text(model, args, _wave(path))}\n" for _, path in pairs)


def test_classify(models, clips, cache, tmp_path):
    pairs, _ = clips
    status, out, err = run_command("classify", *_argv("classify", models["classifier"], tmp_path, cache,
                                                  [p for _, p in pairs], None))
    assert status == 0, err
    lines = out.splitlines()
    assert [line.split(" → ")[0] for line in lines] == [path for _, path in pairs]
    for line in lines:
        ranked = [item.rsplit(" (", 1) for item in line.split(" → ")[1].split(", ")]
        assert sorted(label for label, _ in ranked) == sorted(LABELS)
        probabilities = [float(p[:-1]) for _, p in ranked]
        assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) == pytest.approx(1, abs=2e-3)


def test_export_and_onnx_transcribe(exported, folders, clips, cache):
    import json

    from espnet_summarymixing.streaming.recognizer import full_context_text

    status, out, err, folder = exported
    assert status == 0, err
    assert out == f"{folder}\n"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["check"]["max_abs_difference"] < 1e-3
    pairs, _ = clips
    status, out, err = run_command("onnx_transcribe", "--model", folder, *[path for _, path in pairs])
    assert status == 0, err
    model, args = _loaded(folders["asr"])
    assert out == "".join(f"{path}\t{full_context_text(model, args, _wave(path))}\n" for _, path in pairs)


@pytest.mark.slow
def test_streaming_export_and_streamed_onnx_decoding(models, folders, clips, cache, tmp_path):
    from espnet_summarymixing.streaming.recognizer import StreamingRecognizer

    status, out, err = run_command("export", "--model", models["streaming"], "--output_dir", tmp_path / "onnx",
                               "--streaming", "--chunk_size", "4", "--cachedir", cache)
    assert status == 0, err
    pairs, scp = clips
    status, out, err = run_command("onnx_transcribe", "--model", tmp_path / "onnx", "--streaming", "--list", scp)
    assert status == 0, err
    rec = StreamingRecognizer(*_loaded(folders["streaming"]), chunk_size=4)
    assert out == "".join(f"{key}\t{rec.stream(_wave(path), 1600)}\n" for key, path in pairs)


@pytest.mark.parametrize("kind", ["asr", "streaming", "classifier"])
def test_pack(kind, packed):
    import zipfile

    status, out, err, target = packed[kind]
    assert status == 0, err
    assert out == f"packed: {target.absolute()}\n"
    folder = "exp/cls_train" if kind == "classifier" else "exp/asr_train"
    names = zipfile.ZipFile(target).namelist()
    assert {"meta.yaml", "README.md", f"{folder}/config.yaml", f"{folder}/model.pth"} <= set(names)


@pytest.mark.parametrize("kind", ["asr", "streaming", "classifier"])
def test_upload_dry_run(kind, models, cache, tmp_path):
    status, out, err = run_command("upload", *_argv("upload", models[kind], tmp_path, cache, [], None))
    assert status == 0, err
    assert out.startswith(f"dry run: ") and "would be pushed to me/tiny" in out
    card = (tmp_path / "out" / "README.md").read_text()
    if kind == "classifier":
        assert "classifier with a SummaryMixing encoder" in card and "Classification(**files)" in card
    else:
        assert 'Speech2Text.from_pretrained("me/tiny")' in card
    assert (tmp_path / "out" / "meta.yaml").is_file()


def test_upload_refuses_a_model_that_is_not_packed(folders, cache):
    status, out, err = run_command("upload", "--model", folders["classifier"], "--repo", "me/x", "--cachedir", cache)
    assert status == 2 and err.splitlines() == [
        f"error: {folders['classifier']} is a classifier in a training folder, not a packed zip: pack it first "
        "with python -m espnet_summarymixing.pack"]


def test_a_command_prints_no_start_up_noise(models, clips, cache):
    """In a fresh interpreter, as a user runs it: no nltk download errors, no ESPnet notices."""
    import subprocess
    import sys

    pairs, _ = clips
    proc = subprocess.run([sys.executable, "-m", "espnet_summarymixing.classify", "--model", models["classifier"],
                           "--cachedir", cache, pairs[0][1]], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr == "", proc.stderr
    assert proc.stdout.startswith(f"{pairs[0][1]} → ")
