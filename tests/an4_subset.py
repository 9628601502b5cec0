"""A handful of real AN4 utterances as ESPnet data directories, or synthetic ones without AN4."""

import math
import random
import struct
import wave
from pathlib import Path
from typing import Dict, List, Tuple


def _an4_utterances(an4: Path, part: str, count: int) -> List[Tuple[str, Path, str]]:
    """(ESPnet utterance id, audio path, transcript) for the first ``count`` utterances."""
    etc = an4 / "etc"
    fileids = (etc / f"an4_{part}.fileids").read_text().split()
    texts = {}
    for line in (etc / f"an4_{part}.transcription").read_text().splitlines():
        words, _, uid = line.rpartition("(")
        words = words.replace("<s>", "").replace("</s>", "").split()
        texts[uid.strip().rstrip(")")] = " ".join(words)
    out = []
    for fileid in fileids[:count]:
        stem = Path(fileid).name  # an251-fash-b
        audio = next((an4 / "wav").glob(f"{fileid}.*"))
        utt, spk, rest = stem.split("-", 2)
        out.append((f"{spk}-{utt}-{rest}", audio, texts[stem]))
    return out


def _synthetic_utterances(root: Path, part: str, count: int) -> List[Tuple[str, Path, str]]:
    """Tones whose pitch spells the letters of the transcript (16 kHz, 16-bit)."""
    rng = random.Random(0 if part == "train" else 1)
    root.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(count):
        text = " ".join(rng.choice(["YES", "NO", "GO", "STOP", "ONE", "TWO"]) for _ in range(2))
        samples = []
        for ch in text:
            freq = 200 + 20 * (ord(ch) - 32)
            samples += [int(8000 * math.sin(2 * math.pi * freq * n / 16000)) for n in range(1600)]
        path = root / f"{part}{i:03d}.wav"
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16000)
            w.writeframes(struct.pack(f"<{len(samples)}h", *samples))
        out.append((f"spk{i % 3}-{part}{i:03d}", path, text))
    return out


def make_data_dirs(an4: Path, out: Path, counts: Dict[str, int]) -> Dict[str, Path]:
    """Write ``wav.scp``, ``text`` and ``utt2spk`` for each part; return the directories.

    ``counts`` maps a data directory name to the number of utterances; names starting with
    "test" are drawn from AN4's test part, the others from its training part.
    """
    dirs = {}
    offset = {"train": 0, "test": 0}
    for name, count in counts.items():
        part = "test" if name.startswith("test") else "train"
        start = offset[part]
        if (an4 / "etc").is_dir():
            utts = _an4_utterances(an4, part, start + count)[start:]
        else:
            utts = _synthetic_utterances(out / "audio", name, count)
        offset[part] += count
        d = out / name
        d.mkdir(parents=True, exist_ok=True)
        utts.sort()
        (d / "wav.scp").write_text("".join(f"{u} {p}\n" for u, p, _ in utts))
        (d / "text").write_text("".join(f"{u} {t}\n" for u, _, t in utts))
        (d / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u, _, _ in utts))
        dirs[name] = d
    return dirs


def char_token_list(texts: List[str], path: Path) -> Path:
    """ESPnet's character token list: <blank>, <unk>, the characters (space as <space>), <sos/eos>."""
    chars = sorted({("<space>" if c == " " else c) for t in texts for c in t})
    path.write_text("\n".join(["<blank>", "<unk>", *chars, "<sos/eos>"]) + "\n")
    return path
