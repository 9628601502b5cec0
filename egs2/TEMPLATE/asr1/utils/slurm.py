#!/usr/bin/env python3
"""Run a recipe command as one or more jobs on a Slurm cluster (the ``cmd_backend=slurm`` runner).

    utils/slurm.pl [options] [VAR=START:END] LOG COMMAND [ARGS...]

``utils/slurm.pl`` is a relative symbolic link to this file, ``slurm.py``: ESPnet's launcher
(``espnet2.bin.launch``, used for multi-GPU / multi-node training) recognises the runner by the
basenames ``run.pl`` and ``slurm.pl``, and ``cmd.sh`` files use these names. Messages name the runner
as it was invoked (``slurm.pl: ...``). The command line is Kaldi's; see ``_jobs.py`` (found next to
the real file, wherever the link is) for the shared parsing, quoting and log format.

All jobs become one Slurm job array: a batch script ``<logdir>/q/<name>.sh`` (name: ``--name``, else
the log's file name without ``.log``) submitted with ``sbatch --wait``, which blocks until every task
has ended. Each task writes its own LOG with the usual header and footer; Slurm's own output goes to
``<logdir>/q/``. Options map to sbatch as: range -> ``--array=START-END[%max_jobs_run]``, ``--name``
-> ``--job-name``, ``--gpu N`` -> ``--gres=gpu:N``, ``--mem``, ``--num_threads`` ->
``--cpus-per-task``, ``--num_nodes`` -> ``--nodes`` + ``--ntasks-per-node=1``, ``--time``. Each
non-empty, non-comment line of ``--config FILE`` (default ``conf/slurm.conf`` when it exists) is added
as ``#SBATCH <line>``, e.g. ``--partition=gpu``. A task's success is read from its log footer; sbatch's
own status is the fallback for a log without one. Exit status: 0 when every job succeeded, else 1.
"""

import os
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import _jobs  # noqa: E402

PROG = "slurm.py"  # the name in messages; set to the invoked name (slurm.pl through the link) by __main__
DEFAULT_CONFIG = "conf/slurm.conf"


class Stopped(Exception):
    """Raised while waiting on sbatch when the runner receives SIGINT or SIGTERM."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_stopped(signum, frame):
    raise Stopped(signum)


def sbatch_options(request, name, qdir):
    """The ``#SBATCH`` options for this request, site options from the config file last."""
    array = request.var is not None
    options = [f"--job-name={name}", f"--output={qdir}/{name}.{'%A_%a' if array else '%j'}.out"]
    if array:
        limit = f"%{request.max_jobs_run}" if request.max_jobs_run else ""
        options.append(f"--array={request.start}-{request.end}{limit}")
    if request.gpu > 0:
        options.append(f"--gres=gpu:{request.gpu}")
    if request.mem:
        options.append(f"--mem={request.mem}")
    options.append(f"--cpus-per-task={request.num_threads}")
    if request.num_nodes > 1:
        options += [f"--nodes={request.num_nodes}", "--ntasks-per-node=1"]
    if request.time:
        options.append(f"--time={request.time}")
    return options + config_lines(request.config)


def config_lines(config):
    """Site sbatch options: the non-empty, non-comment lines of the config file."""
    if config is None:
        if not os.path.exists(DEFAULT_CONFIG):
            return []
        config = DEFAULT_CONFIG
    try:
        text = Path(config).read_text()
    except OSError as error:
        raise _jobs.UsageError(f"--config {config}: cannot read this sbatch options file ({error.strerror})")
    return [s for s in (line.strip() for line in text.splitlines()) if s and not s.startswith("#")]


def batch_script(request, jobs, options):
    """A bash batch script that runs the job of ``$SLURM_ARRAY_TASK_ID`` and writes its log."""
    lines = ["#!/bin/bash"] + [f"#SBATCH {o}" for o in options]
    lines.append(f"# Written by {PROG}; submitted with: sbatch --wait <this file>")
    lines.append(f"cd {shlex.quote(os.getcwd())} || exit 1")
    if request.var is None:
        lines.append(f"log={shlex.quote(jobs[0].log)}; command={shlex.quote(jobs[0].command)}")
    else:
        lines.append('case "${SLURM_ARRAY_TASK_ID:-}" in')
        lines += [f"  {j.index}) log={shlex.quote(j.log)}; command={shlex.quote(j.command)} ;;" for j in jobs]
        lines.append(f'  *) echo "{PROG}: no job for SLURM_ARRAY_TASK_ID=$SLURM_ARRAY_TASK_ID" >&2; exit 1 ;;')
        lines.append("esac")
    # The header and footer come from _jobs' templates, their fields filled by shell expressions.
    head = _jobs.bash_text(_jobs.HEADER, command="${command}", date="$(date)")
    foot = _jobs.bash_text(
        _jobs.FOOTER, seconds="$(( $(date +%s) - start ))", threads=request.num_threads, rc="$rc", date="$(date)"
    )
    lines += [
        'mkdir -p "$(dirname "$log")" || exit 1',
        "start=$(date +%s)",
        f'printf %s {head} > "$log"',
        f'bash -c {shlex.quote(_jobs.PIPEFAIL)}"$command" >> "$log" 2>&1',
        "rc=$?",
        f'printf %s {foot} >> "$log"',
        "exit $rc",
    ]
    return "\n".join(lines) + "\n"


def submit(script):
    """``sbatch --wait script``: echo its messages, scancel the job on Ctrl-C/SIGTERM; return
    (sbatch's exit status, whether a job was submitted)."""
    proc = subprocess.Popen(
        ["sbatch", "--wait", str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    job_id = None
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _raise_stopped)
    try:
        for line in proc.stdout:
            print(line, end="", file=sys.stderr, flush=True)
            if line.startswith("Submitted batch job"):
                job_id = line.split()[-1]
        return proc.wait(), job_id is not None
    except Stopped as stop:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print(f"{PROG}: got {stop}, cancelling Slurm job {job_id or '(not yet submitted)'}", file=sys.stderr)
        if job_id and shutil.which("scancel"):
            subprocess.run(["scancel", job_id])
        proc.terminate()
        sys.exit(128 + stop.signum)


def run(request) -> int:
    if shutil.which("sbatch") is None:
        print(
            f"{PROG}: error: Slurm was not found (no 'sbatch' on PATH). The job backend is selected in "
            "cmd.sh: set cmd_backend=local there to run the jobs on this machine with utils/run.pl.",
            file=sys.stderr,
        )
        return 1
    jobs = request.jobs()
    qdir = Path(request.log).parent / "q"
    name = request.name or Path(request.log).name.removesuffix(".log")
    options = sbatch_options(request, name, qdir)
    qdir.mkdir(parents=True, exist_ok=True)
    script = qdir / f"{name}.sh"
    script.write_text(batch_script(request, jobs, options))
    for job in jobs:  # a stale footer from an earlier run must not pass for this one
        Path(job.log).unlink(missing_ok=True)
    status, submitted = submit(script)
    if not submitted and status != 0:
        print(f"{PROG}: sbatch could not submit {script} (exit {status}); see its message above", file=sys.stderr)
        return 1
    codes = []
    for job in jobs:
        rc = _jobs.ended_code(job.log)
        if rc is None:
            rc = 0 if status == 0 else 1
            if status != 0:
                print(f"{PROG}: {job.log} has no footer: the task did not finish (see {qdir})", file=sys.stderr)
        codes.append(rc)
    return _jobs.report(PROG, jobs, codes)


if __name__ == "__main__":
    PROG = os.path.basename(sys.argv[0])
    sys.exit(_jobs.main(PROG, sys.argv[1:], run))
