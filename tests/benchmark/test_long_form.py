"""One-pass transcription of a long recording, measured in a worker process (``--long_form``)."""

import json

import pytest

from espnet_summarymixing.benchmark import main

pytestmark = pytest.mark.slow  # one worker process per system and length


def test_long_form_mode_measures_memory_and_rtf(tmp_path):
    assert main(["--long_form", "--long_seconds", "3", "--systems", "conformer_summarymixing", "--size", "16",
                 "--blocks", "1", "--units", "16", "--kernel", "3", "--heads", "2", "--vocabulary", "20",
                 "--threads", "1", "--output_dir", str(tmp_path)]) == 0
    assert "| conformer_summarymixing | 0.05 | ok |" in (tmp_path / "long_form.md").read_text()
    [result] = json.loads((tmp_path / "long_form.json").read_text())["results"]
    assert result["status"] == "ok" and result["rtf"] > 0 and result["peak_memory_mb"] >= result["above_idle_mb"] >= 0
    assert result["params"] > 0 and result["minutes"] == 0.05
