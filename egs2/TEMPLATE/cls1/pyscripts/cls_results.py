#!/usr/bin/env python3
"""Gather the scores of classification experiments into a RESULTS.md in ESPnet's style.

    cls_results.py --exp_dir EXP [--exp_dir EXP2 ...] --out RESULTS.md [--title TEXT] [--command TEXT] [--images DIR]

For each experiment it reads every ``EXP/inference_*/<dataset>/scoring/scores.json`` (as
``score_cls.py`` writes them) and writes, after the ``## Environments`` list of ASR's
collect_results.py (date, versions, git commit, OS, CPU, GPU):

    ## Summary          (with several experiments: one row per experiment and dataset)
    ## <exp dir name>
    - the command, the parameter count (total and encoder), the training time, the stage times
    ### Accuracy        one row per inference dir and dataset: clips, accuracy, macro-F1
    ### <dataset>       the per-class table and confusion matrix of score_cls.py, and its PNG

Image links are relative to the folder of ``--out``. ``--images DIR`` copies each confusion matrix
to ``DIR/<exp dir name>_<dataset>.png`` and links that copy instead (a RESULTS.md kept beside a recipe,
whose exp/ is not kept).
"""

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from collect_results import (  # noqa: E402  (a sibling script, shared with asr1)
    CollectError,
    _duration,
    base_record,
    environment_lines,
    experiment_facts,
    stage_table,
    write_records,
)

SCORES_PATTERN = "inference_*/<dataset>/scoring/scores.json"
KEYS = ("clips", "accuracy", "macro_f1", "per_class", "confusion", "labels", "columns")


def find_scores(exp_dir: Path) -> dict:
    """{(inference dir, dataset): (scores, scoring dir)}, sorted."""
    found = {}
    for path in sorted(exp_dir.glob("inference_*/*/scoring/scores.json")):
        try:
            scores = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise CollectError(f"{path}: not a readable JSON file ({e})")
        missing = [k for k in KEYS if not isinstance(scores, dict) or k not in scores]
        if missing:
            raise CollectError(f"{path}: missing {', '.join(missing)} (expected score_cls.py's scores.json)")
        found[(path.parents[2].name, path.parents[1].name)] = (scores, path.parent)
    if not found:
        raise CollectError(f"{exp_dir}: no scores found (looked for {exp_dir}/{SCORES_PATTERN})")
    return found


def experiment_section(exp_dir: Path, out_dir: Path, command=None, images=None) -> list:
    if not exp_dir.is_dir():
        raise CollectError(f"{exp_dir}: no such experiment directory")
    scores = find_scores(exp_dir)
    lines = [f"## {exp_dir.resolve().name}", ""]
    facts, _, _ = experiment_facts(exp_dir, command)
    if facts:
        lines += facts + [""]
    if (exp_dir / "stage_times.tsv").is_file():
        lines += ["Stage times:", ""] + stage_table(exp_dir / "stage_times.tsv") + [""]
    lines += ["### Accuracy", "", "|dataset|clips|accuracy (%)|macro-F1 (%)|unclassified|", "|---|---|---|---|---|"]
    for (inference, dataset), (s, _) in scores.items():
        lines.append(f"|{inference}/{dataset}|{s['clips']}|{100 * s['accuracy']:.2f}|{100 * s['macro_f1']:.2f}|"
                     f"{s.get('unclassified', 0)}|")
    lines.append("")
    for (inference, dataset), (s, scoring_dir) in scores.items():
        result_md = scoring_dir / "result.md"
        if result_md.is_file():
            body = result_md.read_text(encoding="utf-8").split("\n", 1)[1]  # without its "### dataset" line
            lines += [f"### {inference}/{dataset}", body.strip("\n"), ""]
        png = scoring_dir / "confusion.png"
        if png.is_file() and images is not None:
            Path(images).mkdir(parents=True, exist_ok=True)
            copy = Path(images) / f"{exp_dir.resolve().name}_{dataset}.png"
            shutil.copyfile(png, copy)
            png = copy
        if png.is_file():
            lines += [f"![confusion matrix of {dataset}]({os.path.relpath(png, out_dir)})", ""]
    return lines


def summary_section(exp_dirs) -> list:
    lines = ["## Summary", "", "|experiment|dataset|accuracy (%)|macro-F1 (%)|parameters|training time|",
             "|---|---|---|---|---|---|"]
    for exp_dir in exp_dirs:
        exp_dir = Path(exp_dir)
        _, counts, seconds = experiment_facts(exp_dir)
        params = f"{counts[1]:,}" if counts else "-"
        trained = _duration(seconds) if seconds is not None else "-"
        for (inference, dataset), (s, _) in find_scores(exp_dir).items():
            lines.append(f"|{exp_dir.resolve().name}|{dataset}|{100 * s['accuracy']:.2f}|{100 * s['macro_f1']:.2f}|"
                         f"{params}|{trained}|")
    return lines + [""]


def records(exp_dirs) -> list:
    """One record per experiment, inference and set for each metric (accuracy, macro_f1, in %), with the
    experiment's parameter count, training time, commit and date (collect_results.base_record)."""
    rows = []
    for exp_dir in map(Path, exp_dirs):
        base = base_record(exp_dir)
        for (inference, dataset), (scores, _) in find_scores(exp_dir).items():
            for metric in ("accuracy", "macro_f1"):
                rows.append({**base, "decoding": inference, "set": dataset, "metric": metric,
                             "value": round(100 * float(scores[metric]), 2), "clips": scores["clips"]})
    return rows


def render(exp_dirs, out: Path, title=None, command=None, images=None) -> str:
    lines = ["<!-- Generated by cls_results.py -->", f"# {title or 'RESULTS'}", ""]
    lines += ["## Environments"] + environment_lines() + [""]
    if len(exp_dirs) > 1:
        lines += summary_section(exp_dirs)
    for exp_dir in exp_dirs:
        lines += experiment_section(Path(exp_dir), out.parent, command, images)
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--exp_dir", action="append", required=True, help="an experiment directory (repeat for several)")
    parser.add_argument("--out", required=True, type=Path, help="the markdown file to write")
    parser.add_argument("--title", help="the top heading (default: RESULTS)")
    parser.add_argument("--command", help="the command to show (default: EXP/run_command.txt)")
    parser.add_argument("--images", type=Path, help="copy the confusion matrices here and link the copies")
    args = parser.parse_args(argv)
    out = args.out.absolute()
    try:
        text = render(args.exp_dir, out, args.title, args.command, args.images)
    except CollectError as e:
        print(f"cls_results.py: error: {e}", file=sys.stderr)
        return 1
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    table = write_records(records(args.exp_dir), out)
    print(f"cls_results.py: wrote {out} and {table}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
