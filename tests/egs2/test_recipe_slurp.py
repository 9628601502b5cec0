"""The SLURP recipe (egs2/slurp/asr1) without the corpus: data preparation on a tiny tree in SLURP's
layout (intent first, ESPnet's transcript normalisation, speakers, duplicates, the synthetic training
recordings), every broken input stopped with the file named and data/ left as it was, the download
path (checksum, extract once), the intent scoring, what run.sh hands to asr.sh, and the configs
built as ESPnet ASR models."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile
import yaml

from recipe_tools import ROOT, TEMPLATE, load_pyscript

RECIPE = ROOT / "egs2" / "slurp" / "asr1"
FS = 16000
REAL_MD5 = "9efc0f058ced47bf5131c7cb2cade513"  # slurp_real.tar.gz as Zenodo publishes it

# ----------------------------------------------------------------------------- a tiny SLURP


def record(slurp_id, sentence, scenario, action, files):
    return {"slurp_id": slurp_id, "sentence": sentence, "sentence_annotation": sentence,
            "intent": f"{scenario}_{action}", "action": action, "tokens": [], "scenario": scenario,
            "recordings": [{"file": f, "wer": 0.0, "ent_wer": None, "status": "correct"} for f in files],
            "entities": []}


RECORDS = {
    "train": [
        record(1, "wake me up at eight o'clock", "alarm", "set",
               ["audio-1000000001-headset.flac", "audio-1000000001.flac", "audio-1000000002.flac"]),
        record(2, "email john@example.com, please.", "email", "sendemail", ["audio-1000000003-headset.flac"]),
        record(3, "play  #tbt <unk> songs", "music", "query", ["audio--1000000004.flac"]),
    ],
    "devel": [
        # audio-1000000002.flac is also a training recording: kept in train only (as ESPnet)
        record(4, "what's the weather", "weather", "query",
               ["audio-2000000001-headset.flac", "audio-2000000001.flac", "audio-1000000002.flac"]),
    ],
    "test": [
        record(5, "set a timer for ten minutes", "alarm", "set",
               ["audio-3000000001.flac", "audio-3000000002-headset.flac"]),
    ],
    # the same file name as a real recording: another folder, another utterance
    "train_synthetic": [record(6, "Turn OFF the Lights.", "iot", "hue_lightoff", ["audio-1000000001.flac"])],
}
METADATA = {  # usrid of most real recordings; audio--1000000004 and 3000000002-headset are not listed
    "1": {"recordings": {"audio-1000000001-headset.flac": {"usrid": "FE-101"},
                         "audio-1000000001.flac": {"usrid": "FE-101"},
                         "audio-1000000002.flac": {"usrid": "MO-202"}}},
    "2": {"recordings": {"audio-1000000003-headset.flac": {"usrid": "UNK-303"}}},
    "4": {"recordings": {"audio-2000000001-headset.flac": {"usrid": "FO-404"},
                         "audio-2000000001.flac": {"usrid": "FO-404"}}},
    "5": {"recordings": {"audio-3000000001.flac": {"usrid": "ME-505"}}},
}
# the data directories local/data.sh must write: {set: {utterance: (speaker, text, audio folder, file)}}
ALARM = "alarm_set wake me up at eight o'clock"
EXPECTED = {
    "train": {
        "slurp_-1000000004_-1000000004": ("slurp_-1000000004", "music_query play hashtag tbt unknown songs",
                                          "slurp_real", "audio--1000000004.flac"),
        "slurp_FE-101_1000000001": ("slurp_FE-101", ALARM, "slurp_real", "audio-1000000001.flac"),
        "slurp_FE-101_1000000001-headset": ("slurp_FE-101", ALARM, "slurp_real", "audio-1000000001-headset.flac"),
        "slurp_MO-202_1000000002": ("slurp_MO-202", ALARM, "slurp_real", "audio-1000000002.flac"),
        "slurp_UNK-303_1000000003-headset": ("slurp_UNK-303", "email_sendemail email john at examplecom please",
                                             "slurp_real", "audio-1000000003-headset.flac"),
        "slurp_synthetic_1000000001": ("slurp_synthetic", "iot_hue_lightoff turn off the lights",
                                       "slurp_synth", "audio-1000000001.flac"),
    },
    "devel": {
        "slurp_FO-404_2000000001": ("slurp_FO-404", "weather_query what's the weather", "slurp_real",
                                    "audio-2000000001.flac"),
        "slurp_FO-404_2000000001-headset": ("slurp_FO-404", "weather_query what's the weather", "slurp_real",
                                            "audio-2000000001-headset.flac"),
    },
    "test": {
        "slurp_3000000002_3000000002-headset": ("slurp_3000000002", "alarm_set set a timer for ten minutes",
                                                "slurp_real", "audio-3000000002-headset.flac"),
        "slurp_ME-505_3000000001": ("slurp_ME-505", "alarm_set set a timer for ten minutes", "slurp_real",
                                    "audio-3000000001.flac"),
    },
}
REAL_ONLY_TRAIN = {u: v for u, v in EXPECTED["train"].items() if v[2] == "slurp_real"}


def write_jsonl(path: Path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def make_slurp(root: Path) -> Path:
    """The SLURP repository's layout with the audio extracted into audio/ (0.2 s of noise a file)."""
    text = root / "dataset" / "slurp"
    text.mkdir(parents=True)
    for name, records in RECORDS.items():
        write_jsonl(text / f"{name}.jsonl", records)
    (text / "metadata.json").write_text(json.dumps(METADATA, indent=1))
    rng = np.random.default_rng(0)
    for name, records in RECORDS.items():
        folder = root / "audio" / ("slurp_synth" if name == "train_synthetic" else "slurp_real")
        folder.mkdir(parents=True, exist_ok=True)
        for r in records:
            for rec in r["recordings"]:
                soundfile.write(folder / rec["file"], (0.1 * rng.standard_normal(FS // 5)).astype(np.float32),
                                FS, format="FLAC", subtype="PCM_16")
    return root


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return make_slurp(tmp_path_factory.mktemp("slurp_pristine"))


@pytest.fixture
def slurp(pristine, tmp_path):
    """A copy of the tiny SLURP that a test may break."""
    return Path(shutil.copytree(pristine, tmp_path / "SLURP"))


@pytest.fixture
def recipe(tmp_path):
    """A copy of the recipe with its own (relative) links to the template, which egs2/TEMPLATE of the
    copy points to."""
    (tmp_path / "egs2").mkdir()
    (tmp_path / "egs2" / "TEMPLATE").symlink_to(TEMPLATE.parent)
    out = tmp_path / "egs2" / "slurp" / "asr1"
    shutil.copytree(RECIPE, out, symlinks=True,
                    ignore=shutil.ignore_patterns("data", "dump", "exp", "downloads", "__pycache__"))
    return out


def env(slurp):
    environ = dict(os.environ)
    environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environ['PATH']}"
    environ["SLURP"] = str(slurp)
    return environ


def data_sh(recipe: Path, slurp, *args, check=True):
    proc = subprocess.run(["local/data.sh", *map(str, args)], cwd=recipe, capture_output=True, text=True,
                          env=env(slurp), timeout=120)
    if check:
        assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def table(path: Path) -> dict:
    lines = path.read_text().splitlines()
    keys = [line.split(" ", 1)[0] for line in lines]
    assert keys == sorted(keys) and len(set(keys)) == len(keys), path  # unique, in byte order
    return dict(line.split(" ", 1) for line in lines)


def check_data_dir(d: Path, expected: dict, slurp: Path):
    assert table(d / "text") == {u: t for u, (_, t, _, _) in expected.items()}
    assert table(d / "utt2spk") == {u: s for u, (s, _, _, _) in expected.items()}
    assert table(d / "wav.scp") == {u: str((slurp / "audio" / folder / f).resolve())
                                    for u, (_, _, folder, f) in expected.items()}
    assert all(u.startswith(s + "_") for u, (s, _, _, _) in expected.items())  # speaker first
    load_pyscript("data_dir").validate(d)  # asr.sh stage 1's checks (spk2utt from utt2spk among them)


def snapshot(data: Path) -> dict:
    return {p.relative_to(data): p.read_bytes() for p in data.rglob("*") if p.is_file()}


# ----------------------------------------------------------------------------- local/data.sh


def test_data_sh_prepares_intent_first_data_dirs(recipe, slurp):
    proc = data_sh(recipe, slurp)
    data = recipe / "data"
    assert sorted(p.name for p in data.iterdir()) == ["devel", "test", "train"]
    for name, expected in EXPECTED.items():
        check_data_dir(data / name, expected, slurp)
    assert "data/train: 6 utterances, 5 speakers, 4 intents" in proc.stdout
    assert "data/test: 2 utterances, 2 speakers, 1 intents" in proc.stdout
    assert "devel.jsonl: 1 recording(s) already listed" in proc.stderr  # audio-1000000002.flac, kept in train
    assert "Successfully finished" in proc.stdout
    assert not (recipe / "downloads").exists()


def test_data_sh_again_writes_the_same_files(recipe, slurp):
    data_sh(recipe, slurp)
    before = snapshot(recipe / "data")
    data_sh(recipe, slurp)
    assert snapshot(recipe / "data") == before
    assert not list((recipe / "data").glob(".*"))  # no temporary folder left


def test_without_synthetic_recordings(recipe, slurp):
    shutil.rmtree(slurp / "audio" / "slurp_synth")  # neither is needed then
    (slurp / "dataset" / "slurp" / "train_synthetic.jsonl").unlink()
    data_sh(recipe, slurp, "--use_synthetic", "false")
    check_data_dir(recipe / "data" / "train", REAL_ONLY_TRAIN, slurp)
    check_data_dir(recipe / "data" / "test", EXPECTED["test"], slurp)
    proc = data_sh(recipe, slurp, check=False)  # the default (true) needs them, and says what to do
    assert proc.returncode == 1
    assert str(slurp / "dataset" / "slurp" / "train_synthetic.jsonl") in proc.stderr
    assert "--use_synthetic false" in proc.stderr
    write_jsonl(slurp / "dataset" / "slurp" / "train_synthetic.jsonl", RECORDS["train_synthetic"])
    proc = data_sh(recipe, slurp, check=False)
    assert proc.returncode == 1
    assert str(slurp / "audio" / "slurp_synth") in proc.stderr and "--use_synthetic false" in proc.stderr


def test_speakers_without_metadata_are_recording_sessions(recipe, slurp):
    (slurp / "dataset" / "slurp" / "metadata.json").unlink()
    proc = data_sh(recipe, slurp)
    assert "each recording session is a speaker" in proc.stderr
    utt2spk = table(recipe / "data" / "devel" / "utt2spk")
    # the headset and far-field copies of one take share a speaker
    assert utt2spk == {"slurp_2000000001_2000000001": "slurp_2000000001",
                       "slurp_2000000001_2000000001-headset": "slurp_2000000001"}


def _append(path: Path, line: str) -> int:
    """Appends a line to a jsonl file; returns its line number."""
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines + [line]) + "\n")
    return len(lines) + 1


@pytest.mark.parametrize("breakage", ["malformed_line", "missing_field", "missing_jsonl", "no_audio_folder",
                                      "empty_audio_folder", "missing_recordings", "not_a_slurp_tree"])
def test_broken_corpus_stops_stage_1_and_keeps_data(breakage, recipe, slurp):
    # data/ of an earlier run with the synthetic recordings, then a broken run without them: a set written
    # before the error stops the run (data/train without them) would show
    data_sh(recipe, slurp)
    before = snapshot(recipe / "data")
    text = slurp / "dataset" / "slurp"
    if breakage == "malformed_line":
        n = _append(text / "test.jsonl", '{"slurp_id": 7, "sentence": "oops"')
        where, message = f"{text / 'test.jsonl'}:{n}", "not a JSON record"
    elif breakage == "missing_field":
        bad = record(8, "turn it up", "audio", "volume_up", ["audio-3000000001.flac"])
        del bad["scenario"]
        n = _append(text / "train.jsonl", json.dumps(bad))
        where, message = f"{text / 'train.jsonl'}:{n}", "no 'scenario'"
    elif breakage == "missing_jsonl":
        (text / "devel.jsonl").unlink()
        where, message = str(text / "devel.jsonl"), "not found"
    elif breakage == "no_audio_folder":
        shutil.rmtree(slurp / "audio" / "slurp_real")
        where, message = str(slurp / "audio" / "slurp_real"), "slurp_real.tar.gz"
    elif breakage == "empty_audio_folder":
        for f in (slurp / "audio" / "slurp_real").iterdir():
            f.unlink()
        where, message = str(slurp / "audio" / "slurp_real"), "no recording in the folder"
    elif breakage == "missing_recordings":  # half of the test set: more than --max_missing 0.01
        (slurp / "audio" / "slurp_real" / "audio-3000000001.flac").unlink()
        where, message = "audio-3000000001.flac (test.jsonl:1)", "1 of the 2 recordings listed in"
    else:
        shutil.rmtree(slurp / "dataset")
        where, message = str(slurp / "dataset" / "slurp" / "train.jsonl"), "set SLURP"
    proc = data_sh(recipe, slurp, "--use_synthetic", "false", check=False)
    assert proc.returncode == 1
    assert where in proc.stderr and message in proc.stderr, proc.stderr
    assert "stage 1" in proc.stderr
    assert snapshot(recipe / "data") == before  # nothing lost, nothing half-written
    assert sorted(p.name for p in (recipe / "data").iterdir()) == ["devel", "test", "train"]


def test_a_few_missing_recordings_are_left_out_with_a_warning(recipe, slurp):
    (slurp / "audio" / "slurp_real" / "audio-3000000001.flac").unlink()
    proc = data_sh(recipe, slurp, "--max_missing", "0.5")
    assert "warning: 1 of the 2 recordings listed in" in proc.stderr
    assert "audio-3000000001.flac (test.jsonl:1)" in proc.stderr
    expected = {u: v for u, v in EXPECTED["test"].items() if v[3] != "audio-3000000001.flac"}
    check_data_dir(recipe / "data" / "test", expected, slurp)


# ----------------------------------------------------------------------------- the download path


def make_mirror(slurp: Path, mirror: Path) -> dict:
    """The text files and the two audio archives (slurp_real/..., slurp_synth/... inside) under mirror/;
    returns the archives' MD5."""
    (mirror / "text").mkdir(parents=True)
    for f in (slurp / "dataset" / "slurp").iterdir():
        shutil.copy(f, mirror / "text" / f.name)
    (mirror / "audio").mkdir()
    md5 = {}
    for name in ("slurp_real", "slurp_synth"):
        archive = mirror / "audio" / f"{name}.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(slurp / "audio" / name, arcname=name)
        md5[name] = hashlib.md5(archive.read_bytes()).hexdigest()
    return md5


def mirror_opts(mirror):
    return ["--text_url_base", f"file://{mirror}/text", "--audio_url_base", f"file://{mirror}/audio"]


def test_download_refuses_an_archive_with_the_wrong_checksum(recipe, pristine, tmp_path):
    mirror = tmp_path / "mirror"
    make_mirror(pristine, mirror)  # archives that are not Zenodo's: the published MD5 does not match
    proc = data_sh(recipe, "", *mirror_opts(mirror), "--use_synthetic", "false", check=False)
    assert proc.returncode != 0
    assert "md5 mismatch" in proc.stderr and REAL_MD5 in proc.stderr
    assert "slurp_real.tar.gz" in proc.stderr and "stage 1" in proc.stderr
    downloads = recipe / "downloads"
    assert (downloads / "slurp_real.tar.gz.bad").is_file() and not (downloads / "slurp_real.tar.gz").exists()
    assert not (downloads / "slurp" / "audio" / "slurp_real").exists()
    assert not (recipe / "data").exists()


def test_download_extracts_once_then_prepares(recipe, pristine, tmp_path):
    mirror = tmp_path / "mirror"
    md5 = make_mirror(pristine, mirror)
    proc = data_sh(recipe, "", *mirror_opts(mirror), "--real_md5", md5["slurp_real"])
    assert "md5 of downloads/slurp_real.tar.gz checked" in proc.stderr
    slurp = recipe / "downloads" / "slurp"
    for name, expected in EXPECTED.items():
        check_data_dir(recipe / "data" / name, expected, slurp)
    assert (slurp / "audio" / ".slurp_synth.tar.gz.extracted").is_file()
    # a re-run needs no mirror: nothing is downloaded or extracted again
    proc = data_sh(recipe, "", "--text_url_base", "file:///nonexistent", "--audio_url_base", "file:///nonexistent")
    assert proc.stdout.count("already downloaded and extracted") == 2


# ----------------------------------------------------------------------------- scoring

REFS = {
    "u1": "alarm_set wake me up",
    "u2": "email_query check my email",
    "u3": "play_music play jazz",
    "u4": "weather_query is it raining",
}
HYPS = {
    "u1": "alarm_set wake me up",            # right
    "u2": "email_sendemail check email",     # wrong intent, one deletion
    "u3": "play_music play jazz music",      # right intent, one insertion
}                                            # u4: no hypothesis: wrong intent, three deletions


def write_text(path: Path, texts: dict):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{u} {t}\n" for u, t in sorted(texts.items())))


def score_py(*args, cwd=RECIPE):
    return subprocess.run([sys.executable, "local/score.py", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=60)


def test_score_py_intent_accuracy_and_wer(tmp_path):
    write_text(tmp_path / "ref", REFS)
    write_text(tmp_path / "hyp", HYPS)
    proc = score_py("--ref", tmp_path / "ref", "--hyp", tmp_path / "hyp", "--dataset", "decode_x/test",
                    "--out_dir", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    # 2 of 4 intents right; 11 reference words, 4 deleted (1 + 3) and 1 inserted: WER 5/11
    row = "|decode_x/test|4|50.0|2|1|11|45.5|0.0|36.4|9.1|"
    assert proc.stdout.splitlines()[-1] == row
    assert "1 of 4 utterances" in proc.stderr and "u4" in proc.stderr
    assert (tmp_path / "out" / "intent_errors.txt").read_text() == \
        "u2 email_query email_sendemail\nu4 weather_query -\n"
    scores = json.loads((tmp_path / "out" / "scores.json").read_text())
    assert scores["intent_accuracy"] == 50.0 and scores["no_hypothesis"] == 1 and scores["missing"] == ["u4"]
    assert scores["word_counts"] == {"Corr": 7, "Sub": 0, "Del": 4, "Ins": 1, "Err": 5}
    assert row in (tmp_path / "out" / "result.md").read_text()


def test_score_py_refuses_a_hypothesis_of_another_set(tmp_path):
    write_text(tmp_path / "ref", REFS)
    write_text(tmp_path / "hyp", {**HYPS, "u9": "alarm_set hello"})
    proc = score_py("--ref", tmp_path / "ref", "--hyp", tmp_path / "hyp", "--dataset", "x", "--out_dir", tmp_path / "o")
    assert proc.returncode == 1 and "u9" in proc.stderr and "not in the reference" in proc.stderr


def test_score_sh_adds_the_intent_table_to_results(recipe):
    exp = recipe / "exp" / "asr_train_x"
    for x in ("test", "devel"):
        write_text(recipe / "data" / x / "text", REFS)
        write_text(exp / "decode_asr_asr_model_valid.acc.ave" / x / "text", HYPS if x == "test" else REFS)
    (recipe / "exp" / "asr_stats_raw_en_word").mkdir()  # statistics, not a model: skipped
    (exp / "RESULTS.md").write_text("# RESULTS\n\n## WER\n|x|\n")
    proc = subprocess.run(["local/score.sh"], cwd=recipe, capture_output=True, text=True, env=env(""), timeout=60)
    assert proc.returncode == 0, proc.stderr
    results = (exp / "RESULTS.md").read_text()
    assert results.startswith("# RESULTS\n\n## WER\n|x|\n\n<!-- intent accuracy")
    assert "## Intent accuracy" in results
    assert "|decode_asr_asr_model_valid.acc.ave/test|4|50.0|2|1|11|45.5|" in results
    assert "|decode_asr_asr_model_valid.acc.ave/devel|4|100.0|0|0|11|0.0|" in results
    assert (exp / "decode_asr_asr_model_valid.acc.ave" / "test" / "score_intent" / "result.md").is_file()
    subprocess.run(["local/score.sh"], cwd=recipe, check=True, capture_output=True, env=env(""), timeout=60)
    assert (exp / "RESULTS.md").read_text() == results  # replaced, not appended twice


# ----------------------------------------------------------------------------- run.sh


def run_sh_calls(recipe: Path, *args):
    """The calls run.sh makes to asr.sh and local/score.sh (both replaced by stubs that record them)."""
    log = recipe / "calls.txt"
    for script in ("asr.sh", "local/score.sh"):
        (recipe / script).unlink()
        (recipe / script).write_text(f'#!/usr/bin/env bash\necho "{script} $*" >> {log}\n')
        (recipe / script).chmod(0o755)
    subprocess.run(["./run.sh", *args], cwd=recipe, check=True, capture_output=True, timeout=60)
    return log.read_text().splitlines() if log.exists() else []


def options(call: str) -> dict:
    words = call.split(" ")
    out = {}
    for i, w in enumerate(words):  # the last value counts, as in asr.sh (values here hold no "--")
        if w.startswith("--"):
            j = i + 1
            value = []
            while j < len(words) and not words[j].startswith("--"):
                value.append(words[j])
                j += 1
            out[w[2:]] = " ".join(value)
    return out


def test_run_sh_passes_espnets_sets_and_options_then_scores_intents(recipe):
    calls = run_sh_calls(recipe)
    assert [c.split(" ", 1)[0] for c in calls] == ["asr.sh", "local/score.sh", "asr.sh"]
    first = options(calls[0])
    assert first["train_set"] == "train" and first["valid_set"] == "devel" and first["test_sets"] == "test devel"
    assert first["token_type"] == "word" and first["max_wav_duration"] == "30"
    assert first["feats_normalize"] == "utterance_mvn"
    assert first["asr_config"] == "conf/train_asr_summarymixing_conformer.yaml"
    assert first["inference_config"] == "conf/decode_asr.yaml"
    assert first["stop_stage"] == "13" and "ngpu" not in first
    assert options(calls[1]) == {"expdir": "exp", "test_sets": "test devel", "python": "python3"}
    assert options(calls[2])["stage"] == "14"


@pytest.mark.parametrize("args, expected", [
    (["--stage", "12", "--stop_stage", "13"], ["asr.sh", "local/score.sh"]),
    (["--stop_stage", "5"], ["asr.sh"]),
    (["--stage", "14"], ["asr.sh"]),
    (["--skip_eval", "true"], ["asr.sh", "asr.sh"]),
    (["--skip_packing", "true"], ["asr.sh", "local/score.sh"]),
    (["--skip_packing", "true", "--skip_upload", "false", "--hf_repo", "me/slurp"],
     ["asr.sh", "local/score.sh", "asr.sh"]),
])
def test_run_sh_scores_only_when_stage_13_runs(recipe, args, expected):
    calls = run_sh_calls(recipe, *args)
    assert [c.split(" ", 1)[0] for c in calls] == expected


def test_run_sh_scores_the_experiment_asked_for(recipe):
    calls = run_sh_calls(recipe, "--asr_exp", "exp/mine", "--test_sets", "test", "--expdir", "elsewhere")
    assert calls[1] == "local/score.sh --expdir elsewhere --test_sets test --python python3 exp/mine"


# ----------------------------------------------------------------------------- configs


@pytest.fixture(scope="module")
def asr_models(tmp_path_factory):
    """Each training config built by ESPnet's ASRTask (a 7-word token list)."""
    from espnet2.tasks.asr import ASRTask

    tokens = tmp_path_factory.mktemp("slurp_tokens") / "tokens.txt"
    tokens.write_text("\n".join(["<blank>", "<unk>", "alarm_set", "wake", "me", "up", "<sos/eos>"]) + "\n")
    models = {}
    for config in sorted((RECIPE / "conf").glob("train_asr*.yaml")):
        args = ASRTask.get_parser().parse_args(
            ["--config", str(config), "--token_list", str(tokens), "--token_type", "word",
             "--output_dir", str(tmp_path_factory.mktemp("exp"))])
        models[config.stem] = ASRTask.build_model(args)
    return models


def test_configs_build_asr_models_of_espnets_slurp_size(asr_models):
    from espnet2.asr.encoder.conformer_encoder import ConformerEncoder

    from espnet_summarymixing.encoders.conformer import SummaryMixingConformerEncoder

    assert set(asr_models) == {"train_asr_summarymixing_conformer", "train_asr_conformer"}
    ours, espnet = asr_models["train_asr_summarymixing_conformer"], asr_models["train_asr_conformer"]
    assert type(ours.encoder) is SummaryMixingConformerEncoder and type(espnet.encoder) is ConformerEncoder
    for model in (ours, espnet):
        assert model.encoder.output_size() == 512 and len(model.encoder.encoders) == 12
        assert len(model.decoder.decoders) == 6
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(espnet.encoder) == pytest.approx(83.2e6, rel=0.01)
    assert abs(count(ours.encoder) / count(espnet.encoder) - 1) < 0.05


def test_the_pair_differs_only_in_the_encoder():
    ours, base = (yaml.safe_load((RECIPE / "conf" / f"{n}.yaml").read_text())
                  for n in ("train_asr_summarymixing_conformer", "train_asr_conformer"))
    strip = lambda c: {k: v for k, v in c.items() if k not in ("encoder", "encoder_conf")}  # noqa: E731
    assert strip(ours) == strip(base)
    assert base["max_epoch"] == 50 and base["scheduler_conf"]["warmup_steps"] == 25000  # ESPnet's SLURP schedule


def test_decode_config_is_asr_inference_options(tmp_path):
    from espnet2.bin.asr_inference import get_parser

    config = RECIPE / "conf" / "decode_asr.yaml"
    source = yaml.safe_load(config.read_text())
    args = get_parser().parse_args(["--config", str(config), "--output_dir", str(tmp_path),
                                    "--data_path_and_name_and_type", "wav.scp,speech,sound"])
    assert all(getattr(args, k) == v for k, v in source.items())


def test_recipe_links_to_the_template():
    for name in ("asr.sh", "cmd.sh", "path.sh", "db.sh", "utils", "pyscripts"):
        assert (RECIPE / name).is_symlink() and os.readlink(RECIPE / name) == f"../../TEMPLATE/asr1/{name}"
    assert os.readlink(RECIPE / "conf" / "slurm.conf") == "../../../TEMPLATE/asr1/conf/slurm.conf"
    assert "SLURP=${SLURP:-}" in (TEMPLATE / "db.sh").read_text()
