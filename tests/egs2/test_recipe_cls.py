"""The classification template (egs2/TEMPLATE/cls1) and the FSDD recipe: the label list and its
checks, the scoring (accuracy, macro-F1, per class, confusion matrix), RESULTS.md, FSDD's speaker
split and bad files, and the recipe end to end on a few real FSDD clips with a tiny model, through
packing, ESPnet's own Classification loading the zip in a fresh interpreter, and the classify
command."""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile
import yaml

from conftest import command, require_data
from recipe_tools import ROOT

CLS_TEMPLATE = ROOT / "egs2" / "TEMPLATE" / "cls1"
FSDD_RECIPE = ROOT / "egs2" / "fsdd" / "cls1"
FSDD = ROOT.parent / "shared" / "data" / "fsdd"
needs_fsdd = pytest.mark.needs_data("fsdd", "recordings")
SLOW_FIXTURES = ("fsdd_run",)  # the shrunken FSDD recipe run, every stage: a minute or more  # conftest: skipped with the reason, failed in CI
PY = sys.executable


def script(name, *args, cwd=None):
    return subprocess.run([PY, str(CLS_TEMPLATE / "pyscripts" / name), *map(str, args)], capture_output=True,
                          text=True, cwd=cwd)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# ---------------------------------------------------------------------------------------------
# label_list.py (stage 4)

def test_label_list_is_the_sorted_training_labels_then_unk(tmp_path):
    train = write(tmp_path / "train" / "text", "a-1 yes\na-2 no\nb-1 yes\nb-2 up\n")
    dev = write(tmp_path / "dev" / "text", "c-1 no\n")
    out = tmp_path / "labels.txt"
    proc = script("label_list.py", "--train_text", train, "--check", dev, "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text().split() == ["no", "up", "yes", "<unk>"]
    assert "3 classes" in proc.stdout and "yes (2)" in proc.stdout


def test_label_list_follows_a_fixed_list_and_warns_of_untrained_classes(tmp_path):
    train = write(tmp_path / "text", "a-1 yes\na-2 no\n")
    fixed = write(tmp_path / "fixed.txt", "yes\nno\nmaybe\n")
    out = tmp_path / "labels.txt"
    proc = script("label_list.py", "--train_text", train, "--label_list", fixed, "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text().split() == ["yes", "no", "maybe", "<unk>"]
    assert "no training clip for maybe" in proc.stderr


def test_label_list_names_every_clip_whose_label_is_unknown_or_missing_and_keeps_the_old_list(tmp_path):
    train = write(tmp_path / "train" / "text", "a-1 yes\na-2 no\n")
    dev = write(tmp_path / "dev" / "text", "c-1 yes\nc-2 maybe\nc-3\n")
    out = write(tmp_path / "labels.txt", "old\n")
    proc = script("label_list.py", "--train_text", train, "--check", dev, "--out", out)
    assert proc.returncode == 1
    assert f"{dev}:2: clip c-2 has label 'maybe', which is not in the label list" in proc.stderr
    assert f"{dev}:3: clip c-3 has no label" in proc.stderr
    assert "2 clip label(s)" in proc.stderr
    assert out.read_text() == "old\n"  # nothing produced before is lost
    fixed = write(tmp_path / "fixed.txt", "yes\n")
    proc = script("label_list.py", "--train_text", train, "--label_list", fixed, "--out", out)
    assert proc.returncode == 1 and f"{train}:2: clip a-2 has label 'no'" in proc.stderr


@pytest.mark.parametrize("fixed, message", [("yes\nyes\n", "listed twice"), ("<unk>\nno\n", "is not a label"),
                                            ("", "no label in the list")])
def test_label_list_refuses_a_bad_fixed_list(tmp_path, fixed, message):
    train = write(tmp_path / "text", "a-1 yes\na-2 no\n")
    proc = script("label_list.py", "--train_text", train, "--label_list", write(tmp_path / "f.txt", fixed),
                  "--out", tmp_path / "labels.txt")
    assert proc.returncode == 1 and message in proc.stderr and not (tmp_path / "labels.txt").exists()


def test_label_list_needs_two_classes(tmp_path):
    proc = script("label_list.py", "--train_text", write(tmp_path / "text", "a-1 yes\n"), "--out", tmp_path / "l")
    assert proc.returncode == 1 and "only one label" in proc.stderr


# ---------------------------------------------------------------------------------------------
# score_cls.py (stage 8) and cls_results.py

REF = "u1 cat\nu2 cat\nu3 cat\nu4 dog\nu5 dog\nu6 owl\n"
HYP = "u1 cat\nu2 dog\nu3 cat\nu4 dog\nu5 \n"  # u5: too short to classify; u6: no prediction at all


def expected_scores():
    """Worked by hand: cat P=2/2 R=2/3; dog P=1/2 R=1/2; owl P=0 R=0; accuracy 3/6."""
    f1 = {"cat": 2 * 1 * (2 / 3) / (1 + 2 / 3), "dog": 0.5, "owl": 0.0}
    return f1, sum(f1.values()) / 3


def test_scoring_counts_every_reference_clip_and_computes_macro_f1(tmp_path):
    ref, hyp = write(tmp_path / "ref", REF), write(tmp_path / "hyp", HYP)
    labels = write(tmp_path / "labels.txt", "cat\ndog\nowl\n<unk>\n")
    score = write(tmp_path / "score", "u1 0.8 0.1 0.1\nu2 0.3 0.6 0.1\nu3 0.5 0.4 0.1\nu4 0.2 0.7 0.1\nu5 0\n")
    out = tmp_path / "scoring"
    proc = script("score_cls.py", "--ref", ref, "--hyp", hyp, "--score", score, "--token_list", labels,
                  "--dataset", "test", "--out_dir", out)
    assert proc.returncode == 0, proc.stderr
    s = json.loads((out / "scores.json").read_text())
    f1, macro = expected_scores()
    assert (s["clips"], s["correct"], s["unclassified"]) == (6, 3, 2)
    assert s["accuracy"] == pytest.approx(0.5)
    assert s["macro_f1"] == pytest.approx(macro)
    for label in f1:
        assert s["per_class"][label]["f1"] == pytest.approx(f1[label])
    assert s["per_class"]["dog"]["precision"] == pytest.approx(0.5) and s["per_class"]["dog"]["predicted"] == 2
    assert s["columns"] == ["cat", "dog", "owl", "(none)"]
    assert s["confusion"] == [[2, 1, 0, 0], [0, 1, 0, 1], [0, 0, 0, 1]]
    # reference probabilities of u1-u4 (u5 skipped): 0.8, 0.3, 0.5, 0.7
    assert s["mean_reference_probability"] == pytest.approx(0.575)
    md = (out / "result.md").read_text()
    assert "|6|3|50.00|" in md and "|cat|2|1|0|0|" in md and "|reference \\ predicted|cat|dog|owl|(none)|" in md
    png = (out / "confusion.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000


@pytest.mark.parametrize("ref, hyp, score, message", [
    ("u1 cat dog\n", "u1 cat\n", None, "has 2 labels"),
    ("u1 cat\n", "u1 cat\nu9 dog\n", None, "not in the reference"),
    ("u1 cat\nu1 dog\n", "u1 cat\n", None, "listed twice"),
    ("u1 cat\n", "u1 cat\n", "u1 0.5 0.5\n", "2 probabilities for 3 classes"),
])
def test_scoring_refuses_unreadable_input_naming_the_file(tmp_path, ref, hyp, score, message):
    args = ["--ref", write(tmp_path / "ref", ref), "--hyp", write(tmp_path / "hyp", hyp),
            "--token_list", write(tmp_path / "labels.txt", "cat\ndog\nowl\n<unk>\n"), "--out_dir", tmp_path / "o"]
    if score:
        args += ["--score", write(tmp_path / "score", score)]
    proc = script("score_cls.py", *args)
    assert proc.returncode == 1 and message in proc.stderr and not (tmp_path / "o").exists()


def fake_experiment(root: Path, name: str, accuracy_hyp: str) -> Path:
    exp = root / name
    scoring = exp / "inference_valid.acc.best" / "test" / "scoring"
    ref, hyp = write(root / "ref", REF), write(exp / "hyp", accuracy_hyp)
    proc = script("score_cls.py", "--ref", ref, "--hyp", hyp, "--dataset", "test", "--out_dir", scoring)
    assert proc.returncode == 0, proc.stderr
    write(exp / "train_time.txt", "125\n")
    write(exp / "run_command.txt", f"./cls.sh --cls_tag {name}\n")
    write(exp / "stage_times.tsv", "6\ttraining\t125\n8\tscoring \t1\n")
    return exp


def test_results_md_has_the_summary_per_class_tables_and_confusion_plots(tmp_path):
    a = fake_experiment(tmp_path, "cls_a", HYP)
    b = fake_experiment(tmp_path, "cls_b", REF)
    out = tmp_path / "RESULTS.md"
    proc = script("cls_results.py", "--exp_dir", a, "--exp_dir", b, "--out", out)
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    for words in ("## Environments", "## Summary", "|cls_a|test|50.00|", "|cls_b|test|100.00|100.00|",
                  "## cls_a", "### Accuracy", "|inference_valid.acc.best/test|6|50.00|",
                  "### inference_valid.acc.best/test", "|class|clips|predicted|", "Confusion matrix",
                  "![confusion matrix of test](cls_a/inference_valid.acc.best/test/scoring/confusion.png)",
                  "training time: 2m 05s", "|6|training|125|", "- command: `./cls.sh --cls_tag cls_a`"):
        assert words in text, words
    rows = json.loads((tmp_path / "RESULTS.json").read_text())  # the same scores for programs
    assert [(r["experiment"], r["metric"], r["value"], r["clips"]) for r in rows if r["set"] == "test"] == [
        ("cls_a", "accuracy", 50.0, 6), ("cls_a", "macro_f1", rows[1]["value"], 6), ("cls_b", "accuracy", 100.0, 6),
        ("cls_b", "macro_f1", 100.0, 6)]
    assert rows[0]["training_seconds"] == 125.0
    # a RESULTS.md beside a recipe links copies of the plots (exp/ is not kept)
    proc = script("cls_results.py", "--exp_dir", a, "--out", tmp_path / "recipe" / "RESULTS.md",
                  "--images", tmp_path / "recipe" / "results")
    assert proc.returncode == 0, proc.stderr
    assert "![confusion matrix of test](results/cls_a_test.png)" in (tmp_path / "recipe" / "RESULTS.md").read_text()
    assert (tmp_path / "recipe" / "results" / "cls_a_test.png").read_bytes()[:4] == b"\x89PNG"
    proc = script("cls_results.py", "--exp_dir", tmp_path / "nothing", "--out", tmp_path / "R.md")
    assert proc.returncode == 1 and "no such experiment directory" in proc.stderr


# ---------------------------------------------------------------------------------------------
# FSDD data preparation

def fsdd_subset(root: Path, speakers=("george", "jackson", "lucas", "nicolas"), takes=(0, 1)) -> Path:
    rec = root / "recordings"
    rec.mkdir(parents=True, exist_ok=True)
    for speaker in speakers:
        for digit in range(10):
            for take in takes:
                name = f"{digit}_{speaker}_{take}.wav"
                shutil.copy(FSDD / "recordings" / name, rec / name)
    return root


def prep(fsdd: Path, out: Path, *args):
    return subprocess.run([PY, str(FSDD_RECIPE / "local" / "data_prep.py"), str(fsdd), str(out), *args],
                          capture_output=True, text=True)


def table(path: Path):
    return dict(line.split(maxsplit=1) for line in path.read_text().splitlines())


@needs_fsdd
def test_fsdd_split_is_by_speaker_and_new_speakers_are_trained_on(tmp_path):
    fsdd = fsdd_subset(tmp_path / "fsdd")
    # a new speaker's recordings (a copy of george's, renamed) go to train
    for path in sorted((fsdd / "recordings").glob("*_george_*.wav")):
        shutil.copy(path, path.with_name(path.name.replace("george", "zoe")))
    proc = prep(fsdd, tmp_path / "data")
    assert proc.returncode == 0, proc.stderr
    sets = {}
    for name in ("train", "dev", "test"):
        d = tmp_path / "data" / name
        spk = table(d / "utt2spk")
        sets[name] = set(spk.values())
        assert list(spk) == sorted(spk)  # byte order, speaker first
        text = table(d / "text")
        assert set(text.values()) == {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"}
        assert all(Path(p).is_file() for p in table(d / "wav.scp").values())
        assert (d / "spk2utt").is_file()
    assert sets == {"train": {"george", "jackson", "zoe"}, "dev": {"lucas"}, "test": {"nicolas"}}
    text = table(tmp_path / "data" / "test" / "text")
    assert text["nicolas-7_1"] == "seven" and len(text) == 20
    proc = prep(fsdd, tmp_path / "data2", "--dev_speakers", "zoe", "--test_speakers", "george,jackson")
    assert proc.returncode == 0, proc.stderr
    assert set(table(tmp_path / "data2" / "train" / "utt2spk").values()) == {"lucas", "nicolas"}


@needs_fsdd
def test_fsdd_bad_files_are_left_out_and_named_without_stopping_the_others(tmp_path):
    fsdd = fsdd_subset(tmp_path / "fsdd", takes=(0,))
    rec = fsdd / "recordings"
    soundfile.write(rec / "3_george_7.wav", np.zeros(0, dtype=np.int16), 8000, subtype="PCM_16")  # empty clip
    (rec / "4_george_7.wav").write_bytes(b"RIFF....not audio")  # corrupt
    shutil.copy(rec / "1_george_0.wav", rec / "one-george.wav")  # not the naming scheme
    proc = prep(fsdd, tmp_path / "data")
    assert proc.returncode == 0, proc.stderr
    assert f"{rec / '3_george_7.wav'}: empty" in proc.stderr
    assert f"{rec / '4_george_7.wav'}: not readable as audio" in proc.stderr
    assert "one-george.wav: name is not" in proc.stderr
    train = table(tmp_path / "data" / "train" / "text")
    assert len(train) == 20 and "george-3_7" not in train and "george-4_7" not in train


@needs_fsdd
@pytest.mark.parametrize("args, message", [
    (["--test_speakers", "alice"], "--test_speakers: alice not in the corpus (speakers found: george, jackson, lucas, nicolas)"),
    (["--dev_speakers", "lucas", "--test_speakers", "lucas"], "named in both"),
    (["--dev_speakers", "george jackson", "--test_speakers", "lucas nicolas"], "the train set would be empty"),
])
def test_fsdd_bad_split_is_refused_and_nothing_is_written(tmp_path, args, message):
    fsdd = fsdd_subset(tmp_path / "fsdd", takes=(0,))
    proc = prep(fsdd, tmp_path / "data", *args)
    assert proc.returncode == 1 and message in proc.stderr, proc.stderr
    assert not (tmp_path / "data").exists()


def test_fsdd_corpus_folder_without_recordings_is_an_error(tmp_path):
    (tmp_path / "fsdd" / "recordings").mkdir(parents=True)
    (tmp_path / "fsdd" / "recordings" / "README").write_text("nothing here")
    proc = prep(tmp_path / "fsdd", tmp_path / "data")
    assert proc.returncode == 1 and "no usable recording" in proc.stderr
    proc = prep(tmp_path / "missing", tmp_path / "data")
    assert proc.returncode == 1 and "no such folder" in proc.stderr


# ---------------------------------------------------------------------------------------------
# the FSDD recipe end to end, tiny

TINY_CLS = {
    "encoder": "summarymixing_conformer",
    "encoder_conf": dict(output_size=32, linear_units=64, num_blocks=2, cnn_module_kernel=7, input_layer="conv2d"),
    "decoder": "linear",
    "decoder_conf": dict(pooling="mean"),
    "model_conf": dict(classification_type="multi-class"),
    "frontend_conf": dict(n_fft=256, win_length=200, hop_length=80, n_mels=40),
    "optim": "adam",
    "optim_conf": dict(lr=0.002),
    "batch_type": "numel",
    "batch_bins": 100000,
    "max_epoch": 1,
    "num_workers": 0,
    "best_model_criterion": [["valid", "acc", "max"]],
    "keep_nbest_models": 1,
}


def recipe_env(fsdd: Path):
    env = dict(os.environ)
    env["PATH"] = f"{Path(PY).parent}{os.pathsep}{env['PATH']}"
    env["FSDD"] = str(fsdd)
    return env


def make_fsdd_recipe(tmp: Path) -> Path:
    """A copy of the FSDD recipe whose shared files are links to this repository's template."""
    recipe = tmp / "egs2" / "fsdd" / "cls1"
    (recipe / "conf").mkdir(parents=True)
    for name in ("cls.sh", "cmd.sh", "path.sh", "db.sh", "utils", "pyscripts"):
        (recipe / name).symlink_to(CLS_TEMPLATE / name)
    shutil.copy(FSDD_RECIPE / "run.sh", recipe / "run.sh")
    shutil.copytree(FSDD_RECIPE / "local", recipe / "local")
    shutil.copy(FSDD_RECIPE / "conf" / "labels.txt", recipe / "conf" / "labels.txt")
    (recipe / "conf" / "tiny.yaml").write_text(yaml.safe_dump(TINY_CLS))
    return recipe


TINY_OPTIONS = ["--cls_config", "conf/tiny.yaml", "--cls_tag", "tiny", "--ngpu", "0", "--inference_nj", "1"]


def run_recipe(recipe, fsdd, *args):
    return subprocess.run(["./run.sh", *TINY_OPTIONS, *args], cwd=recipe, capture_output=True, text=True,
                          env=recipe_env(fsdd), timeout=1200)


def recipe_run(tmp_path_factory, name: str, takes, *args):
    """(recipe, corpus, process) of run.sh with ``args`` in a fresh copy of the recipe, on ``takes`` of
    every speaker of the local FSDD; the run must succeed."""
    require_data("fsdd", "recordings")  # skipped with the reason, failed in CI
    tmp = tmp_path_factory.mktemp(name)
    fsdd = fsdd_subset(tmp / "fsdd", takes=takes)
    recipe = make_fsdd_recipe(tmp)
    proc = run_recipe(recipe, fsdd, *args)
    assert proc.returncode == 0, f"{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}"
    return recipe, fsdd, proc


@pytest.fixture(scope="module")
def fsdd_run(tmp_path_factory):
    return recipe_run(tmp_path_factory, "fsdd_recipe", (0, 1))


def test_fsdd_recipe_runs_every_stage_and_reports_results(fsdd_run):
    recipe, _, proc = fsdd_run
    exp = recipe / "exp" / "cls_tiny"
    stages = [line.split("\t") for line in (exp / "stage_times.tsv").read_text().splitlines()]
    assert [int(s[0]) for s in stages] == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert "epoch 1/1, train loss" in proc.stdout  # progress while training
    assert (recipe / "data" / "token_list" / "train" / "labels.txt").read_text().split() == \
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "<unk>"]
    config = yaml.safe_load((exp / "config.yaml").read_text())
    assert config["encoder"] == "summarymixing_conformer" and config["normalize"] == "utterance_mvn"  # run.sh: --feats_normalize
    assert config["frontend_conf"]["fs"] == "8k"
    for dataset in ("dev", "test"):
        d = exp / "inference_valid.acc.best" / dataset
        assert len(table(d / "text")) == 20
        scores = json.loads((d / "scoring" / "scores.json").read_text())
        assert scores["clips"] == 20 and 0.0 <= scores["accuracy"] <= 1.0
        assert (d / "scoring" / "confusion.png").is_file()
        assert all(len(line.split()) == 11 for line in (d / "score").read_text().splitlines())
    results = (exp / "RESULTS.md").read_text()
    for words in ("## Environments", "### Accuracy", "inference_valid.acc.best/test|20|", "macro-F1",
                  "Confusion matrix", "confusion.png", "parameters", "training time", "|6|training|",
                  "- command: `./cls.sh --train_set train"):
        assert words in results, words
    # speed-perturbed training set, 8 kHz audio
    assert len(table(recipe / "dump" / "raw" / "train_sp" / "text")) == 3 * 40
    info = soundfile.info(next(iter(table(recipe / "dump" / "raw" / "test" / "wav.scp").values())))
    assert info.samplerate == 8000


def test_fsdd_packed_model_loads_with_espnets_classification_in_a_fresh_interpreter(fsdd_run, tmp_path):
    recipe, fsdd, _ = fsdd_run
    zip_path = recipe / "exp" / "cls_tiny" / "model.zip"
    with zipfile.ZipFile(zip_path) as z:
        names = z.namelist()
    assert "meta.yaml" in names and "README.md" in names and "exp/cls_train/model.pth" in names
    clip = fsdd / "recordings" / "7_nicolas_1.wav"
    code = f"""
import sys, soundfile
from espnet_model_zoo.downloader import ModelDownloader
from espnet2.bin.cls_inference import Classification
files = ModelDownloader({str(tmp_path / 'zoo')!r}).download_and_unpack({str(zip_path)!r})
classifier = Classification(**files)
speech, rate = soundfile.read({str(clip)!r})
ids, probabilities, label = classifier(speech)
assert rate == 8000 and len(probabilities) == 10 and abs(float(probabilities.sum()) - 1) < 1e-4
assert label in {{"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"}}
print("OK", label, sorted(files))
"""
    proc = subprocess.run([PY, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "OK" in proc.stdout and "classification_model_file" in proc.stdout
    card = zipfile.ZipFile(zip_path).read("README.md").decode()
    assert "classifier with a SummaryMixing encoder" in card and "| classes | 10: `zero`" in card
    assert "Classification(**files)" in card and "audio-classification" in card


def test_classify_command_prints_labels_and_reports_bad_files_without_stopping(fsdd_run, tmp_path, monkeypatch):
    recipe, fsdd, _ = fsdd_run
    model = recipe / "exp" / "cls_tiny" / "model.zip"
    good = [fsdd / "recordings" / "3_lucas_0.wav", fsdd / "recordings" / "8_nicolas_1.wav"]
    empty = tmp_path / "empty.wav"
    soundfile.write(empty, np.zeros(0, dtype=np.int16), 8000, subtype="PCM_16")
    short = tmp_path / "short.wav"
    soundfile.write(short, np.zeros(200, dtype=np.int16), 8000, subtype="PCM_16")
    listed = write(tmp_path / "clips.scp", f"k1 {good[1]}\n")
    proc = command("classify", "--model", model, "--cachedir", tmp_path / "cache", "--top_k", "2", good[0],
                   tmp_path / "missing.wav", empty, short, "--list", listed)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split(" → ")[0] for line in lines] == [str(good[0]), "k1"]  # a listed file is named by its key
    for line in lines:
        ranked = line.split(" → ")[1].split(", ")
        assert len(ranked) == 2 and all(r.endswith(")") and " (" in r for r in ranked)
        p1, p2 = (float(r.split(" (")[1][:-1]) for r in ranked)
        assert 1.0 >= p1 >= p2 >= 0.0
    assert f"{tmp_path / 'missing.wav'}: error: no such file" in proc.stderr
    assert f"{empty}: error: the file holds no audio samples" in proc.stderr
    assert f"{short}: error: too short" in proc.stderr
    assert "3 of 5 files failed" in proc.stderr
    # the same model given as its training folder (from the recipe folder: ESPnet's config.yaml paths are
    # relative to it), tab-separated output
    monkeypatch.chdir(recipe)
    proc = command("classify", "--model", "exp/cls_tiny", "--output_format", "tsv", good[0])
    assert proc.returncode == 0, proc.stderr
    path, label, probability = proc.stdout.strip().split("\t")
    assert path == str(good[0]) and label in (recipe / "conf" / "labels.txt").read_text().split()
    assert 0.0 < float(probability) <= 1.0


def test_fsdd_recipe_reruns_and_stops_on_a_label_outside_the_list(fsdd_run):
    recipe, fsdd, _ = fsdd_run
    exp = recipe / "exp" / "cls_tiny"
    results = (exp / "RESULTS.md").read_text()
    # a test clip labelled with a class the model does not have: stage 4 names it, earlier outputs stay
    text = recipe / "dump" / "raw" / "test" / "text"
    original = text.read_text()
    text.write_text(original.replace("nicolas-0_0 zero", "nicolas-0_0 eleven"))
    proc = run_recipe(recipe, fsdd, "--stage", "4", "--stop_stage", "4")
    assert proc.returncode == 1
    assert f"{text.relative_to(recipe)}:1: clip nicolas-0_0 has label 'eleven', which is not in the label list" in proc.stderr
    assert "stage 4" in proc.stdout
    assert (recipe / "data" / "token_list" / "train" / "labels.txt").read_text().split()[0] == "zero"
    text.write_text(original)
    # scoring again gives the same RESULTS.md figures
    proc = run_recipe(recipe, fsdd, "--stage", "8", "--stop_stage", "8")
    assert proc.returncode == 0, proc.stderr[-3000:]
    accuracy = [line for line in results.splitlines() if line.startswith("|inference_valid.acc.best/test|")]
    assert accuracy and accuracy[0] in (exp / "RESULTS.md").read_text()


# ---------------------------------------------------------------------------------------------
# the template's layout, setup.sh and option checks

CLS_LINKED = ("cls.sh", "path.sh", "utils", "pyscripts", "cmd.sh", "db.sh", "conf/slurm.conf")


def assert_linked_to_the_cls_template(recipe: Path):
    for name in CLS_LINKED:
        link = recipe / name
        assert link.is_symlink() and not os.path.isabs(os.readlink(link)), link
        assert link.resolve() == (CLS_TEMPLATE / name).resolve(), link


@pytest.mark.parametrize("recipe", ["fsdd", "speechcommands"])
def test_the_cls_recipes_link_the_templates_shared_files(recipe):
    assert_linked_to_the_cls_template(ROOT / "egs2" / recipe / "cls1")
    assert os.access(ROOT / "egs2" / recipe / "cls1" / "run.sh", os.X_OK)
    assert os.access(ROOT / "egs2" / recipe / "cls1" / "local" / "data.sh", os.X_OK)


def test_the_cls_template_shares_asr1s_helpers_instead_of_copying_them():
    asr_pyscripts = ROOT / "egs2" / "TEMPLATE" / "asr1" / "pyscripts"
    own = {p.name for p in (CLS_TEMPLATE / "pyscripts").iterdir() if not p.is_symlink()}
    assert own == {"label_list.py", "score_cls.py", "cls_results.py", "cls_inference.py"}
    for p in (CLS_TEMPLATE / "pyscripts").iterdir():
        if p.is_symlink():
            assert p.resolve().parent == asr_pyscripts.resolve(), p


def test_cls_setup_makes_a_classification_recipe(tmp_path):
    target = tmp_path / "egs2" / "mine" / "cls1"
    proc = subprocess.run([CLS_TEMPLATE / "setup.sh", target], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert_linked_to_the_cls_template(target)
    assert not (target / "asr.sh").exists() and "./cls.sh" in (target / "run.sh").read_text()


@pytest.mark.parametrize("args, message", [
    ([], "--train_set is required"),
    (["--train_set", "t", "--valid_set", "d", "--test_sets", "x", "--fs", "8kHz"], "--fs must be a rate"),
    (["--train_set", "t", "--valid_set", "d", "--test_sets", "x", "--label_list", "nope.txt"], "--label_list nope.txt: no such file"),
    (["--train_set", "t", "--valid_set", "d", "--test_sets", "x", "--inference_batch_size", "0"],
     "--inference_batch_size must be a positive integer, got '0'"),
    (["--train_set", "t", "--valid_set", "d", "--test_sets", "x", "--stage", "6", "--stop_stage", "6",
      "--cls_config", "conf/tiny.yaml"], "not found: stage 5 (feature statistics) writes it"),
    (["--train_set", "t", "--valid_set", "d", "--test_sets", "x", "--stage", "8", "--stop_stage", "8"],
     "not found: stage 7 (inference) writes it"),
])
def test_cls_sh_refuses_bad_options_and_names_the_stage_of_a_missing_input(tmp_path, args, message):
    recipe = make_fsdd_recipe(tmp_path)
    proc = subprocess.run(["./cls.sh", *args], cwd=recipe, capture_output=True, text=True, env=recipe_env(tmp_path))
    assert proc.returncode != 0 and message in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_cls_sh_help_lists_the_stages():
    proc = subprocess.run(["./cls.sh", "--help"], cwd=FSDD_RECIPE, capture_output=True, text=True)
    assert proc.returncode == 0
    for words in ("1 data preparation", "4 label list", "8 scoring (accuracy, macro-F1", "9 packing",
                  "--skip_train (false): skip stages 5-6"):
        assert words in proc.stdout, words
