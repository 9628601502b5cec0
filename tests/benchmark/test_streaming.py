"""The per-chunk compute of a streamed Conformer over a long stream (``--streaming``)."""

import pytest

from espnet_summarymixing.benchmark import main


@pytest.mark.parametrize("conv", ["chunk", "causal"])
def test_chunk_compute_measurement_runs(capsys, conv):
    args = ["--streaming", "--stream_seconds", "1.2", "--chunk_sizes", "2,4", "--size", "16", "--blocks", "1", "--conv", conv]
    assert main(args) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "ms |" in line]
    assert len(rows) == 2 and rows[0].startswith("| 80 ms |") and rows[1].startswith("| 160 ms |")
    state = [int(row.rstrip(" |").rsplit("| ", 1)[1].replace(",", "")) for row in rows]
    assert state[0] == state[1] > 0  # the state does not grow with the chunk
