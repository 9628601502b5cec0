#!/usr/bin/env python3
"""Stage 8 of cls.sh: accuracy, macro-F1, a per-class table and a confusion matrix of one test set.

    score_cls.py --ref dump/raw/test/text --hyp exp/cls_x/inference_y/test/text \\
        [--score exp/cls_x/inference_y/test/score --token_list data/token_list/labels.txt] \\
        --dataset test --out_dir exp/cls_x/inference_y/test/scoring

``--ref`` and ``--hyp`` hold ``<clip> <label>`` lines (the reference and ESPnet's cls_inference
prediction; a clip it could not classify, too short for the encoder, has an empty prediction).
``--score`` (``<clip> <p_1> ... <p_N>``, the class probabilities in ``--token_list`` order, as
cls_inference writes with ``--output_all_probabilities true``) adds the mean probability given to
the reference class and the mean top-1 probability.

Every reference clip counts: a clip with no prediction, or an empty one, is an error, predicted as
``(none)``. Macro-F1 is the mean F1 over the labels that occur in the reference or the predictions
(scikit-learn's ``average="macro"``); a class never predicted has precision 0.

Writes into ``--out_dir``: ``scores.json`` (every figure, the per-class table and the confusion
matrix), ``result.md`` (the same as Markdown tables) and ``confusion.png`` (rows: reference,
columns: prediction; colour: share of the row, numbers: clips). Prints result.md. Exit status 1 with
a message naming the file for unreadable input (a hypothesis for a clip that is not in the reference,
a multi-label reference line).
"""

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

PROG = "score_cls.py"
NONE = "(none)"


class ScoreError(Exception):
    """A user-facing error: the message names the file and what was expected."""


def read_labels(path: Path, what: str, allow_empty: bool) -> Dict[str, str]:
    """{clip: label} of a ``<clip> <label>`` file; one label per clip."""
    if not path.is_file():
        raise ScoreError(f"{path}: no such file ({what})")
    out = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) > 2:
            raise ScoreError(f"{path}:{number}: clip {fields[0]} has {len(fields) - 1} labels; "
                             "this scoring is for single-label (multi-class) classification")
        if len(fields) == 1 and not allow_empty:
            raise ScoreError(f"{path}:{number}: clip {fields[0]} has no label ({what})")
        if fields[0] in out:
            raise ScoreError(f"{path}:{number}: clip {fields[0]} is listed twice ({what})")
        out[fields[0]] = fields[1] if len(fields) == 2 else ""
    if not out and not allow_empty:
        raise ScoreError(f"{path}: no clip ({what})")
    return out


def read_probabilities(path: Path, n_classes: int) -> Dict[str, List[float]]:
    out = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split()
        if not fields or len(fields) == 2 and fields[1] == "0":  # cls_inference's line for a clip it skipped
            continue
        try:
            values = [float(x) for x in fields[1:]]
        except ValueError:
            raise ScoreError(f"{path}:{number}: expected <clip> and {n_classes} probabilities")
        if len(values) != n_classes:
            raise ScoreError(f"{path}:{number}: {len(values)} probabilities for {n_classes} classes "
                             "(was the inference run with --output_all_probabilities true and this label list?)")
        out[fields[0]] = values
    return out


def score(ref: Dict[str, str], hyp: Dict[str, str], labels: Optional[Sequence[str]] = None,
          probabilities: Optional[Dict[str, List[float]]] = None) -> dict:
    """Every figure of one test set (see the module docstring). ``labels``: the class order of the
    tables (default: the reference and predicted labels, sorted)."""
    extra = sorted(set(hyp) - set(ref))
    if extra:
        raise ScoreError(f"{len(extra)} predicted clip(s) not in the reference, e.g. {extra[0]}")
    predicted = {clip: (hyp.get(clip) or NONE) for clip in ref}
    order = list(labels) if labels else []
    for label in sorted(set(ref.values()) | set(predicted.values())):
        if label not in order and label != NONE:
            order.append(label)
    columns = order + ([NONE] if NONE in predicted.values() else [])
    index = {label: i for i, label in enumerate(columns)}
    confusion = [[0] * len(columns) for _ in order]
    for clip, label in ref.items():
        confusion[index[label]][index[predicted[clip]]] += 1
    per_class = {}
    f1s = []
    for i, label in enumerate(order):
        support = sum(confusion[i])
        predicted_as = sum(row[i] for row in confusion)
        tp = confusion[i][i]
        precision = tp / predicted_as if predicted_as else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {"precision": precision, "recall": recall, "f1": f1, "support": support,
                            "predicted": predicted_as}
        if support or predicted_as:
            f1s.append(f1)
    correct = sum(1 for clip in ref if predicted[clip] == ref[clip])
    result = {
        "clips": len(ref),
        "correct": correct,
        "accuracy": correct / len(ref),
        "macro_f1": sum(f1s) / len(f1s) if f1s else 0.0,
        "unclassified": sum(1 for clip in ref if predicted[clip] == NONE),
        "labels": order,
        "columns": columns,
        "confusion": confusion,
        "per_class": per_class,
    }
    if probabilities is not None and labels:
        position = {label: i for i, label in enumerate(labels)}
        scored = [clip for clip in ref if clip in probabilities and ref[clip] in position]
        if scored:
            result["mean_reference_probability"] = sum(probabilities[c][position[ref[c]]] for c in scored) / len(scored)
            result["mean_top1_probability"] = sum(max(probabilities[c]) for c in scored) / len(scored)
    return result


def markdown(result: dict, dataset: str) -> str:
    lines = [f"### {dataset}", "",
             "|clips|correct|accuracy (%)|macro-F1 (%)|unclassified|",
             "|---|---|---|---|---|",
             f"|{result['clips']}|{result['correct']}|{100 * result['accuracy']:.2f}|"
             f"{100 * result['macro_f1']:.2f}|{result['unclassified']}|", ""]
    if "mean_reference_probability" in result:
        lines += [f"Mean probability of the reference class: {result['mean_reference_probability']:.3f}; "
                  f"mean top-1 probability: {result['mean_top1_probability']:.3f}.", ""]
    lines += ["|class|clips|predicted|precision (%)|recall (%)|F1 (%)|", "|---|---|---|---|---|---|"]
    for label, row in result["per_class"].items():
        lines.append(f"|{label}|{row['support']}|{row['predicted']}|{100 * row['precision']:.1f}|"
                     f"{100 * row['recall']:.1f}|{100 * row['f1']:.1f}|")
    lines += ["", "Confusion matrix (rows: reference, columns: prediction):", "",
              "|reference \\ predicted|" + "|".join(result["columns"]) + "|",
              "|---|" + "---|" * len(result["columns"])]
    for label, row in zip(result["labels"], result["confusion"]):
        lines.append(f"|{label}|" + "|".join(str(n) for n in row) + "|")
    return "\n".join(lines) + "\n"


def plot(result: dict, dataset: str, path: Path) -> None:
    """The confusion matrix as a PNG (colour: share of the reference row; numbers: clips)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, columns = result["labels"], result["columns"]
    shares = [[n / max(1, sum(row)) for n in row] for row in result["confusion"]]
    size = max(4.0, 0.45 * len(columns) + 2.0)
    fig, ax = plt.subplots(figsize=(size, max(3.5, 0.45 * len(rows) + 1.5)))
    ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(columns)), columns, rotation=90 if len(columns) > 12 else 45, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("prediction")
    ax.set_ylabel("reference")
    ax.set_title(f"{dataset}: accuracy {100 * result['accuracy']:.1f} %, macro-F1 {100 * result['macro_f1']:.1f} %")
    if len(columns) <= 40:
        for i, row in enumerate(result["confusion"]):
            for j, n in enumerate(row):
                if n:
                    ax.text(j, i, str(n), ha="center", va="center", fontsize=7,
                            color="white" if shares[i][j] > 0.5 else "black")
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ref", required=True, type=Path)
    p.add_argument("--hyp", required=True, type=Path)
    p.add_argument("--score", type=Path, help="class probabilities (cls_inference --output_all_probabilities true)")
    p.add_argument("--token_list", type=Path, help="the label list (class order of the tables and of --score)")
    p.add_argument("--dataset", default="test")
    p.add_argument("--out_dir", required=True, type=Path)
    p.add_argument("--no_plot", action="store_true", help="do not draw confusion.png")
    args = p.parse_args(argv)
    try:
        ref = read_labels(args.ref, "reference", allow_empty=False)
        hyp = read_labels(args.hyp, "prediction", allow_empty=True)
        labels = None
        if args.token_list is not None:
            if not args.token_list.is_file():
                raise ScoreError(f"--token_list {args.token_list}: no such file")
            labels = [t for t in args.token_list.read_text(encoding="utf-8").split() if t not in ("<blank>", "<unk>")]
        probabilities = None
        if args.score is not None and labels:
            if not args.score.is_file():
                raise ScoreError(f"--score {args.score}: no such file")
            probabilities = read_probabilities(args.score, len(labels))
        result = score(ref, hyp, labels, probabilities)
    except ScoreError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 1
    result["dataset"] = args.dataset
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "scores.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    text = markdown(result, args.dataset)
    (args.out_dir / "result.md").write_text(text, encoding="utf-8")
    if not args.no_plot:
        plot(result, args.dataset, args.out_dir / "confusion.png")
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
