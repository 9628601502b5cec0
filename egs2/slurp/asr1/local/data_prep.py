#!/usr/bin/env python3
"""Kaldi-style data directories for intent classification from a SLURP tree.

    data_prep.py SLURP OUT [--use_synthetic true|false] [--max_missing 0.01]

SLURP is the folder laid out as the SLURP repository (github.com/pswietojanski/slurp) with its
audio extracted under ``audio/``, as its ``scripts/download_audio.sh`` leaves it::

    SLURP/dataset/slurp/{train,devel,test,train_synthetic}.jsonl   one JSON record a line
    SLURP/dataset/slurp/metadata.json                             speakers (optional)
    SLURP/audio/slurp_real/audio-*.flac                           slurp_real.tar.gz
    SLURP/audio/slurp_synth/*.flac                                slurp_synth.tar.gz

Writes ``OUT/train``, ``OUT/devel`` and ``OUT/test`` (ESPnet's SLURP set names) with ``wav.scp``,
``text``, ``utt2spk`` and ``spk2utt``: one utterance per recording of a record (a sentence has
several recordings: speakers, headset and far-field microphones). ``OUT/train`` also holds the
synthetic (text-to-speech) recordings of ``train_synthetic.jsonl`` unless ``--use_synthetic false``.

The text convention is that of ESPnet's ``egs2/slurp/asr1`` (local/prepare_slurp_data.py): the first
word is the intent ``<scenario>_<action>`` (``alarm_set``), then the sentence with ``@`` read as
``at``, ``#`` as ``hashtag``, commas and full stops removed, ``<unk>`` written ``unknown``; the
synthetic sentences are also lower-cased (ESPnet leaves the real ones as they are: lower case in
SLURP). Whitespace is normalised to single spaces.

Speakers: ``usrid`` of the recording in ``metadata.json`` (``slurp_FO-488``); a recording that it does
not list (or no metadata.json) gets the speaker of its recording session, the number in its file name
(``audio-1502099775-headset.flac`` and ``audio-1502099775.flac``, the two microphones of one take:
``slurp_1502099775``); the synthetic recordings share the speaker ``slurp_synthetic`` (as ESPnet).
Utterance ids are ``<speaker>_<recording>``, the recording being the file name without ``audio-``
and extension (``slurp_FO-488_1502099775-headset``).

A recording listed twice (in two records or two sets) is kept once, in the first set that lists it
in the order train, devel, test (as ESPnet), and counted in a note. (ESPnet compares the real and the
synthetic recordings by file name alone; here a synthetic file never hides a real one of the same
name.) A recording whose file is not on disk is left out with a warning that names the first few,
unless more than ``--max_missing`` (a fraction, default 1 %) of a set's recordings are missing: then
the audio is taken to be not (fully) extracted and the preparation stops. A missing jsonl file, a line that is not JSON or lacks a field,
or a missing audio folder stops it too, with the file (and line) named. Nothing is written before
everything has been read; each data directory is then replaced as a whole.
"""

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pyscripts"))
import data_dir  # noqa: E402  (the template's helpers: pyscripts/data_dir.py)

PROG = "local/data_prep.py"
SETS = ("train", "devel", "test")
SYNTHETIC = "train_synthetic"
AUDIO = {"real": "slurp_real", "synthetic": "slurp_synth"}
SHOW = 5  # names shown in a warning or an error
NO_SYNTHETIC = " (or train on the real recordings alone: local/data.sh --use_synthetic false)"


class PrepError(Exception):
    """A problem with the corpus, reported as one message naming the file."""


Utt = Tuple[str, str, str, Path]  # (utterance id, speaker, text, audio path)


# ----------------------------------------------------------------------------- text


def intent_of(record: dict) -> str:
    """``<scenario>_<action>`` (SLURP's ``intent`` field is the same)."""
    return "_".join("_".join(str(record[key]).split()) for key in ("scenario", "action"))


def normalise(sentence: str, lower: bool = False) -> str:
    """The transcript as ESPnet's SLURP recipe writes it (see the module's docstring)."""
    text = sentence.replace("@", " at ").replace("#", " hashtag ").replace(",", "").replace(".", "")
    text = " ".join(text.split())
    if lower:
        text = text.lower()
    return text.replace("<unk>", "unknown")


def text_of(record: dict, lower: bool = False) -> str:
    return " ".join(filter(None, [intent_of(record), normalise(record["sentence"], lower)]))


# ----------------------------------------------------------------------------- reading


def read_jsonl(path: Path, hint: str = "") -> List[Tuple[int, dict]]:
    """(line number, record) of every non-blank line, each checked for the fields used here."""
    if not path.is_file():
        raise PrepError(f"{path}: not found (expected SLURP's dataset/slurp/{path.name}){hint}")
    records = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise PrepError(f"{path}:{number}: not a JSON record ({e.msg} at column {e.colno})") from None
            if not isinstance(record, dict):
                raise PrepError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
            for key, kind in (("sentence", str), ("scenario", str), ("action", str), ("recordings", list)):
                if not isinstance(record.get(key), kind):
                    raise PrepError(f"{path}:{number}: no '{key}' ({kind.__name__}) in the record")
            for rec in record["recordings"]:
                if not (isinstance(rec, dict) and isinstance(rec.get("file"), str) and rec["file"].strip()):
                    raise PrepError(f"{path}:{number}: a recording without 'file' in 'recordings'")
            for key in ("scenario", "action"):
                if not record[key].strip():
                    raise PrepError(f"{path}:{number}: empty '{key}' in the record")
            records.append((number, record))
    if not records:
        raise PrepError(f"{path}: no record")
    return records


def read_speakers(path: Path) -> Dict[str, str]:
    """Recording file name -> usrid, from SLURP's metadata.json ({slurp_id: {"recordings": {file: {"usrid"}}}})."""
    try:
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
    except json.JSONDecodeError as e:
        raise PrepError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
    if not isinstance(meta, dict):
        raise PrepError(f"{path}: expected a JSON object keyed by slurp_id")
    speakers = {}
    for entry in meta.values():
        recordings = entry.get("recordings") if isinstance(entry, dict) else None
        if isinstance(recordings, dict):
            for name, info in recordings.items():
                usrid = info.get("usrid") if isinstance(info, dict) else None
                if isinstance(usrid, str) and usrid.split():
                    speakers[name] = "-".join(usrid.split())
    return speakers


def list_audio(folder: Path, archive: str, hint: str = "") -> set:
    if not folder.is_dir():
        raise PrepError(f"{folder}: no such folder: the SLURP audio ({archive}) is not extracted there{hint}")
    names = {entry.name for entry in os.scandir(folder) if entry.is_file()}
    if not names:
        raise PrepError(f"{folder}: no recording in the folder: the SLURP audio ({archive}) is not "
                        f"extracted there{hint}")
    return names


def recording_id(name: str) -> str:
    """``audio-1502099775-headset.flac`` -> ``1502099775-headset`` (``audio--1504194195.flac`` -> ``-1504194195``)."""
    stem = name.rsplit(".", 1)[0] if "." in name else name
    stem = stem[len("audio-"):] if stem.startswith("audio-") else stem
    return "-".join(stem.split())


def session_of(recording: str) -> str:
    """The take a recording belongs to: its id without the microphone suffix ``-headset``."""
    return recording[: -len("-headset")] if recording.endswith("-headset") else recording


class Corpus:
    def __init__(self, root: Path, use_synthetic: bool, max_missing: float):
        self.root = root
        self.jsonl = root / "dataset" / "slurp"
        self.use_synthetic = use_synthetic
        self.max_missing = max_missing
        self.notes: List[str] = []
        self.seen: Dict[Tuple[str, str], str] = {}  # (audio kind, file) -> set that has it

    def load(self) -> Dict[str, List[Utt]]:
        if not (self.root / "dataset").is_dir():
            raise PrepError(f"{self.root}/dataset: not found; expected a SLURP tree holding "
                            f"dataset/slurp/{{train,devel,test}}.jsonl and audio/slurp_real/")
        records = {name: read_jsonl(self.jsonl / f"{name}.jsonl") for name in SETS}
        if self.use_synthetic:
            records[SYNTHETIC] = read_jsonl(self.jsonl / f"{SYNTHETIC}.jsonl", NO_SYNTHETIC)
        meta = self.jsonl / "metadata.json"
        speakers = read_speakers(meta) if meta.is_file() else {}
        if not speakers:
            self.notes.append(f"{meta}: not found or without speakers: each recording session is a speaker")
        audio = {"real": list_audio(self.root / "audio" / AUDIO["real"], "slurp_real.tar.gz")}
        if self.use_synthetic:
            audio["synthetic"] = list_audio(self.root / "audio" / AUDIO["synthetic"], "slurp_synth.tar.gz",
                                            NO_SYNTHETIC)
        out = {}
        for name in SETS:
            out[name] = self.utterances(name, records[name], "real", audio["real"], speakers)
        if self.use_synthetic:
            out["train"] += self.utterances(SYNTHETIC, records[SYNTHETIC], "synthetic", audio["synthetic"], speakers)
        for name, utts in out.items():
            utts.sort()
            for (a, *_), (b, *_) in zip(utts, utts[1:]):
                if a == b:  # two files with the same id (e.g. "x.flac" and "x.wav")
                    raise PrepError(f"{self.jsonl}: utterance id {a} made twice in {name}: two recordings "
                                    f"differ only in their extension")
            if not utts:
                raise PrepError(f"{self.jsonl / (name + '.jsonl')}: no recording left in {name}")
        return out

    def utterances(self, name: str, records, kind: str, on_disk: set, speakers: Dict[str, str]) -> List[Utt]:
        path = self.jsonl / f"{name}.jsonl"
        folder = self.root / "audio" / AUDIO[kind]
        utts, missing, repeated, total = [], [], 0, 0
        for number, record in records:
            text = text_of(record, lower=kind == "synthetic")
            for rec in record["recordings"]:
                file = rec["file"].strip()
                key = (kind, file)
                if key in self.seen:
                    repeated += 1
                    continue
                self.seen[key] = name
                total += 1
                if file not in on_disk:
                    missing.append(f"{file} ({path.name}:{number})")
                    continue
                rid = recording_id(file)
                if kind == "synthetic":
                    speaker = "slurp_synthetic"
                else:
                    speaker = f"slurp_{speakers.get(file) or session_of(rid)}"
                utts.append((f"{speaker}_{rid}", speaker, text, (folder / file).resolve()))
        if missing:
            shown = ", ".join(missing[:SHOW]) + (", ..." if len(missing) > SHOW else "")
            what = f"{len(missing)} of the {total} recordings listed in {path} are not in {folder}: {shown}"
            if len(missing) > self.max_missing * total:
                raise PrepError(f"{what}; more than --max_missing {self.max_missing:g} of them: is the audio "
                                f"fully extracted? (or allow it: local/data.sh --max_missing FRACTION)")
            print(f"{PROG}: warning: {what}; left out", file=sys.stderr)
        if repeated:
            self.notes.append(f"{path}: {repeated} recording(s) already listed (in this or an earlier set): kept once")
        return utts


# ----------------------------------------------------------------------------- writing


def write_set(out: Path, name: str, utts: List[Utt]) -> None:
    """Writes OUT/<name> as a whole: into a hidden folder, then renamed over the old one."""
    final, tmp, old = out / name, out / f".{name}.tmp", out / f".{name}.old"
    for stale in (tmp, old):
        if stale.exists():
            shutil.rmtree(stale)
    tables = {
        "wav.scp": {u: str(p) for u, _, _, p in utts},
        "text": {u: t for u, _, t, _ in utts},
        "utt2spk": {u: s for u, s, _, _ in utts},
    }
    data_dir.save(tmp, tables)
    data_dir.validate(tmp)  # the checks asr.sh stage 1 makes
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    if old.exists():
        shutil.rmtree(old)


def parse_bool(value: str) -> bool:
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def fraction(value: str) -> float:
    x = float(value)
    if not 0 <= x <= 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1], got {value}")
    return x


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("slurp", type=Path, help="SLURP folder (holds dataset/slurp/ and audio/)")
    parser.add_argument("out", type=Path, help="where the data directories go (data/)")
    parser.add_argument("--use_synthetic", type=parse_bool, default=True,
                        help="add train_synthetic.jsonl's recordings to train (default true, as ESPnet)")
    parser.add_argument("--max_missing", type=fraction, default=0.01,
                        help="largest fraction of a set's recordings that may lack their file (left out)")
    args = parser.parse_args(argv)
    corpus = Corpus(args.slurp, args.use_synthetic, args.max_missing)
    try:
        sets = corpus.load()
    except (PrepError, OSError, UnicodeDecodeError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    for note in corpus.notes:
        print(f"{PROG}: note: {note}", file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, utts in sets.items():
        write_set(args.out, name, utts)
    for name, utts in sets.items():
        speakers = len({s for _, s, _, _ in utts})
        intents = len({t.split(" ", 1)[0] for _, _, t, _ in utts})
        print(f"{args.out / name}: {len(utts)} utterances, {speakers} speakers, {intents} intents")
    return 0


if __name__ == "__main__":
    sys.exit(main())
