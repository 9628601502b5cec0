#!/usr/bin/env python3
"""Score a Kaldi-style hypothesis text against its reference: WER, CER or TER, without SCTK.

    score.py --ref REF --hyp HYP --metric {wer,cer,ter} [--bpemodel MODEL] --dataset NAME --out_dir DIR

REF and HYP hold one utterance a line, ``<utt-id> <words...>``; a hypothesis line may be the id alone
(nothing recognised). Tokens are words (wer), characters with ``<space>`` between words (cer, as ESPnet
counts them) or the sentencepiece pieces of ``--bpemodel`` (ter). Each utterance is aligned to its
reference by Levenshtein distance with unit costs; the counts of correct, substituted, deleted and
inserted tokens are summed over the set.

Writes to DIR:
  result.txt   the summary table, then every utterance's id, counts and REF/HYP/Eval alignment
               (``***`` marks the missing side of an insertion or deletion; Eval says S, D or I);
  scores.json  {"dataset", "metric", "Snt", "Wrd", "Corr", "Sub", "Del", "Ins", "Err", "S.Err",
               "counts"}: Snt and Wrd (reference tokens) are counts, the others percentages of Wrd
               (S.Err: of Snt, the sentences with any error), the raw counts under "counts".
and prints the row as ESPnet's RESULTS.md tables have it. A reference utterance with no hypothesis is
scored as an empty hypothesis (with a warning); a hypothesis id absent from REF is an error.
"""

import argparse
import json
import sys
from pathlib import Path

METRICS = ("wer", "cer", "ter")
SPACE = "<space>"
GAP = "***"
COLUMNS = ("Snt", "Wrd", "Corr", "Sub", "Del", "Ins", "Err", "S.Err")
TABLE_HEADER = "|dataset|" + "|".join(COLUMNS) + "|"
TABLE_RULE = "|" + "---|" * (len(COLUMNS) + 1)


class ScoreError(Exception):
    """A problem with the inputs, reported to the user as one line."""


# ---------------------------------------------------------------- reading


def read_text(path) -> dict:
    """Read a Kaldi text file into {utt_id: text}, keeping file order; blank lines are skipped."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ScoreError(f"{path}: no such file (expected a Kaldi text file '<utt-id> <words...>')")
    except UnicodeDecodeError as e:
        raise ScoreError(f"{path}: not UTF-8 text ({e})")
    texts = {}
    for number, line in enumerate(lines, start=1):
        parts = line.strip().split(maxsplit=1)
        if not parts:
            continue
        utt_id = parts[0]
        if utt_id in texts:
            raise ScoreError(f"{path}:{number}: duplicate utterance id '{utt_id}'")
        texts[utt_id] = parts[1] if len(parts) > 1 else ""
    return texts


def check_ids(refs: dict, hyps: dict, ref_path="REF", hyp_path="HYP") -> list:
    """Raise on a hypothesis id not in the reference; return the reference ids with no hypothesis."""
    unknown = [u for u in hyps if u not in refs]
    if unknown:
        shown = ", ".join(f"'{u}'" for u in unknown[:5]) + (", ..." if len(unknown) > 5 else "")
        raise ScoreError(
            f"{hyp_path}: {len(unknown)} hypothesis id(s) not in the reference {ref_path}: {shown}"
        )
    return [u for u in refs if u not in hyps]


# ---------------------------------------------------------------- tokenizers


def word_tokens(text: str) -> list:
    """Whitespace-separated words."""
    return text.split()


def char_tokens(text: str) -> list:
    """Characters of the words, with the token ``<space>`` between words (runs of spaces count once)."""
    tokens = []
    for word in text.split():
        if tokens:
            tokens.append(SPACE)
        tokens.extend(word)
    return tokens


def piece_tokenizer(bpemodel):
    """A tokenizer giving the sentencepiece pieces of a text with the model file ``bpemodel``."""
    import sentencepiece

    if not Path(bpemodel).is_file():
        raise ScoreError(f"{bpemodel}: no such sentencepiece model file (--bpemodel)")
    processor = sentencepiece.SentencePieceProcessor()
    try:
        processor.load(str(bpemodel))
    except (OSError, RuntimeError) as e:
        raise ScoreError(f"{bpemodel}: not a sentencepiece model ({e})")

    def tokenize(text: str) -> list:
        return processor.encode(" ".join(text.split()), out_type=str)

    return tokenize


def make_tokenizer(metric: str, bpemodel=None):
    """The tokenizer of a metric; ``ter`` needs ``bpemodel``."""
    if metric == "wer":
        return word_tokens
    if metric == "cer":
        return char_tokens
    if metric == "ter":
        if not bpemodel:
            raise ScoreError("--metric ter needs --bpemodel (the sentencepiece model of the tokens)")
        return piece_tokenizer(bpemodel)
    raise ScoreError(f"unknown metric '{metric}' (expected one of {', '.join(METRICS)})")


# ---------------------------------------------------------------- alignment


def align(ref: list, hyp: list) -> list:
    """Align two token lists by Levenshtein distance (unit costs).

    Returns the alignment as (op, ref_token, hyp_token) triples in order, op being "C" (correct),
    "S" (substitution), "D" (deletion: hyp_token is None) or "I" (insertion: ref_token is None).
    Among equally short alignments, matches and substitutions are preferred, then deletions.
    """
    n, m = len(ref), len(hyp)
    # dist[i][j]: edit distance between ref[:i] and hyp[:j]
    dist = [[0] * (m + 1) for _ in range(n + 1)]
    for j in range(m + 1):
        dist[0][j] = j
    for i in range(1, n + 1):
        above, row, token = dist[i - 1], dist[i], ref[i - 1]
        row[0] = i
        for j in range(1, m + 1):
            row[j] = min(above[j - 1] + (token != hyp[j - 1]), above[j] + 1, row[j - 1] + 1)

    ops = []
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and dist[i][j] == dist[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]):
            ops.append(("C" if ref[i - 1] == hyp[j - 1] else "S", ref[i - 1], hyp[j - 1]))
            i, j = i - 1, j - 1
        elif i > 0 and dist[i][j] == dist[i - 1][j] + 1:
            ops.append(("D", ref[i - 1], None))
            i -= 1
        else:
            ops.append(("I", None, hyp[j - 1]))
            j -= 1
    ops.reverse()
    return ops


def count_ops(ops: list) -> dict:
    """{"Corr", "Sub", "Del", "Ins"} counts of an alignment."""
    counts = {"Corr": 0, "Sub": 0, "Del": 0, "Ins": 0}
    names = {"C": "Corr", "S": "Sub", "D": "Del", "I": "Ins"}
    for op, _, _ in ops:
        counts[names[op]] += 1
    return counts


# ---------------------------------------------------------------- scoring


def score(refs: dict, hyps: dict, tokenize) -> tuple:
    """Score hypotheses against references, both {utt_id: text}.

    A reference id missing from ``hyps`` is scored as an empty hypothesis; a hypothesis id missing from
    ``refs`` raises ScoreError. Returns ``(summary, per_utt)``: summary holds the counts
    {"Snt", "Wrd", "Corr", "Sub", "Del", "Ins", "Err", "S.Err"} (S.Err: sentences with an error), and
    per_utt is a list, in reference order, of {"id", "counts", "ops"} (counts as summary's Corr to Ins,
    ops as ``align`` returns them).
    """
    check_ids(refs, hyps)
    if not refs:
        raise ScoreError("the reference set is empty: nothing to score")
    summary = dict.fromkeys(COLUMNS, 0)
    per_utt = []
    for utt_id, ref_text in refs.items():
        ops = align(tokenize(ref_text), tokenize(hyps.get(utt_id, "")))
        counts = count_ops(ops)
        errors = counts["Sub"] + counts["Del"] + counts["Ins"]
        summary["Snt"] += 1
        summary["Wrd"] += counts["Corr"] + counts["Sub"] + counts["Del"]
        for key, value in counts.items():
            summary[key] += value
        summary["Err"] += errors
        summary["S.Err"] += errors > 0
        per_utt.append({"id": utt_id, "counts": counts, "ops": ops})
    return summary, per_utt


def percentages(summary: dict) -> dict:
    """Snt and Wrd as counts, Corr to Err as percentages of Wrd, S.Err as a percentage of Snt."""
    if summary["Wrd"] == 0:
        raise ScoreError("the references hold no tokens: percentages of Wrd are undefined")
    result = {"Snt": summary["Snt"], "Wrd": summary["Wrd"]}
    for key in ("Corr", "Sub", "Del", "Ins", "Err"):
        result[key] = 100.0 * summary[key] / summary["Wrd"]
    result["S.Err"] = 100.0 * summary["S.Err"] / summary["Snt"]
    return result


def table_row(dataset: str, scores: dict) -> str:
    """One row of ESPnet's results table from counts Snt, Wrd and percentages (one decimal)."""
    cells = [dataset, str(scores["Snt"]), str(scores["Wrd"])]
    cells += [f"{scores[key]:.1f}" for key in COLUMNS[2:]]
    return "|" + "|".join(cells) + "|"


def alignment_lines(ops: list) -> list:
    """The REF, HYP and Eval lines of an alignment, one column a token pair."""
    ref_cells, hyp_cells, eval_cells = [], [], []
    for op, ref_token, hyp_token in ops:
        ref_cell = GAP if ref_token is None else ref_token
        hyp_cell = GAP if hyp_token is None else hyp_token
        width = max(len(ref_cell), len(hyp_cell))
        ref_cells.append(ref_cell.ljust(width))
        hyp_cells.append(hyp_cell.ljust(width))
        eval_cells.append(("" if op == "C" else op).ljust(width))
    return [
        ("REF:  " + " ".join(ref_cells)).rstrip(),
        ("HYP:  " + " ".join(hyp_cells)).rstrip(),
        ("Eval: " + " ".join(eval_cells)).rstrip(),
    ]


def write_outputs(out_dir, dataset: str, metric: str, summary: dict, per_utt: list, sources=()) -> str:
    """Write result.txt and scores.json into ``out_dir``; return the table row."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    scores = percentages(summary)
    row = table_row(dataset, scores)

    lines = [f"Dataset: {dataset}", f"Metric: {metric}"]
    lines += [f"{name}: {path}" for name, path in sources]
    lines += ["", TABLE_HEADER, TABLE_RULE, row, ""]
    for utt in per_utt:
        c = utt["counts"]
        lines.append(f"id: {utt['id']}")
        lines.append(f"Scores: (#C #S #D #I) {c['Corr']} {c['Sub']} {c['Del']} {c['Ins']}")
        lines += alignment_lines(utt["ops"])
        lines.append("")
    (out_dir / "result.txt").write_text("\n".join(lines), encoding="utf-8")

    record = {"dataset": dataset, "metric": metric, **scores, "counts": dict(summary)}
    (out_dir / "scores.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return row


# ---------------------------------------------------------------- command line


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref", required=True, help="reference Kaldi text file")
    parser.add_argument("--hyp", required=True, help="hypothesis Kaldi text file")
    parser.add_argument("--metric", required=True, choices=METRICS)
    parser.add_argument("--bpemodel", help="sentencepiece model (needed for --metric ter)")
    parser.add_argument("--dataset", required=True, help="name of the set in the table")
    parser.add_argument("--out_dir", required=True, help="where result.txt and scores.json go")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        tokenize = make_tokenizer(args.metric, args.bpemodel)
        refs, hyps = read_text(args.ref), read_text(args.hyp)
        if not refs:
            raise ScoreError(f"{args.ref}: the reference holds no utterances")
        missing = check_ids(refs, hyps, args.ref, args.hyp)
        if missing:
            shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
            print(
                f"score.py: warning: {len(missing)} of {len(refs)} utterances in {args.ref} have no "
                f"hypothesis in {args.hyp}; scored as empty: {shown}",
                file=sys.stderr,
            )
        summary, per_utt = score(refs, hyps, tokenize)
        row = write_outputs(
            args.out_dir, args.dataset, args.metric, summary, per_utt,
            sources=[("REF", args.ref), ("HYP", args.hyp)],
        )
    except ScoreError as e:
        print(f"score.py: error: {e}", file=sys.stderr)
        return 1
    print(TABLE_HEADER)
    print(TABLE_RULE)
    print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
