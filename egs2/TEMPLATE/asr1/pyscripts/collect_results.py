#!/usr/bin/env python3
"""Gather the scores of ASR experiments into a RESULTS.md in ESPnet's style.

    collect_results.py --exp_dir EXP [--exp_dir EXP2 ...] --out RESULTS.md [--title TEXT] [--command TEXT]

For each experiment it reads every ``EXP/decode_*/<dataset>/score_{wer,cer,ter}/scores.json`` (as
``score.py`` writes them) and writes, after an ``## Environments`` list (date, Python, ESPnet, torch,
this package, git commit of the working directory, OS, CPU, GPU):

    ## <exp dir name>
    - the command (--command, else EXP/run_command.txt), the parameter count (total and encoder) of
      EXP/valid.acc.ave.pth or else the newest EXP/*.pth holding a state dict, the training time
      (EXP/train_time.txt, seconds) and the stage times (EXP/stage_times.tsv: stage, name, seconds)
    ### WER / ### CER / ### TER
    one table per decode dir and metric, one row per dataset, named <decode dir>/<dataset>.

Beside it, ``RESULTS.json`` (the markdown file's name with ``.json``) holds the same scores for
programs (:func:`write_records`): one record per experiment, decoding, set and metric, with the
parameter count, training time, commit and date.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from score import COLUMNS, METRICS, TABLE_HEADER, TABLE_RULE, table_row  # noqa: E402  (a sibling script)

SCORES_PATTERN = "decode_*/<dataset>/score_{wer,cer,ter}/scores.json"


class CollectError(Exception):
    """A problem with an experiment directory, reported to the user as one line."""


# ---------------------------------------------------------------- environment


def _version(module_name: str) -> str:
    try:
        module = __import__(module_name)
        return str(module.__version__)
    except Exception:
        return "not installed"


def _git(*args) -> str:
    """Output of a git command in the working directory, or "" when it fails (no git, no repository)."""
    try:
        done = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _gpus() -> str:
    try:
        import torch

        if torch.cuda.is_available():
            return ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    except Exception:
        pass
    return "none"


def environment_lines() -> list:
    """The bullet lines of the ``## Environments`` section."""
    lines = [
        f"- date: `{time.strftime('%a %b %d %H:%M:%S %Z %Y')}`",
        f"- python version: `{sys.version.split()[0]}`",
        f"- espnet version: `{_version('espnet')}`",
        f"- pytorch version: `{_version('torch')}`",
        f"- espnet_summarymixing version: `{_version('espnet_summarymixing')}`",
    ]
    commit = _git("rev-parse", "HEAD")
    if commit:
        lines.append(f"- Git hash: `{commit}`")
        lines.append(f"  - Commit date: `{_git('log', '-1', '--format=%cd')}`")
    lines.append(f"- OS: `{platform.platform()}`")
    lines.append(f"- CPU: `{_cpu_model()}` ({os.cpu_count()} cores)")
    lines.append(f"- GPU: `{_gpus()}`")
    return lines


# ---------------------------------------------------------------- experiment facts


def find_scores(exp_dir: Path) -> dict:
    """{decode dir name: {metric: {dataset: scores}}} of an experiment, with every level sorted."""
    found = {}
    for path in sorted(exp_dir.glob("decode_*/*/score_*/scores.json")):
        metric = path.parent.name[len("score_"):]
        if metric not in METRICS:
            continue
        decode, dataset = path.parent.parent.parent.name, path.parent.parent.name
        found.setdefault(decode, {}).setdefault(metric, {})[dataset] = read_scores(path)
    if not found:
        raise CollectError(f"{exp_dir}: no scores found (looked for {exp_dir}/{SCORES_PATTERN})")
    return found


def read_scores(path: Path) -> dict:
    """A scores.json, checked for the table's columns."""
    try:
        scores = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CollectError(f"{path}: not a readable JSON file ({e})")
    missing = [key for key in COLUMNS if not isinstance(scores, dict) or key not in scores]
    if missing:
        raise CollectError(f"{path}: missing {', '.join(missing)} (expected score.py's scores.json)")
    return scores


def _state_dict(path: Path):
    """The state dict saved at ``path`` ({name: tensor}), or None if the file holds something else."""
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        return None
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj
    return None


def parameter_counts(exp_dir: Path):
    """(file name, total, encoder) numbers of values in the model's state dict, or None when there is none.

    The model is ``valid.acc.ave.pth``, else the newest ``*.pth`` holding a state dict (ESPnet's
    checkpoint.pth, holding optimiser states too, is passed over); encoder keys start with ``encoder.``.
    """
    try:
        import torch  # noqa: F401
    except ImportError:
        print(f"collect_results.py: warning: no torch; parameters of {exp_dir} not counted", file=sys.stderr)
        return None
    preferred = exp_dir / "valid.acc.ave.pth"
    others = sorted(
        (p for p in exp_dir.glob("*.pth") if p.name != preferred.name and p.is_file()),
        key=lambda p: (-p.stat().st_mtime, p.name),
    )
    for path in ([preferred] if preferred.is_file() else []) + others:
        state = _state_dict(path)
        if state is not None:
            total = sum(v.numel() for v in state.values())
            encoder = sum(v.numel() for k, v in state.items() if k.startswith("encoder."))
            return path.name, total, encoder
    return None


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


def training_time(path: Path) -> float:
    """Seconds held in train_time.txt."""
    text = path.read_text(encoding="utf-8").strip()
    try:
        return float(text)
    except ValueError:
        raise CollectError(f"{path}: expected a number of seconds, found '{text[:40]}'")


def stage_table(path: Path) -> list:
    """Markdown lines of the stage-timing table from stage_times.tsv (stage, name, seconds a line)."""
    lines = ["|stage|name|seconds|minutes|", "|---|---|---|---|"]
    total = 0.0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.rstrip("\n").split("\t")
        try:
            if len(fields) != 3:
                raise ValueError
            stage, name, seconds = fields[0].strip(), fields[1].strip(), float(fields[2])
        except ValueError:
            raise CollectError(
                f"{path}:{number}: expected three tab-separated fields: stage, name, seconds"
            )
        total += seconds
        lines.append(f"|{stage}|{name}|{seconds:.0f}|{seconds / 60:.1f}|")
    lines.append(f"|total||{total:.0f}|{total / 60:.1f}|")
    return lines


def experiment_facts(exp_dir: Path, command=None):
    """(bullet lines, parameter counts or None, training seconds or None) of an experiment: the
    command (``command``, else EXP/run_command.txt), the parameter count and the training time."""
    facts = []
    if command is None and (exp_dir / "run_command.txt").is_file():
        command = (exp_dir / "run_command.txt").read_text(encoding="utf-8").strip()
    if command:
        facts.append(f"- command: `{command}`")
    counts = parameter_counts(exp_dir)
    if counts:
        name, total, encoder = counts
        facts.append(f"- parameters ({name}): {total:,} in total, {encoder:,} in the encoder")
    seconds = None
    if (exp_dir / "train_time.txt").is_file():
        seconds = training_time(exp_dir / "train_time.txt")
        facts.append(f"- training time: {_duration(seconds)} ({seconds:.0f} s)")
    return facts, counts, seconds


def experiment_section(exp_dir: Path, command=None) -> list:
    """The markdown lines of one experiment."""
    if not exp_dir.is_dir():
        raise CollectError(f"{exp_dir}: no such experiment directory")
    scores = find_scores(exp_dir)
    lines = [f"## {exp_dir.resolve().name}", ""]
    facts, _, _ = experiment_facts(exp_dir, command)
    if facts:
        lines += facts + [""]
    if (exp_dir / "stage_times.tsv").is_file():
        lines += ["Stage times:", ""] + stage_table(exp_dir / "stage_times.tsv") + [""]
    for metric in METRICS:  # one table per metric, every decoding in it (ESPnet's layout)
        rows = [table_row(f"{decode}/{dataset}", values)
                for decode, by_metric in scores.items()
                for dataset, values in by_metric.get(metric, {}).items()]
        if rows:
            lines += [f"### {metric.upper()}", "", TABLE_HEADER, TABLE_RULE] + rows + [""]
    return lines


def records_file(out: Path) -> Path:
    """Where the machine-readable records of a RESULTS.md go: beside it, ``<name>.json``."""
    return Path(out).with_suffix(".json")


def base_record(exp_dir: Path) -> dict:
    """What every record of an experiment shares: its name, parameter count, training time, commit, date."""
    _, counts, seconds = experiment_facts(exp_dir)
    return {"experiment": exp_dir.resolve().name, "parameters": counts[1] if counts else None,
            "encoder_parameters": counts[2] if counts else None,
            "training_seconds": round(seconds, 1) if seconds is not None else None,
            "commit": _git("rev-parse", "--short", "HEAD") or None, "date": time.strftime("%Y-%m-%d")}


def records(exp_dirs) -> list:
    """One record per experiment, decoding, set and metric: {experiment, decoding, set, metric, value
    (the error rate in %), sentences, words, parameters, encoder_parameters, training_seconds, commit, date}."""
    out = []
    for exp_dir in map(Path, exp_dirs):
        base = base_record(exp_dir)
        for decode, by_metric in find_scores(exp_dir).items():
            for metric, by_set in by_metric.items():
                for dataset, scores in by_set.items():
                    out.append({**base, "decoding": decode, "set": dataset, "metric": metric,
                                "value": round(float(scores["Err"]), 2), "sentences": scores["Snt"],
                                "words": scores["Wrd"]})
    return out


def write_records(rows: list, out: Path) -> Path:
    """Write the records as JSON beside the RESULTS.md ``out``; return the file."""
    target = records_file(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    partial.replace(target)
    return target


def render(exp_dirs, title=None, command=None) -> str:
    """The whole RESULTS.md text."""
    lines = ["<!-- Generated by collect_results.py -->", f"# {title or 'RESULTS'}", ""]
    lines += ["## Environments"] + environment_lines() + [""]
    for exp_dir in exp_dirs:
        lines += experiment_section(Path(exp_dir), command)
    return "\n".join(lines).rstrip("\n") + "\n"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--exp_dir", action="append", required=True,
                        help="an experiment directory (repeat for several)")
    parser.add_argument("--out", required=True, help="the markdown file to write")
    parser.add_argument("--title", help="the top heading (default: RESULTS)")
    parser.add_argument("--command", help="the command to show (default: EXP/run_command.txt)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        text = render(args.exp_dir, args.title, args.command)
    except CollectError as e:
        print(f"collect_results.py: error: {e}", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    table = write_records(records(args.exp_dir), out)
    print(f"collect_results.py: wrote {out} and {table}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
