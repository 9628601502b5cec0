"""The speed results as written: ratios against each family's baseline, the targets, the Markdown
table and the plot, from rows made up here."""

from espnet_summarymixing.benchmark.systems import SYSTEMS
from espnet_summarymixing.benchmark.tables import add_ratios, format_table, plot, target_report


def _row(system, seconds, step, mem, status="ok"):
    family, role = SYSTEMS[system][:2]
    return dict(family=family, system=system, role=role, seconds=seconds, frames=100 * seconds,
                batch_size=1, status=status, train_step_s=step, peak_memory_mb=mem,
                rtf=step / seconds if step else None)


def _rows():
    return [_row("conformer_selfattn", 20, 2.0, 100.0), _row("conformer_summarymixing", 20, 1.0, 40.0),
            _row("conformer_selfattn_sdpa", 20, 1.25, 50.0),
            _row("conformer_no_mixing", 20, 0.8, 30.0), _row("conformer_selfattn", 60, None, None, "out_of_memory"),
            _row("conformer_summarymixing", 60, 3.0, 120.0)]


def test_ratios_and_targets_from_rows():
    rows = _rows()
    add_ratios(rows)
    assert rows[1]["train_ratio"] == 0.5 and rows[1]["memory_ratio"] == 0.4
    assert rows[1]["sdpa_train_ratio"] == 0.8 and rows[1]["sdpa_memory_ratio"] == 0.8
    assert rows[1]["train_ms_per_frame"] == 1000 * 1.0 / 2000
    assert rows[5]["train_ratio"] is None  # no baseline at 60 s: no ratio, no crash
    report = target_report(rows)
    assert "train step vs self-attention at 20 s: 0.50 (target <= 0.75) met" in report
    assert "train step vs no-mixing lower bound at 20 s: 1.25 (target <= 1.1) MISSED" in report
    assert not any("SDPA" in line for line in report)  # the GPU targets: only for a CUDA run


def test_table_shows_every_row_and_its_status():
    rows = _rows()
    add_ratios(rows)
    rows[1]["kernels_per_step"] = 321
    table = format_table(rows).splitlines()
    assert len(table) == 2 + len(rows)
    assert table[3].startswith("| conformer | conformer_summarymixing | 20 | 1 |") and "| 0.50 | 0.80 |" in table[3]
    assert " / 321 |" in table[3] and table[6].endswith("| out_of_memory |")


def test_plot_draws_every_family(tmp_path):
    rows = _rows() + [_row("branchformer_selfattn", 20, 2.0, 90.0), _row("branchformer_summarymixing", 20, 1.0, 30.0)]
    plot(rows, tmp_path / "results.png")
    png = (tmp_path / "results.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
