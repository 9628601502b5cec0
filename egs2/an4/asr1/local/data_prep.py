#!/usr/bin/env python3
"""Kaldi-style data directories from a CMU AN4 tree.

Reads ``<an4>/etc/an4_{train,test}.transcription`` and finds each utterance's audio under
``<an4>/wav/an4_clstk`` (train) or ``<an4>/wav/an4test_clstk`` (test) as ``.sph`` (the official
archive), ``.wav`` or ``.flac``. Writes ``<out>/{train,test}/{wav.scp,text,utt2spk,spk2utt}``
with ESPnet's utterance ids (speaker first: ``fash-an251-b``), then splits ``train`` into
``train_dev`` (the first ``--ndev`` utterances in sorted order, as ESPnet's AN4 recipe) and
``train_nodev`` (the rest).

A transcript line without audio, or an utterance listed twice, stops with the file and line named;
nothing is written until every part has been read.
"""

import argparse
import re
import sys
from pathlib import Path
from typing import Dict, List, Tuple

AUDIO_EXTENSIONS = (".sph", ".wav", ".flac")
PARTS = {"train": "an4_clstk", "test": "an4test_clstk"}
LINE = re.compile(r"^(?P<words>.*?)\s*\((?P<source>[^()]+)\)\s*$")


def read_part(an4: Path, part: str) -> List[Tuple[str, str, str, Path]]:
    """(utterance id, speaker, transcript, audio path) of every utterance of one AN4 part."""
    transcription = an4 / "etc" / f"an4_{part}.transcription"
    if not transcription.is_file():
        raise FileNotFoundError(f"AN4 transcription not found: {transcription} (is {an4} an AN4 tree?)")
    wav_dir = an4 / "wav" / PARTS[part]
    audio: Dict[str, Path] = {}
    for path in wav_dir.glob("*/*"):
        if path.suffix.lower() in AUDIO_EXTENSIONS:
            audio.setdefault(path.stem, path)
    out, seen = [], {}
    for lineno, line in enumerate(transcription.read_text().splitlines(), 1):
        if not line.strip():
            continue
        match = LINE.match(line.strip())
        if match is None:
            raise ValueError(f"{transcription}:{lineno}: expected '<words> (<utterance>)', got {line!r}")
        words = [w for w in match["words"].split() if w not in ("<s>", "</s>")]
        source = match["source"].strip()  # an251-fash-b
        fields = source.split("-")
        if len(fields) != 3:
            raise ValueError(f"{transcription}:{lineno}: utterance name {source!r} is not <utt>-<speaker>-<mic>")
        utt, spk, mic = fields
        utt_id = f"{spk}-{utt}-{mic}"
        if utt_id in seen:
            raise ValueError(f"{transcription}:{lineno}: utterance {source} already listed on line {seen[utt_id]}")
        seen[utt_id] = lineno
        if source not in audio:
            raise FileNotFoundError(
                f"{transcription}:{lineno}: no audio for {source}: expected {wav_dir / spk / source}"
                f" with one of the extensions {', '.join(AUDIO_EXTENSIONS)}"
            )
        if not words:
            raise ValueError(f"{transcription}:{lineno}: empty transcript for {source}")
        out.append((utt_id, spk, " ".join(words), audio[source].resolve()))
    if not out:
        raise ValueError(f"{transcription}: no utterance")
    return sorted(out)


def write_dir(d: Path, utts: List[Tuple[str, str, str, Path]]) -> None:
    d.mkdir(parents=True, exist_ok=True)
    (d / "wav.scp").write_text("".join(f"{u} {p}\n" for u, _, _, p in utts))
    (d / "text").write_text("".join(f"{u} {t}\n" for u, _, t, _ in utts))
    (d / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s, _, _ in utts))
    spk2utt: Dict[str, List[str]] = {}
    for u, s, _, _ in utts:
        spk2utt.setdefault(s, []).append(u)
    (d / "spk2utt").write_text("".join(f"{s} {' '.join(us)}\n" for s, us in sorted(spk2utt.items())))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("an4", type=Path, help="AN4 root (holds etc/ and wav/)")
    parser.add_argument("out", type=Path, help="where the data directories go (usually data/)")
    parser.add_argument("--ndev", type=int, default=100, help="utterances of train moved to train_dev")
    args = parser.parse_args(argv)
    try:
        parts = {part: read_part(args.an4, part) for part in PARTS}
    except (OSError, ValueError) as e:
        print(f"local/data_prep.py: {e}", file=sys.stderr)
        return 1
    if not 0 < args.ndev < len(parts["train"]):
        print(f"local/data_prep.py: --ndev must be in 1..{len(parts['train']) - 1}, got {args.ndev}", file=sys.stderr)
        return 1
    for part, utts in parts.items():
        write_dir(args.out / part, utts)
    write_dir(args.out / "train_dev", parts["train"][: args.ndev])
    write_dir(args.out / "train_nodev", parts["train"][args.ndev :])
    for name in ("train_nodev", "train_dev", "test"):
        n = len((args.out / name / "text").read_text().splitlines())
        print(f"{args.out / name}: {n} utterances")
    return 0


if __name__ == "__main__":
    sys.exit(main())
