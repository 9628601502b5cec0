"""Shared logic of the recipe job runners ``utils/run.py`` and ``utils/slurm.py`` (invoked through
their links ``utils/run.pl`` and ``utils/slurm.pl``, the names ESPnet's launcher and cmd.sh use).

Both runners take the Kaldi-style command line::

    <runner> [options] [VAR=START:END] LOG COMMAND [ARGS...]

and differ only in where the jobs run. This module holds everything they share: option parsing, the
job range, the quoting of COMMAND into one ``bash -c`` line, and the header/footer written around each
job's output in its log. It is a plain module next to the scripts (which put their own real
directory, links resolved, on ``sys.path``), not a runner itself.
"""

import re
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

USAGE = """\
usage: {prog} [options] [VAR=START:END] LOG COMMAND [ARGS...]
  e.g. {prog} JOB=1:4 exp/log/stats.JOB.log python -m tool --part JOB
Runs COMMAND once per index START..END (once when no range is given), replacing every VAR in LOG and
in each argument by the index. Each job's stdout and stderr go to its LOG.
options: --gpu N  --mem M  --num_threads N  --max_jobs_run N  --time T  --name NAME  --num_nodes N
         --config FILE   (given as '--opt value' or '--opt=value'; '-' and '_' are interchangeable)"""

# Every command line is run as ``bash -c PIPEFAIL + command`` so a failing stage of a pipe fails the job.
PIPEFAIL = "set -o pipefail; "

# Lines written before and after each job's output. Kept free of the characters ", $, ` and \ so that
# slurm.py can also render them inside a double-quoted bash string (see ``bash_text``).
HEADER = "# {command}\n# Started at {date}\n"
FOOTER = "# Accounting: time={seconds} threads={threads}\n# Ended (code {rc}) at {date}\n"
_ENDED = re.compile(r"^# Ended \(code (-?\d+)\) at ", re.MULTILINE)


class UsageError(Exception):
    """A bad command line; the runner prints it with a usage hint and exits with status 2."""


def _count(minimum):
    def convert(option, value):
        try:
            number = int(value)
        except ValueError:
            number = None
        if number is None or number < minimum:
            raise UsageError(f"--{option} expects an integer >= {minimum}, got {value!r}")
        return number

    return convert


def _text(option, value):
    if not value:
        raise UsageError(f"--{option} expects a non-empty value")
    return value


# Option name -> how its value is checked and converted; also the attribute name on Request.
OPTIONS = {
    "gpu": _count(0),
    "mem": _text,
    "num_threads": _count(1),
    "max_jobs_run": _count(1),
    "time": _text,
    "name": _text,
    "num_nodes": _count(1),
    "config": _text,
}
_RANGE = re.compile(r"^([A-Za-z_]\w*)=([^/]*)$")


@dataclass
class Job:
    """One job: its index in the range (None without a range), its log path and its bash command line."""

    index: Optional[int]
    log: str
    command: str


@dataclass
class Request:
    """A parsed runner command line."""

    gpu: int = 0
    mem: Optional[str] = None
    num_threads: int = 1
    max_jobs_run: Optional[int] = None
    time: Optional[str] = None
    name: Optional[str] = None
    num_nodes: int = 1
    config: Optional[str] = None
    var: Optional[str] = None
    start: int = 1
    end: int = 1
    log: str = ""
    command: List[str] = field(default_factory=list)

    def jobs(self) -> List[Job]:
        """The jobs to run, with VAR replaced by each index in the log path and the command."""
        if self.var is None:
            return [Job(None, self.log, quote_command(self.command))]
        jobs = []
        for i in range(self.start, self.end + 1):
            command = quote_command(arg.replace(self.var, str(i)) for arg in self.command)
            jobs.append(Job(i, self.log.replace(self.var, str(i)), command))
        return jobs


def _parse_range(var, value, request):
    match = re.fullmatch(r"(\d+)(?::(\d+))?", value)
    if not match:
        raise UsageError(f"job range {var}={value} must be {var}=START:END with integers START <= END")
    request.var = var
    request.start = int(match.group(1))
    request.end = int(match.group(2) or match.group(1))
    if request.start > request.end:
        raise UsageError(f"job range {var}={value} has START > END; expected START <= END")


def parse(argv: List[str]) -> Request:
    """Parse ``[options] [VAR=START:END] LOG COMMAND...``; options may also follow the range, as in Kaldi."""
    request = Request()
    args = list(argv)
    while args:
        arg = args[0]
        if arg.startswith("--"):
            name, has_value, value = arg[2:].partition("=")
            key = name.replace("-", "_")
            if key not in OPTIONS:
                known = " ".join(f"--{o}" for o in OPTIONS)
                raise UsageError(f"unknown option --{name}; known options are: {known}")
            if not has_value:
                if len(args) < 2:
                    raise UsageError(f"option --{name} expects a value")
                value = args.pop(1)
            setattr(request, key, OPTIONS[key](name, value))
            args.pop(0)
        elif _RANGE.match(arg) and request.var is None:
            var, value = _RANGE.match(arg).groups()
            _parse_range(var, value, request)
            args.pop(0)
        else:
            break
    if len(args) < 2:
        raise UsageError("expected a LOG file and a COMMAND after the options")
    request.log, request.command = args[0], args[1:]
    if request.var is not None and request.end > request.start and request.var not in request.log:
        raise UsageError(
            f"{request.end - request.start + 1} jobs would share the log {request.log}; "
            f"expected the log name to contain {request.var}"
        )
    return request


def quote_command(args) -> str:
    """Join COMMAND for ``bash -c`` the Kaldi way: whitespace-free words stay as they are (so ``|``, ``>``,
    ``&&`` and ``$VAR`` keep their shell meaning); a word with whitespace, or an empty one, stays one word."""
    return " ".join(shlex.quote(a) if not a or re.search(r"\s", a) else a for a in args)


def bash_argv(command: str) -> List[str]:
    """The argv that runs one job's command line."""
    return ["bash", "-c", PIPEFAIL + command]


def now() -> str:
    """The date as ``date`` prints it, for log headers and footers."""
    return time.strftime("%a %b %e %H:%M:%S %Z %Y")


def header(command: str) -> str:
    return HEADER.format(command=command, date=now())


def footer(seconds: float, threads: int, rc: int) -> str:
    return FOOTER.format(seconds=int(round(seconds)), threads=threads, rc=rc, date=now())


def bash_text(template: str, **fields) -> str:
    """``template`` as a double-quoted bash string whose fields are the given shell expressions."""
    return '"' + template.format(**fields) + '"'


def ended_code(log) -> Optional[int]:
    """The exit code recorded in a log's footer, or None when the log is missing or has no footer."""
    try:
        with open(log, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 65536))
            tail = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    codes = _ENDED.findall(tail)
    return int(codes[-1]) if codes else None


def exit_code(returncode: int) -> int:
    """A subprocess return code as a shell reports it (killed by signal N -> 128 + N)."""
    return 128 - returncode if returncode < 0 else returncode


def report(prog: str, jobs: List[Job], codes: List[int]) -> int:
    """Print the failure summary when a job failed; return the runner's exit status."""
    failed = [job for job, rc in zip(jobs, codes) if rc != 0]
    if not failed:
        return 0
    print(f"{prog}: {len(failed)} / {len(jobs)} failed, log is in {failed[0].log}", file=sys.stderr)
    return 1


def main(prog: str, argv: List[str], run) -> int:
    """Parse ``argv`` and call ``run(request)``; a UsageError exits with status 2."""
    try:
        request = parse(argv)
        return run(request)
    except UsageError as error:
        print(f"{prog}: error: {error}\n{USAGE.format(prog=prog)}", file=sys.stderr)
        return 2


def prepare_log(log: str) -> Path:
    """Create the log's directory; return the log path."""
    path = Path(log)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
