"""The benchmark command runs end to end and writes complete, well-formed results.

Timings are not checked here (they belong to the benchmark itself, never to a test)."""

import csv
import json
import subprocess
import sys

import pytest

from espnet_summarymixing import benchmark


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run([sys.executable, "-m", "espnet_summarymixing.benchmark", "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out, proc.stdout


def test_quick_run_measures_every_system_at_every_length(quick_run):
    out, stdout = quick_run
    with (out / "results.csv").open() as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == benchmark.FIELDS
        rows = list(reader)
    assert sorted((r["system"], float(r["seconds"])) for r in rows) == sorted(
        (s, float(n)) for s in benchmark.SYSTEMS for n in (1, 2)
    )
    for r in rows:
        assert r["status"] == "ok", r
        for key in ("train_step_s", "peak_memory_mb", "rtf", "train_ratio", "memory_ratio", "rtf_ratio",
                    "train_ms_per_frame"):
            assert float(r[key]) >= 0, (key, r)
        assert int(r["params"]) > 0 and int(r["frames"]) == 100 * int(float(r["seconds"]))
        if r["role"] == "baseline":
            assert float(r["train_ratio"]) == float(r["memory_ratio"]) == float(r["rtf_ratio"]) == 1.0
    total = 2 * len(benchmark.SYSTEMS)
    assert f"[{total}/{total}]" in stdout  # progress, one line per measurement
    ops = {(r["system"], r["seconds"]): int(r["ops_per_step"]) for r in rows}
    for seconds in ("1.0", "2.0"):  # the profiler counts what runs: the mixing block adds operators
        assert ops[("conformer_summarymixing", seconds)] > ops[("conformer_no_mixing", seconds)] > 0
    sdpa = [r for r in rows if r["system"] == "conformer_summarymixing"]
    assert all(float(r["sdpa_train_ratio"]) > 0 and float(r["train_step_median_s"]) >= float(r["train_step_s"])
               for r in sdpa)


def test_quick_run_writes_table_plot_and_environment(quick_run):
    out, _ = quick_run
    table = (out / "results.md").read_text()
    conformers = sum(v[0] == "conformer" for v in benchmark.SYSTEMS.values())
    assert table.count("| conformer | ") == 2 * conformers and "×base" in table and "Environment:" in table
    png = (out / "results.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    env = json.loads((out / "environment.json").read_text())
    assert {"python", "torch", "device", "threads", "cpu_count"} <= set(env)


def test_autocast_and_audio_per_step(tmp_path):
    spec = dict(system="conformer_summarymixing", seconds=1, batch_size=3, device="cpu", threads=1, size=16,
                blocks=1, units=16, kernel=3, heads=2, warmup=0, repeats=2, dtype="bf16")
    result = benchmark.run_worker(spec)
    assert result["status"] == "ok" and result["batch_size"] == 3 and result["ops_per_step"] > 0
    assert benchmark.main(["--audio_per_step", "2.5", "--lengths", "1", "--systems", "conformer_selfattn_sdpa",
                           "--size", "16", "--blocks", "1", "--units", "16", "--kernel", "3", "--heads", "2",
                           "--repeats", "1", "--no-plot", "--out", str(tmp_path)]) == 0
    table = (tmp_path / "results.md").read_text()
    assert "| conformer | conformer_selfattn_sdpa | 1 | 2 |" in table  # 2.5 s of audio: two 1-s utterances


def test_onnx_mode_measures_both_runtimes(tmp_path, capsys):
    assert benchmark.main(["--onnx", "--size", "16", "--blocks", "1", "--kernel", "3", "--vocabulary", "20",
                           "--onnx_lengths", "1", "--chunk_sizes", "2", "--repeats", "1", "--out", str(tmp_path)]) == 0
    table = (tmp_path / "onnx.md").read_text()
    assert "| 1 s offline (RTF) |" in table and "| 80 ms chunks (ms per chunk) |" in table
    assert "MB float32" in table and "MB int8" in table


def test_ops_mode_counts_the_cell_and_each_encoder(tmp_path):
    assert benchmark.main(["--ops", "--quick", "--lengths", "1", "--dtype", "bf16", "--out", str(tmp_path),
                           "--systems", "conformer_summarymixing,conformer_no_mixing"]) == 0
    rows = {}
    for line in (tmp_path / "ops.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 4 and cells[2].replace(",", "").isdigit():
            rows[cells[0], cells[1]] = int(cells[2].replace(",", ""))
    assert set(rows) == {(m, d) for m in ("SummaryMixing cell", "conformer_summarymixing", "conformer_no_mixing")
                         for d in ("fp32", "bf16")}
    for dtype in ("fp32", "bf16"):
        # the encoder without its mixing blocks makes fewer calls; the difference is about one cell per block
        assert 0 < rows["conformer_no_mixing", dtype] < rows["conformer_summarymixing", dtype]
    assert rows["SummaryMixing cell", "bf16"] > rows["SummaryMixing cell", "fp32"]  # autocast's casts


def test_out_of_memory_is_a_result_not_a_crash():
    spec = dict(system="conformer_summarymixing", seconds=1, batch_size=10**9, device="cpu", threads=1,
                size=16, blocks=1, units=16, kernel=3, heads=2, warmup=0, repeats=1)
    assert benchmark._spawn(spec, timeout=300)["status"] == "out_of_memory"


def test_ratios_and_targets_from_rows():
    def row(system, seconds, step, mem, status="ok"):
        family, role = benchmark.SYSTEMS[system][:2]
        return dict(family=family, system=system, role=role, seconds=seconds, frames=100 * seconds,
                    batch_size=1, status=status, train_step_s=step, peak_memory_mb=mem,
                    rtf=step / seconds if step else None)

    rows = [row("conformer_selfattn", 20, 2.0, 100.0), row("conformer_summarymixing", 20, 1.0, 40.0),
            row("conformer_selfattn_sdpa", 20, 1.25, 50.0),
            row("conformer_no_mixing", 20, 0.8, 30.0), row("conformer_selfattn", 60, None, None, "out_of_memory"),
            row("conformer_summarymixing", 60, 3.0, 120.0)]
    benchmark.add_ratios(rows)
    assert rows[1]["train_ratio"] == 0.5 and rows[1]["memory_ratio"] == 0.4
    assert rows[1]["sdpa_train_ratio"] == 0.8 and rows[1]["sdpa_memory_ratio"] == 0.8
    assert rows[5]["train_ratio"] is None  # no baseline at 60 s: no ratio, no crash
    report = benchmark.target_report(rows)
    assert "train step vs self-attention at 20 s: 0.50 (target <= 0.75) met" in report
    assert "train step vs no-mixing lower bound at 20 s: 1.25 (target <= 1.1) MISSED" in report
    assert "out_of_memory" in benchmark.format_table(rows)


@pytest.mark.parametrize("argv, message", [
    (["--families", "transformer"], "--families: unknown"),
    (["--systems", "conformer_flash"], "--systems: unknown"),
    (["--lengths", "5,abc"], "--lengths must be comma-separated seconds"),
    (["--lengths", "0"], "--lengths must be positive"),
])
def test_bad_arguments_are_named(argv, message, tmp_path):
    with pytest.raises(SystemExit, match=message):
        benchmark.main(argv + ["--out", str(tmp_path)])


@pytest.mark.parametrize("conv", ["chunk", "causal"])
def test_chunk_compute_measurement_runs(capsys, conv):
    args = ["--streaming", "--minutes", "0.2", "--chunk_sizes", "2,4", "--size", "16", "--blocks", "1", "--conv", conv]
    assert benchmark.main(args) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "ms |" in line]
    assert len(rows) == 2 and rows[0].startswith("| 80 ms |") and rows[1].startswith("| 160 ms |")
