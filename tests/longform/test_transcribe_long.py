"""The transcribe command on long recordings: timed formats, and bad input that stops nothing."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile

from conftest import command

SRT_CUE = re.compile(r"(\d+)\n(\d\d):(\d\d):(\d\d),(\d{3}) --> (\d\d):(\d\d):(\d\d),(\d{3})\n(.+\n){1,2}")


@pytest.fixture(scope="module")
def model_dir(talkative_model):
    return talkative_model


@pytest.fixture(scope="module")
def long_file(data, tmp_path_factory):
    waves = [soundfile.read(line.split()[1], dtype="float32")[0] for line in (data["test"] / "wav.scp").read_text().splitlines()]
    one = np.concatenate(waves)
    path = tmp_path_factory.mktemp("long") / "lecture.flac"
    soundfile.write(path, np.tile(one, int(np.ceil(40 * 16000 / one.size))), 16000)
    return path


def _transcribe(model_dir, *args):
    return command("transcribe", "--model", model_dir, *args)  # in this process (conftest.command)


def _seconds(h, m, s, ms):
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def test_srt_vtt_and_json_of_a_long_recording(model_dir, long_file, tmp_path):
    duration = soundfile.info(str(long_file)).duration
    outputs = {}
    for fmt in ("srt", "vtt", "json"):
        proc = _transcribe(model_dir, "--decoding", "greedy", "--output_format", fmt, "--output_dir", tmp_path, long_file)
        assert proc.returncode == 0, proc.stderr[-3000:]
        target = tmp_path / f"lecture.flac.{fmt}"
        assert proc.stdout == f"{long_file}\t{target}\n"
        outputs[fmt] = target.read_text(encoding="utf-8")
    doc = json.loads(outputs["json"])
    assert doc["duration"] == pytest.approx(duration, abs=1e-3) and doc["source"] == str(long_file)
    words = [w for seg in doc["segments"] for w in seg["words"]]
    assert words, "the tiny model should recognise something in 40 s of speech"
    assert doc["text"].split() == [w["text"] for w in words]
    for a, b in zip(words, words[1:]):
        assert a["start"] <= a["end"] <= b["start"] + 1e-3
    assert all(0 <= w["start"] <= w["end"] <= duration + 1e-3 and 0 <= w["confidence"] <= 1 for w in words)

    srt = outputs["srt"]
    cues = list(SRT_CUE.finditer(srt))
    assert "".join(c.group(0) + "\n" for c in cues).rstrip("\n") + "\n" == srt  # nothing but cues
    assert [int(c.group(1)) for c in cues] == list(range(1, len(cues) + 1))
    times = [(_seconds(*c.groups()[1:5]), _seconds(*c.groups()[5:9])) for c in cues]
    assert all(s < e <= duration + 1e-3 for s, e in times) and all(a[1] <= b[0] for a, b in zip(times, times[1:]))
    srt_lib = pytest.importorskip("srt")
    parsed = list(srt_lib.parse(srt))
    assert len(parsed) == len(cues)
    assert " ".join(" ".join(c.content.split()) for c in parsed) == " ".join(w["text"] for w in words)
    assert outputs["vtt"].startswith("WEBVTT\n\n") and "-->" in outputs["vtt"]


def _write_truncated(path, wave):
    soundfile.write(path, wave, 16000, format="WAV", subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # the header still promises every sample


def test_silence_noise_8khz_truncated_and_short_files_stop_nothing(model_dir, long_file, tmp_path):
    rng = np.random.default_rng(0)
    silence = tmp_path / "silence.wav"
    soundfile.write(silence, np.zeros(180 * 16000, dtype=np.float32), 16000)  # three minutes
    noise = tmp_path / "noise.wav"
    soundfile.write(noise, (0.3 * rng.standard_normal(20 * 16000)).astype(np.float32), 16000)
    narrow = tmp_path / "narrow.wav"
    speech8k = soundfile.read(str(long_file), dtype="float32")[0][: 10 * 16000: 2]
    soundfile.write(narrow, speech8k, 8000)
    truncated = tmp_path / "truncated.wav"
    _write_truncated(truncated, soundfile.read(str(long_file), dtype="float32")[0][: 5 * 16000])
    damaged = tmp_path / "damaged.flac"
    soundfile.write(damaged, soundfile.read(str(long_file), dtype="float32")[0][: 5 * 16000], 16000)
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
    short = tmp_path / "short.wav"
    soundfile.write(short, np.zeros(300, dtype=np.float32), 16000)  # 19 ms
    missing = tmp_path / "missing.wav"
    files = [silence, noise, narrow, truncated, damaged, short, missing, long_file]
    proc = _transcribe(model_dir, "--decoding", "beam", "--beam_size", "3", *files)
    assert proc.returncode == 1, proc.stderr[-3000:]
    transcribed = [line.split("\t")[0] for line in proc.stdout.splitlines()]
    assert transcribed == [str(f) for f in files if f != missing]
    assert f"{narrow}: note: 8000 Hz audio resampled to the model's 16000 Hz" in proc.stderr
    assert re.search(rf"{re.escape(str(truncated))}: note: truncated: 800\d\d bytes of the audio its header announces", proc.stderr)
    assert f"{damaged}: note: damaged or truncated: decoding stopped after" in proc.stderr
    assert f"{short}: warning: too short" in proc.stderr
    assert f"{missing}: error: no such file" in proc.stderr and "1 of 8 files failed" in proc.stderr


def test_option_errors_are_named(model_dir, long_file):
    proc = _transcribe(model_dir, "--decoding", "joint", "--output_format", "srt", long_file)
    assert proc.returncode == 2 and "needs word timings" in proc.stderr
    proc = _transcribe(model_dir, "--output_format", "vtt", long_file, Path(long_file).with_name("other.flac"))
    assert proc.returncode == 2 and "needs --output_dir" in proc.stderr
    proc = _transcribe(model_dir, long_file, long_file)  # one key twice: two results of one id
    assert proc.returncode == 2 and f"its key '{long_file}' is also that of {long_file}" in proc.stderr
    proc = _transcribe(model_dir, "--summary_window_seconds", "-1", long_file)
    assert proc.returncode == 2 and "summary_window_seconds" in proc.stderr
