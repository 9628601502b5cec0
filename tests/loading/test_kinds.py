"""A model's kind is read from its files and config before anything is built: no torch, whatever
spelling its config uses."""

import subprocess
import sys
import zipfile

import pytest
import yaml

from conftest import ROOT
from espnet_summarymixing.loading.kinds import inspect_files, inspect_model, kind_of
from espnet_summarymixing.loading.models import task_of

FIXTURE = ROOT / "tests" / "fixtures" / "pre_layout_model" / "model.zip"
ASR = {"encoder": "summarymixing_conformer", "decoder": "transformer", "ctc_conf": {"dropout_rate": 0.0}}


@pytest.mark.parametrize("encoder_conf, kind", [
    ({}, "asr"),
    ({"decode_chunk_size": 0, "dynamic_chunk_training": False}, "asr"),
    ({"conv_context": "chunk", "dynamic_chunk_training": True, "chunk_size_range": [1, 8]}, "streaming"),
    ({"chunk_conv": True, "dynamic_chunk_training": True}, "streaming"),  # the old spelling
    ({"causal_conv": True, "decode_chunk_size": 8}, "streaming"),
    ({"conv_context": "causal", "decode_chunk_size": 16}, "streaming"),
    ({"conv_context": "chunk"}, "asr"),  # streamable convolutions, but never trained on chunks
])
def test_the_kind_of_an_asr_config(encoder_conf, kind):
    assert kind_of({**ASR, "encoder_conf": encoder_conf}) == kind


def test_espnets_own_streaming_conformer_is_not_ours_to_stream():
    assert kind_of({**ASR, "encoder": "contextual_block_conformer", "encoder_conf": {"block_size": 16}}) == "asr"


def test_a_classifier_config_has_no_asr_keys():
    config = {"encoder": "summarymixing_conformer", "decoder": "linear", "token_type": "word",
              "model_conf": {"classification_type": "multi-class"}, "encoder_conf": {"decode_chunk_size": 4}}
    assert task_of(config) == "cls" and kind_of(config) == "classifier"
    assert kind_of(ASR, task="cls") == "classifier"  # the packed files name the task: they win


def test_a_packed_model_a_training_folder_and_an_onnx_folder(tmp_path):
    source = inspect_model(str(FIXTURE), str(tmp_path / "cache"))
    assert (source.kind, source.form, source.task) == ("asr", "archive", "asr")
    assert source.train_config.endswith(".yaml") and source.model_file.endswith("model.pth")
    with zipfile.ZipFile(FIXTURE) as zf:
        zf.extractall(tmp_path / "unpacked")
    train = tmp_path / "exp"
    train.mkdir()
    config = yaml.safe_load((tmp_path / "unpacked" / "exp" / "asr_train" / "config.yaml").read_text())
    # the same config without the ASR task's keys and with a classifier's decoder
    (train / "config.yaml").write_text(yaml.safe_dump({**{k: v for k, v in config.items() if k not in ("ctc_conf", "joint_net_conf")},
                                                       "decoder": "linear"}))
    (train / "valid.acc.best.pth").write_bytes(b"")
    source = inspect_model(str(train))
    assert (source.kind, source.form) == ("classifier", "training folder")
    assert set(source.files) == {"classification_train_config", "classification_model_file"}
    onnx = tmp_path / "onnx"
    onnx.mkdir()
    (onnx / "manifest.json").write_text("{}")
    assert inspect_model(str(onnx)).kind == "onnx"
    given = inspect_files(str(train / "config.yaml"), str(train / "valid.acc.best.pth"), "asr")
    assert given.kind == "asr" and given.train_config == str(train / "config.yaml")
    with pytest.raises(FileNotFoundError, match="--asr_model_file .*missing.pth: no such file"):
        inspect_files(str(train / "config.yaml"), str(train / "missing.pth"), "asr")


def test_telling_the_kind_imports_no_torch(tmp_path):
    code = (f"import sys\nfrom espnet_summarymixing.loading.kinds import inspect_model\n"
            f"print(inspect_model({str(FIXTURE)!r}, {str(tmp_path)!r}).kind)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'espnet', 'espnet2')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.split() == ["asr", "[]"], proc.stderr
