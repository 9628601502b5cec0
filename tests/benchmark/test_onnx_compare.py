"""onnxruntime against PyTorch on the same model (``--onnx``): offline, streamed, file sizes.

Chunks of 16 frames (640 ms): the tool streams a minute, 93 chunks of them instead of 750 of 80 ms."""

import json

import pytest

from espnet_summarymixing.benchmark import main

pytestmark = pytest.mark.slow  # exports and times both runtimes


@pytest.mark.slow  # ONNX exports (offline float32 + int8, streaming step) and a minute of stream in each runtime
def test_onnx_mode_measures_both_runtimes(tmp_path):
    assert main(["--onnx", "--size", "16", "--blocks", "1", "--kernel", "3", "--vocabulary", "20",
                 "--onnx_lengths", "1", "--chunk_sizes", "16", "--repeats", "1", "--output_dir", str(tmp_path)]) == 0
    table = (tmp_path / "onnx.md").read_text()
    assert "| 1 s offline (RTF) |" in table and "| 640 ms chunks (ms per chunk) |" in table
    assert "MB float32" in table and "MB int8" in table
    results = json.loads((tmp_path / "onnx.json").read_text())["results"]
    assert [sorted(r) for r in results] == [["float32", "int8", "model", "pytorch", "seconds"],
                                            ["chunk", "model", "onnx_ms", "pytorch_ms"]]
