#!/usr/bin/env python3
"""Check and transform Kaldi-style data directories (what the stages of asr.sh read and write).

A data directory holds one ``<key> <value>`` line per utterance in ``wav.scp`` (audio file),
``text`` (transcript) and ``utt2spk`` (speaker), and optionally in ``utt2num_samples`` (length in
samples), ``utt2speed`` (speed-perturbation factor, applied by format_audio.py) and a few more
(``PER_UTT``); ``spk2utt`` lists each speaker's utterances. Keys are unique and sorted in byte
order (the C locale; Python's default ``str`` order). ``segments`` files are not supported: each
utterance has its own audio file.

Subcommands (``data_dir.py SUBCOMMAND --help``), each used by a recipe stage::

    validate DIR [--need wav.scp,text,utt2spk]          asr.sh stage 1
    combine DEST SRC1 SRC2 ...                          LibriSpeech's local/data.sh
    speed_perturb SRC DEST --factors 0.9 1.0 1.1        asr.sh stage 2
    filter SRC DEST --fs 16000 [--min_seconds 0.1] [--max_seconds 20]    asr.sh stage 4
    split FILE OUT_DIR --nj N                           asr.sh stages 6, 10 and 12 (job key lists)

An error names the file (and line or utterances) and what was expected, and exits with status 1.
Every output file is written under a temporary name and renamed, so an existing one is complete.
"""

import argparse
import os
import sys
from pathlib import Path
from typing import Dict, List, Sequence

PROG = "data_dir.py"
REQUIRED = ("wav.scp", "text", "utt2spk")
# Files with one line per utterance, in the order they are compared with wav.scp.
PER_UTT = ("wav.scp", "text", "utt2spk", "utt2num_samples", "utt2dur", "utt2speed",
           "utt2category", "utt2lang")
# Lengths of the source audio: wrong once the audio is speed-perturbed.
DURATION_FILES = ("utt2num_samples", "utt2dur")
# What each file gives an utterance, for messages ("... have audio in A but no transcript in B").
WHAT = {"wav.scp": "audio", "text": "transcript", "utt2spk": "speaker", "utt2num_samples": "length",
        "utt2dur": "duration", "utt2speed": "speed factor"}

Table = Dict[str, str]  # key -> value, in file order
Data = Dict[str, Table]  # per-utterance file name -> table


class DataDirError(Exception):
    """A user-facing error: the message names the file and what was expected."""


# ----------------------------------------------------------------------------- reading / writing


def _positive(kind):
    def check(value):
        try:
            ok = kind(value) > 0
        except ValueError:
            ok = False
        if not ok:
            return f"a positive {'integer' if kind is int else 'number'}"
        return None
    return check


VALUE_CHECKS = {"utt2num_samples": _positive(int), "utt2speed": _positive(float),
                "utt2dur": _positive(float)}


def read_table(path, allow_empty=False, strict=True) -> Table:
    """Read ``<key> <value>`` lines; the value is the rest of the line (it may hold spaces).

    ``allow_empty``: a line with only a key has the value "" (an empty transcript).
    ``strict``: keys must be unique and sorted (a data directory's files); otherwise (any key file,
    such as an LM training text) the order is free and a repeated identical line is ignored (a
    repeated key with another value is still an error).
    """
    path = Path(path)
    if not path.is_file():
        raise DataDirError(f"{path}: missing")
    check = VALUE_CHECKS.get(path.name)
    table: Table = {}
    where: Dict[str, int] = {}
    previous = None
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError as e:
        raise DataDirError(f"{path}: not UTF-8 text ({e})") from None
    if lines[-1] == "":
        lines.pop()  # the final newline
    for number, line in enumerate(lines, 1):
        fields = line.strip().split(maxsplit=1)
        if not fields:
            raise DataDirError(f"{path}:{number}: empty line; expected '<key> <value>'")
        key, value = fields[0], fields[1] if len(fields) == 2 else ""
        if not value and not allow_empty:
            what = "empty transcript" if path.name == "text" else "no value"
            raise DataDirError(f"{path}:{number}: {key}: {what}; expected '<key> <value>'")
        if value and check and check(value):
            raise DataDirError(f"{path}:{number}: {key}: expected {check(value)}, got '{value}'")
        if key in table and (strict or table[key] != value):
            raise DataDirError(f"{path}:{number}: duplicate key '{key}' (first on line {where[key]})")
        if strict and previous is not None and key < previous:
            raise DataDirError(f"{path}:{number}: key '{key}' is not sorted (it follows "
                               f"'{previous}'); expected keys in C-locale order (LC_ALL=C sort)")
        table[key], where[key], previous = value, number, key
    return table


def write_lines(path, lines: Sequence[str]) -> None:
    """Write ``lines`` to ``path`` through a temporary file, so ``path`` is never half written."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(line + "\n" for line in lines)
    os.replace(tmp, path)


def write_table(path, table: Table) -> None:
    """Write a table sorted by key (an empty value leaves just the key)."""
    write_lines(path, [f"{k} {table[k]}".rstrip(" ") for k in sorted(table)])


def spk2utt_of(utt2spk: Table) -> Dict[str, List[str]]:
    """Each speaker's utterances, both sorted."""
    out: Dict[str, List[str]] = {}
    for utt in sorted(utt2spk):
        out.setdefault(utt2spk[utt], []).append(utt)
    return dict(sorted(out.items()))


def load(d, need: Sequence[str] = REQUIRED, allow_empty_text=False) -> Data:
    """Read every per-utterance file of directory ``d`` (those in ``need`` must exist), checking
    what ``validate`` checks: sorted unique keys, at least one utterance, the same utterances in
    every file, and spk2utt (if present) matching utt2spk.
    """
    d = Path(d)
    if not d.is_dir():
        raise DataDirError(f"{d}: not a directory")
    if (d / "segments").exists():
        raise DataDirError(f"{d}/segments: not supported; expected one audio file per utterance "
                           f"in {d}/wav.scp")
    for name in need:
        if not (d / name).is_file():
            raise DataDirError(f"{d}/{name}: missing")
    data = {name: read_table(d / name, allow_empty=allow_empty_text and name == "text")
            for name in PER_UTT if (d / name).is_file()}
    if not data:
        raise DataDirError(f"{d}: no per-utterance file (expected {', '.join(need or REQUIRED)})")
    name, table = next(iter(data.items()))
    if not table:
        raise DataDirError(f"{d}/{name}: empty; expected at least one utterance")
    _check_same_keys(d, data)
    if (d / "spk2utt").is_file() and "utt2spk" in data:
        _check_spk2utt(d, data["utt2spk"])
    return data


def _check_same_keys(d: Path, data: Data) -> None:
    names = list(data)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            for x, y in ((a, b), (b, a)):
                extra = [k for k in data[x] if k not in data[y]]
                if extra:
                    shown = ", ".join(extra[:5]) + (", ..." if len(extra) > 5 else "")
                    raise DataDirError(
                        f"{d}: {len(extra)} utterance(s) have {WHAT.get(x, 'a line')} in {d}/{x} "
                        f"but no {WHAT.get(y, 'line')} in {d}/{y}: {shown}; expected the same utterances "
                        f"in every file")


def _check_spk2utt(d: Path, utt2spk: Table) -> None:
    path = d / "spk2utt"
    expected = spk2utt_of(utt2spk)
    found: Dict[str, List[str]] = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            if len(fields) < 2:
                raise DataDirError(f"{path}:{number}: expected '<speaker> <utterance> ...'")
            spk, utts = fields[0], fields[1:]
            if spk in found:
                raise DataDirError(f"{path}:{number}: duplicate speaker '{spk}'")
            if expected.get(spk) != sorted(utts):
                raise DataDirError(f"{path}:{number}: speaker '{spk}' does not match {d}/utt2spk; "
                                   f"expected spk2utt written from utt2spk")
            found[spk] = utts
    missing = [s for s in expected if s not in found]
    if missing:
        raise DataDirError(f"{path}: speaker(s) of {d}/utt2spk missing: {', '.join(missing[:5])}; "
                           f"expected spk2utt written from utt2spk")


def save(dest, data: Data) -> None:
    """Write ``data`` sorted into ``dest``, with spk2utt rebuilt from utt2spk.

    Per-utterance files (and spk2utt) that ``dest`` holds but ``data`` lacks are removed, so the
    directory stays consistent.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name, table in data.items():
        write_table(dest / name, table)
    if "utt2spk" in data:
        write_lines(dest / "spk2utt", [f"{s} {' '.join(u)}" for s, u in spk2utt_of(data["utt2spk"]).items()])
    for name in PER_UTT + ("spk2utt",):
        if name not in data and (name != "spk2utt" or "utt2spk" not in data):
            (dest / name).unlink(missing_ok=True)


def restrict(data: Data, keys) -> Data:
    """Every table restricted to ``keys`` (which all tables hold)."""
    keys = sorted(keys)
    return {name: {k: table[k] for k in keys} for name, table in data.items()}


def utterances(data: Data) -> List[str]:
    """The sorted utterance ids of a consistent directory."""
    return sorted(next(iter(data.values())))


def summary(d, data: Data) -> str:
    speakers = len(set(data["utt2spk"].values())) if "utt2spk" in data else 0
    return f"{d}: {len(utterances(data))} utterances, {speakers} speakers"


# ----------------------------------------------------------------------------- subcommands


def validate(d, need: Sequence[str] = REQUIRED) -> Data:
    """Check directory ``d``; return its tables or raise DataDirError."""
    return load(d, need)


def combine(dest, srcs: Sequence) -> Data:
    """The union of the directories ``srcs`` (an utterance in two of them must be identical).
    A file that not every source has is left out, with a warning."""
    loaded = [(Path(s), load(s)) for s in srcs]
    names = [n for n in PER_UTT if all(n in data for _, data in loaded)]
    for n in PER_UTT:
        if n not in names and any(n in data for _, data in loaded):
            print(f"{PROG} combine: warning: {n} is not in every source; left out of {dest}",
                  file=sys.stderr)
    out: Data = {n: {} for n in names}
    origin: Dict[str, Path] = {}
    for src, data in loaded:
        for utt in utterances(data):
            if utt in origin:
                same = all(out[n][utt] == data[n][utt] for n in names)
                if not same:
                    raise DataDirError(f"{src}: utterance '{utt}' is also in {origin[utt]} with "
                                       f"other contents; expected unique utterance ids")
            origin.setdefault(utt, src)
            for n in names:
                out[n][utt] = data[n][utt]
    save(dest, out)
    return out


def factor_name(factor: float) -> str:
    """0.9 -> '0.9', 1.0 -> '1' (shortest form; used in ids and utt2speed)."""
    return f"{factor:g}"


def speed_perturb(src, dest, factors: Sequence[float]) -> Data:
    """Each utterance of ``src`` once per factor, ids and speakers prefixed ``sp<factor>-``
    (factor 1 keeps them); ``utt2speed`` holds the factors. The audio is untouched: format_audio.py
    applies the factor. Lengths (utt2num_samples, utt2dur) are dropped as they no longer hold."""
    for f in factors:
        if not f > 0:
            raise DataDirError(f"--factors: {f}: expected positive speed factors")
    if len({factor_name(f) for f in factors}) != len(factors):
        raise DataDirError(f"--factors: {' '.join(map(str, factors))}: expected distinct factors")
    data = load(src)
    if "utt2speed" in data:
        raise DataDirError(f"{src}/utt2speed: {src} is already speed-perturbed; expected a "
                           f"directory without utt2speed")
    names = [n for n in data if n not in DURATION_FILES]
    out: Data = {n: {} for n in names + ["utt2speed"]}
    for f in factors:
        prefix = "" if f == 1 else f"sp{factor_name(f)}-"
        for utt in utterances(data):
            new = prefix + utt
            for n in names:
                out[n][new] = prefix + data[n][utt] if n == "utt2spk" else data[n][utt]
            out["utt2speed"][new] = factor_name(f)
    save(dest, out)
    return out


def filter_dir(src, dest, fs: int, min_seconds=0.1, max_seconds=20.0) -> str:
    """Keep the utterances of ``src`` lasting ``min_seconds`` to ``max_seconds`` (from
    utt2num_samples at ``fs`` Hz) with a non-empty transcript. Returns the report."""
    src = Path(src)
    if not (src / "utt2num_samples").is_file():
        raise DataDirError(f"{src}/utt2num_samples: missing (expected the output of format_audio.py)")
    data = load(src, REQUIRED + ("utt2num_samples",), allow_empty_text=True)
    short, long_, empty, keep = [], [], [], []
    for utt in utterances(data):
        seconds = int(data["utt2num_samples"][utt]) / fs
        if seconds < min_seconds:
            short.append(utt)
        elif seconds > max_seconds:
            long_.append(utt)
        elif not data["text"][utt]:
            empty.append(utt)
        else:
            keep.append(utt)
    if not keep:
        raise DataDirError(f"{src}: no utterance lasts {min_seconds} to {max_seconds} s with a "
                           f"non-empty transcript; nothing written")
    save(dest, restrict(data, keep))
    return (f"{src} -> {dest}: kept {len(keep)}, removed {len(short) + len(long_) + len(empty)} "
            f"({len(short)} shorter than {min_seconds} s, {len(long_)} longer than {max_seconds} s, "
            f"{len(empty)} with an empty transcript)")


def split_keys(keys: Sequence[str], n: int) -> List[List[str]]:
    """``keys`` cut into ``n`` contiguous parts whose sizes differ by at most one.

    >>> split_keys(["a", "b", "c", "d", "e"], 2)
    [['a', 'b', 'c'], ['d', 'e']]
    """
    if n < 1 or n > len(keys):
        raise ValueError(f"cannot split {len(keys)} keys into {n} parts")
    size, extra = divmod(len(keys), n)
    parts, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        parts.append(list(keys[start:end]))
        start = end
    return parts


def split(path, out_dir, nj: int) -> List[Path]:
    """The keys (first fields) of the key file ``path`` (wav.scp, text, ...), in file order, cut into
    ``nj`` contiguous, nearly equal parts: ``out_dir/keys.1.scp`` ... ``out_dir/keys.<nj>.scp``, one
    key a line: the key lists of parallel jobs. Key lists of an earlier split in ``out_dir`` are
    removed first, so a smaller ``nj`` leaves no stale part."""
    path, out_dir = Path(path), Path(out_dir)
    keys = list(read_table(path, allow_empty=True, strict=False))
    if nj < 1 or nj > len(keys):
        raise DataDirError(f"{path}: cannot split {len(keys)} keys into --nj {nj} parts; "
                           f"expected 1 <= nj <= {len(keys)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob("keys.*.scp"):
        stale.unlink()
    outs = []
    for k, part in enumerate(split_keys(keys, nj), 1):
        outs.append(out_dir / f"keys.{k}.scp")
        write_lines(outs[-1], part)
    return outs


# ----------------------------------------------------------------------------- command line


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("validate", help="check a data directory")
    s.add_argument("dir")
    s.add_argument("--need", default=",".join(REQUIRED), help="comma-separated files that must exist")
    s = sub.add_parser("combine", help="the union of data directories")
    s.add_argument("dest")
    s.add_argument("srcs", nargs="+")
    s = sub.add_parser("speed_perturb", help="one copy per speed factor (audio changed later)")
    s.add_argument("src")
    s.add_argument("dest")
    s.add_argument("--factors", type=float, nargs="+", default=[0.9, 1.0, 1.1])
    s = sub.add_parser("filter", help="keep utterances of a duration range with a transcript")
    s.add_argument("src")
    s.add_argument("dest")
    s.add_argument("--fs", type=int, required=True)
    s.add_argument("--min_seconds", type=float, default=0.1)
    s.add_argument("--max_seconds", type=float, default=20.0)
    s = sub.add_parser("split", help="the keys of FILE in N parts OUT_DIR/keys.1.scp ... keys.N.scp")
    s.add_argument("file", help="a key file: <key> [<value>] lines (wav.scp, text, ...)")
    s.add_argument("out_dir")
    s.add_argument("--nj", type=int, required=True, help="the number of parts (at most one per key)")
    return p


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "validate":
            data = validate(args.dir, [n for n in args.need.split(",") if n])
            print(summary(args.dir, data) + ": ok")
        elif args.command == "combine":
            print(summary(args.dest, combine(args.dest, args.srcs)))
        elif args.command == "speed_perturb":
            print(summary(args.dest, speed_perturb(args.src, args.dest, args.factors)))
        elif args.command == "filter":
            print(filter_dir(args.src, args.dest, args.fs, args.min_seconds, args.max_seconds))
        elif args.command == "split":
            outs = split(args.file, args.out_dir, args.nj)
            print(f"{args.file}: keys in {len(outs)} parts, {outs[0].parent}/keys.{{1..{len(outs)}}}.scp")
    except (DataDirError, OSError, UnicodeDecodeError) as e:
        print(f"{PROG} {args.command}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
