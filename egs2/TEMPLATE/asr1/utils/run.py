#!/usr/bin/env python3
"""Run a recipe command as one or more jobs on this machine (the ``cmd_backend=local`` runner).

    utils/run.pl [options] [VAR=START:END] LOG COMMAND [ARGS...]

``utils/run.pl`` is a relative symbolic link to this file, ``run.py``: ESPnet's launcher
(``espnet2.bin.launch``, used for multi-GPU training) recognises the runner by the basenames
``run.pl`` and ``slurm.pl``, and ``cmd.sh`` files use these names. Messages name the runner as it was
invoked (``run.pl: ...``). The command line is Kaldi's; see ``_jobs.py`` (found next to the real
file, wherever the link is) for the shared parsing, quoting and log format.

The jobs run in parallel, at most ``--max_jobs_run`` at a time (default: all). ``--gpu``, ``--mem``,
``--time``, ``--name`` and ``--config`` are accepted and ignored; ``--num_nodes`` above 1 is an error.
Jobs get no stdin. Ctrl-C or SIGTERM stops the running jobs (each runs in its own process group) and
exits with 128 + the signal number. Exit status: 0 when every job succeeded, 1 otherwise.
"""

import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import _jobs  # noqa: E402

PROG = "run.py"  # the name in messages; set to the invoked name (run.pl through the link) by __main__


class Running:
    """A started job: its process, its open log and when it started."""

    def __init__(self, job, threads):
        self.job, self.threads = job, threads
        self.log = open(_jobs.prepare_log(job.log), "w")
        self.log.write(_jobs.header(job.command))
        self.log.flush()
        self.started = time.time()
        self.proc = subprocess.Popen(
            _jobs.bash_argv(job.command),
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def finish(self) -> int:
        """Write the footer once the process has ended; return its exit code."""
        rc = _jobs.exit_code(self.proc.returncode)
        self.log.write(_jobs.footer(time.time() - self.started, self.threads, rc))
        self.log.close()
        return rc

    def stop(self, sig):
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass


def stop_all(running):
    """Terminate every running job's process group (SIGKILL after 5 s) and close their logs."""
    for r in running:
        r.stop(signal.SIGTERM)
    deadline = time.time() + 5
    for r in running:
        try:
            r.proc.wait(max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            r.stop(signal.SIGKILL)
            r.proc.wait()
        r.finish()


def run(request) -> int:
    if request.num_nodes > 1:
        raise _jobs.UsageError(
            f"--num_nodes {request.num_nodes}: a local runner cannot use other nodes; "
            "expected --num_nodes 1 (select a cluster runner such as slurm.pl in cmd.sh)"
        )
    jobs = request.jobs()
    limit = request.max_jobs_run or len(jobs)
    waiting, running, codes, done = list(jobs), [], {}, 0
    stopping = []  # the signal that asked us to stop; checked between polls so no start is cut short
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda signum, frame: stopping.append(signum))
    while (waiting or running) and not stopping:
        while waiting and len(running) < limit:
            running.append(Running(waiting.pop(0), request.num_threads))
        ended = [r for r in running if r.proc.poll() is not None]
        for r in ended:
            running.remove(r)
            codes[id(r.job)] = r.finish()
            done += 1
            if len(jobs) > 1:
                print(f"{PROG}: {done}/{len(jobs)} jobs done", file=sys.stderr, flush=True)
        if not ended:
            time.sleep(0.02)
    if stopping:
        name = signal.Signals(stopping[0]).name
        print(f"{PROG}: got {name}, stopping {len(running)} running job(s)", file=sys.stderr)
        stop_all(running)
        return 128 + stopping[0]
    return _jobs.report(PROG, jobs, [codes[id(job)] for job in jobs])


if __name__ == "__main__":
    PROG = os.path.basename(sys.argv[0])
    sys.exit(_jobs.main(PROG, sys.argv[1:], run))
