#!/usr/bin/env python3
"""Kaldi-style data directories from LibriSpeech parts (shared by librispeech and librispeech_100).

    data_prep.py LIBRISPEECH OUT --parts train-clean-100 dev-clean dev-other test-clean test-other

Each part has the layout of the openslr archives::

    <part>/<speaker>/<chapter>/<speaker>-<chapter>-<utterance>.flac
    <part>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt     one "<utterance id> <WORDS ...>" a line

``LIBRISPEECH`` is the directory that holds ``LibriSpeech/<part>/`` (where the archives unpack) or the
part directories themselves; both are accepted, per part. For each part, ``OUT/<part with
underscores>/`` (``train_clean_100``, ``dev_clean``, ...) gets ``wav.scp`` (absolute path of the
flac file), ``text`` (the words as in the transcript), ``utt2spk`` and ``spk2utt``, sorted by
utterance id. The speaker is ``<speaker>-<chapter>`` (as ESPnet's LibriSpeech recipes), a prefix of
the utterance id, so the two sort orders agree.

A transcript line without its flac file, a flac file without a transcript line, a chapter without its
transcript file or a malformed line stops the preparation with the file (and line) named. Every part is
read before anything is written, and each directory is written under a temporary name and then renamed:
an existing ``OUT/<part>`` is either the previous complete one or the new complete one.
"""

import argparse
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

PROG = "local/data_prep.py"
AUDIO = ".flac"
TRANSCRIPT = ".trans.txt"
FIELD = re.compile(r"^[0-9A-Za-z_]+$")  # one of speaker, chapter, utterance (digits in the corpus)

Utterance = Tuple[str, str, str, Path]  # utterance id, speaker, words, audio


class PrepError(Exception):
    """A user-facing error naming the file (and line) and what was expected."""


def data_dir_name(part: str) -> str:
    """'train-clean-100' -> 'train_clean_100' (ESPnet's names)."""
    return part.replace("-", "_")


def locate_parts(librispeech: Path, parts: Sequence[str]) -> Dict[str, Path]:
    """The directory of each part: ``<librispeech>/LibriSpeech/<part>`` or ``<librispeech>/<part>``."""
    found, missing = {}, []
    for part in parts:
        for candidate in (librispeech / "LibriSpeech" / part, librispeech / part):
            if candidate.is_dir():
                found[part] = candidate
                break
        else:
            missing.append(part)
    if missing:
        raise PrepError(
            f"{librispeech}: no directory for {', '.join(missing)}: expected {librispeech}/LibriSpeech/<part>/ "
            f"(the directory where the openslr archives were unpacked) or {librispeech}/<part>/ (the parts "
            f"themselves), each holding <speaker>/<chapter>/ directories"
        )
    return found


def _parse_transcript(path: Path, speaker: str, chapter: str) -> Dict[str, Tuple[str, int]]:
    """Utterance id -> (words, line number) of one chapter's transcript file."""
    prefix = f"{speaker}-{chapter}-"
    out: Dict[str, Tuple[str, int]] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise PrepError(f"{path}: not UTF-8 text ({e})") from None
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split(None, 1)
        utt = fields[0]
        words = " ".join(fields[1].split()) if len(fields) == 2 else ""
        if not utt.startswith(prefix) or not FIELD.match(utt[len(prefix):]):
            raise PrepError(f"{path}:{lineno}: expected '{prefix}<utterance> <WORDS>' "
                            f"(this file is chapter {chapter} of speaker {speaker}), got {line!r}")
        if not words:
            raise PrepError(f"{path}:{lineno}: no words for utterance {utt}")
        if utt in out:
            raise PrepError(f"{path}:{lineno}: utterance {utt} already listed on line {out[utt][1]}")
        out[utt] = (words, lineno)
    return out


def read_part(part_dir: Path) -> List[Utterance]:
    """Every utterance of one part, sorted by id; raises PrepError on any inconsistency."""
    utts: List[Utterance] = []
    speakers = sorted(p for p in part_dir.iterdir() if p.is_dir())
    for speaker_dir in speakers:
        speaker = speaker_dir.name
        for chapter_dir in sorted(p for p in speaker_dir.iterdir() if p.is_dir()):
            chapter = chapter_dir.name
            spk = f"{speaker}-{chapter}"
            audio: Dict[str, Path] = {}
            for entry in chapter_dir.iterdir():
                if entry.name.endswith(AUDIO):
                    audio[entry.name[: -len(AUDIO)]] = entry
            transcript = chapter_dir / f"{spk}{TRANSCRIPT}"
            if not transcript.is_file():
                if audio:
                    raise PrepError(f"{transcript}: not found, but {chapter_dir} holds {len(audio)} {AUDIO} "
                                    f"file(s) (e.g. {sorted(audio)[0]}{AUDIO}); expected the chapter's transcript")
                continue
            lines = _parse_transcript(transcript, speaker, chapter)
            for utt, (words, lineno) in sorted(lines.items()):
                if utt not in audio:
                    raise PrepError(f"{transcript}:{lineno}: no audio for {utt}: expected {chapter_dir / (utt + AUDIO)}")
                utts.append((utt, spk, words, audio[utt].resolve()))
            extra = sorted(set(audio) - set(lines))
            if extra:
                raise PrepError(f"{chapter_dir / (extra[0] + AUDIO)}: no transcript line for {extra[0]} in {transcript}"
                                + (f" ({len(extra) - 1} more such file(s) in {chapter_dir})" if len(extra) > 1 else ""))
    if not utts:
        raise PrepError(f"{part_dir}: no utterance found: expected <speaker>/<chapter>/<speaker>-<chapter>-<utterance>"
                        f"{AUDIO} files with <speaker>-<chapter>{TRANSCRIPT} transcripts")
    return sorted(utts)


def _write(path: Path, lines: Sequence[str]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(f"{line}\n" for line in lines)


def write_dir(dest: Path, utts: Sequence[Utterance]) -> None:
    """Write the four files into a temporary directory beside ``dest``, then put it in place."""
    tmp = dest.with_name(f".{dest.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    _write(tmp / "wav.scp", [f"{u} {p}" for u, _, _, p in utts])
    _write(tmp / "text", [f"{u} {w}" for u, _, w, _ in utts])
    _write(tmp / "utt2spk", [f"{u} {s}" for u, s, _, _ in utts])
    spk2utt: Dict[str, List[str]] = {}
    for u, s, _, _ in utts:
        spk2utt.setdefault(s, []).append(u)
    _write(tmp / "spk2utt", [f"{s} {' '.join(us)}" for s, us in sorted(spk2utt.items())])
    old = dest.with_name(f".{dest.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if dest.exists():
        os.replace(dest, old)
    os.replace(tmp, dest)
    if old.exists():
        shutil.rmtree(old)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("librispeech", type=Path, help="directory holding LibriSpeech/<part>/ or the <part>/ directories")
    parser.add_argument("out", type=Path, help="where the data directories go (usually data/)")
    parser.add_argument("--parts", nargs="+", required=True, help="parts to prepare, e.g. train-clean-100 dev-clean")
    args = parser.parse_args(argv)
    try:
        located = locate_parts(args.librispeech, args.parts)
        read = {part: read_part(path) for part, path in located.items()}
    except PrepError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    for part, utts in read.items():
        dest = args.out / data_dir_name(part)
        write_dir(dest, utts)
        print(f"{dest}: {len(utts)} utterances, {len({s for _, s, _, _ in utts})} speakers (speaker-chapter) "
              f"from {located[part]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
