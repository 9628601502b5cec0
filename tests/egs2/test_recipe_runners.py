"""The recipe job runners utils/run.pl (local) and utils/slurm.pl (Slurm, against a fake sbatch): links
to the Python scripts utils/run.py and utils/slurm.py, invoked by their Kaldi names as cmd.sh does."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from recipe_tools import ROOT, UTILS

RUN_PL = str(UTILS / "run.pl")
SLURM_PL = str(UTILS / "slurm.pl")

# A stand-in for `sbatch --wait SCRIPT`: records its argv and the script's #SBATCH lines (one per
# line) to $SBATCH_RECORD, then runs the script once per --array index with SLURM_ARRAY_TASK_ID set
# (or once without it), Slurm's output going to --output. It exits like sbatch --wait: with the
# highest task exit code. Without --wait it refuses, since the caller would not be waiting.
FAKE_SBATCH = """#!{python}
import os, re, subprocess, sys
argv = sys.argv[1:]
script = argv[-1]
with open(os.environ["SBATCH_RECORD"], "a") as record:
    record.write("ARGV " + " ".join(argv) + "\\n")
    options = []
    for line in open(script).read().splitlines()[1:]:
        if not line.startswith("#SBATCH "):
            break
        options.append(line[len("#SBATCH "):])
        record.write(options[-1] + "\\n")
if "--wait" not in argv:
    sys.exit("fake sbatch: expected --wait")
values = dict(o[2:].split("=", 1) for o in options if "=" in o)
print("Submitted batch job 42", flush=True)
indices = [None]
if "array" in values:
    start, end = re.match(r"(\\d+)-(\\d+)", values["array"]).groups()
    indices = range(int(start), int(end) + 1)
worst = 0
for i in indices:
    env = dict(os.environ, SLURM_JOB_ID="42")
    out = values["output"].replace("%A", "42").replace("%j", "42")
    if i is not None:
        env["SLURM_ARRAY_TASK_ID"] = str(i)
        out = out.replace("%a", str(i))
    with open(out, "w") as f:
        worst = max(worst, subprocess.call(["bash", script], env=env, stdout=f, stderr=subprocess.STDOUT))
sys.exit(worst)
"""

# A stand-in for `srun [--options] COMMAND...`: notes that it ran, then runs COMMAND.
FAKE_SRUN = """#!/bin/bash
echo "srun was here" >> "$SRUN_RECORD"
while [[ "$1" == --* ]]; do shift; done
exec "$@"
"""


def run_runner(script, *args, cwd, env=None, timeout=60):
    return subprocess.run(
        [script, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def log_lines(path):
    return Path(path).read_text().splitlines()


def assert_framed(lines, command, rc, threads=1):
    """The log's header and footer (see utils/_jobs.py)."""
    assert lines[0] == f"# {command}"
    assert lines[1].startswith("# Started at ")
    assert lines[-2].startswith("# Accounting: time=") and lines[-2].endswith(f" threads={threads}")
    assert re.fullmatch(rf"# Ended \(code {rc}\) at .+", lines[-1])


def test_kaldi_names_are_relative_links_to_the_python_scripts():
    for name in ("run", "slurm"):
        link, script = UTILS / f"{name}.pl", UTILS / f"{name}.py"
        assert link.is_symlink() and os.readlink(link) == f"{name}.py"  # relative, next to it
        assert script.is_file() and not script.is_symlink() and os.access(script, os.X_OK)
        assert script.read_text().startswith("#!/usr/bin/env python3\n")


@pytest.mark.parametrize("invoked", [
    ROOT / "egs2" / "an4" / "asr1" / "utils" / "run.pl",  # through a recipe's utils link, as cmd.sh runs it
    "link",  # through a link in another directory, to the link run.pl
    UTILS / "run.py",
], ids=["recipe_utils_link", "link_elsewhere", "python_name"])
def test_runner_works_however_invoked_and_names_itself_so(tmp_path, invoked):
    if invoked == "link":
        (tmp_path / "bin").mkdir()
        invoked = tmp_path / "bin" / "run.pl"
        invoked.symlink_to(UTILS / "run.pl")
    result = run_runner(invoked, "JOB=1:2", "log/x.JOB.log", "test", "JOB", "-ne", "2", cwd=tmp_path)
    assert result.returncode == 1, result.stderr  # it ran (_jobs.py imported), one job failed
    assert f"{invoked.name}: 1 / 2 failed, log is in log/x.2.log" in result.stderr
    assert_framed(log_lines(tmp_path / "log/x.1.log"), "test 1 -ne 2", 0)
    result = run_runner(invoked, cwd=tmp_path)
    assert result.returncode == 2 and f"usage: {invoked.name} [options]" in result.stderr


def test_single_job_log_has_header_output_and_footer(tmp_path):
    log = tmp_path / "exp" / "deep" / "one.log"  # parent directories are created
    result = run_runner(RUN_PL, "--num_threads", "3", log, "echo", "hello", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = log_lines(log)
    assert_framed(lines, "echo hello", 0, threads=3)
    assert lines[2:-2] == ["hello"]
    # A re-run overwrites the log rather than appending to it.
    result = run_runner(RUN_PL, log, "echo", "again", cwd=tmp_path)
    assert result.returncode == 0
    lines = log_lines(log)
    assert_framed(lines, "echo again", 0)
    assert lines[2:-2] == ["again"]


def test_job_range_substitutes_in_log_names_and_arguments(tmp_path):
    result = run_runner(RUN_PL, "JOB=1:3", "log/part.JOB.log", "echo", "part=JOB", "of", "JOBS", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "log").iterdir()) == [f"part.{i}.log" for i in (1, 2, 3)]
    for i in (1, 2, 3):
        lines = log_lines(tmp_path / f"log/part.{i}.log")
        assert_framed(lines, f"echo part={i} of {i}S", 0)
        assert lines[2:-2] == [f"part={i} of {i}S"]
    assert "3/3 jobs done" in result.stderr
    # Any identifier names the variable; options may also follow the range.
    result = run_runner(RUN_PL, "N=4:5", "--gpu", "0", "log/n.N.log", "echo", "N", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert log_lines(tmp_path / "log/n.5.log")[2] == "5"


def test_quoting_rule(tmp_path):
    env = dict(os.environ, RUNNER_TEST_VALUE="expanded")
    show_argv = "import sys; print(sys.argv[1:])"  # has spaces: must reach python as one argument
    result = run_runner(
        RUN_PL, "q.log", sys.executable, "-c", show_argv, "a b", "c", "$RUNNER_TEST_VALUE",
        "|", "tr", "a-z", "A-Z", "&&", "echo", "done", ">", "out.txt",
        cwd=tmp_path, env=env,
    )
    assert result.returncode == 0, result.stderr
    body = log_lines(tmp_path / "q.log")[2:-2]
    assert body == ["['A B', 'C', 'EXPANDED']"]  # one argument kept whole, $VAR expanded, | piped
    assert (tmp_path / "out.txt").read_text() == "done\n"  # > redirected
    # pipefail: a failing first stage fails the job even though the last stage succeeds.
    result = run_runner(RUN_PL, "p.log", "false", "|", "true", cwd=tmp_path)
    assert result.returncode == 1
    assert_framed(log_lines(tmp_path / "p.log"), "false | true", 1)


def test_jobs_run_concurrently(tmp_path):
    # Each job leaves a marker, then waits for all three: only possible if they run at the same time.
    wait_for_all = (
        "touch marker.JOB; for i in $(seq 200); do "
        "[ -e marker.1 ] && [ -e marker.2 ] && [ -e marker.3 ] && exit 0; sleep 0.05; done; exit 7"
    )
    result = run_runner(RUN_PL, "JOB=1:3", "log/c.JOB.log", "bash", "-c", wait_for_all, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for i in (1, 2, 3):
        assert_framed(log_lines(tmp_path / f"log/c.{i}.log"), f"bash -c '{wait_for_all.replace('JOB', str(i))}'", 0)


def test_max_jobs_run_one_runs_jobs_one_at_a_time(tmp_path):
    record = "echo start JOB >> order.txt; sleep 0.2; echo end JOB >> order.txt"
    result = run_runner(RUN_PL, "--max-jobs-run=1", "JOB=1:3", "log/s.JOB.log", "bash", "-c", record, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    order = (tmp_path / "order.txt").read_text().split("\n")[:-1]
    assert order == ["start 1", "end 1", "start 2", "end 2", "start 3", "end 3"]


def test_failed_job_exits_1_and_names_its_log(tmp_path):
    result = run_runner(RUN_PL, "JOB=1:3", "log/f.JOB.log", "test", "JOB", "-ne", "2", cwd=tmp_path)
    assert result.returncode == 1
    assert "run.pl: 1 / 3 failed, log is in log/f.2.log" in result.stderr
    assert_framed(log_lines(tmp_path / "log/f.2.log"), "test 2 -ne 2", 1)
    assert_framed(log_lines(tmp_path / "log/f.3.log"), "test 3 -ne 2", 0)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--foo", "1", "x.log", "true"], "unknown option --foo; known options are: --gpu --mem --num_threads"),
        (["--gpu"], "option --gpu expects a value"),
        (["--num_threads=zero", "x.log", "true"], "--num_threads expects an integer >= 1, got 'zero'"),
        (["JOB=3:1", "x.JOB.log", "true"], "job range JOB=3:1 has START > END"),
        (["JOB=a:b", "x.JOB.log", "true"], "job range JOB=a:b must be JOB=START:END"),
        (["JOB=1:2", "x.log", "true"], "expected the log name to contain JOB"),
        (["x.log"], "expected a LOG file and a COMMAND"),
        (["--num_nodes", "2", "x.log", "true"], "a local runner cannot use other nodes"),
    ],
)
def test_usage_errors(tmp_path, args, message):
    result = run_runner(RUN_PL, *args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert "usage: run.pl" in result.stderr
    assert not list(tmp_path.iterdir())  # nothing ran


def test_local_launcher_form(tmp_path):
    # espnet2.bin.launch, single node: <cmd> --name x --gpu N LOG python -m ... --ngpu N ...
    result = run_runner(
        RUN_PL, "--name", "train", "--gpu", "2", "exp/x/train.log", sys.executable, "-c",
        "import sys; print(sys.argv[1:])", "--ngpu", "2", "--multiprocessing_distributed", "true",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    lines = log_lines(tmp_path / "exp/x/train.log")
    assert lines[2] == "['--ngpu', '2', '--multiprocessing_distributed', 'true']"
    assert re.fullmatch(r"# Ended \(code 0\) at .+", lines[-1])


@pytest.fixture
def slurm(tmp_path):
    """A fake Slurm: PATH starts with fake sbatch/srun; returns (workdir, env, record file)."""
    bin_dir, work = tmp_path / "bin", tmp_path / "work"
    bin_dir.mkdir()
    work.mkdir()
    (bin_dir / "sbatch").write_text(FAKE_SBATCH.format(python=sys.executable))
    (bin_dir / "srun").write_text(FAKE_SRUN)
    for tool in ("sbatch", "srun"):
        (bin_dir / tool).chmod(0o755)
    record = tmp_path / "sbatch.txt"
    env = dict(
        os.environ,
        PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        SBATCH_RECORD=str(record),
        SRUN_RECORD=str(tmp_path / "srun.txt"),
    )
    return work, env, record


def test_slurm_job_array(slurm):
    work, env, record = slurm
    (work / "conf").mkdir()
    (work / "conf/slurm.conf").write_text("# a comment\n\n--partition=gpu\n  --account=proj  \n")
    result = run_runner(
        SLURM_PL, "--gpu", "1", "--mem", "4G", "--num_threads", "2", "--max_jobs_run", "2", "--time", "1:00:00",
        "JOB=1:3", "exp/log/stats.JOB.log", "echo", "part", "JOB", "|", "tr", "a-z", "A-Z",
        cwd=work, env=env,
    )
    assert result.returncode == 0, result.stderr
    recorded = record.read_text().splitlines()
    assert recorded[0] == "ARGV --wait exp/log/q/stats.JOB.sh"
    assert recorded[1:] == [
        "--job-name=stats.JOB",
        "--output=exp/log/q/stats.JOB.%A_%a.out",
        "--array=1-3%2",
        "--gres=gpu:1",
        "--mem=4G",
        "--cpus-per-task=2",
        "--time=1:00:00",
        "--partition=gpu",
        "--account=proj",
    ]
    for i in (1, 2, 3):
        lines = log_lines(work / f"exp/log/stats.{i}.log")
        assert_framed(lines, f"echo part {i} | tr a-z A-Z", 0, threads=2)
        assert lines[2:-2] == [f"PART {i}"]
        assert (work / f"exp/log/q/stats.JOB.42_{i}.out").exists()  # Slurm's output, not the log


def test_slurm_failure_config_and_name(slurm, tmp_path):
    work, env, record = slurm
    site = tmp_path / "site.conf"
    site.write_text("--qos=high\n")
    result = run_runner(
        SLURM_PL, "--config", site, "--name", "check", "JOB=1:3", "exp/log/f.JOB.log", "test", "JOB", "-ne", "2",
        cwd=work, env=env,
    )
    assert result.returncode == 1
    assert "slurm.pl: 1 / 3 failed, log is in exp/log/f.2.log" in result.stderr
    recorded = record.read_text().splitlines()
    assert recorded[0] == "ARGV --wait exp/log/q/check.sh"
    assert "--job-name=check" in recorded and "--qos=high" in recorded
    assert not any(r.startswith(("--gres", "--mem", "--nodes")) for r in recorded)
    assert_framed(log_lines(work / "exp/log/f.2.log"), "test 2 -ne 2", 1)
    assert_framed(log_lines(work / "exp/log/f.1.log"), "test 1 -ne 2", 0)


def test_slurm_launcher_form(slurm, tmp_path):
    # espnet2.bin.launch, multi-node: slurm.pl --gpu N --num_threads N --num_nodes M LOG srun --export=ALL ...
    work, env, record = slurm
    result = run_runner(
        SLURM_PL, "--gpu", "2", "--num_threads", "2", "--num_nodes", "2", "exp/x/train.log",
        "srun", "--export=ALL", sys.executable, "-c", "import sys; print(sys.argv[1:])",
        "--ngpu", "2", "--multiprocessing_distributed", "true", "--dist_launcher", "slurm",
        cwd=work, env=env,
    )
    assert result.returncode == 0, result.stderr
    recorded = record.read_text().splitlines()
    for option in ("--gres=gpu:2", "--cpus-per-task=2", "--nodes=2", "--ntasks-per-node=1", "--job-name=train"):
        assert option in recorded
    assert not any(r.startswith("--array") for r in recorded)
    lines = log_lines(work / "exp/x/train.log")
    assert lines[2:-2] == ["['--ngpu', '2', '--multiprocessing_distributed', 'true', '--dist_launcher', 'slurm']"]
    assert re.fullmatch(r"# Ended \(code 0\) at .+", lines[-1])
    assert (tmp_path / "srun.txt").read_text() == "srun was here\n"


def test_slurm_without_sbatch_says_how_to_run_locally(tmp_path):
    env = dict(os.environ, PATH=str(tmp_path / "empty"))
    result = subprocess.run(
        [sys.executable, SLURM_PL, "x.log", "true"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "Slurm was not found" in result.stderr and "cmd_backend=local" in result.stderr
    assert not (tmp_path / "x.log").exists()
