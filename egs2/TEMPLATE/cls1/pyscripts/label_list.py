#!/usr/bin/env python3
"""Stage 4 of cls.sh: the label list of a classifier, and a check of every set's labels against it.

    label_list.py --train_text dump/raw/train/text [--check dump/raw/dev/text ...] \\
        [--label_list conf/labels.txt] --out data/token_list/labels.txt

A ``text`` file has one ``<utt> <label> [<label> ...]`` line per clip (several labels: multi-label
classification). The list written to ``--out`` is ESPnet's classification token list: the labels in
class-id order, then ``<unk>`` (ESPnet 202511's cls task builds ``len(list) - 1`` classes: the last
entry is never predicted). The order is ``--label_list`` (a fixed list, one label per line, e.g. a
benchmark's classes) when given, else the training labels sorted in byte order.

Every file (the training text and each ``--check``) must give every clip at least one label, and
only labels of the list: a clip with no label, or with a label that is not in the list, would be
turned into ``<unk>`` by ESPnet's preprocessor and fail or be scored wrong much later. All such
lines are reported (file, line, clip, label) and nothing is written; an existing list is replaced
only by a complete new one. Exit status 0, or 1 with the report.
"""

import argparse
import os
import sys
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

PROG = "label_list.py"
SPECIAL = ("<unk>",)  # after the labels; ESPnet's cls task builds len(list) - 1 classes
MAX_REPORTED = 20


class LabelError(Exception):
    """A user-facing error: the message names the file(s) and what was expected."""


def read_text(path: Path) -> List[Tuple[int, str, List[str]]]:
    """(line number, clip, labels) of every non-blank line of a text file."""
    if not path.is_file():
        raise LabelError(f"{path}: no such file")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        rows.append((number, fields[0], fields[1:]))
    if not rows:
        raise LabelError(f"{path}: no clip (the file is empty)")
    return rows


def read_label_list(path: Path) -> List[str]:
    """A fixed label list: one label per line, no duplicates, no spaces, none of <blank>/<unk>."""
    labels, seen = [], set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        label = line.strip()
        if not label:
            continue
        if len(label.split()) != 1 or label in SPECIAL:
            raise LabelError(f"{path}:{number}: '{label}' is not a label (one word, not {', '.join(SPECIAL)})")
        if label in seen:
            raise LabelError(f"{path}:{number}: '{label}' is listed twice")
        seen.add(label)
        labels.append(label)
    if not labels:
        raise LabelError(f"{path}: no label in the list")
    return labels


def problems(path: Path, rows, known: Sequence[str]) -> List[str]:
    """One line per clip of ``rows`` without a label or with a label outside ``known``."""
    known = set(known)
    found = []
    for number, clip, labels in rows:
        if not labels:
            found.append(f"{path}:{number}: clip {clip} has no label")
        for label in labels:
            if label not in known:
                found.append(f"{path}:{number}: clip {clip} has label '{label}', which is not in the label list")
    return found


def build(train_text: Path, checks: Sequence[Path], label_list=None) -> Tuple[List[str], Dict[str, int]]:
    """(the token list, {label: training clips}); LabelError listing every bad line of every file."""
    train = read_text(train_text)
    fixed = read_label_list(label_list) if label_list else None
    counts: Dict[str, int] = {}
    for _, _, labels in train:
        for label in labels:
            counts[label] = counts.get(label, 0) + 1
    labels = fixed if fixed is not None else sorted(l for l in counts if l not in SPECIAL)
    found = problems(train_text, train, labels)
    for path in checks:
        if Path(path) != Path(train_text):
            found += problems(Path(path), read_text(Path(path)), labels)
    if found:
        shown = found[:MAX_REPORTED]
        more = f"\n... and {len(found) - MAX_REPORTED} more" if len(found) > MAX_REPORTED else ""
        source = f"--label_list {label_list}" if fixed is not None else f"the labels of {train_text}"
        raise LabelError(f"{len(found)} clip label(s) not usable (the list is {source}):\n" + "\n".join(shown) + more)
    if len(labels) < 2:
        raise LabelError(f"{train_text}: only one label ({labels[0]}); a classifier needs at least two")
    return labels + list(SPECIAL), counts


def write(path: Path, tokens: Sequence[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(t + "\n" for t in tokens), encoding="utf-8")
    os.replace(tmp, path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--train_text", required=True, type=Path)
    p.add_argument("--check", action="append", type=Path, default=[], help="another set's text to check")
    p.add_argument("--label_list", type=Path, help="a fixed label list, one per line, in class-id order")
    p.add_argument("--out", required=True, type=Path)
    args = p.parse_args(argv)
    try:
        if args.label_list is not None and not args.label_list.is_file():
            raise LabelError(f"--label_list {args.label_list}: no such file")
        tokens, counts = build(args.train_text, args.check, args.label_list)
    except LabelError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 1
    write(args.out, tokens)
    labels = tokens[: -len(SPECIAL)]
    print(f"{PROG}: {args.out}: {len(labels)} classes "
          + ", ".join(f"{label} ({counts.get(label, 0)})" for label in labels) + " (training clips)")
    unused = [label for label in labels if not counts.get(label)]
    if unused:
        print(f"{PROG}: warning: no training clip for {', '.join(unused)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
