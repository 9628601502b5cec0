#!/usr/bin/env python3
"""Score the hypotheses of a long-form set made by local/make_longform.py: WER, CER, timestamps.

    local/score_longform.py SET_DIR HYP [HYP ...] [--out_json FILE]

SET_DIR is the set (its ``text`` and ``reference.json``). Each HYP is one of:

* a JSON file ``<rec_id>.json``, as written by the project's transcribe command with
  ``--output_format json``::

      {"source": ..., "duration": ..., "text": "...",
       "segments": [{"start": s, "end": e, "text": "...",
                     "words": [{"text": "...", "start": s, "end": e, "confidence": c}, ...]}, ...]}

  The recording id is the file name without ``.json``. The words scored are those of ``text``
  (when it is absent: the segments' texts joined). Word times are seconds from the start of the
  recording; when every segment has ``words`` the timestamps are scored too;
* a folder: every ``*.json`` in it, as above;
* any other file: a Kaldi-style text, ``<id> <words...>`` a line, scored for WER/CER only. An id
  is a recording id of the set; or an utterance id of the set (ESPnet ``fcaw-an406-b`` or AN4
  ``an406-fcaw-b``: a per-utterance decoding), whose words are put in every recording that
  holds the utterance, in the recording's order; or ``<rec_id>-<n>`` / ``<rec_id>_<n>`` (a
  segmented decoding), the pieces joined in natural order of their ids (``x-2`` before ``x-10``).

Word and character error rates: Levenshtein alignment with unit costs of the hypothesis to the
reference of each recording; words are whitespace-separated tokens, characters are those of the
words with the spaces removed; no case or punctuation normalisation. Rates are
(substitutions + deletions + insertions) / reference tokens, in percent.

Timestamps (recordings whose hypothesis has word times): each hypothesis word is assigned to the
reference utterance whose span [start, end) holds the word's midpoint. An utterance's hypothesis
start is its first word's start, its end its last word's end. The errors |hyp - ref| in seconds are
measured against the utterance boundaries (``utterance``) and against the speech found inside it
by the set's energy detector (``speech``); the count, median and 90th percentile (linear
interpolation, numpy's default; each error rounded to the microsecond, far below a
sample, so that float noise does not show) are reported for the start errors, the end errors and both pooled.
Utterances that receive no word are counted apart (``no_words``) and listed, as are words that
fall in no utterance (``unassigned_words``).

Totals are given per kind of recording: ``speaker`` (the per-speaker recordings together) and
``all`` (the recording of every utterance), since the two hold the same speech. A recording of the
set without any hypothesis is reported as missing (warning) and left out of the totals; a
hypothesis for a recording not in the set is an error.

Prints a Markdown table; ``--out_json`` gets every figure (per recording, per utterance, totals).
From Python: ``score(set_dir, hyps)`` with ``hyps`` a path, a list of paths, or a dict
``{rec_id: hypothesis dict as in the JSON files, or a str of words}``.
"""

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

PROG = "local/score_longform.py"
KINDS = ("speaker", "all")


class ScoreError(Exception):
    """An unusable input, reported as one line."""


# ---------------------------------------------------------------- alignment


def align_counts(ref: Sequence, hyp: Sequence) -> Dict[str, int]:
    """Counts of a minimum edit-distance alignment of ``hyp`` to ``ref`` (unit costs).

    >>> align_counts("a b c d".split(), "a x c d e".split())
    {'ref': 4, 'corr': 3, 'sub': 1, 'del': 0, 'ins': 1, 'errors': 2}
    >>> align_counts(list("abc"), [])
    {'ref': 3, 'corr': 0, 'sub': 0, 'del': 3, 'ins': 0, 'errors': 3}
    """
    n, m = len(ref), len(hyp)
    vocab: Dict = {}
    r = np.array([vocab.setdefault(t, len(vocab)) for t in ref], dtype=np.int64)
    h = np.array([vocab.setdefault(t, len(vocab)) for t in hyp], dtype=np.int64)
    # d[i, j]: distance between ref[:i] and hyp[:j]; one row at a time, the insertions of a row as a
    # running minimum: d[i, j] = min_k (c[k] + j - k) over the row's candidates c.
    d = np.empty((n + 1, m + 1), dtype=np.int32)
    d[0] = np.arange(m + 1)
    cols = np.arange(m + 1)
    for i in range(1, n + 1):
        cand = np.empty(m + 1, dtype=np.int32)
        cand[0] = i
        cand[1:] = np.minimum(d[i - 1, :-1] + (h != r[i - 1]), d[i - 1, 1:] + 1)
        d[i] = np.minimum.accumulate(cand - cols) + cols
    counts = {"ref": n, "corr": 0, "sub": 0, "del": 0, "ins": 0}
    i, j = n, m
    while i > 0 or j > 0:  # back-trace, preferring a match/substitution, then a deletion
        if i > 0 and j > 0 and d[i, j] == d[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]):
            counts["corr" if ref[i - 1] == hyp[j - 1] else "sub"] += 1
            i, j = i - 1, j - 1
        elif i > 0 and d[i, j] == d[i - 1, j] + 1:
            counts["del"] += 1
            i -= 1
        else:
            counts["ins"] += 1
            j -= 1
    counts["errors"] = counts["sub"] + counts["del"] + counts["ins"]
    assert counts["errors"] == d[n, m]
    return counts


def add_counts(total: Dict[str, int], counts: Dict[str, int]) -> None:
    for key, value in counts.items():
        total[key] = total.get(key, 0) + value


def with_rate(counts: Dict[str, int]) -> Dict[str, Union[int, float, None]]:
    rate = 100.0 * counts["errors"] / counts["ref"] if counts["ref"] else None
    return {**counts, "rate": rate}


# ---------------------------------------------------------------- inputs


def load_set(set_dir: Path) -> Dict[str, Dict]:
    """The recordings of the set by id, each with ``text`` from the set's ``text`` file."""
    ref_path, text_path = set_dir / "reference.json", set_dir / "text"
    for path in (ref_path, text_path):
        if not path.is_file():
            raise ScoreError(f"{set_dir} is not a long-form set: {path} not found (made by local/make_longform.py)")
    try:
        reference = json.loads(ref_path.read_text())
        recordings = {r["id"]: r for r in reference["recordings"]}
    except (ValueError, KeyError, TypeError) as e:
        raise ScoreError(f"{ref_path}: not a reference.json of local/make_longform.py ({e!r})") from e
    for lineno, line in enumerate(text_path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        rec_id, _, words = line.strip().partition(" ")
        if rec_id not in recordings:
            raise ScoreError(f"{text_path}:{lineno}: recording {rec_id!r} is not in {ref_path}")
        recordings[rec_id]["ref_words"] = words.split()
    for rec_id, rec in recordings.items():
        if "ref_words" not in rec:
            raise ScoreError(f"{text_path}: no line for recording {rec_id!r} of {ref_path}")
    return recordings


def _natural_key(text: str):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def read_json_hyp(path: Path) -> Dict:
    try:
        hyp = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ScoreError(f"{path}: cannot be read as JSON ({e})") from e
    if not isinstance(hyp, dict):
        raise ScoreError(f"{path}: expected a JSON object with 'text' and 'segments'")
    return hyp


def read_kaldi_hyps(path: Path, recordings: Dict[str, Dict]) -> Dict[str, str]:
    """A Kaldi text of recording, utterance or segment ids -> the words of each recording."""
    utt_recs: Dict[str, List[Tuple[str, int]]] = {}
    for rec_id, rec in recordings.items():
        for index, utt in enumerate(rec["utterances"]):
            for name in (utt["id"], utt["source"]):
                utt_recs.setdefault(name, []).append((rec_id, index))
    pieces: Dict[str, Dict[str, List]] = {}  # rec_id -> kind of id -> [(order key, words)]
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ScoreError(f"{path}: cannot be read ({e})") from e
    seen = set()
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        key, _, words = line.strip().partition(" ")
        if key in seen:
            raise ScoreError(f"{path}:{lineno}: {key} already has a hypothesis")
        seen.add(key)
        if key in recordings:
            pieces.setdefault(key, {}).setdefault("recording", []).append((0, words))
        elif key in utt_recs:
            for rec_id, index in utt_recs[key]:
                pieces.setdefault(rec_id, {}).setdefault("utterance", []).append((index, words))
        else:
            owners = [r for r in recordings if key.startswith(r) and key[len(r):len(r) + 1] in ("-", "_")
                      and any(ch.isdigit() for ch in key[len(r) + 1:])]
            rec_id = max(owners, key=len) if owners else None
            if rec_id is None:
                raise ScoreError(f"{path}:{lineno}: {key!r} is neither a recording, an utterance nor a "
                                 f"segment (<rec_id>-<n>) of the set (recordings: {', '.join(sorted(recordings))})")
            pieces.setdefault(rec_id, {}).setdefault("segment", []).append((_natural_key(key), words))
    out = {}
    for rec_id, kinds in pieces.items():
        if len(kinds) > 1:
            raise ScoreError(f"{path}: recording {rec_id} has hypotheses of several kinds "
                             f"({', '.join(sorted(kinds))} ids)")
        (items,) = kinds.values()
        out[rec_id] = " ".join(words for _, words in sorted(items, key=lambda item: item[0]))
    return out


def load_hyps(paths: Sequence[Path], recordings: Dict[str, Dict]) -> Dict[str, Union[str, Dict]]:
    """Every hypothesis by recording id, a str (words only) or a JSON dict; duplicates are errors."""
    hyps: Dict[str, Union[str, Dict]] = {}
    origin: Dict[str, Path] = {}

    def put(rec_id, hyp, path):
        if rec_id in hyps:
            raise ScoreError(f"{path}: a second hypothesis for {rec_id} (the first from {origin[rec_id]})")
        hyps[rec_id], origin[rec_id] = hyp, path

    for path in map(Path, paths):
        if path.is_dir():
            files = sorted(path.glob("*.json"))
            if not files:
                raise ScoreError(f"{path}: no <rec_id>.json hypothesis in this folder")
        elif path.is_file():
            files = [path]
        else:
            raise ScoreError(f"{path}: no such file or folder")
        for file in files:
            if file.suffix == ".json":
                put(file.stem, read_json_hyp(file), file)
            else:
                for rec_id, words in read_kaldi_hyps(file, recordings).items():
                    put(rec_id, words, file)
    return hyps


def hyp_text(hyp: Union[str, Dict], where: str) -> str:
    if isinstance(hyp, str):
        return hyp
    if isinstance(hyp.get("text"), str):
        return hyp["text"]
    segments = hyp.get("segments")
    if isinstance(segments, list) and all(isinstance(s, dict) and isinstance(s.get("text"), str) for s in segments):
        return " ".join(s["text"] for s in segments)
    raise ScoreError(f"{where}: no 'text' (nor segments with 'text') in the hypothesis")


def hyp_words(hyp: Union[str, Dict], where: str) -> Optional[List[Tuple[float, float]]]:
    """(start, end) of every hypothesis word, or None when the hypothesis has no word times."""
    if isinstance(hyp, str):
        return None
    segments = hyp.get("segments")
    if not isinstance(segments, list) or not all(isinstance(s, dict) and "words" in s for s in segments):
        return None
    times = []
    for s, segment in enumerate(segments):
        for w, word in enumerate(segment["words"] or []):
            try:
                start, end = float(word["start"]), float(word["end"])
            except (KeyError, TypeError, ValueError):
                raise ScoreError(f"{where}: segments[{s}].words[{w}] has no numeric 'start' and 'end': "
                                 f"{word!r}") from None
            if not (np.isfinite(start) and np.isfinite(end)) or end < start:
                raise ScoreError(f"{where}: segments[{s}].words[{w}]: expected start <= end, got {word!r}")
            times.append((start, end))
    return sorted(times)


# ---------------------------------------------------------------- timestamps


def utterance_times(rec: Dict, words: List[Tuple[float, float]]) -> Tuple[List[Dict], int]:
    """Per reference utterance: its hypothesis start/end (None without words); and the number of
    words that fall in no utterance."""
    utts = rec["utterances"]
    starts = np.array([u["start"] for u in utts])
    assigned: List[List[Tuple[float, float]]] = [[] for _ in utts]
    unassigned = 0
    for start, end in words:
        mid = (start + end) / 2
        k = int(np.searchsorted(starts, mid, side="right")) - 1
        if k >= 0 and mid < utts[k]["end"]:
            assigned[k].append((start, end))
        else:
            unassigned += 1
    out = []
    for utt, ws in zip(utts, assigned):
        entry = {"id": utt["id"], "words": len(ws), "hyp_start": None, "hyp_end": None}
        if ws:
            entry["hyp_start"], entry["hyp_end"] = ws[0][0], ws[-1][1]
            for ref in ("utterance", "speech"):
                prefix = "" if ref == "utterance" else "speech_"
                for side in ("start", "end"):
                    value = utt[prefix + side]
                    error = None if value is None else round(abs(entry[f"hyp_{side}"] - value), 6)
                    entry[f"{ref}_{side}_error"] = error
        out.append(entry)
    return out, unassigned


def summarize(values: List[float]) -> Dict[str, Optional[float]]:
    if not values:
        return {"count": 0, "median": None, "p90": None}
    return {"count": len(values), "median": float(np.median(values)), "p90": float(np.percentile(values, 90))}


def timing_summary(per_utt: List[Dict], unassigned: int) -> Dict:
    """Statistics of the timestamp errors of a list of utterances (one recording or a kind's total)."""
    out = {"utterances": len(per_utt),
           "no_words": sum(1 for u in per_utt if not u["words"]),
           "utterances_without_words": [u["id"] for u in per_utt if not u["words"]],
           "unassigned_words": unassigned}
    for ref in ("utterance", "speech"):
        errors = {side: [u[f"{ref}_{side}_error"] for u in per_utt
                         if u["words"] and u[f"{ref}_{side}_error"] is not None] for side in ("start", "end")}
        out[ref] = {"start": summarize(errors["start"]), "end": summarize(errors["end"]),
                    "both": summarize(errors["start"] + errors["end"])}
    return out


# ---------------------------------------------------------------- scoring


def score(set_dir: Union[str, Path], hyps) -> Dict:
    """Every figure of the hypotheses ``hyps`` of the set in ``set_dir`` (see the module's doc)."""
    set_dir = Path(set_dir)
    recordings = load_set(set_dir)
    if isinstance(hyps, (str, Path)):
        hyps = [hyps]
    if not isinstance(hyps, dict):
        hyps = load_hyps(hyps, recordings)
    unknown = sorted(set(hyps) - set(recordings))
    if unknown:
        raise ScoreError(f"hypothesis for {', '.join(unknown)}: not a recording of {set_dir} "
                         f"(its recordings: {', '.join(sorted(recordings))})")
    result = {"set": str(set_dir), "cer_spaces": "removed",
              "missing": sorted(set(recordings) - set(hyps)), "recordings": {}, "totals": {}}
    pooled: Dict[str, Dict] = {}
    for rec_id in sorted(hyps):
        rec, hyp, where = recordings[rec_id], hyps[rec_id], f"hypothesis of {rec_id}"
        words = hyp_text(hyp, where).split()
        ref_words = rec["ref_words"]
        wer = align_counts(ref_words, words)
        cer = align_counts(list("".join(ref_words)), list("".join(words)))
        entry = {"kind": rec.get("kind", "speaker"), "wer": with_rate(wer), "cer": with_rate(cer), "timing": None}
        total = pooled.setdefault(entry["kind"], {"recordings": 0, "wer": {}, "cer": {}, "per_utt": [],
                                                  "unassigned": 0, "timed": 0})
        total["recordings"] += 1
        add_counts(total["wer"], wer)
        add_counts(total["cer"], cer)
        times = hyp_words(hyp, where)
        if times is not None:
            per_utt, unassigned = utterance_times(rec, times)
            entry["timing"] = {**timing_summary(per_utt, unassigned), "per_utterance": per_utt}
            total["per_utt"] += per_utt
            total["unassigned"] += unassigned
            total["timed"] += 1
        result["recordings"][rec_id] = entry
    for kind, total in sorted(pooled.items(), key=lambda item: KINDS.index(item[0]) if item[0] in KINDS else 9):
        result["totals"][kind] = {
            "recordings": total["recordings"], "wer": with_rate(total["wer"]), "cer": with_rate(total["cer"]),
            "timed_recordings": total["timed"],
            "timing": timing_summary(total["per_utt"], total["unassigned"]) if total["timed"] else None,
        }
    return result


# ---------------------------------------------------------------- report


def _f(value, digits=3):
    return "-" if value is None else f"{value:.{digits}f}"


def markdown(result: Dict) -> str:
    """The summary as Markdown tables: error rates, then timestamp errors (seconds)."""
    rows = [(rec_id, entry) for rec_id, entry in result["recordings"].items()]
    rows += [(f"**total {kind}** ({total['recordings']} rec.)", total) for kind, total in result["totals"].items()]
    lines = ["| recording | words | WER % | sub | del | ins | chars | CER % |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, e in rows:
        w, c = e["wer"], e["cer"]
        lines.append(f"| {name} | {w['ref']} | {_f(w['rate'], 2)} | {w['sub']} | {w['del']} | {w['ins']} "
                     f"| {c['ref']} | {_f(c['rate'], 2)} |")
    timed = [(name, e["timing"]) for name, e in rows if e["timing"]]
    if timed:
        lines += ["", "Timestamp errors in seconds (median / 90th percentile; n = utterances with words):", "",
                  "| recording | utts | no words | stray words | reference | n "
                  "| start med/p90 | end med/p90 | both med/p90 |",
                  "|---|---:|---:|---:|---|---:|---|---|---|"]
        for name, t in timed:
            for ref in ("utterance", "speech"):
                s = t[ref]
                cells = [f"{_f(s[k]['median'])} / {_f(s[k]['p90'])}" for k in ("start", "end", "both")]
                lines.append(f"| {name} | {t['utterances']} | {t['no_words']} | {t['unassigned_words']} | {ref} "
                             f"| {s['start']['count']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("set_dir", type=Path, help="the set made by local/make_longform.py")
    parser.add_argument("hyps", type=Path, nargs="+", help="<rec_id>.json files, folders of them, or Kaldi texts")
    parser.add_argument("--out_json", type=Path, help="write every figure here")
    args = parser.parse_args(argv)
    try:
        result = score(args.set_dir, args.hyps)
    except ScoreError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    if result["missing"]:
        print(f"{PROG}: warning: no hypothesis for {len(result['missing'])} recording(s) of the set, left out: "
              f"{', '.join(result['missing'])}", file=sys.stderr)
    for rec_id, entry in result["recordings"].items():
        if entry["timing"] is None:
            continue
        if entry["timing"]["no_words"]:
            print(f"{PROG}: {rec_id}: {entry['timing']['no_words']} utterance(s) with no hypothesis word: "
                  f"{', '.join(entry['timing']['utterances_without_words'])}", file=sys.stderr)
    print(markdown(result))
    if args.out_json:
        args.out_json.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out_json.with_name(args.out_json.name + ".tmp")
        tmp.write_text(json.dumps(result, indent=1) + "\n")
        tmp.replace(args.out_json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
