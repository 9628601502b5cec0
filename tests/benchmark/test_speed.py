"""The encoder speed and memory tool: every system measured in this process, and the whole pipeline
(timing and memory workers in fresh processes, CSV, table, plot, environment) on one ``--quick`` run
of one system that the tests share.

Timings are not checked here (they belong to the benchmark itself, never to a test)."""

import contextlib
import csv
import io
import json

import pytest

from espnet_summarymixing.benchmark import FIELDS, SYSTEMS, main
from espnet_summarymixing.benchmark.speed import run_worker, spawn

TINY = dict(size=16, blocks=1, units=16, kernel=3, heads=2)


def _spec(system, **kwargs):
    return {**dict(system=system, seconds=1, batch_size=1, device="cpu", threads=1, warmup=0, repeats=2, **TINY),
            **kwargs}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """``--quick`` (1 and 2 s) for the baseline alone, 2.5 s of audio per step: four worker processes."""
    out = tmp_path_factory.mktemp("bench")
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main(["--quick", "--systems", "conformer_selfattn", "--audio_per_step", "2.5", "--output_dir", str(out)]) == 0
    return out, stdout.getvalue()


@pytest.fixture(scope="module")
def every_system():
    """One timing run of every system in this process, tiny sizes."""
    return {system: run_worker(_spec(system)) for system in SYSTEMS}


@pytest.mark.slow  # the shared --quick run: four worker processes
def test_quick_run_writes_a_complete_row_per_pair(quick_run):
    out, stdout = quick_run
    with (out / "results.csv").open() as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == FIELDS
        rows = list(reader)
    # 2.5 s of audio per step: two 1-s utterances, one 2-s utterance
    assert [(r["system"], float(r["seconds"]), int(r["batch_size"]), int(r["frames"])) for r in rows] == [
        ("conformer_selfattn", 1.0, 2, 100), ("conformer_selfattn", 2.0, 1, 200)]
    for r in rows:
        assert r["status"] == "ok", r
        for key in ("train_step_s", "peak_memory_mb", "rtf", "train_ms_per_frame", "ops_per_step"):
            assert float(r[key]) >= 0, (key, r)  # peak memory: from the second (memory) worker
        assert float(r["train_ratio"]) == float(r["memory_ratio"]) == float(r["rtf_ratio"]) == 1.0  # the baseline
        assert int(r["params"]) == int(rows[0]["params"]) > 0
        assert float(r["train_step_median_s"]) >= float(r["train_step_s"])
    assert "[1/2] conformer_selfattn 1 s: train" in stdout and "[2/2]" in stdout  # a line per measurement


@pytest.mark.slow
def test_quick_run_writes_table_plot_and_environment(quick_run):
    out, _ = quick_run
    table = (out / "results.md").read_text()
    assert table.count("| conformer | conformer_selfattn | ") == 2 and "×base" in table and "Environment:" in table
    assert "| conformer | conformer_selfattn | 1 | 2 |" in table
    assert "Command: `python -m espnet_summarymixing.benchmark --quick --systems conformer_selfattn" in table
    png = (out / "results.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    env = json.loads((out / "environment.json").read_text())
    assert {"python", "torch", "device", "threads", "cpu_count"} <= set(env)


def test_every_system_builds_and_runs(every_system):
    for system, r in every_system.items():
        assert r["status"] == "ok" and r["params"] > 0 and r["ops_per_step"] > 0, (system, r)
        assert 0 < r["train_step_s"] <= r["train_step_median_s"] and r["rtf"] > 0, (system, r)


def test_the_mixing_block_adds_operators(every_system):
    # the profiler counts what runs: the lower bound makes fewer calls than ours, in every family
    for family in ("conformer", "branchformer", "e_branchformer"):
        ours, low = every_system[f"{family}_summarymixing"], every_system[f"{family}_no_mixing"]
        assert ours["ops_per_step"] > low["ops_per_step"] > 0, family


def test_autocast_and_batch():
    result = run_worker(_spec("conformer_summarymixing", batch_size=3, dtype="bf16", repeats=1))
    assert result["status"] == "ok" and result["batch_size"] == 3 and result["ops_per_step"] > 0


def test_memory_phase_measures_memory_only():
    result = run_worker(_spec("conformer_summarymixing", phase="memory"))
    assert result["status"] == "ok" and result["peak_memory_mb"] >= 0
    assert "train_step_s" not in result and "rtf" not in result


def test_out_of_memory_is_a_result_not_a_crash():
    assert spawn(_spec("conformer_summarymixing", batch_size=10**9), timeout=300)["status"] == "out_of_memory"
