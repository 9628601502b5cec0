"""The recipe's data helpers: pyscripts/data_dir.py (Kaldi data directories) and
pyscripts/format_audio.py (stage 3: SPHERE/wav/flac -> mono 16-bit files, speed perturbation)."""

import doctest
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from recipe_tools import PYSCRIPTS, load_pyscript

ROOT = Path(__file__).resolve().parents[2]
AN4 = ROOT.parent / "shared" / "data" / "an4"
dd = load_pyscript("data_dir")
fa = load_pyscript("format_audio")


# ----------------------------------------------------------------------------- helpers


def write_sphere(path, samples, rate, order="01", coding="pcm"):
    """A NIST SPHERE file of int16 ``samples`` (frames, channels) with a 1024-byte header."""
    samples = np.asarray(samples, dtype=np.int16).reshape(len(samples), -1)
    fields = [f"sample_count -i {samples.shape[0]}", f"sample_rate -i {rate}",
              f"channel_count -i {samples.shape[1]}", "sample_n_bytes -i 2",
              f"sample_byte_format -s2 {order}", f"sample_coding -s{len(coding)} {coding}",
              "sample_sig_bits -i 16", "end_head"]
    header = ("NIST_1A\n   1024\n" + "\n".join(fields) + "\n").encode("ascii").ljust(1024, b" ")
    path.write_bytes(header + samples.astype("<i2" if order == "01" else ">i2").tobytes())
    return path


def tone(freq, rate, seconds, amp=8000):
    n = np.arange(int(rate * seconds))
    return np.round(amp * np.sin(2 * np.pi * freq * n / rate)).astype(np.int16)


def peak_hz(samples, rate):
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(len(samples))))
    return np.argmax(spectrum) * rate / len(samples)


def make_dir(d, utts):
    """A data dir of ``{utt: (audio, text, speaker)}``; returns its path."""
    d.mkdir(parents=True, exist_ok=True)
    for name, i in (("wav.scp", 0), ("text", 1), ("utt2spk", 2)):
        (d / name).write_text("".join(f"{u} {utts[u][i]}".rstrip() + "\n" for u in sorted(utts)))
    spk = {}
    for u in sorted(utts):
        spk.setdefault(utts[u][2], []).append(u)
    (d / "spk2utt").write_text("".join(f"{s} {' '.join(us)}\n" for s, us in sorted(spk.items())))
    return d


def small_dir(d, n=4):
    return make_dir(d, {f"s{i % 2}-u{i}": (f"/a/u{i}.flac", f"WORD {i}", f"s{i % 2}") for i in range(n)})


def lines(path):
    return Path(path).read_text().splitlines()


def fmt(data, out, **kw):
    """Run format_audio.py's main in this process; return its exit code."""
    args = ["--data", str(data), "--out", str(out)]
    for k, v in kw.items():
        args += [f"--{k}", str(v)]
    return fa.main(args)


def formatted(out, utt):
    """The int16 samples and rate of ``utt`` as listed in ``out/wav.scp``."""
    path = dict(line.split(" ", 1) for line in lines(out / "wav.scp"))[utt]
    samples, rate = soundfile.read(path, dtype="int16")
    return samples, rate


def test_doctests():
    assert doctest.testmod(dd).failed == 0


# ----------------------------------------------------------------------------- SPHERE reader


@pytest.mark.parametrize("order", ["01", "10"])
@pytest.mark.parametrize("channels", [1, 2])
def test_sphere_round_trip(tmp_path, order, channels):
    rng = np.random.default_rng(0)
    samples = rng.integers(-32768, 32767, size=(1000, channels), dtype=np.int16)
    path = write_sphere(tmp_path / "x.sph", samples, 8000, order)
    got, rate = fa.read_audio(path)
    assert rate == 8000 and got.shape == (1000, channels)
    np.testing.assert_array_equal(np.round(got * 32768).astype(np.int16), samples)


def test_sphere_ulaw_codes():
    table = fa._ulaw_table()
    assert table[0xFF] == 0 and table[0x80] == 32124 and table[0x00] == -32124


def test_sphere_shorten_refused(tmp_path):
    path = write_sphere(tmp_path / "x.sph", np.zeros(10), 16000, coding="pcm,embedded-shorten-v2.00")
    with pytest.raises(fa.AudioError, match="shorten"):
        fa.read_audio(path)


# ----------------------------------------------------------------------------- format_audio.py


def test_wav_flac_sphere_identical(tmp_path):
    samples = tone(300, 16000, 0.25)
    soundfile.write(tmp_path / "a.wav", samples, 16000, subtype="PCM_16")
    soundfile.write(tmp_path / "b.flac", samples, 16000, subtype="PCM_16")
    write_sphere(tmp_path / "c.sph", samples, 16000, order="10")
    src = make_dir(tmp_path / "src", {u: (tmp_path / f, "HI", "s") for u, f in
                                      (("s-a", "a.wav"), ("s-b", "b.flac"), ("s-c", "c.sph"))})
    out = tmp_path / "out"
    assert fmt(src, out, audio_format="wav", nj=2) == 0  # in-process, spawned workers
    for utt in ("s-a", "s-b", "s-c"):
        got, rate = formatted(out, utt)
        assert rate == 16000
        np.testing.assert_array_equal(got, samples)
    assert all(Path(line.split()[1]).is_absolute() for line in lines(out / "wav.scp"))
    assert lines(out / "utt2num_samples") == [f"{u} {len(samples)}" for u in ("s-a", "s-b", "s-c")]
    assert lines(out / "text") == lines(src / "text") and lines(out / "spk2utt") == ["s s-a s-b s-c"]
    assert dd.main(["validate", str(out)]) == 0


def test_speed_perturbation(tmp_path):
    samples = tone(1000, 16000, 0.5)
    soundfile.write(tmp_path / "a.flac", samples, 16000)
    src = make_dir(tmp_path / "src", {"s-a": (tmp_path / "a.flac", "HI", "s")})
    dd.speed_perturb(src, tmp_path / "sp", [0.9, 1.0, 1.1])
    out = tmp_path / "out"
    assert fmt(tmp_path / "sp", out) == 0
    for factor, utt in ((0.9, "sp0.9-s-a"), (1.0, "s-a"), (1.1, "sp1.1-s-a")):
        got, rate = formatted(out, utt)
        assert abs(len(got) - len(samples) / factor) <= 1
        assert abs(peak_hz(got, rate) - 1000 * factor) < 10
    assert not (out / "utt2speed").exists()
    assert dd.main(["validate", str(out)]) == 0


def test_resample_and_stereo_downmix(tmp_path):
    low = tone(440, 8000, 0.5)
    soundfile.write(tmp_path / "low.wav", low, 8000, subtype="PCM_16")
    left, right = tone(500, 16000, 0.1) // 2 * 2, tone(700, 16000, 0.1) // 2 * 2
    soundfile.write(tmp_path / "st.wav", np.stack([left, right], 1), 16000, subtype="PCM_16")
    src = make_dir(tmp_path / "src", {"s-low": (tmp_path / "low.wav", "A", "s"),
                                      "s-st": (tmp_path / "st.wav", "B", "s")})
    out = tmp_path / "out"
    assert fmt(src, out) == 0
    got, rate = formatted(out, "s-low")
    assert rate == 16000 and len(got) == 2 * len(low) and abs(peak_hz(got, rate) - 440) < 5
    got, _ = formatted(out, "s-st")
    np.testing.assert_array_equal(got, (left.astype(int) + right) // 2)


def test_pipe_entry_refused(tmp_path, capsys):
    src = make_dir(tmp_path / "src", {"s-a": ("sph2pipe -f wav /x/a.sph |", "HI", "s")})
    assert fmt(src, tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert f"{src}/wav.scp: s-a" in err and "pipes are not supported" in err


def test_unreadable_file_keeps_formatted_and_rerun_skips(tmp_path, capsys):
    soundfile.write(tmp_path / "a.flac", tone(300, 16000, 0.1), 16000)
    utts = {"s-a": (tmp_path / "a.flac", "HI", "s")}
    out = tmp_path / "out"
    assert fmt(make_dir(tmp_path / "src1", utts), out) == 0
    done = out / "data" / "s-a.flac"
    mtime = done.stat().st_mtime_ns
    (out / "wav.scp").unlink()
    utts["s-b"] = (tmp_path / "missing.flac", "HO", "s")
    assert fmt(make_dir(tmp_path / "src2", utts), out) == 1
    err = capsys.readouterr().err
    assert f"format_audio.py: s-b: cannot read {tmp_path / 'missing.flac'}:" in err
    assert done.stat().st_mtime_ns == mtime and not (out / "wav.scp").exists()
    # Repaired, rerun in parallel through the command line: the finished file is not rewritten.
    soundfile.write(tmp_path / "missing.flac", tone(400, 16000, 0.1), 16000)
    proc = subprocess.run([sys.executable, str(PYSCRIPTS / "format_audio.py"), "--data",
                           str(tmp_path / "src2"), "--out", str(out), "--nj", "2"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "2/2 utterances" in proc.stderr and "1 already formatted" in proc.stderr
    assert done.stat().st_mtime_ns == mtime
    assert lines(out / "utt2num_samples") == ["s-a 1600", "s-b 1600"]


@pytest.mark.needs_data("an4", "wav", "an4_clstk")
def test_real_an4_flac(tmp_path):
    audio = AN4 / "wav" / "an4_clstk" / "fash" / "an251-fash-b.flac"
    src = make_dir(tmp_path / "src", {"fash-an251-b": (audio, "YES", "fash")})
    dd.speed_perturb(src, tmp_path / "sp", [1.1])
    assert fmt(tmp_path / "sp", tmp_path / "out") == 0
    got, _ = formatted(tmp_path / "out", "sp1.1-fash-an251-b")
    assert abs(len(got) - soundfile.info(str(audio)).frames / 1.1) <= 1


# ----------------------------------------------------------------------------- validate


def _missing(d):
    (d / "text").unlink()


def _unsorted(d):
    (d / "utt2spk").write_text("".join(reversed((d / "utt2spk").read_text().splitlines(True))))


def _duplicate(d):
    t = lines(d / "text")
    (d / "text").write_text("\n".join(t[:2] + [t[1]] + t[2:]) + "\n")


def _text_without_audio(d):
    (d / "wav.scp").write_text("\n".join(lines(d / "wav.scp")[1:]) + "\n")


def _audio_without_text(d):
    (d / "text").write_text("\n".join(lines(d / "text")[1:]) + "\n")


def _empty_transcript(d):
    (d / "text").write_text("\n".join(["s0-u0"] + lines(d / "text")[1:]) + "\n")


def _bad_spk2utt(d):
    (d / "spk2utt").write_text("s0 s0-u0\ns1 s1-u1 s1-u3\n")


@pytest.mark.parametrize("defect, expected", [
    (_missing, "/text: missing"),
    (_unsorted, "/utt2spk:2: key 's1-u1' is not sorted"),
    (_duplicate, "/text:3: duplicate key 's0-u2'"),
    (_text_without_audio, "have transcript in {d}/text but no audio in {d}/wav.scp: s0-u0"),
    (_audio_without_text, "have audio in {d}/wav.scp but no transcript in {d}/text: s0-u0"),
    (_empty_transcript, "/text:1: s0-u0: empty transcript"),
    (_bad_spk2utt, "/spk2utt:1: speaker 's0'"),
])
def test_validate_catches(tmp_path, capsys, defect, expected):
    d = small_dir(tmp_path / "d")
    assert dd.main(["validate", str(d)]) == 0
    assert f"{d}: 4 utterances, 2 speakers: ok" in capsys.readouterr().out
    defect(d)
    assert dd.main(["validate", str(d)]) == 1
    assert expected.format(d=d) in capsys.readouterr().err


# ----------------------------------------------------------------------------- transformations


def test_combine(tmp_path, capsys):
    a = make_dir(tmp_path / "a", {"s1-x": ("/x.flac", "X", "s1"), "s2-z": ("/z.flac", "Z", "s2")})
    b = make_dir(tmp_path / "b", {"s1-y": ("/y.flac", "Y", "s1"), "s2-z": ("/z.flac", "Z", "s2")})
    assert dd.main(["combine", str(tmp_path / "c"), str(b), str(a)]) == 0
    assert lines(tmp_path / "c" / "spk2utt") == ["s1 s1-x s1-y", "s2 s2-z"]
    assert dd.main(["validate", str(tmp_path / "c")]) == 0
    (b / "text").write_text("s1-y Y\ns2-z OTHER\n")
    assert dd.main(["combine", str(tmp_path / "c2"), str(a), str(b)]) == 1
    assert "utterance 's2-z' is also in" in capsys.readouterr().err


def test_speed_perturb_dir(tmp_path, capsys):
    d = make_dir(tmp_path / "d", {"fash-an251-b": ("/a.flac", "YES", "fash")})
    (d / "utt2num_samples").write_text("fash-an251-b 16000\n")
    assert dd.main(["speed_perturb", str(d), str(tmp_path / "sp"), "--factors", "0.9", "1.0", "1.1"]) == 0
    sp = tmp_path / "sp"
    assert lines(sp / "utt2speed") == ["fash-an251-b 1", "sp0.9-fash-an251-b 0.9", "sp1.1-fash-an251-b 1.1"]
    assert lines(sp / "utt2spk") == ["fash-an251-b fash", "sp0.9-fash-an251-b sp0.9-fash",
                                     "sp1.1-fash-an251-b sp1.1-fash"]
    assert {line.split()[1] for line in lines(sp / "wav.scp")} == {"/a.flac"}
    assert not (sp / "utt2num_samples").exists()
    assert dd.main(["validate", str(sp)]) == 0
    assert dd.main(["speed_perturb", str(d), str(tmp_path / "x"), "--factors", "0", "1"]) == 1
    assert "expected positive speed factors" in capsys.readouterr().err


def test_filter(tmp_path, capsys):
    d = make_dir(tmp_path / "d", {"s-a": ("/a.flac", "A", "s"), "s-b": ("/b.flac", "B", "s"),
                                  "s-c": ("/c.flac", "", "s"), "s-d": ("/d.flac", "D", "s")})
    assert dd.main(["filter", str(d), str(tmp_path / "f"), "--fs", "16000"]) == 1
    assert f"{d}/utt2num_samples: missing" in capsys.readouterr().err
    (d / "utt2num_samples").write_text("s-a 800\ns-b 16000\ns-c 16000\ns-d 400000\n")
    assert dd.main(["filter", str(d), str(tmp_path / "f"), "--fs", "16000", "--min_seconds", "0.1",
                    "--max_seconds", "20"]) == 0
    assert ("removed 3 (1 shorter than 0.1 s, 1 longer than 20.0 s, 1 with an empty transcript)"
            in capsys.readouterr().out)
    assert lines(tmp_path / "f" / "wav.scp") == ["s-b /b.flac"]
    assert dd.main(["validate", str(tmp_path / "f")]) == 0


def test_split_writes_the_key_lists_of_parallel_jobs(tmp_path, capsys):
    d = small_dir(tmp_path / "d", 7)
    out = tmp_path / "logdir" / "train"
    assert dd.main(["split", str(d / "wav.scp"), str(out), "--nj", "3"]) == 0
    parts = [lines(out / f"keys.{k}.scp") for k in (1, 2, 3)]
    assert [len(p) for p in parts] == [3, 2, 2]
    assert sum(parts, []) == [line.split()[0] for line in lines(d / "wav.scp")]  # every key once, in order
    # any key file: an unsorted text with an empty transcript; a smaller split leaves no stale list
    (tmp_path / "text").write_text("lm_10 B\nlm_9\nlm_1 A\n")
    assert dd.main(["split", str(tmp_path / "text"), str(out), "--nj", "2"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["keys.1.scp", "keys.2.scp"]
    assert [lines(out / f"keys.{k}.scp") for k in (1, 2)] == [["lm_10", "lm_9"], ["lm_1"]]
    capsys.readouterr()
    assert dd.main(["split", str(d / "wav.scp"), str(out), "--nj", "8"]) == 1
    assert "cannot split 7 keys into --nj 8 parts" in capsys.readouterr().err
    (tmp_path / "text").write_text("a 1\nb 2\na 3\n")
    assert dd.main(["split", str(tmp_path / "text"), str(out), "--nj", "1"]) == 1
    assert "duplicate key 'a'" in capsys.readouterr().err
    assert dd.split_keys(list("abcdefg"), 7) == [[c] for c in "abcdefg"]
