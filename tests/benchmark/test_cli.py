"""The benchmark's command line: flags checked before anything runs, ``--quick``, and a package that
imports light."""

import subprocess
import sys

import pytest

from espnet_summarymixing.benchmark import main
from espnet_summarymixing.benchmark.cli import parse_args


@pytest.mark.parametrize("argv, message", [
    (["--families", "transformer"], "--families: unknown"),
    (["--systems", "conformer_flash"], "--systems: unknown"),
    (["--lengths", "5,abc"], "--lengths must be comma-separated seconds"),
    (["--lengths", "0"], "--lengths must be positive"),
    (["--long_form", "--systems", "branchformer_summarymixing"], "not measured by --long_form"),
    (["--long_form", "--long_seconds", "60,x"], "--long_seconds must be comma-separated seconds"),
])
def test_bad_arguments_are_named(argv, message, tmp_path):
    with pytest.raises(SystemExit, match=message):
        main(argv + ["--output_dir", str(tmp_path)])


def test_quick_means_tiny_models_and_lengths():
    args = parse_args(["--quick", "--size", "512", "--lengths", "60"])
    assert (args.size, args.blocks, args.units, args.kernel, args.heads) == (32, 2, 64, 7, 2)
    assert (args.lengths, args.warmup, args.repeats) == ("1,2", 1, 1)
    assert parse_args([]).size == 256 and parse_args([]).lengths == "5,10,20,30,60,120"


def test_importing_the_benchmark_imports_no_torch():
    code = ("import sys, espnet_summarymixing.benchmark as b; b.main; "
            "print(sorted({'torch', 'espnet2'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout
    assert out.strip() == "[]"


def test_old_flag_names_still_work_and_say_the_new_ones(capsys):
    from espnet_summarymixing.benchmark.cli import parse_args

    args = parse_args(["--out", "x", "--minutes", "2", "--long_minutes", "1,0.5", "--batch-size", "3", "--no-plot"])
    assert (args.output_dir, args.stream_seconds, args.long_seconds, args.batch_size, args.no_plot) == \
        ("x", 120.0, "60,30", 3, True)
    err = capsys.readouterr().err
    assert "--out is an old name of --output_dir" in err
    assert "--minutes 2 is read as --stream_seconds 120" in err and "--long_minutes 1,0.5 is read as --long_seconds 60,30" in err
