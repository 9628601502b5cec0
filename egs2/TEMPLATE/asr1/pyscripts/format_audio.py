#!/usr/bin/env python3
"""Stage 3 of asr.sh, "format audio": one mono 16-bit file per utterance at a fixed rate.

    format_audio.py --data DIR --out OUT [--fs 16000] [--audio_format flac|wav] [--nj N]

Each ``DIR/wav.scp`` entry must be an audio file: NIST SPHERE (read here: 16-bit PCM in either
byte order, or 8-bit mu-law; ``shorten``-compressed files are refused), or anything soundfile
reads (.wav, .flac, ...). Kaldi pipe entries (``... |``) are refused. Channels are averaged to
mono; the speed factor in ``DIR/utt2speed`` (if any) is applied like sox ``speed``: the signal is
taken as sampled at ``rate * factor`` and resampled to ``--fs`` (so it lasts ``1 / factor`` as
long, pitch included); otherwise it is only resampled to ``--fs`` when its rate differs.

Writes ``OUT/data/<utt>.<fmt>``, then ``OUT/utt2num_samples``, ``OUT/wav.scp`` (absolute paths)
and DIR's other per-utterance files (text, utt2spk, ...; not utt2speed, since the audio now
carries the factor) with spk2utt. Re-runnable: every audio file is written under a temporary name
and renamed, so an existing one is complete and is kept; the lists are written only once every
utterance is done. A file that cannot be read stops the run with status 1 after the others are
done, naming the utterance and path.
"""

import argparse
import importlib
import multiprocessing
import os
import sys
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np
import soundfile

sys.path.insert(0, str(Path(__file__).resolve().parent))
import data_dir  # noqa: E402  (a sibling script)

PROG = "format_audio.py"
SUBTYPE = "PCM_16"
_ONE_THREAD = False  # set in worker processes: one torch thread each


class AudioError(Exception):
    """The audio cannot be read; the message says why."""


# ----------------------------------------------------------------------------- NIST SPHERE


def parse_sphere_header(raw: bytes) -> Tuple[Dict[str, object], int]:
    """The fields of the SPHERE header at the start of ``raw`` (``name -i 16000`` -> int,
    ``-r`` -> float, ``-sN`` -> str) and the header size in bytes (its second line)."""
    first = raw[:16].decode("ascii", errors="replace").split("\n")
    if first[0] != "NIST_1A" or len(first) < 3:
        raise AudioError("not a NIST SPHERE file (expected a header starting 'NIST_1A')")
    try:
        size = int(first[1])
    except ValueError:
        raise AudioError(f"SPHERE header size '{first[1].strip()}' is not a number") from None
    lines = raw[:size].decode("ascii", errors="replace").split("\n")
    fields: Dict[str, object] = {}
    for line in lines[2:]:
        line = line.rstrip("\r")
        if line.strip() == "end_head":
            return fields, size
        parts = line.split(" ", 2)
        if len(parts) < 3 or not parts[1].startswith("-"):
            continue  # a comment or something unknown
        name, kind, value = parts
        try:
            if kind == "-i":
                fields[name] = int(value)
            elif kind == "-r":
                fields[name] = float(value)
            elif kind.startswith("-s"):
                fields[name] = value[:int(kind[2:])]
        except ValueError:
            raise AudioError(f"SPHERE header field '{line.strip()}' is malformed") from None
    raise AudioError("SPHERE header has no 'end_head' line")


def _ulaw_table() -> np.ndarray:
    """The 16-bit linear value of each 8-bit mu-law code (ITU-T G.711)."""
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    magnitude = (((u & 0x0F) << 3) + 0x84) << ((u >> 4) & 0x07)
    return np.where(u & 0x80, 0x84 - magnitude, magnitude - 0x84).astype(np.float32)


def read_sphere(path) -> Tuple[np.ndarray, int]:
    """Samples (frames, channels) as float32 in [-1, 1) and the sample rate of a SPHERE file."""
    raw = Path(path).read_bytes()
    fields, size = parse_sphere_header(raw)
    coding = str(fields.get("sample_coding", "pcm")).lower()
    if "shorten" in coding or "wavpack" in coding:
        raise AudioError(f"SPHERE audio compressed with '{coding}' is not supported; decompress it "
                         f"first (e.g. sph2pipe -f wav) and list the decompressed file")
    rate, channels = fields.get("sample_rate"), int(fields.get("channel_count", 1))
    width = int(fields.get("sample_n_bytes", 2 if coding == "pcm" else 1))
    if not isinstance(rate, int) or rate <= 0:
        raise AudioError("SPHERE header has no integer sample_rate")
    body = raw[size:]
    if coding == "pcm" and width == 2:
        order = fields.get("sample_byte_format")
        if order not in ("01", "10"):
            raise AudioError(f"SPHERE sample_byte_format {order!r}; expected '01' (little endian) "
                             f"or '10' (big endian)")
        samples = np.frombuffer(body[:len(body) // 2 * 2], dtype="<i2" if order == "01" else ">i2")
        samples = samples.astype(np.float32) / 32768
    elif coding in ("ulaw", "mu-law") and width == 1:
        samples = _ulaw_table()[np.frombuffer(body, dtype=np.uint8)] / 32768
    else:
        raise AudioError(f"SPHERE sample_coding '{coding}' with {width}-byte samples is not "
                         f"supported; expected 16-bit pcm or 8-bit ulaw")
    count = fields.get("sample_count")
    if isinstance(count, int):
        if len(samples) < count * channels:
            raise AudioError(f"SPHERE file is truncated: {len(samples) // channels} of {count} samples")
        samples = samples[:count * channels]
    return samples[:len(samples) // channels * channels].reshape(-1, channels), rate


# ----------------------------------------------------------------------------- one utterance


def read_audio(path) -> Tuple[np.ndarray, int]:
    """Samples (frames, channels) as float32 and the rate of a SPHERE file or a soundfile format."""
    with open(path, "rb") as f:
        magic = f.read(7)
    if magic == b"NIST_1A":
        return read_sphere(path)
    samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    return samples, rate


def convert(samples: np.ndarray, rate: int, fs: int, factor: float = 1.0) -> np.ndarray:
    """Mono 16-bit samples at ``fs`` of (frames, channels) float ``samples`` at ``rate``, sped up
    by ``factor`` (the signal taken as sampled at ``rate * factor``)."""
    mono = samples.mean(axis=1) if samples.ndim == 2 else samples
    source = int(round(rate * factor))
    if source != fs:
        import torch
        import torchaudio.functional

        if _ONE_THREAD:
            torch.set_num_threads(1)
        mono = torchaudio.functional.resample(torch.from_numpy(np.ascontiguousarray(mono)),
                                              source, fs).numpy()
    return np.clip(np.round(mono * 32768), -32768, 32767).astype(np.int16)


def format_one(task) -> Tuple[str, int, bool, Optional[str]]:
    """(utt, source path, factor, output path, fs, format) -> (utt, samples, skipped, error)."""
    utt, src, factor, out, fs, fmt = task
    out = Path(out)
    try:
        if out.exists():
            info = soundfile.info(str(out))
            if info.samplerate == fs:
                return utt, info.frames, True, None
        samples, rate = read_audio(src)
        if samples.shape[0] == 0:
            raise AudioError("no samples")
        pcm = convert(samples, rate, fs, factor)
        tmp = out.with_name(out.name + ".tmp")
        soundfile.write(str(tmp), pcm, fs, subtype=SUBTYPE, format=fmt.upper())
        os.replace(tmp, out)
        return utt, len(pcm), False, None
    except Exception as e:  # reported by the parent with the utterance and path
        return utt, 0, False, f"{utt}: cannot read {src}: {e}"


def _init_worker():
    global _ONE_THREAD
    _ONE_THREAD = True


# ----------------------------------------------------------------------------- the directory


def _results(tasks, nj):
    """format_one over ``tasks`` (in any order), in ``nj`` spawned processes when nj > 1."""
    nj = max(1, min(nj, len(tasks)))
    if nj == 1:
        yield from map(format_one, tasks)
        return
    # Spawned children find functions by module name: this file run as a script is __main__ to
    # them; loaded under another name (e.g. by a test), use it as module "format_audio", which
    # they can import as this file's folder is on sys.path (sent to them).
    module = sys.modules[__name__]
    if __name__ not in ("__main__", "format_audio"):
        module = importlib.import_module("format_audio")
    with multiprocessing.get_context("spawn").Pool(nj, initializer=module._init_worker) as pool:
        yield from pool.imap_unordered(module.format_one, tasks)


def format_dir(data: str, out: str, fs: int = 16000, audio_format: str = "flac", nj: int = 1) -> int:
    """Format every utterance of data dir ``data`` into ``out``; return an exit code."""
    tables = data_dir.load(data, need=("wav.scp",), allow_empty_text=True)
    wav = tables["wav.scp"]
    speed = tables.get("utt2speed", {})
    out_dir = Path(out).resolve()
    if out_dir == Path(data).resolve():
        raise data_dir.DataDirError(f"--out {out}: expected a directory other than --data")
    for utt, path in wav.items():
        if path.rstrip().endswith("|"):
            raise data_dir.DataDirError(
                f"{data}/wav.scp: {utt}: '{path}' is a pipe command; pipes are not supported, "
                f"expected an audio file path (decompress or convert the audio to files first)")
        if "/" in utt:
            raise data_dir.DataDirError(f"{data}/wav.scp: utterance id '{utt}' contains '/'; "
                                        f"expected ids usable as file names")
    (out_dir / "data").mkdir(parents=True, exist_ok=True)
    tasks = [(utt, path, float(speed.get(utt, 1)), str(out_dir / "data" / f"{utt}.{audio_format}"),
              fs, audio_format) for utt, path in wav.items()]

    lengths, errors, skipped, step = {}, [], 0, 0
    for done, (utt, n, was_skipped, error) in enumerate(_results(tasks, nj), 1):
        if error:
            errors.append(error)
        else:
            lengths[utt], skipped = n, skipped + was_skipped
        if done * 10 // len(tasks) > step or done == len(tasks):  # every 10 %
            step = done * 10 // len(tasks)
            print(f"{PROG}: {done}/{len(tasks)} utterances", file=sys.stderr, flush=True)
    if errors:
        for error in errors[:10]:
            print(f"{PROG}: {error}", file=sys.stderr)
        more = f" ({len(errors) - 10} more not shown)" if len(errors) > 10 else ""
        print(f"{PROG}: {len(errors)} of {len(tasks)} utterances failed{more}; the "
              f"{len(lengths)} formatted files are kept in {out_dir}/data, and {out_dir}/wav.scp "
              f"is not written; fix the audio and rerun", file=sys.stderr)
        return 1

    keep = {n: t for n, t in tables.items()
            if n not in ("wav.scp", "utt2speed") + data_dir.DURATION_FILES}
    keep["utt2num_samples"] = {utt: str(lengths[utt]) for utt in wav}
    keep["wav.scp"] = {task[0]: task[3] for task in tasks}
    data_dir.save(out_dir, keep)
    print(f"{PROG}: {len(tasks)} utterances in {out_dir}/wav.scp ({skipped} already formatted)",
          file=sys.stderr)
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="source data directory (wav.scp, ...)")
    p.add_argument("--out", required=True, help="output data directory")
    p.add_argument("--fs", type=int, default=16000, help="output sample rate (Hz)")
    p.add_argument("--audio_format", choices=("flac", "wav"), default="flac")
    p.add_argument("--nj", type=int, default=1, help="worker processes")
    args = p.parse_args(argv)
    if args.fs <= 0 or args.nj < 1:
        p.error("--fs and --nj must be positive")
    try:
        return format_dir(args.data, args.out, args.fs, args.audio_format, args.nj)
    except (data_dir.DataDirError, OSError) as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
