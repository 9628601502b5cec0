#!/usr/bin/env python3
"""Intent accuracy and transcript WER of a SLURP decoding.

    score.py --ref data/test/text --hyp exp/asr_X/decode_Y/test/text --dataset decode_Y/test --out_dir DIR

REF and HYP are Kaldi text files, ``<utt-id> <INTENT> <words...>`` (as local/data_prep.py writes the
reference and asr.sh stage 12 the hypotheses). The intent is the first word: an utterance is right
when the hypothesis's first word is the reference's. The WER is that of the words after it, scored
with the template's pyscripts/score.py (Levenshtein alignment, no SCTK). A reference utterance
without hypothesis (none decoded, or filtered out before decoding) counts as a wrong intent and an
empty transcript; the number of such utterances is reported. A hypothesis id absent from REF is an
error.

Writes to DIR: ``result.md`` (the table, then the intent errors: utterance, reference, hypothesis),
``scores.json`` (the numbers) and ``intent_errors.txt`` (``<utt> <ref intent> <hyp intent>``, ``-``
for no hypothesis); prints the table (header, rule, row).
"""

import argparse
import importlib.util
import json
import sys
from pathlib import Path


def _template_score():
    """The template's pyscripts/score.py (loaded by path: this file has the same name)."""
    path = Path(__file__).resolve().parents[1] / "pyscripts" / "score.py"
    spec = importlib.util.spec_from_file_location("template_score", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ts = _template_score()
ScoreError = ts.ScoreError
HEADER = "|dataset|Snt|Intent acc. (%)|Intent err.|No hyp.|Wrd|WER (%)|Sub|Del|Ins|"
RULE = "|" + "---|" * 10
NONE = "-"


def split_intent(text: str):
    """(intent, transcript) of ``<INTENT> <words...>``; ("", "") for an empty text."""
    parts = text.split(maxsplit=1)
    return (parts[0] if parts else "", parts[1] if len(parts) > 1 else "")


def score_intents(refs: dict, hyps: dict) -> dict:
    """Counts of intent accuracy and transcript errors; refs and hyps are {utt: text}."""
    ts.check_ids(refs, hyps)
    if not refs:
        raise ScoreError("the reference holds no utterances")
    errors, missing = [], []
    ref_words, hyp_words = {}, {}
    for utt, text in refs.items():
        ref_intent, ref_words[utt] = split_intent(text)
        if not ref_intent:
            raise ScoreError(f"reference utterance {utt} has no intent (expected '<utt> <INTENT> <words...>')")
        if utt in hyps:
            hyp_intent, hyp_words[utt] = split_intent(hyps[utt])
        else:
            missing.append(utt)
            hyp_intent = None
        if hyp_intent != ref_intent:
            errors.append((utt, ref_intent, hyp_intent or NONE))
    summary, _ = ts.score(ref_words, hyp_words, ts.word_tokens)
    snt = len(refs)
    result = {
        "Snt": snt,
        "intent_correct": snt - len(errors),
        "intent_errors": len(errors),
        "no_hypothesis": len(missing),
        "intent_accuracy": 100.0 * (snt - len(errors)) / snt,
        "Wrd": summary["Wrd"],
        "word_counts": {k: summary[k] for k in ("Corr", "Sub", "Del", "Ins", "Err")},
        "WER": 100.0 * summary["Err"] / summary["Wrd"] if summary["Wrd"] else None,
    }
    result["errors"] = errors
    result["missing"] = missing
    return result


def percent(x) -> str:
    return "n/a" if x is None else f"{x:.1f}"


def table_row(dataset: str, r: dict) -> str:
    wrd = r["Wrd"]
    share = (lambda k: percent(100.0 * r["word_counts"][k] / wrd if wrd else None))  # noqa: E731
    cells = [dataset, str(r["Snt"]), percent(r["intent_accuracy"]), str(r["intent_errors"]),
             str(r["no_hypothesis"]), str(wrd), percent(r["WER"]), share("Sub"), share("Del"), share("Ins")]
    return "|" + "|".join(cells) + "|"


def write_outputs(out_dir: Path, dataset: str, r: dict, ref: str, hyp: str) -> str:
    out_dir.mkdir(parents=True, exist_ok=True)
    row = table_row(dataset, r)
    lines = [f"# Intent accuracy: {dataset}", "", f"- REF: {ref}", f"- HYP: {hyp}",
             "- intent: the first word; WER: of the words after it, in % of the reference words "
             "(Sub, Del, Ins likewise)", "", HEADER, RULE, row, ""]
    if r["missing"]:
        shown = ", ".join(r["missing"][:10]) + (", ..." if len(r["missing"]) > 10 else "")
        lines += [f"{len(r['missing'])} utterance(s) without hypothesis, counted wrong: {shown}", ""]
    if r["errors"]:
        lines += ["## Intent errors", "", "|utterance|reference|hypothesis|", "|---|---|---|"]
        lines += [f"|{u}|{a}|{b}|" for u, a, b in r["errors"]]
        lines.append("")
    (out_dir / "result.md").write_text("\n".join(lines), encoding="utf-8")
    (out_dir / "intent_errors.txt").write_text("".join(f"{u} {a} {b}\n" for u, a, b in r["errors"]),
                                               encoding="utf-8")
    record = {"dataset": dataset, "ref": ref, "hyp": hyp,
              **{k: v for k, v in r.items() if k not in ("errors", "missing")},
              "missing": r["missing"]}
    (out_dir / "scores.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref", required=True, help="reference text: <utt> <INTENT> <words...>")
    parser.add_argument("--hyp", required=True, help="hypothesis text of a decoding (asr.sh stage 12)")
    parser.add_argument("--dataset", required=True, help="the row's name, e.g. decode_asr_.../test")
    parser.add_argument("--out_dir", required=True, type=Path, help="where result.md and scores.json go")
    args = parser.parse_args(argv)
    try:
        refs, hyps = ts.read_text(args.ref), ts.read_text(args.hyp)
        if not refs:
            raise ScoreError(f"{args.ref}: the reference holds no utterances")
        ts.check_ids(refs, hyps, args.ref, args.hyp)
        r = score_intents(refs, hyps)
    except ScoreError as e:
        print(f"local/score.py: error: {e}", file=sys.stderr)
        return 1
    if r["missing"]:
        shown = ", ".join(r["missing"][:5]) + (", ..." if len(r["missing"]) > 5 else "")
        print(f"local/score.py: warning: {len(r['missing'])} of {r['Snt']} utterances in {args.ref} have no "
              f"hypothesis in {args.hyp}; counted as wrong: {shown}", file=sys.stderr)
    row = write_outputs(args.out_dir, args.dataset, r, args.ref, args.hyp)
    print(HEADER)
    print(RULE)
    print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
