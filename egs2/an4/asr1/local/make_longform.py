#!/usr/bin/env python3
"""A long-form evaluation set made of CMU AN4's test utterances laid end to end.

    local/make_longform.py AN4_DIR OUT_DIR [--gap SECONDS | --gap MIN:MAX] [--seed N] [--speakers a,b]

AN4's test part (``etc/an4_test.transcription``, cross-checked against ``etc/an4_test.fileids``
when that file is present; audio ``wav/an4test_clstk/<spk>/<file id>.{sph,wav,flac}``, the same
conventions as ``local/data_prep.py``) holds 130 short utterances of 10 speakers. This script
concatenates them into long recordings, keeping every utterance whole (its own leading and
trailing silence included), so that a model can be evaluated on audio far longer than it was
trained on, with an exact reference timeline:

* one recording per speaker, named after the speaker (``fcaw``...): the speaker's utterances in
  file-id order (about 40 s each);
* one recording ``all``: every utterance of the selected speakers, speakers in sorted order, each
  speaker's in file-id order (about 6.5 minutes for the whole test part).

Between two consecutive utterances of a recording ``--gap`` seconds of digital silence (zeros) are
inserted: a fixed length (``--gap 0.5``; default 0: none), or a length drawn for each gap uniformly
in ``[MIN, MAX]`` (``--gap 0.2:1.5``) from a generator seeded with ``--seed`` and the recording id
(so a speaker's recording is the same whether or not other speakers are selected). Gap lengths
are whole samples; nothing is added before the first or after the last utterance.

Writes into OUT_DIR (all audio 16-bit FLAC at the corpus' rate, 16 kHz):

``<rec_id>.flac``  the recordings;
``wav.scp``        ``<rec_id> <absolute path>``, one line per recording, sorted by id;
``text``           ``<rec_id> <words>``: the reference words of the whole recording (the
                   utterances' transcripts joined by a space, upper case as in AN4);
``reference.json`` the reference timeline::

    {"version": 1,
     "corpus": "CMU AN4 test part", "an4_dir": "<absolute path>",
     "sample_rate": 16000,
     "gap": {"seconds": 0.0, "min": 0.0, "max": 0.0, "seed": 0},   # seconds: null for MIN:MAX
     "speech_detector": {"frame_seconds": 0.01, "frame_samples": 160,
                         "threshold_db_below_peak": 35.0, "description": "..."},
     "recordings": [
       {"id": "all" | "<speaker>", "kind": "all" | "speaker", "path": "<absolute path>",
        "num_samples": N, "duration": N / rate, "text": "<words>",
        "utterances": [
          {"id": "fcaw-an406-b",          # ESPnet utterance id, as in data/test
           "source": "an406-fcaw-b",      # AN4 file id
           "speaker": "fcaw", "audio": "<original file>", "text": "RUBOUT G M E F THREE NINE",
           "start_sample": s, "end_sample": e,                  # the utterance in the recording
           "speech_start_sample": ss, "speech_end_sample": se,  # detected speech, in the recording
           "start": s / rate, "end": e / rate,
           "speech_start": ss / rate, "speech_end": se / rate}, ...]}, ...],
     "skipped": [{"recording": "<id>", "reason": "..."}, ...]}

All positions are sample counts, ``end`` exclusive, computed by adding up the utterances' and
gaps' lengths in samples (the seconds are those integers divided by the rate, so they never drift).
With ``--gap 0`` the utterances tile their recording exactly: the first starts at 0, each starts
where the previous ends, and the last ends at ``num_samples``.

Speech detector: the utterance is cut into consecutive 10 ms frames (the last one may be shorter);
a frame's level is its RMS; the speech starts at the first sample of the first frame whose RMS is
above the loudest frame's RMS minus 35 dB (RMS > peak RMS x 10^(-35/20)) and ends at the last
sample (exclusive) of the last such frame. An all-zero utterance has no speech: its speech
positions are null.

Errors: an AN4_DIR that is not an AN4 tree, a transcription line without words or malformed, or a
disagreement between the transcription and the file-id list stops with the file named, nothing
written (exit 1). A missing or unreadable audio file (or one that is not mono or not at the rate of
the others) is reported, the recording of its speaker and ``all`` are skipped (listed under
"skipped"), the other speakers' recordings are still written, and the exit status is 1 at the end.

A re-run replaces OUT_DIR as a whole: the set is written into a temporary sibling directory,
which is renamed to OUT_DIR only when complete (the previous set is moved aside first, then
removed), so OUT_DIR never holds a half-written set or stale recordings of an earlier run.
An existing OUT_DIR is only replaced when it is empty or holds a set made by this script.
"""

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import soundfile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data_prep import AUDIO_EXTENSIONS, LINE  # noqa: E402  (the recipe's AN4 conventions)

PROG = "local/make_longform.py"
WAV_DIR = "an4test_clstk"
TRANSCRIPTION = "an4_test.transcription"
FILEIDS = "an4_test.fileids"
FRAME_SECONDS = 0.01
THRESHOLD_DB = 35.0
ALL = "all"
REFERENCE = "reference.json"


class CorpusError(Exception):
    """The AN4 tree cannot be used at all (reported as one line, exit 1, nothing written)."""


class AudioError(Exception):
    """One audio file cannot be used (its speaker's recording is skipped)."""


# ---------------------------------------------------------------- reading the corpus


def read_test_part(an4: Path) -> List[Dict[str, str]]:
    """Every utterance of AN4's test part, sorted by speaker then file id.

    Each is a dict with ``id`` (ESPnet id ``<spk>-<utt>-<mic>``), ``source`` (AN4 file id
    ``<utt>-<spk>-<mic>``), ``speaker`` and ``text``. Raises CorpusError naming the file.
    """
    etc = an4 / "etc"
    transcription = etc / TRANSCRIPTION
    if not an4.is_dir():
        raise CorpusError(f"{an4} is not an AN4 tree: no such directory")
    if not transcription.is_file():
        raise CorpusError(f"{an4} is not an AN4 tree: {transcription} not found (expected etc/ and wav/ under it)")
    if not (an4 / "wav" / WAV_DIR).is_dir():
        raise CorpusError(f"{an4} is not an AN4 tree: {an4 / 'wav' / WAV_DIR} not found")
    try:
        lines = transcription.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise CorpusError(f"{transcription}: cannot be read: {e}") from e
    utts: Dict[str, Dict[str, str]] = {}
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue  # blank lines are skipped, as local/data_prep.py does
        where = f"{transcription}:{lineno}"
        match = LINE.match(line.strip())
        if match is None:
            raise CorpusError(f"{where}: expected '<words> (<utt>-<speaker>-<mic>)', got {line!r}")
        source = match["source"].strip()
        fields = source.split("-")
        if len(fields) != 3 or not all(fields):
            raise CorpusError(f"{where}: file id {source!r} is not <utt>-<speaker>-<mic>")
        words = [w for w in match["words"].split() if w not in ("<s>", "</s>")]
        if not words:
            raise CorpusError(f"{where}: empty transcription for {source} (expected at least one word)")
        if source in utts:
            raise CorpusError(f"{where}: {source} is transcribed twice")
        utt, spk, mic = fields
        utts[source] = {"id": f"{spk}-{utt}-{mic}", "source": source, "speaker": spk, "text": " ".join(words)}
    if not utts:
        raise CorpusError(f"{transcription}: no utterance (expected lines '<words> (<file id>)')")
    fileids = etc / FILEIDS
    if fileids.is_file():
        listed = {Path(line.strip()).name for line in fileids.read_text().splitlines() if line.strip()}
        missing = sorted(listed - set(utts))
        extra = sorted(set(utts) - listed)
        if missing:
            raise CorpusError(f"{fileids} lists {missing[0]} ({len(missing)} in all) "
                              f"that {transcription} does not transcribe")
        if extra:
            raise CorpusError(f"{transcription} transcribes {extra[0]} ({len(extra)} in all) "
                              f"that {fileids} does not list")
    return sorted(utts.values(), key=lambda u: (u["speaker"], u["source"]))


def find_audio(an4: Path, utt: Dict[str, str]) -> Path:
    """``wav/an4test_clstk/<spk>/<file id>`` with the first extension that exists."""
    stem = an4 / "wav" / WAV_DIR / utt["speaker"] / utt["source"]
    for ext in AUDIO_EXTENSIONS:
        if stem.with_name(stem.name + ext).is_file():
            return stem.with_name(stem.name + ext).resolve()
    raise AudioError(f"no audio for {utt['source']}: expected {stem}{{{','.join(AUDIO_EXTENSIONS)}}}")


def read_audio(path: Path, rate: Optional[int]) -> Tuple[np.ndarray, int]:
    """The 16-bit samples of a mono file; AudioError naming the file if unusable."""
    try:
        samples, file_rate = soundfile.read(str(path), dtype="int16", always_2d=True)
    except (RuntimeError, OSError, ValueError, TypeError, soundfile.SoundFileError) as e:
        raise AudioError(f"{path}: cannot be read as audio ({e})") from e
    if samples.shape[1] != 1:
        raise AudioError(f"{path}: expected mono audio, got {samples.shape[1]} channels")
    if rate is not None and file_rate != rate:
        raise AudioError(f"{path}: expected {rate} Hz like the other files, got {file_rate} Hz")
    if samples.shape[0] == 0:
        raise AudioError(f"{path}: no samples")
    return samples[:, 0], file_rate


# ---------------------------------------------------------------- speech detector


def speech_bounds(samples: np.ndarray, rate: int, frame_seconds: float = FRAME_SECONDS,
                  threshold_db: float = THRESHOLD_DB) -> Optional[Tuple[int, int]]:
    """(first, end) sample of the speech in an utterance, ``end`` exclusive; None if all zeros.

    Frames of ``frame_seconds`` (the last may be shorter); speech is every frame from the first to
    the last whose RMS exceeds the loudest frame's RMS minus ``threshold_db`` dB.

    >>> x = np.zeros(1000, dtype=np.int16); x[250:420] = 1000
    >>> speech_bounds(x, 10000)   # 100-sample frames: frames 2, 3 and 4 hold speech
    (200, 500)
    >>> speech_bounds(np.zeros(50, dtype=np.int16), 10000) is None
    True
    """
    frame = max(1, int(round(rate * frame_seconds)))
    x = samples.astype(np.float64)
    n_frames = -(-len(x) // frame)
    padded = np.zeros(n_frames * frame)
    padded[: len(x)] = x
    lengths = np.full(n_frames, frame)
    lengths[-1] = len(x) - (n_frames - 1) * frame
    rms = np.sqrt((padded.reshape(n_frames, frame) ** 2).sum(axis=1) / lengths)
    peak = rms.max()
    if peak <= 0:
        return None
    loud = np.flatnonzero(rms > peak * 10 ** (-threshold_db / 20))
    return int(loud[0]) * frame, min(len(x), (int(loud[-1]) + 1) * frame)


# ---------------------------------------------------------------- gaps


def parse_gap(text: str) -> Tuple[float, float]:
    """``"0.5"`` -> (0.5, 0.5); ``"0.2:1.5"`` -> (0.2, 1.5)."""
    parts = text.split(":")
    try:
        low, high = (float(parts[0]), float(parts[0])) if len(parts) == 1 else (float(parts[0]), float(parts[1]))
    except (ValueError, IndexError):
        raise argparse.ArgumentTypeError(f"expected SECONDS or MIN:MAX, got {text!r}") from None
    if len(parts) > 2 or not 0 <= low <= high or not np.isfinite(high):
        raise argparse.ArgumentTypeError(f"expected SECONDS or MIN:MAX with 0 <= MIN <= MAX, got {text!r}")
    return low, high


def gap_lengths(count: int, gap: Tuple[float, float], rate: int, seed: int, rec_id: str) -> List[int]:
    """Lengths in samples of the ``count`` gaps of one recording."""
    low, high = gap
    if low == high:
        return [int(round(low * rate))] * count
    rng = random.Random(f"{seed}/{rec_id}")
    return [int(round(rng.uniform(low, high) * rate)) for _ in range(count)]


# ---------------------------------------------------------------- building a recording


def build_recording(rec_id: str, kind: str, path: Path, utts: Sequence[Dict], audio: Dict[str, np.ndarray],
                    rate: int, gap: Tuple[float, float], seed: int) -> Tuple[np.ndarray, Dict]:
    """The samples of one recording (the utterances and the gaps between them) and its reference entry."""
    gaps = gap_lengths(len(utts) - 1, gap, rate, seed, rec_id) + [0]
    pieces, entries, position = [], [], 0
    for utt, gap_samples in zip(utts, gaps):
        samples = audio[utt["source"]]
        start, end = position, position + len(samples)
        speech = utt["speech"]
        speech_start, speech_end = (None, None) if speech is None else (start + speech[0], start + speech[1])
        entries.append({
            "id": utt["id"], "source": utt["source"], "speaker": utt["speaker"], "audio": str(utt["audio"]),
            "text": utt["text"],
            "start_sample": start, "end_sample": end,
            "speech_start_sample": speech_start, "speech_end_sample": speech_end,
            "start": start / rate, "end": end / rate,
            "speech_start": None if speech is None else speech_start / rate,
            "speech_end": None if speech is None else speech_end / rate,
        })
        pieces.append(samples)
        if gap_samples:
            pieces.append(np.zeros(gap_samples, dtype=np.int16))
        position = end + gap_samples
    wave = np.concatenate(pieces)
    assert len(wave) == position
    entry = {"id": rec_id, "kind": kind, "path": str(path), "num_samples": int(len(wave)), "duration": len(wave) / rate,
             "text": " ".join(u["text"] for u in utts), "utterances": entries}
    return wave, entry


# ---------------------------------------------------------------- writing the set


def _is_replaceable(out: Path) -> bool:
    """OUT_DIR may be replaced: absent, empty, or a set written by this script."""
    if not out.exists():
        return True
    if not out.is_dir():
        return False
    if not any(out.iterdir()):
        return True
    try:
        return json.loads((out / REFERENCE).read_text()).get("corpus") == "CMU AN4 test part"
    except (OSError, ValueError, AttributeError):
        return False


def _replace_dir(tmp: Path, out: Path) -> None:
    """Move the finished ``tmp`` to ``out``, the previous ``out`` (if any) aside then removed."""
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.rename(out, old / "set")
    os.rename(tmp, out)
    if old is not None:
        shutil.rmtree(old)


def make_set(an4: Path, out: Path, gap: Tuple[float, float] = (0.0, 0.0), seed: int = 0,
             speakers: Optional[Sequence[str]] = None, log=print) -> List[str]:
    """Write the long-form set of ``an4`` into ``out``; return the problems (empty if none).

    Raises CorpusError when nothing can be made (the corpus or the options are unusable).
    """
    utts = read_test_part(an4)
    known = sorted({u["speaker"] for u in utts})
    if speakers:
        unknown = [s for s in speakers if s not in known]
        if unknown:
            raise CorpusError(f"--speakers: {', '.join(unknown)} not in {an4 / 'etc' / TRANSCRIPTION} "
                              f"(its speakers: {', '.join(known)})")
        utts = [u for u in utts if u["speaker"] in set(speakers)]
    out = out.absolute()
    if not _is_replaceable(out):
        raise CorpusError(f"{out} exists and is not a long-form set made by {PROG} (no {REFERENCE} from it): "
                          "refusing to replace it; remove it or choose another OUT_DIR")

    # read every file once; a bad file disables its speaker
    problems: List[str] = []
    audio: Dict[str, np.ndarray] = {}
    bad_speakers: Dict[str, str] = {}
    rate: Optional[int] = None
    for utt in utts:
        try:
            utt["audio"] = find_audio(an4, utt)
            samples, rate = read_audio(utt["audio"], rate)
        except AudioError as e:
            problems.append(str(e))
            bad_speakers.setdefault(utt["speaker"], str(e))
            print(f"{PROG}: warning: {e}: recording {utt['speaker']} (and {ALL}) skipped", file=sys.stderr)
            continue
        audio[utt["source"]] = samples
        utt["speech"] = speech_bounds(samples, rate)

    by_speaker: Dict[str, List[Dict]] = {}
    for utt in utts:
        by_speaker.setdefault(utt["speaker"], []).append(utt)
    plan = [(spk, "speaker", us) for spk, us in sorted(by_speaker.items()) if spk not in bad_speakers]
    skipped = [{"recording": spk, "reason": reason} for spk, reason in sorted(bad_speakers.items())]
    if bad_speakers:
        reason = f"audio missing or unreadable for speaker(s) {', '.join(sorted(bad_speakers))}"
        skipped.append({"recording": ALL, "reason": reason})
    else:
        plan.insert(0, (ALL, "all", utts))
    if not plan:
        raise CorpusError("no recording can be made: every selected speaker has a missing or unreadable file "
                          f"({problems[0]})")

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        recordings = []
        for rec_id, kind, rec_utts in plan:
            wave, entry = build_recording(rec_id, kind, out / f"{rec_id}.flac", rec_utts, audio, rate, gap, seed)
            soundfile.write(str(tmp / f"{rec_id}.flac"), wave, rate, subtype="PCM_16", format="FLAC")
            recordings.append(entry)
            log(f"{entry['path']}: {len(rec_utts)} utterances, {entry['duration']:.2f} s")
        recordings.sort(key=lambda r: r["id"])
        (tmp / "wav.scp").write_text("".join(f"{r['id']} {r['path']}\n" for r in recordings))
        (tmp / "text").write_text("".join(f"{r['id']} {r['text']}\n" for r in recordings))
        reference = {
            "version": 1,
            "corpus": "CMU AN4 test part",
            "an4_dir": str(an4.resolve()),
            "sample_rate": rate,
            "gap": {"seconds": gap[0] if gap[0] == gap[1] else None, "min": gap[0], "max": gap[1], "seed": seed},
            "speech_detector": {
                "frame_seconds": FRAME_SECONDS,
                "frame_samples": None if rate is None else max(1, int(round(rate * FRAME_SECONDS))),
                "threshold_db_below_peak": THRESHOLD_DB,
                "description": "consecutive 10 ms frames of the utterance; speech runs from the first sample of the "
                               "first frame to the end of the last frame whose RMS > peak frame RMS - 35 dB",
            },
            "recordings": recordings,
            "skipped": skipped,
        }
        (tmp / REFERENCE).write_text(json.dumps(reference, indent=1) + "\n")
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp made it private
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(f"{out}: {len(recordings)} recordings written"
        + (f", {len(skipped)} skipped ({', '.join(s['recording'] for s in skipped)})" if skipped else ""))
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("an4", type=Path, help="AN4 root (holds etc/ and wav/)")
    parser.add_argument("out", type=Path, help="where the set is written (replaced if it holds an earlier set)")
    parser.add_argument("--gap", type=parse_gap, default=(0.0, 0.0), metavar="SECONDS|MIN:MAX",
                        help="zeros between consecutive utterances: a fixed length, or uniform in MIN:MAX (default 0)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random gap lengths (--gap MIN:MAX)")
    parser.add_argument("--speakers", type=lambda s: [x for x in s.split(",") if x], default=None,
                        help="comma-separated test speakers to use (default: all)")
    args = parser.parse_args(argv)
    try:
        problems = make_set(args.an4, args.out, args.gap, args.seed, args.speakers)
    except (CorpusError, OSError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    if problems:
        print(f"{PROG}: error: {len(problems)} audio file(s) missing or unreadable (see the warnings above); "
              "their speakers' recordings were not made", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
