"""Operator counts of the cell and of each encoder (``--ops``)."""

from espnet_summarymixing.benchmark import main


def test_ops_mode_counts_the_cell_and_each_encoder(tmp_path):
    assert main(["--ops", "--quick", "--lengths", "1", "--dtype", "bf16", "--output_dir", str(tmp_path),
                 "--systems", "conformer_summarymixing,conformer_no_mixing"]) == 0
    text = (tmp_path / "ops.md").read_text()
    assert text.startswith("Command: `python -m espnet_summarymixing.benchmark --ops --quick")
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 4 and cells[2].replace(",", "").isdigit():
            rows[cells[0], cells[1]] = int(cells[2].replace(",", ""))
    assert set(rows) == {(m, d) for m in ("SummaryMixing cell", "conformer_summarymixing", "conformer_no_mixing")
                         for d in ("fp32", "bf16")}
    for dtype in ("fp32", "bf16"):
        # the encoder without its mixing blocks makes fewer calls; the difference is about one cell per block
        assert 0 < rows["conformer_no_mixing", dtype] < rows["conformer_summarymixing", dtype]
    assert rows["SummaryMixing cell", "bf16"] > rows["SummaryMixing cell", "fp32"]  # autocast's casts
