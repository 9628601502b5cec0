#!/usr/bin/env python3
"""Kaldi-style data directories from the Free Spoken Digit Dataset, split by speaker.

    local/data_prep.py FSDD OUT [--dev_speakers lucas] [--test_speakers nicolas] [--dev_takes 45-49] [--test_takes 0-4] [--suffix _loso-george]

Reads ``FSDD/recordings/<digit>_<speaker>_<take>.wav`` (whatever speakers are there) and writes
``OUT/{train,dev,test}<suffix>/{wav.scp,text,utt2spk,spk2utt}``; the label is the digit's English name
(``zero`` ... ``nine``), the clip id ``<speaker>-<digit>_<take>`` (speaker first, as Kaldi sorts).
The split is by speaker: the ``--dev_speakers`` go to dev, the ``--test_speakers`` to test, every
other speaker to train, so that speakers added to the corpus are trained on; no speaker is in two
sets. ``--dev_takes`` / ``--test_takes`` (take numbers, e.g. ``45-49`` or ``0,1,2``) move those takes
of every other speaker to dev / test instead:

- leave-one-speaker-out (the recipe's ``--folds``): ``--test_speakers S --dev_speakers "" --dev_takes
  45-49``, so that dev holds unseen takes of the training speakers and test an unseen voice;
- the usual split of the corpus (not speaker-disjoint): ``--test_speakers "" --dev_speakers ""
  --test_takes 0-4 --dev_takes 45-49``.

A named speaker that is not in the corpus, a speaker or take named twice, or a split that leaves a set
empty stops with the speakers found.

One bad file does not stop the others: a file whose name is not ``<digit>_<speaker>_<take>.wav``,
one that cannot be read as audio and an empty one (no samples) are left out and named in a warning.
A folder with no recording stops with an error. Nothing is written until every file was looked at;
each data directory is written whole (pyscripts/data_dir.py), so an existing one stays complete.
"""

import argparse
import re
import sys
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pyscripts"))
import data_dir  # noqa: E402  (the template's data-directory helpers)

PROG = "local/data_prep.py"
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
NAME = re.compile(r"^(?P<digit>[0-9])_(?P<speaker>[A-Za-z0-9]+)_(?P<take>[0-9]+)\.wav$")
SETS = ("train", "dev", "test")


class PrepError(Exception):
    """A user-facing error: names the folder or speaker and what was expected."""


def scan(fsdd: Path) -> Tuple[List[Tuple[str, str, str, Path]], List[str]]:
    """(clip id, speaker, label, path) of every usable recording, and one warning per file left out."""
    import soundfile

    folder = fsdd / "recordings"
    if not folder.is_dir():
        raise PrepError(f"{folder}: no such folder (FSDD keeps its clips in recordings/; is {fsdd} the corpus?)")
    clips, skipped = [], []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() != ".wav":
            continue
        match = NAME.match(path.name)
        if match is None:
            skipped.append(f"{path}: name is not <digit>_<speaker>_<take>.wav")
            continue
        try:
            frames = soundfile.info(str(path)).frames
        except Exception as err:  # soundfile raises several types for unreadable files
            skipped.append(f"{path}: not readable as audio ({str(err).splitlines()[0]})")
            continue
        if frames == 0:
            skipped.append(f"{path}: empty (no samples)")
            continue
        speaker, digit = match["speaker"], int(match["digit"])
        clips.append((f"{speaker}-{digit}_{match['take']}", speaker, DIGITS[digit], path.resolve()))
    if not clips:
        raise PrepError(f"{folder}: no usable recording (<digit>_<speaker>_<take>.wav)"
                        + (f"; {len(skipped)} file(s) left out, e.g. {skipped[0]}" if skipped else ""))
    return clips, skipped


def takes(option: str, value: str) -> List[int]:
    """Take numbers from ``45-49``, ``0,1,2`` or a mix (``0-4,7``); an empty value is none."""
    out = []
    for part in value.replace(",", " ").split():
        match = re.fullmatch(r"([0-9]+)(?:-([0-9]+))?", part)
        if match is None or (match[2] is not None and int(match[2]) < int(match[1])):
            raise PrepError(f"{option}: '{part}' is not a take number or range (e.g. 45-49 or 0,1,2)")
        out.extend(range(int(match[1]), int(match[2] or match[1]) + 1))
    return out


def split(clips, dev_speakers: Sequence[str], test_speakers: Sequence[str],
          dev_takes: Sequence[int] = (), test_takes: Sequence[int] = ()) -> Dict[str, list]:
    speakers = sorted({c[1] for c in clips})
    for option, named in (("--dev_speakers", dev_speakers), ("--test_speakers", test_speakers)):
        unknown = [s for s in named if s not in speakers]
        if unknown:
            raise PrepError(f"{option}: {', '.join(unknown)} not in the corpus (speakers found: {', '.join(speakers)})")
    both = set(dev_speakers) & set(test_speakers)
    if both:
        raise PrepError(f"{', '.join(sorted(both))} named in both --dev_speakers and --test_speakers")
    both = set(dev_takes) & set(test_takes)
    if both:
        raise PrepError(f"take(s) {', '.join(map(str, sorted(both)))} named in both --dev_takes and --test_takes")
    where = {s: "dev" for s in dev_speakers}
    where.update({s: "test" for s in test_speakers})
    by_take = {t: "dev" for t in dev_takes}
    by_take.update({t: "test" for t in test_takes})

    def set_of(clip) -> str:
        return where.get(clip[1]) or by_take.get(int(clip[0].rsplit("_", 1)[1]), "train")

    sets = {name: [c for c in clips if set_of(c) == name] for name in SETS}
    for name in SETS:
        if not sets[name]:
            raise PrepError(f"the {name} set would be empty (speakers found: {', '.join(speakers)}; "
                            f"dev: {', '.join(dev_speakers) or 'none'}; test: {', '.join(test_speakers) or 'none'}; "
                            f"dev takes: {','.join(map(str, dev_takes)) or 'none'}; "
                            f"test takes: {','.join(map(str, test_takes)) or 'none'})")
    return sets


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("fsdd", type=Path, help="the corpus folder (holds recordings/)")
    p.add_argument("out", type=Path, help="where data/{train,dev,test} go")
    p.add_argument("--dev_speakers", default="lucas", help="speakers of the dev set (comma- or space-separated)")
    p.add_argument("--test_speakers", default="nicolas", help="speakers of the test set (comma- or space-separated)")
    p.add_argument("--dev_takes", default="", help="takes of the other speakers that go to dev (e.g. 45-49)")
    p.add_argument("--test_takes", default="", help="takes of the other speakers that go to test (e.g. 0-4)")
    p.add_argument("--suffix", default="", help="appended to the set names: OUT/train<suffix>, OUT/dev<suffix>, ...")
    p.add_argument("--list_speakers", action="store_true",
                   help="print the speakers of the clips named <digit>_<speaker>_<take>.wav (one line) and stop")
    args = p.parse_args(argv)
    if args.list_speakers:
        names = (NAME.match(path.name) for path in sorted((args.fsdd / "recordings").glob("*.wav")))
        print(" ".join(sorted({match["speaker"] for match in names if match})))
        return 0
    try:
        clips, skipped = scan(args.fsdd)
        sets = split(clips, args.dev_speakers.replace(",", " ").split(), args.test_speakers.replace(",", " ").split(),
                     takes("--dev_takes", args.dev_takes), takes("--test_takes", args.test_takes))
    except PrepError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 1
    for warning in skipped:
        print(f"{PROG}: warning: left out {warning}", file=sys.stderr)
    for name in SETS:
        rows = sorted(sets[name])
        data = {"wav.scp": {c[0]: str(c[3]) for c in rows}, "text": {c[0]: c[2] for c in rows},
                "utt2spk": {c[0]: c[1] for c in rows}}
        data_dir.save(args.out / f"{name}{args.suffix}", data)
        speakers = sorted({c[1] for c in rows})
        print(f"{PROG}: {args.out / (name + args.suffix)}: {len(rows)} clips of {len(speakers)} speaker(s): {', '.join(speakers)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
