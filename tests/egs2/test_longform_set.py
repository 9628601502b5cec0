"""The AN4 long-form evaluation set (egs2/an4/asr1/local/make_longform.py) and its scorer
(local/score_longform.py): recordings that are exactly the test utterances laid end to end, a
reference timeline exact to the sample, WER/CER and timestamp errors, and the error paths."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from recipe_tools import ROOT

AN4 = ROOT.parent / "shared" / "data" / "an4"
LOCAL = ROOT / "egs2" / "an4" / "asr1" / "local"
pytestmark = pytest.mark.needs_data("an4", "etc")  # conftest: skipped with the reason, failed in CI

SPEAKERS = ("fcaw", "fjlp")


def load_local(name):
    """Import ``egs2/an4/asr1/local/<name>.py`` (a script, not a package)."""
    key = f"_an4_local_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, LOCAL / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


make = load_local("make_longform")
scorer = load_local("score_longform")


def make_longform(*args):
    """Run the script as the recipe does (from the recipe directory); return the process."""
    return subprocess.run([sys.executable, "local/make_longform.py", *map(str, args)], cwd=LOCAL.parent,
                          capture_output=True, text=True, timeout=120)


def an4_transcripts():
    """AN4 file id -> transcript of the test part, read independently of the script."""
    out = {}
    for line in (AN4 / "etc" / "an4_test.transcription").read_text().splitlines():
        words, _, source = line.rpartition("(")
        out[source.strip().rstrip(")")] = " ".join(w for w in words.split() if w not in ("<s>", "</s>"))
    return out


def write_sphere(path, samples, rate):
    """A big-endian 16-bit NIST SPHERE file, as in the official AN4 archive."""
    fields = ["NIST_1A", "   1024", f"sample_count -i {len(samples)}", f"sample_rate -i {rate}", "channel_count -i 1",
              "sample_n_bytes -i 2", "sample_byte_format -s2 10", "sample_coding -s3 pcm", "end_head"]
    header = ("\n".join(fields) + "\n").encode("ascii").ljust(1024, b" ")
    path.write_bytes(header + np.asarray(samples).astype(">i2").tobytes())


def mini_an4(root: Path, per_speaker=3, speakers=SPEAKERS) -> Path:
    """The first utterances of two AN4 test speakers in AN4's layout; the second file of each
    speaker as .wav, the third as .sph (the others stay .flac)."""
    lines = [line for line in (AN4 / "etc" / "an4_test.fileids").read_text().split()
             if line.split("/")[1] in speakers]
    keep = [fid for spk in speakers for fid in [f for f in lines if f.split("/")[1] == spk][:per_speaker]]
    texts = an4_transcripts()
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "an4_test.fileids").write_text("".join(f"{fid}\n" for fid in keep))
    (root / "etc" / "an4_test.transcription").write_text(
        "".join(f"{texts[Path(fid).name]} ({Path(fid).name})\n" for fid in keep))
    for i, fid in enumerate(keep):
        dest = root / "wav" / f"{fid}.flac"
        dest.parent.mkdir(parents=True, exist_ok=True)
        samples, rate = soundfile.read(AN4 / "wav" / f"{fid}.flac", dtype="int16")
        if i % per_speaker == 1:
            soundfile.write(dest.with_suffix(".wav"), samples, rate, subtype="PCM_16")
        elif i % per_speaker == 2:
            write_sphere(dest.with_suffix(".sph"), samples, rate)
        else:
            dest.write_bytes((AN4 / "wav" / f"{fid}.flac").read_bytes())
    return root


def read_set(out: Path):
    ref = json.loads((out / "reference.json").read_text())
    return ref, {r["id"]: r for r in ref["recordings"]}


def original(utt):
    """The samples of an utterance's original AN4 file (FLAC, whatever the set was made from)."""
    samples, _ = soundfile.read(AN4 / "wav" / "an4test_clstk" / utt["speaker"] / f"{utt['source']}.flac",
                                dtype="int16")
    return samples


def spread(words, start, end):
    """Word entries sharing [start, end] evenly, one after the other."""
    step = (end - start) / len(words)
    return [{"text": w, "start": start + i * step, "end": start + (i + 1) * step, "confidence": 1.0}
            for i, w in enumerate(words)]


def perfect_hyp(rec):
    """A hypothesis with the reference words, each utterance's words spread over its detected speech."""
    segments = [{"start": u["start"], "end": u["end"], "text": u["text"],
                 "words": spread(u["text"].split(), u["speech_start"], u["speech_end"])} for u in rec["utterances"]]
    return {"source": rec["path"], "duration": rec["duration"], "text": rec["text"], "segments": segments}


@pytest.fixture(scope="module")
def longform(tmp_path_factory):
    """The set of two real AN4 speakers, no gap."""
    out = tmp_path_factory.mktemp("longform") / "set"
    proc = make_longform(AN4, out, "--speakers", ",".join(SPEAKERS))
    assert proc.returncode == 0, proc.stderr
    return out, proc


# ---------------------------------------------------------------- the set


def test_files_text_and_progress(longform):
    out, proc = longform
    ref, recs = read_set(out)
    assert sorted(recs) == ["all", *SPEAKERS]
    scp = dict(line.split(" ", 1) for line in (out / "wav.scp").read_text().splitlines())
    assert list(scp) == sorted(scp) == ["all", *SPEAKERS]
    for rec_id, path in scp.items():
        assert Path(path).is_absolute() and Path(path) == out.absolute() / f"{rec_id}.flac"
        assert soundfile.info(path).samplerate == 16000 and soundfile.info(path).channels == 1
    texts = an4_transcripts()
    by_speaker = {s: [texts[f] for f in sorted(texts) if f.split("-")[1] == s] for s in SPEAKERS}
    assert len(by_speaker["fcaw"]) == 13
    text = dict(line.split(" ", 1) for line in (out / "text").read_text().splitlines())
    for spk in SPEAKERS:
        assert text[spk] == " ".join(by_speaker[spk])
    assert text["all"] == text["fcaw"] + " " + text["fjlp"]
    # one progress line per recording, then the summary
    assert [line.split(":")[0] for line in proc.stdout.splitlines()[:3]] == [scp[r] for r in ("all", *SPEAKERS)]
    assert "3 recordings written" in proc.stdout.splitlines()[-1]
    assert ref["skipped"] == [] and ref["sample_rate"] == 16000
    assert not list(out.parent.glob(".set.*")), "temporary directories left behind"


def test_recordings_are_the_utterances_end_to_end(longform):
    out, _ = longform
    _, recs = read_set(out)
    waves = {}
    for rec_id, rec in recs.items():
        wave, rate = soundfile.read(rec["path"], dtype="int16")
        waves[rec_id] = wave
        utts = rec["utterances"]
        assert [u["source"] for u in utts] == sorted(u["source"] for u in utts) or rec_id == "all"
        originals = [original(u) for u in utts]
        assert len(wave) == rec["num_samples"] == sum(len(o) for o in originals)
        assert rec["duration"] == len(wave) / rate
        position = 0
        for u, o in zip(utts, originals):
            assert u["start_sample"] == position, u  # the boundaries tile the recording
            assert u["end_sample"] - u["start_sample"] == len(o)
            assert np.array_equal(wave[u["start_sample"]:u["end_sample"]], o), u["id"]
            assert u["start"] == u["start_sample"] / rate and u["end"] == u["end_sample"] / rate
            assert u["start_sample"] <= u["speech_start_sample"] < u["speech_end_sample"] <= u["end_sample"]
            assert u["speech_start"] == u["speech_start_sample"] / rate
            assert u["id"] == "{1}-{0}-{2}".format(*u["source"].split("-"))
            position = u["end_sample"]
        assert position == len(wave)
    assert np.array_equal(waves["all"], np.concatenate([waves[s] for s in SPEAKERS]))
    assert [u["speaker"] for u in recs["all"]["utterances"]] == ["fcaw"] * 13 + ["fjlp"] * 13


def test_speech_detector_threshold_is_35_db_below_the_peak():
    rate = 1000  # 10 ms frames of 10 samples
    x = np.zeros(205)
    x[100:110] = 10000  # the peak frame
    x[50:60] = 10000 * 10 ** (-34 / 20)  # 34 dB down: speech
    x[150:160] = 10000 * 10 ** (-36 / 20)  # 36 dB down: not speech
    x[200:] = 10000  # a last, shorter frame (5 samples) counts too
    assert make.speech_bounds(np.round(x).astype(np.int16), rate) == (50, 205)
    x[200:] = 0
    assert make.speech_bounds(np.round(x).astype(np.int16), rate) == (50, 110)
    assert make.speech_bounds(np.zeros(30, dtype=np.int16), rate) is None


def test_gaps_of_zeros_between_utterances(tmp_path):
    out = tmp_path / "gap"
    proc = make_longform(AN4, out, "--speakers", "fjlp", "--gap", "0.25")
    assert proc.returncode == 0, proc.stderr
    _, recs = read_set(out)
    rec = recs["fjlp"]
    wave, rate = soundfile.read(rec["path"], dtype="int16")
    utts = rec["utterances"]
    assert len(wave) == sum(len(original(u)) for u in utts) + 4000 * (len(utts) - 1)
    assert utts[0]["start_sample"] == 0 and utts[-1]["end_sample"] == len(wave)
    for a, b in zip(utts, utts[1:]):
        assert b["start_sample"] - a["end_sample"] == 4000
        assert not wave[a["end_sample"]:b["start_sample"]].any()
    assert all(np.array_equal(wave[u["start_sample"]:u["end_sample"]], original(u)) for u in utts)

    def random_gaps(seed):
        d = tmp_path / f"seed{seed}"
        assert make_longform(AN4, d, "--speakers", "fjlp", "--gap", "0.1:0.3", "--seed", seed).returncode == 0
        u = read_set(d)[1]["fjlp"]["utterances"]
        return [b["start_sample"] - a["end_sample"] for a, b in zip(u, u[1:])]

    gaps = random_gaps(3)
    assert all(1600 <= g <= 4800 for g in gaps) and len(set(gaps)) > 1
    assert random_gaps(3) == gaps and random_gaps(4) != gaps


def test_audio_formats_and_rerun_replaces_the_set(tmp_path):
    an4 = mini_an4(tmp_path / "an4")
    assert sorted(p.suffix for p in (an4 / "wav").rglob("*.*")) == [".flac"] * 2 + [".sph"] * 2 + [".wav"] * 2
    out = tmp_path / "set"
    assert make_longform(an4, out).returncode == 0
    _, recs = read_set(out)
    wave, _ = soundfile.read(recs["all"]["path"], dtype="int16")
    assert all(np.array_equal(wave[u["start_sample"]:u["end_sample"]], original(u))
               for u in recs["all"]["utterances"])
    assert len(recs["all"]["utterances"]) == 6
    # a re-run with one speaker: the earlier set is replaced as a whole, nothing stale remains
    proc = make_longform(an4, out, "--speakers", "fjlp")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["all.flac", "fjlp.flac", "reference.json", "text", "wav.scp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["an4", "set"]
    # a folder that is not such a set is never replaced
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    proc = make_longform(an4, precious)
    assert proc.returncode == 1 and "refusing to replace" in proc.stderr
    assert sorted(p.name for p in precious.iterdir()) == ["notes.txt"]


# ---------------------------------------------------------------- error paths


def test_not_an_an4_tree(tmp_path):
    (tmp_path / "notan4").mkdir()
    proc = make_longform(tmp_path / "notan4", tmp_path / "out")
    assert proc.returncode == 1
    assert "not an AN4 tree" in proc.stderr and "an4_test.transcription" in proc.stderr
    assert not (tmp_path / "out").exists()
    proc = make_longform(AN4, tmp_path / "out", "--speakers", "nobody")
    assert proc.returncode == 1 and "nobody" in proc.stderr and "fcaw" in proc.stderr


def test_missing_audio_skips_its_speaker_only(tmp_path):
    an4 = mini_an4(tmp_path / "an4")
    victim = next((an4 / "wav" / "an4test_clstk" / "fjlp").glob("*.wav"))
    victim.unlink()
    out = tmp_path / "set"
    proc = make_longform(an4, out)
    assert proc.returncode == 1
    assert victim.stem in proc.stderr and "fjlp" in proc.stderr
    assert sorted(p.name for p in out.glob("*.flac")) == ["fcaw.flac"]
    ref, recs = read_set(out)
    assert list(recs) == ["fcaw"] and [s["recording"] for s in ref["skipped"]] == ["fjlp", "all"]
    assert (out / "wav.scp").read_text().split()[0] == "fcaw"
    # an unreadable file: named, its speaker skipped the same way
    victim.with_suffix(".flac").write_bytes(b"not audio at all")
    proc = make_longform(an4, out)
    assert proc.returncode == 1 and victim.stem in proc.stderr and "cannot be read" in proc.stderr
    assert list(read_set(out)[1]) == ["fcaw"]


def test_empty_transcription_line(tmp_path):
    an4 = mini_an4(tmp_path / "an4")
    path = an4 / "etc" / "an4_test.transcription"
    lines = path.read_text().splitlines()
    lines[1] = "<s> </s> " + lines[1][lines[1].index("("):]
    path.write_text("\n".join(lines) + "\n")
    proc = make_longform(an4, tmp_path / "set")
    assert proc.returncode == 1
    assert f"{path}:2: empty transcription" in proc.stderr
    assert not (tmp_path / "set").exists()


# ---------------------------------------------------------------- the scorer


def test_perfect_hypothesis_scores_zero(longform):
    out, _ = longform
    _, recs = read_set(out)
    result = scorer.score(out, {rec_id: perfect_hyp(rec) for rec_id, rec in recs.items()})
    assert result["missing"] == []
    for rec_id, entry in result["recordings"].items():
        assert entry["wer"]["errors"] == 0 and entry["wer"]["rate"] == 0.0
        assert entry["wer"]["ref"] == len(recs[rec_id]["text"].split())
        assert entry["cer"]["rate"] == 0.0 and entry["cer"]["ref"] == len(recs[rec_id]["text"].replace(" ", ""))
    timing = result["totals"]["speaker"]["timing"]
    assert timing["utterances"] == 26 and timing["no_words"] == 0 and timing["unassigned_words"] == 0
    for side in ("start", "end", "both"):
        assert timing["speech"][side]["median"] == timing["speech"][side]["p90"] == 0.0
    assert timing["speech"]["both"]["count"] == 52
    # against the utterance boundaries: the silences around the detected speech
    utts = [u for s in SPEAKERS for u in recs[s]["utterances"]]
    leading = [u["speech_start"] - u["start"] for u in utts]
    assert timing["utterance"]["start"]["median"] == pytest.approx(np.median(leading))
    assert timing["utterance"]["start"]["p90"] == pytest.approx(np.percentile(leading, 90))
    for side in ("start", "end", "both"):  # the same utterances, at other places in the recording
        for stat in ("count", "median", "p90"):
            assert result["totals"]["all"]["timing"]["utterance"][side][stat] == pytest.approx(
                timing["utterance"][side][stat])


def test_one_substitution_and_one_deletion(longform, tmp_path):
    out, _ = longform
    _, recs = read_set(out)
    words = recs["fcaw"]["text"].split()  # 74 words
    hyp = words[:2] + ["ZZZ"] + words[3:10] + words[11:]
    (tmp_path / "hyp.txt").write_text(f"fcaw {' '.join(hyp)}\n")
    proc = subprocess.run([sys.executable, "local/score_longform.py", str(out), str(tmp_path / "hyp.txt"),
                           "--out_json", str(tmp_path / "scores.json")],
                          cwd=LOCAL.parent, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "scores.json").read_text())
    wer = result["recordings"]["fcaw"]["wer"]
    assert (wer["ref"], wer["sub"], wer["del"], wer["ins"]) == (74, 1, 1, 0)
    assert wer["rate"] == pytest.approx(200 / 74)
    assert result["recordings"]["fcaw"]["timing"] is None  # a text has no word times
    assert result["missing"] == ["all", "fjlp"] and "no hypothesis for 2 recording" in proc.stderr
    assert f"| fcaw | 74 | {200 / 74:.2f} | 1 | 1 | 0 |" in proc.stdout
    # CER: the deleted word's characters and the substituted word's
    cer = result["recordings"]["fcaw"]["cer"]
    assert cer["ref"] == len("".join(words)) and cer["errors"] > 0


def test_per_utterance_text_and_missing_words(longform, tmp_path):
    out, _ = longform
    _, recs = read_set(out)
    # a per-utterance decoding (ESPnet ids) fills every recording that holds the utterances
    lines = [f"{u['id']} {u['text']}" for s in SPEAKERS for u in recs[s]["utterances"]]
    (tmp_path / "text").write_text("\n".join(reversed(lines)) + "\n")
    result = scorer.score(out, tmp_path / "text")
    assert sorted(result["recordings"]) == ["all", *SPEAKERS]
    assert all(e["wer"]["errors"] == 0 for e in result["recordings"].values())
    # JSON files in a folder; an utterance without hypothesis words is counted, not dropped
    hyp = perfect_hyp(recs["fjlp"])
    hyp["segments"][4]["words"] = []
    folder = tmp_path / "json"
    folder.mkdir()
    (folder / "fjlp.json").write_text(json.dumps(hyp))
    timing = scorer.score(out, folder)["recordings"]["fjlp"]["timing"]
    assert timing["no_words"] == 1 and timing["utterances_without_words"] == [recs["fjlp"]["utterances"][4]["id"]]
    assert timing["speech"]["start"]["count"] == 12 and timing["utterances"] == 13
    # a word is assigned by its midpoint: utterance 6's last word ends 50 ms into utterance 7, whose first
    # word starts 50 ms before it; each stays with its own utterance
    hyp = perfect_hyp(recs["fjlp"])
    u6, u7 = recs["fjlp"]["utterances"][6:8]
    hyp["segments"][6]["words"] = spread(u6["text"].split(), u6["speech_start"], u7["start"] + 0.05)
    hyp["segments"][7]["words"] = spread(u7["text"].split(), u7["start"] - 0.05, u7["speech_end"])
    last, first = hyp["segments"][6]["words"][-1], hyp["segments"][7]["words"][0]
    assert last["end"] - last["start"] > 0.1 and first["end"] - first["start"] > 0.1
    per_utt = scorer.score(out, {"fjlp": hyp})["recordings"]["fjlp"]["timing"]["per_utterance"]
    assert per_utt[7]["words"] == len(u7["text"].split()) and per_utt[6]["words"] == len(u6["text"].split())
    assert per_utt[6]["utterance_end_error"] == pytest.approx(0.05)
    assert per_utt[7]["utterance_start_error"] == pytest.approx(0.05)
    assert per_utt[6]["speech_start_error"] == 0 and per_utt[7]["speech_end_error"] == 0
    # a word whose midpoint lies beyond the last utterance belongs to none
    hyp["segments"][-1]["words"].append({"text": "X", "start": 1000.0, "end": 1001.0})
    timing = scorer.score(out, {"fjlp": hyp})["recordings"]["fjlp"]["timing"]
    assert timing["unassigned_words"] == 1
    with pytest.raises(scorer.ScoreError, match="nobody"):
        scorer.score(out, {"nobody": "A B"})


def test_align_counts_agree_with_editdistance():
    import editdistance

    rng = np.random.default_rng(0)
    for _ in range(200):
        ref = list(rng.choice(list("abc"), rng.integers(0, 9)))
        hyp = list(rng.choice(list("abcd"), rng.integers(0, 9)))
        c = scorer.align_counts(ref, hyp)
        assert c["errors"] == editdistance.eval(ref, hyp)
        assert c["corr"] + c["sub"] + c["del"] == len(ref) and c["corr"] + c["sub"] + c["ins"] == len(hyp)


def test_doctests():
    import doctest

    for module in (make, scorer):
        failed, attempted = doctest.testmod(module)
        assert attempted and not failed, module.__name__


@pytest.mark.slow  # six decodings, each a transcribe process, twice (and the trained model)
def test_longform_script_decodes_scores_and_resumes(talkative_model, tmp_path):
    """local/longform.sh on two speakers' recordings with a tiny model: every decoding scored and summed
    up in longform.md; a second run redoes nothing."""
    recipe = tmp_path / "recipe"
    recipe.mkdir()
    for name in ("path.sh", "db.sh", "utils", "local", "pyscripts"):
        (recipe / name).symlink_to((LOCAL.parent / name).resolve())
    ref = json.loads((_set_for(tmp_path) / "reference.json").read_text())
    test = recipe / "data" / "test"
    test.mkdir(parents=True)
    utts = sorted((u["id"], u["audio"]) for r in ref["recordings"] if r["kind"] == "speaker" for u in r["utterances"])
    (test / "wav.scp").write_text("".join(f"{i} {a}\n" for i, a in utts))
    cmd = ["bash", "local/longform.sh", "--asr_exps", str(talkative_model), "--decodings", "greedy",
           "--windows", "2", "--segment_seconds", "4", "--set_dir", str(tmp_path / "set")]
    proc = subprocess.run(cmd, cwd=recipe, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    table = (talkative_model / "longform" / "longform.md").read_text()
    names = ("per_utterance_greedy", "one_pass_greedy", "segmented_greedy", "segmented_length_greedy",
             "one_pass_window2_greedy", "one_pass_pauses_greedy")
    for name in names:
        row = next(line for line in table.splitlines() if line.startswith(f"| {name} |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1] != "- / -"  # WER / CER of the speaker recordings
        if name != "per_utterance_greedy":  # timed decodings have timestamp errors
            assert cells[3] != "-" and cells[4] != "-"
    again = subprocess.run(cmd, cwd=recipe, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0 and again.stdout.count("already scored") == len(names)


def _set_for(tmp_path):
    out = tmp_path / "set"
    proc = make_longform(AN4, out, "--speakers", ",".join(SPEAKERS))
    assert proc.returncode == 0, proc.stderr
    return out
