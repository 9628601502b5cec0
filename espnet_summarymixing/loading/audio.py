"""Audio at a model's sample rate: any file libsndfile reads (wav, flac, sph, ogg...), down-mixed
to mono and resampled, with notes on what was wrong with it but could still be read.

The reading itself (:func:`read_samples`) needs only NumPy and soundfile: the ONNX runtime uses it
too (:func:`espnet_summarymixing.deploy.runtime.read_wave`, which cannot resample without torch).
"""

from pathlib import Path

__all__ = ["load_audio", "read_audio", "read_samples"]


def load_audio(path: str, rate: int):
    """Read any file libsndfile reads (wav, flac, sph, ogg, ...) as mono float32 at ``rate``.

    Raises FileNotFoundError for a missing file and ValueError for one that is not readable audio."""
    return read_audio(path, rate)[0]


def read_audio(path: str, rate: int):
    """:func:`load_audio`, also returning the file's own sample rate and notes on what was wrong
    with it but could be read: ``(wave, file_rate, notes)``. A damaged or truncated file gives the
    audio before the damage and a note saying where it stops."""
    import torch
    import torchaudio

    samples, file_rate, notes = read_samples(path)
    wave = torch.from_numpy(samples)
    if file_rate != rate:
        wave = torchaudio.functional.resample(wave, file_rate, rate)
    return wave, file_rate, notes


def read_samples(path: str):
    """A file's samples, down-mixed to mono float32 (a NumPy array), at the file's own rate, with
    NumPy and soundfile only (the ONNX runtime reads audio through this too): ``(samples, file_rate,
    notes)``. Raises FileNotFoundError for a missing file and ValueError for one that is not readable
    audio or holds no samples."""
    import numpy as np
    import soundfile

    if not Path(path).exists():
        raise FileNotFoundError(f"{path}: no such file")
    if Path(path).is_dir():
        raise ValueError(f"{path}: a directory, not an audio file")
    if not Path(path).is_file():  # a FIFO or a device would block or never end
        raise ValueError(f"{path}: not a regular file (a pipe, socket or device): save the audio to a file first")
    notes = []
    blocks = []
    try:
        with soundfile.SoundFile(path) as f:
            file_rate, promised = f.samplerate, f.frames
            try:
                for block in f.blocks(blocksize=16384, dtype="float32", always_2d=True):
                    blocks.append(block)
            except (soundfile.LibsndfileError, RuntimeError) as err:
                if not blocks:
                    raise
                read = sum(len(b) for b in blocks)
                notes.append(f"damaged or truncated: decoding stopped after {read / file_rate:.2f} s of the "
                             f"{promised / file_rate:.2f} s its header announces ({err}); transcribed what was read")
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as err:
        raise ValueError(f"{path}: not an audio file libsndfile can read ({err})") from None
    missing = _wav_shortfall(path)
    if missing:
        notes.append(f"truncated: {missing} bytes of the audio its header announces are missing; "
                     "transcribed what is there")
    if not blocks or sum(len(b) for b in blocks) == 0:
        raise ValueError(f"{path}: the file holds no audio samples")
    samples = np.concatenate(blocks).mean(axis=1)  # down-mix
    bad = int(np.count_nonzero(~np.isfinite(samples)))
    if bad:
        raise ValueError(f"{path}: {bad} of its {len(samples)} samples are NaN or infinite: not usable audio")
    return samples, file_rate, notes


def _wav_shortfall(path: str) -> int:
    """Bytes a RIFF/WAVE file's data chunk announces beyond the end of the file (0 if none, or not
    a WAVE file): libsndfile silently reads such a truncated file's remaining samples."""
    import struct

    size = Path(path).stat().st_size
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return 0
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return 0
            name, length = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if name == b"data":
                return max(0, f.tell() + length - size) if length != 0xFFFFFFFF else 0
            f.seek(length + (length & 1), 1)
