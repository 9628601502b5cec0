"""A tampered export folder: every manifest field checked, every file it names confined to the folder,
one message naming the field (no export needed: the manifest is read before any graph)."""

import json
from pathlib import Path

import pytest

from espnet_summarymixing.loading.manifest import manifest_files, read_manifest, read_tokens

STREAMING = {"chunk_size": 4, "input_frames": 23, "input_frames_per_chunk": 16, "subsampling_steps": [[2, 2], [2, 2]],
             "n_fft": 512, "hop_length": 128, "state": [{"name": "state_0", "shape": [1, 2, 8]}]}


def _folder(tmp_path: Path, **changes) -> Path:
    root = tmp_path / "onnx"
    root.mkdir(exist_ok=True)
    for name in ("model.onnx", "features.onnx", "streaming.onnx"):
        (root / name).write_bytes(b"graph")
    (root / "tokens.txt").write_text("<blank>\na\nb\n<sos/eos>\n")
    manifest = {"graphs": {"offline": "model.onnx", "features": "features.onnx", "streaming": "streaming.onnx"},
                "sample_rate": 16000, "token_list": "tokens.txt", "blank_id": 0, "streaming": dict(STREAMING)}
    for key, value in changes.items():
        target, *path = key.split("__")
        if path:
            manifest[target][path[0]] = value
        else:
            manifest[target] = value
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def test_a_good_manifest_reads(tmp_path):
    root = _folder(tmp_path)
    manifest = read_manifest(root, "streaming")
    assert read_tokens(root, manifest) == ["<blank>", "a", "b", "<sos/eos>"]
    assert [p.name for p in manifest_files(root)] == ["manifest.json", "model.onnx", "features.onnx",
                                                      "streaming.onnx", "tokens.txt"]


CASES = {
    "token_list outside": ({"token_list": "../../outside/secret.txt"}, "token_list: '../../outside/secret.txt' "
                                                                          "points outside the export folder"),
    "absolute token_list": ({"token_list": "/etc/hostname"}, "token_list: '/etc/hostname' points outside"),
    "graph outside": ({"graphs": {"offline": "../other.onnx"}}, r"graphs.offline: '../other.onnx' points outside"),
    "absolute graph": ({"graphs": {"offline": "/tmp/x.onnx"}}, r"graphs.offline: '/tmp/x.onnx' points outside"),
    "graph not a string": ({"graphs": {"offline": 3}}, r"graphs.offline: expected a path inside the export folder"),
    "no graphs": ({"graphs": []}, r"graphs: expected an object"),
    "sample rate zero": ({"sample_rate": 0}, r"sample_rate: expected an integer from 1000 to 384000, got 0"),
    "sample rate text": ({"sample_rate": "16k"}, r"sample_rate: expected an integer"),
    "blank id negative": ({"blank_id": -1}, r"blank_id: expected an integer of at least 0, got -1"),
    "zero per chunk": ({"streaming__input_frames_per_chunk": 0}, r"input_frames_per_chunk: expected an integer "
                                                                 r"from 1 to 23, got 0"),
    "hop zero": ({"streaming__hop_length": 0}, r"hop_length: expected an integer from 1 to 512, got 0"),
    "huge state": ({"streaming__state": [{"name": "s", "shape": [100000, 100000, 100]}]},
                   r"state\[0\]: shape \[100000, 100000, 100\] holds .* not a real model's state"),
    "bad state": ({"streaming__state": [{"name": "s", "shape": [-1]}]}, r"state\[0\]: expected"),
    "bad steps": ({"streaming__subsampling_steps": [[2, 0]]}, r"subsampling_steps: expected"),
    "no streaming": ({"streaming": None}, r"streaming: expected the streaming graph's settings"),
}


@pytest.mark.parametrize("case", CASES)
def test_a_tampered_manifest_is_refused_naming_the_field(tmp_path, case):
    changes, message = CASES[case]
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("secret\n")
    root = _folder(tmp_path, **changes)
    with pytest.raises(ValueError, match=message):
        read_manifest(root, "streaming")
    if "outside" in case or "absolute" in case:  # what pack --onnx_dir would pack
        with pytest.raises(ValueError, match=message):
            manifest_files(root)


def test_tokens_and_json_errors_are_messages(tmp_path):
    root = _folder(tmp_path)
    (root / "tokens.txt").write_text("")
    with pytest.raises(ValueError, match="token_list is empty"):
        read_tokens(root, read_manifest(root))
    (root / "tokens.txt").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ValueError, match="not UTF-8"):
        read_tokens(root, read_manifest(root))
    root = _folder(tmp_path, blank_id=3)
    (root / "tokens.txt").write_text("<blank>\n")
    with pytest.raises(ValueError, match="blank_id 3 is not one of its 1 tokens"):
        read_tokens(root, read_manifest(root))
    (root / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_manifest(root)
    (root / "manifest.json").write_text(json.dumps({"graphs": {"offline": "model.onnx"}, "sample_rate": 16000,
                                                    "token_list": "tokens.txt"}))
    with pytest.raises(ValueError, match=r"no streaming graph \(export with --streaming\)"):
        read_manifest(root, "streaming")
    with pytest.raises(FileNotFoundError, match="no manifest.json"):
        read_manifest(tmp_path)


def test_the_runtime_refuses_a_tampered_folder_before_loading_a_graph(tmp_path):
    pytest.importorskip("onnxruntime")
    from espnet_summarymixing.deploy.runtime import OnnxRecognizer, OnnxStreamingRecognizer

    with pytest.raises(ValueError, match="token_list: '/etc/hostname' points outside"):
        OnnxRecognizer(str(_folder(tmp_path, token_list="/etc/hostname")))
    with pytest.raises(ValueError, match="input_frames_per_chunk: expected an integer from 1 to 23, got 0"):
        OnnxStreamingRecognizer(str(_folder(tmp_path, streaming__input_frames_per_chunk=0)))
    with pytest.raises(ValueError, match="threads=3000000000: expected an integer from 1 to 1024"):
        OnnxRecognizer(str(_folder(tmp_path)), threads=3000000000)
