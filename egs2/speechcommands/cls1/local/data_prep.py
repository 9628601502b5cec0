#!/usr/bin/env python3
"""Kaldi-style data directories from an extracted Google Speech Commands v0.02 tree (stage 1).

    data_prep.py CORPUS OUT [--task 35|12] [--silence_dir DIR] [--test_set DIR]

``CORPUS`` is the extracted training archive (speech_commands_v0.02.tar.gz): one folder per word
holding ``<speaker>_nohash_<n>.wav`` recordings, ``_background_noise_/`` with a few long noise
recordings, and the official split lists ``validation_list.txt`` and ``testing_list.txt`` (lines
``<word>/<file>.wav``). A recording in neither list is a training one.

``--task 35`` (default) writes ``OUT/train``, ``OUT/dev`` (validation_list.txt) and ``OUT/test``
(testing_list.txt); every word folder is a class, its name is the label.

``--task 12`` writes ``OUT/train12``, ``OUT/dev12`` and ``OUT/test12`` from the same split with
12 labels: the ten words yes no up down left right on off stop go, ``_unknown_`` for every other
word, and ``_silence_``: each ``_background_noise_/*.wav`` is cut into consecutive, non-overlapping
1-second clips (written under ``--silence_dir``, default ``OUT/../downloads/silence_clips``); of a
file's N clips the last max(1, N // 10) go to the test set, the max(1, N // 10) before them to the
dev set and the rest to the training set, so no stretch of noise is in two sets. With
``--test_set DIR`` (the extracted speech_commands_test_set_v0.02.tar.gz: one folder per label, the
12-class test set of the dataset's paper) it also writes ``OUT/test12_official``.

Utterance ids put the speaker first, ``<speaker>-<word>-<n>`` (``0a7c2a8d_nohash_0.wav`` in
``yes/`` -> ``0a7c2a8d-yes-0``, speaker ``0a7c2a8d``); silence clips are
``<noise file>-silence-<second>`` with the noise file as speaker. Keys are sorted in byte order.

Everything is read and checked before anything is written: a missing list file, a corpus without
recordings, a list entry whose file is missing, an entry in both lists, ... stop with an error that
names the file and leaves the existing data directories as they were. Each data directory is
written into a temporary directory and swapped in; a directory whose files would not change is left
untouched, and an existing complete silence clip is kept, so a re-run changes nothing.
"""

import argparse
import os
import re
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Tuple

import numpy as np
import soundfile

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "pyscripts"))
import data_dir  # noqa: E402  (the template's helpers, pyscripts/data_dir.py)

PROG = "local/data_prep.py"
BACKGROUND = "_background_noise_"
LISTS = {"dev": "validation_list.txt", "test": "testing_list.txt"}
KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
UNKNOWN = "_unknown_"
SILENCE = "_silence_"
LABELS12 = KEYWORDS + (UNKNOWN, SILENCE)
# <speaker>_nohash_<n>.wav, the name of every recording of the corpus
RECORDING = re.compile(r"^(?P<speaker>[A-Za-z0-9]+)_nohash_(?P<index>[0-9]+)\.wav$")
SET_NAMES = {"35": ("train", "dev", "test"), "12": ("train12", "dev12", "test12")}
OFFICIAL_TEST = "test12_official"


class PrepError(Exception):
    """Bad input: the message names the file and what was expected."""


class Utt(NamedTuple):
    utt: str
    speaker: str
    label: str
    path: Path


class Clip(NamedTuple):
    """One second of a background-noise file: samples [start, start + rate)."""
    utt: str
    speaker: str
    source: Path
    start: int
    rate: int
    path: Path
    part: str  # "train", "dev" or "test"


# ----------------------------------------------------------------------------- reading


def safe_name(name: str) -> str:
    """``name`` with every character but letters, digits and '_' replaced by '_' (ids sort by
    speaker only when no speaker id holds a character that sorts before the '-' separator)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def scan_words(corpus: Path) -> Dict[str, Dict[str, Tuple[str, str]]]:
    """word -> {file name -> (speaker, index)} for every word folder of ``corpus``."""
    if not corpus.is_dir():
        raise PrepError(f"{corpus}: not a directory; expected the extracted speech_commands_v0.02.tar.gz")
    words: Dict[str, Dict[str, Tuple[str, str]]] = {}
    for folder in sorted(p for p in corpus.iterdir() if p.is_dir()):
        if folder.name.startswith(("_", ".")):
            continue  # _background_noise_ (and hidden folders)
        if not re.fullmatch(r"[A-Za-z0-9]+", folder.name):
            raise PrepError(f"{folder}: unexpected folder name; expected word folders named by "
                            f"their word (letters and digits only)")
        recordings = {}
        for wav in sorted(folder.glob("*.wav")):
            match = RECORDING.match(wav.name)
            if match is None:
                raise PrepError(f"{wav}: unexpected file name; expected <speaker>_nohash_<n>.wav")
            recordings[wav.name] = (match["speaker"], match["index"])
        if not recordings:
            raise PrepError(f"{folder}: a word folder without recordings; expected "
                            f"<speaker>_nohash_<n>.wav files in it")
        words[folder.name] = recordings
    if not words:
        raise PrepError(f"{corpus}: no recordings (no <word>/<speaker>_nohash_<n>.wav); expected "
                        f"the extracted speech_commands_v0.02.tar.gz (set SPEECHCOMMANDS in db.sh to "
                        f"that folder, or leave it empty to download the corpus)")
    return words


def read_list(corpus: Path, name: str, words) -> List[Tuple[str, str]]:
    """The (word, file name) entries of one split list, each checked to exist."""
    path = corpus / name
    if not path.is_file():
        raise PrepError(f"{path}: missing; expected the official split list of the corpus")
    entries, seen = [], {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        where = f"{path}:{number}"
        parts = line.split("/")
        if len(parts) != 2:
            raise PrepError(f"{where}: '{line}': expected <word>/<file>.wav")
        word, wav = parts
        if word not in words or wav not in words[word]:
            raise PrepError(f"{where}: '{line}': file missing, {corpus / line} is not a recording "
                            f"of the corpus")
        if line in seen:
            raise PrepError(f"{where}: '{line}' already listed on line {seen[line]}")
        seen[line] = number
        entries.append((word, wav))
    if not entries:
        raise PrepError(f"{path}: empty; expected one <word>/<file>.wav a line")
    return entries


def split(corpus: Path, words) -> Dict[str, List[Tuple[str, str]]]:
    """{"train"|"dev"|"test": [(word, file name)]} by the official lists."""
    parts = {part: read_list(corpus, name, words) for part, name in LISTS.items()}
    both = sorted(set(parts["dev"]) & set(parts["test"]))
    if both:
        word, wav = both[0]
        raise PrepError(f"{corpus / LISTS['dev']} and {corpus / LISTS['test']}: {len(both)} "
                        f"recording(s) in both lists, e.g. {word}/{wav}; expected disjoint lists")
    held = set(parts["dev"]) | set(parts["test"])
    parts["train"] = [(w, f) for w in words for f in words[w] if (w, f) not in held]
    if not parts["train"]:
        raise PrepError(f"{corpus}: every recording is in {LISTS['dev']} or {LISTS['test']}; "
                        f"expected training recordings too")
    return parts


def label_of(word: str, task: str) -> str:
    return word if task == "35" or word in KEYWORDS else UNKNOWN


def word_utts(corpus: Path, entries, words, task: str) -> List[Utt]:
    out = []
    for word, wav in entries:
        speaker, index = words[word][wav]
        out.append(Utt(f"{speaker}-{word}-{index}", speaker, label_of(word, task),
                       corpus.absolute() / word / wav))
    return out


def plan_silence(corpus: Path, silence_dir: Path) -> List[Clip]:
    """The 1-second clips of every background-noise file and the set each goes to."""
    folder = corpus / BACKGROUND
    noises = sorted(folder.glob("*.wav")) if folder.is_dir() else []
    if not noises:
        raise PrepError(f"{folder}: no .wav noise recordings; the 12-class task cuts its "
                        f"{SILENCE} clips from them")
    clips = []
    for noise in noises:
        try:
            info = soundfile.info(str(noise))
        except RuntimeError as e:
            raise PrepError(f"{noise}: not a readable audio file ({e})") from None
        rate, n = info.samplerate, info.frames // info.samplerate
        if n < 3:
            raise PrepError(f"{noise}: {info.frames / rate:.2f} s long; expected at least 3 s "
                            f"(one 1-second {SILENCE} clip for each of train, dev and test)")
        held = max(1, n // 10)
        speaker = safe_name(noise.stem)
        for k in range(n):
            part = "test" if k >= n - held else "dev" if k >= n - 2 * held else "train"
            clips.append(Clip(f"{speaker}-silence-{k:04d}", speaker, noise, k * rate, rate,
                              silence_dir.absolute() / f"{speaker}_{k:04d}.wav", part))
    return clips


def official_test_utts(test_set: Path) -> List[Utt]:
    """The utterances of the extracted 12-class test set archive (one folder per label)."""
    missing = [label for label in LABELS12 if not (test_set / label).is_dir()]
    if missing:
        raise PrepError(f"{test_set}: no folder {', '.join(missing)}; expected the extracted "
                        f"speech_commands_test_set_v0.02.tar.gz (one folder per label: "
                        f"{' '.join(LABELS12)})")
    out = []
    for label in LABELS12:
        wavs = sorted((test_set / label).glob("*.wav"))
        if not wavs:
            raise PrepError(f"{test_set / label}: no .wav recordings")
        for wav in wavs:
            match = RECORDING.match(wav.name)
            word = label.strip("_")
            if match:
                speaker, utt = match["speaker"], f"{match['speaker']}-{word}-{match['index']}"
            else:
                speaker = safe_name(wav.stem)
                utt = f"{speaker}-{word}"
            out.append(Utt(utt, speaker, label, test_set.absolute() / label / wav.name))
    return out


# ----------------------------------------------------------------------------- writing


def clip_complete(clip: Clip) -> bool:
    try:
        info = soundfile.info(str(clip.path))
    except RuntimeError:
        return False
    return info.samplerate == clip.rate and info.frames == clip.rate


def write_clips(clips: List[Clip]) -> int:
    """Write the clips that are not already there, complete; returns how many were written."""
    todo = [c for c in clips if not clip_complete(c)]
    if not todo:
        return 0
    todo[0].path.parent.mkdir(parents=True, exist_ok=True)
    cache: Dict[Path, Tuple[np.ndarray, int]] = {}
    for clip in todo:
        if clip.source not in cache:
            cache.clear()  # one noise file in memory at a time (the clips come in file order)
            cache[clip.source] = soundfile.read(str(clip.source), dtype="int16")
        samples, rate = cache[clip.source]
        tmp = clip.path.with_name(f".{clip.path.name}.tmp")
        soundfile.write(str(tmp), samples[clip.start:clip.start + clip.rate], rate,
                        format="WAV", subtype="PCM_16")
        os.replace(tmp, clip.path)
    return len(todo)


def tables(utts: List[Utt]) -> data_dir.Data:
    data: data_dir.Data = {"wav.scp": {}, "text": {}, "utt2spk": {}}
    for u in utts:
        if u.utt in data["text"]:
            raise PrepError(f"utterance id {u.utt} given to both {data['wav.scp'][u.utt]} and "
                            f"{u.path}; expected unique ids")
        data["wav.scp"][u.utt], data["text"][u.utt], data["utt2spk"][u.utt] = str(u.path), u.label, u.speaker
    return data


def same_contents(a: Path, b: Path) -> bool:
    """Whether directories a and b hold the same files with the same bytes."""
    if not a.is_dir() or not b.is_dir():
        return False
    names = sorted(p.name for p in a.iterdir())
    if names != sorted(p.name for p in b.iterdir()):
        return False
    return all((a / n).is_file() and (b / n).is_file() and (a / n).read_bytes() == (b / n).read_bytes()
               for n in names)


def replace_dir(dest: Path, data: data_dir.Data) -> bool:
    """Write ``data`` as directory ``dest`` (through a temporary directory, checked, then swapped
    in); leave ``dest`` untouched if it already holds the same. Returns whether it changed."""
    tmp = dest.with_name(f".{dest.name}.tmp")
    old = dest.with_name(f".{dest.name}.old")
    for stale in (tmp, old):
        if stale.exists():
            shutil.rmtree(stale)
    data_dir.save(tmp, data)
    data_dir.validate(tmp)
    if same_contents(tmp, dest):
        shutil.rmtree(tmp)
        return False
    if dest.exists():
        os.replace(dest, old)
    os.replace(tmp, dest)
    if old.exists():
        shutil.rmtree(old)
    return True


def summary(sets: Dict[str, List[Utt]]) -> str:
    counts = {name: Counter(u.label for u in utts) for name, utts in sets.items()}
    labels = sorted(set().union(*counts.values()))
    width = max(len(x) for x in labels + ["label", "total"])
    cols = [max(len(name), 6) for name in sets]
    rows = ["  ".join(["label".ljust(width)] + [n.rjust(c) for n, c in zip(sets, cols)])]
    for label in labels + ["total"]:
        cells = [str(sum(counts[n].values()) if label == "total" else counts[n][label]).rjust(c)
                 for n, c in zip(sets, cols)]
        rows.append("  ".join([label.ljust(width)] + cells))
    return "\n".join(rows)


# ----------------------------------------------------------------------------- main


def prepare(corpus: Path, out: Path, task: str, silence_dir: Path, test_set: Optional[Path]) -> str:
    words = scan_words(corpus)
    parts = split(corpus, words)
    names = dict(zip(("train", "dev", "test"), SET_NAMES[task]))
    sets = {names[p]: word_utts(corpus, parts[p], words, task) for p in ("train", "dev", "test")}
    clips: List[Clip] = []
    if task == "12":
        clips = plan_silence(corpus, silence_dir)
        for clip in clips:
            sets[names[clip.part]].append(Utt(clip.utt, clip.speaker, SILENCE, clip.path))
        if test_set is not None:
            sets[OFFICIAL_TEST] = official_test_utts(test_set)
    data = {name: tables(utts) for name, utts in sets.items()}  # checks the ids before writing
    written = write_clips(clips)
    changed = [name for name in sets if replace_dir(out / name, data[name])]
    report = [summary(sets)]
    if clips:
        report.append(f"{SILENCE}: {len(clips)} clips of 1 s in {silence_dir} ({written} written now, "
                      f"{len(clips) - written} already there)")
    report.append(f"{out}: {', '.join(sets)} "
                  f"({'written: ' + ', '.join(changed) if changed else 'unchanged'})")
    return "\n".join(report)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", type=Path, help="the extracted speech_commands_v0.02.tar.gz")
    parser.add_argument("out", type=Path, help="where the data directories go (usually data/)")
    parser.add_argument("--task", choices=("35", "12"), default="35",
                        help="35 words, or 10 keywords + _unknown_ + _silence_ (default 35)")
    parser.add_argument("--silence_dir", type=Path, default=None,
                        help="where the 12-class task's 1-second silence clips are written "
                             "(default: OUT/../downloads/silence_clips)")
    parser.add_argument("--test_set", type=Path, default=None,
                        help="the extracted speech_commands_test_set_v0.02.tar.gz (12-class task: "
                             "also writes OUT/test12_official)")
    args = parser.parse_args(argv)
    silence_dir = args.silence_dir or args.out.parent / "downloads" / "silence_clips"
    try:
        if args.test_set is not None and args.task != "12":
            raise PrepError(f"--test_set {args.test_set}: the official test set has the 12 labels "
                            f"of --task 12, not --task {args.task}")
        print(prepare(args.corpus, args.out, args.task, silence_dir, args.test_set))
    except (PrepError, data_dir.DataDirError, OSError, RuntimeError) as e:
        print(f"{PROG}: error in stage 1 (data preparation): {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
