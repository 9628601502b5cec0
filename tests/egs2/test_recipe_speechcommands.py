"""The Speech Commands recipe (egs2/speechcommands/cls1): stage 1 (local/data.sh, local/data_prep.py)
on a small corpus in the official layout, for the 35-word and the 12-class task, its re-runs and its
errors; every training config builds an ESPnet classification model; the recipe's layout."""

import hashlib
import os
import subprocess
import sys
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from recipe_tools import ROOT, load_pyscript

RECIPE = ROOT / "egs2" / "speechcommands" / "cls1"
TEMPLATE_CLS = ROOT / "egs2" / "TEMPLATE" / "cls1"
dd = load_pyscript("data_dir")

RATE = 16000
KEYWORDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
OTHERS = ["bed", "cat"]  # words of the 35 that are _unknown_ in the 12-class task
LABELS12 = set(KEYWORDS) | {"_unknown_", "_silence_"}
TRAIN_SPK, DEV_SPK, TEST_SPK = ["0a7c2a8d", "1b3f5e7a"], "9c2e4a6b", "c0ffee12"
NOISES = {"white_noise": 5.0, "pink_noise": 3.5}  # seconds -> 5 and 3 clips of 1 s
# Per noise file of N clips: the last max(1, N // 10) are test, the max(1, N // 10) before dev.
SILENCE = {"train": 3 + 1, "dev": 1 + 1, "test": 1 + 1}
SETS35 = ("train", "dev", "test")
SETS12 = ("train12", "dev12", "test12")


# ----------------------------------------------------------------------------- the small corpus


def write_clip(path, seed, seconds=1.0):
    rng = np.random.default_rng(seed)
    samples = (rng.standard_normal(int(RATE * seconds)) * 1000).astype(np.int16)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, samples, RATE, subtype="PCM_16")


def make_corpus(root: Path) -> Path:
    """Speech Commands v0.02's layout: <word>/<speaker>_nohash_<n>.wav, _background_noise_/,
    validation_list.txt (speaker DEV_SPK) and testing_list.txt (speaker TEST_SPK)."""
    seed = 0
    for word in KEYWORDS + OTHERS:
        for spk in TRAIN_SPK + [DEV_SPK, TEST_SPK]:
            for index in ((0, 1) if word == "yes" else (0,)):
                seed += 1
                write_clip(root / word / f"{spk}_nohash_{index}.wav", seed, 1.0 if seed % 4 else 0.8)
    for name, seconds in NOISES.items():
        seed += 1
        write_clip(root / "_background_noise_" / f"{name}.wav", seed, seconds)
    (root / "_background_noise_" / "README.md").write_text("noise\n")
    (root / "LICENSE").write_text("CC BY 4.0\n")
    for name, spk in (("validation_list.txt", DEV_SPK), ("testing_list.txt", TEST_SPK)):
        entries = sorted(f"{w}/{p.name}" for w in KEYWORDS + OTHERS for p in (root / w).glob(f"{spk}_*.wav"))
        (root / name).write_text("\n".join(entries) + "\n")
    return root


def make_test_set(root: Path) -> Path:
    """The separate 12-class test set archive's layout: one folder per label."""
    for i, label in enumerate(sorted(LABELS12)):
        name = f"{1000 + i:08x}_nohash_0.wav" if label != "_silence_" else "silence_clip_07.wav"
        write_clip(root / label / name, 500 + i)
    return root


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("speech_commands_v0.02"))


@pytest.fixture(scope="module")
def official_test_set(tmp_path_factory):
    return make_test_set(tmp_path_factory.mktemp("speech_commands_test_set_v0.02"))


def recipe_copy(tmp_path: Path) -> Path:
    """The recipe's files in a scratch folder (links to the template), so runs leave the repo clean."""
    work = tmp_path / "cls1"
    work.mkdir()
    for name in ("local", "conf", "run.sh"):
        os.symlink(RECIPE / name, work / name)
    for name in ("cmd.sh", "path.sh", "db.sh", "utils", "pyscripts"):
        os.symlink(TEMPLATE_CLS / name, work / name)
    return work


def data_sh(work: Path, corpus, *args):
    env = dict(os.environ, SPEECHCOMMANDS=str(corpus),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run(["local/data.sh", *map(str, args)], cwd=work, env=env, capture_output=True,
                          text=True, timeout=120)


def ok(proc):
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def table(path):
    return dict(line.split(" ", 1) for line in Path(path).read_text().splitlines())


def snapshot(*dirs):
    """{path: (bytes, mtime_ns)} of every file under the given directories."""
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for d in dirs for p in sorted(Path(d).rglob("*"))
            if p.is_file()}


def listed(corpus, name):
    return set((corpus / name).read_text().split())


def utt_of(entry):
    """validation_list.txt entry 'yes/0a7c2a8d_nohash_1.wav' -> utterance id '0a7c2a8d-yes-1'."""
    word, wav = entry.split("/")
    spk, _, index = wav[: -len(".wav")].split("_")
    return f"{spk}-{word}-{index}"


def check_speaker_order(d):
    """Utterance ids start with '<speaker>-', so sorting them sorts (and groups) the speakers."""
    utt2spk = table(d / "utt2spk")
    speakers = [utt2spk[u] for u in sorted(utt2spk)]
    assert all(u.startswith(s + "-") for u, s in utt2spk.items())
    assert speakers == sorted(speakers)
    assert list(utt2spk) == sorted(utt2spk)  # the file itself is sorted (byte order)


# ----------------------------------------------------------------------------- the 35-word task


@pytest.fixture(scope="module")
def task35(corpus, tmp_path_factory):
    work = recipe_copy(tmp_path_factory.mktemp("task35"))
    proc = ok(data_sh(work, corpus))
    return work, proc


def test_task35_sets_follow_the_lists(task35, corpus):
    work, proc = task35
    data = work / "data"
    texts = {s: table(data / s / "text") for s in SETS35}
    for s in SETS35:
        dd.validate(data / s)
        check_speaker_order(data / s)
    assert set(texts["dev"]) == {utt_of(e) for e in listed(corpus, "validation_list.txt")}
    assert set(texts["test"]) == {utt_of(e) for e in listed(corpus, "testing_list.txt")}
    words = KEYWORDS + OTHERS
    n_all = len(words) * 4 + len(TRAIN_SPK) + 2  # "yes" has a second take per speaker
    assert sum(len(t) for t in texts.values()) == n_all
    assert len(texts["train"]) == n_all - len(texts["dev"]) - len(texts["test"])
    assert not (set(texts["train"]) & set(texts["dev"]) or set(texts["train"]) & set(texts["test"])
                or set(texts["dev"]) & set(texts["test"]))
    assert {t.split("-")[0] for t in texts["train"]} == set(TRAIN_SPK)
    for s in SETS35:  # the label is the word folder, and the audio is that file
        wavs = table(data / s / "wav.scp")
        for utt, label in texts[s].items():
            spk, word, index = utt.split("-")
            assert label == word and Path(wavs[utt]) == corpus / word / f"{spk}_nohash_{index}.wav"
            assert Path(wavs[utt]).is_absolute()
    assert set(texts["train"].values()) == set(words)
    assert "_silence_" not in proc.stdout and not (work / "downloads" / "silence_clips").exists()
    # the summary: one row per class and a total per set
    assert "total" in proc.stdout and f"{len(texts['train'])}" in proc.stdout


def test_task35_rerun_changes_nothing(task35, corpus):
    work, _ = task35
    before = snapshot(work / "data")
    proc = ok(data_sh(work, corpus))
    assert snapshot(work / "data") == before
    assert "unchanged" in proc.stdout


# ----------------------------------------------------------------------------- the 12-class task


@pytest.fixture(scope="module")
def task12(corpus, official_test_set, tmp_path_factory):
    work = recipe_copy(tmp_path_factory.mktemp("task12"))
    ok(data_sh(work, corpus))  # the 35-word sets first: both tasks live side by side
    before35 = snapshot(work / "data")
    proc = ok(data_sh(work, corpus, "--task", "12", "--test_set_dir", official_test_set))
    return work, proc, before35


def test_task12_labels_and_silence(task12, corpus):
    work, proc, _ = task12
    data = work / "data"
    texts = {s: table(data / s / "text") for s in SETS12}
    for s in SETS12:
        dd.validate(data / s)
        check_speaker_order(data / s)
    assert set(texts["train12"].values()) == LABELS12
    for s in SETS12:
        assert set(texts[s].values()) <= LABELS12
        for utt, label in texts[s].items():
            word = utt.split("-")[1]
            expected = word if word in KEYWORDS else "_silence_" if word == "silence" else "_unknown_"
            assert label == expected, (s, utt, label)
    words = {s: {u for u, lab in texts[s].items() if lab != "_silence_"} for s in SETS12}
    assert words["dev12"] == {utt_of(e) for e in listed(corpus, "validation_list.txt")}
    assert words["test12"] == {utt_of(e) for e in listed(corpus, "testing_list.txt")}
    assert not (set(texts["train12"]) & set(texts["dev12"]) or set(texts["dev12"]) & set(texts["test12"])
                or set(texts["train12"]) & set(texts["test12"]))
    counts = {s: Counter(texts[s].values())["_silence_"] for s in SETS12}
    assert counts == {"train12": SILENCE["train"], "dev12": SILENCE["dev"], "test12": SILENCE["test"]}
    clips = sorted((work / "downloads" / "silence_clips").iterdir())
    assert len(clips) == sum(SILENCE.values())
    for s in SETS12:
        wavs = table(data / s / "wav.scp")
        for utt, label in texts[s].items():
            if label == "_silence_":
                info = soundfile.info(wavs[utt])
                assert info.frames == RATE and info.samplerate == RATE, utt
                assert Path(wavs[utt]).parent == work / "downloads" / "silence_clips"
    # a clip is its second of the noise file: the last second of white_noise (5 s) is a test clip
    noise, _ = soundfile.read(corpus / "_background_noise_" / "white_noise.wav", dtype="int16")
    test_wavs = table(data / "test12" / "wav.scp")
    clip, _ = soundfile.read(test_wavs["white_noise-silence-0004"], dtype="int16")
    np.testing.assert_array_equal(clip, noise[4 * RATE:5 * RATE])
    assert "white_noise-silence-0003" in texts["dev12"] and "white_noise-silence-0002" in texts["train12"]
    assert "_silence_" in proc.stdout and "total" in proc.stdout


def test_task12_official_test_set(task12):
    work, _, _ = task12
    d = work / "data" / "test12_official"
    dd.validate(d)
    check_speaker_order(d)
    text = table(d / "text")
    assert sorted(text.values()) == sorted(LABELS12)
    assert text["silence_clip_07-silence"] == "_silence_"


def test_task12_keeps_task35_and_rerun_changes_nothing(task12, corpus, official_test_set):
    work, _, before35 = task12
    assert {p: v for p, v in snapshot(work / "data").items() if p.parent.name in SETS35} == before35
    before = snapshot(work / "data", work / "downloads")
    ok(data_sh(work, corpus, "--task", "12", "--test_set_dir", official_test_set))
    assert snapshot(work / "data", work / "downloads") == before  # same files, same mtimes
    # a clip cut short (an interrupted run of an older version) is cut again; the others are kept
    clip = work / "downloads" / "silence_clips" / "pink_noise_0001.wav"
    clip.write_bytes(clip.read_bytes()[:1000])
    ok(data_sh(work, corpus, "--task", "12", "--test_set_dir", official_test_set))
    after = snapshot(work / "data", work / "downloads")
    assert after[clip][0] == before[clip][0]
    assert {p: v for p, v in after.items() if p != clip} == {p: v for p, v in before.items() if p != clip}


# ----------------------------------------------------------------------------- errors


@pytest.fixture
def prepared(corpus, tmp_path):
    """A recipe folder whose data/ was prepared, and a copy of the corpus to break."""
    work = recipe_copy(tmp_path)
    broken = tmp_path / "corpus"
    for p in corpus.rglob("*"):
        if p.is_file():
            (broken / p.relative_to(corpus)).parent.mkdir(parents=True, exist_ok=True)
            os.link(p, broken / p.relative_to(corpus))
    ok(data_sh(work, broken))
    return work, broken, snapshot(work / "data")


def failed(proc, *expected):
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "stage 1" in out, out
    for text in expected:
        assert str(text) in out, out


def test_error_empty_corpus(tmp_path):
    work = recipe_copy(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    failed(data_sh(work, empty), empty, "no recordings")
    assert not (work / "data").exists()


def test_error_missing_testing_list(prepared):
    work, broken, before = prepared
    (broken / "testing_list.txt").unlink()
    failed(data_sh(work, broken), broken / "testing_list.txt", "missing")
    assert snapshot(work / "data") == before


def test_error_listed_file_missing(prepared):
    work, broken, before = prepared
    entry = sorted(listed(broken, "validation_list.txt"))[2]
    (broken / entry).unlink()
    failed(data_sh(work, broken), broken / "validation_list.txt", broken / entry, "file missing")
    assert snapshot(work / "data") == before


def test_error_noise_missing_for_task12(prepared):
    work, broken, before = prepared
    for p in (broken / "_background_noise_").glob("*.wav"):
        p.unlink()
    failed(data_sh(work, broken, "--task", "12"), broken / "_background_noise_")
    assert snapshot(work / "data") == before


def test_error_bad_task(tmp_path, corpus):
    proc = data_sh(recipe_copy(tmp_path), corpus, "--task", "20")
    assert proc.returncode == 2 and "--task must be 35 or 12" in proc.stdout + proc.stderr


def tar_of(folder: Path, dest: Path) -> Path:
    """A .tar.gz of ``folder``'s contents with ./-prefixed members, as the official archives."""
    with tarfile.open(dest, "w:gz") as tf:
        tf.add(folder, arcname=".")
    return dest


def test_download_extract_and_prepare(corpus, official_test_set, tmp_path):
    """SPEECHCOMMANDS empty: both archives are downloaded (file:// here), checked, extracted into
    downloads/ and prepared; a re-run neither downloads nor extracts again."""
    work = recipe_copy(tmp_path)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    train = tar_of(corpus, mirror / "train.tar.gz")
    tests = tar_of(official_test_set, mirror / "test.tar.gz")
    opts = ["--task", "12", "--train_url", train.as_uri(), "--test_set_url", tests.as_uri(),
            "--train_sha256", hashlib.sha256(train.read_bytes()).hexdigest(),
            "--test_set_sha256", hashlib.sha256(tests.read_bytes()).hexdigest()]
    ok(data_sh(work, "", *opts))
    extracted = (work / "downloads" / "speech_commands_v0.02").resolve()
    wavs = table(work / "data" / "dev12" / "wav.scp")
    assert all(Path(p).parent.parent in (extracted, (work / "downloads").resolve()) for p in wavs.values())
    assert len(table(work / "data" / "test12_official" / "text")) == len(LABELS12)
    before = snapshot(work / "data", work / "downloads")
    train.unlink()
    tests.unlink()  # nothing to download from now on
    proc = ok(data_sh(work, "", *opts))
    assert proc.stdout.count("already downloaded and extracted") == 2
    assert snapshot(work / "data", work / "downloads") == before


def test_error_corrupt_download(tmp_path):
    """SPEECHCOMMANDS empty: the archive is downloaded and its SHA-256 checked; a wrong one stops
    stage 1, naming the file, and is set aside so that a re-run downloads it again."""
    work = recipe_copy(tmp_path)
    bad = tmp_path / "mirror" / "speech_commands_v0.02.tar.gz"
    bad.parent.mkdir()
    bad.write_bytes(b"not the corpus" * 100)
    proc = data_sh(work, "", "--train_url", bad.as_uri())
    failed(proc, "downloads/speech_commands_v0.02.tar.gz", "sha256 mismatch")
    assert (work / "downloads" / "speech_commands_v0.02.tar.gz.bad").is_file()
    assert not (work / "downloads" / "speech_commands_v0.02.tar.gz").exists()
    assert not (work / "data").exists()


# ----------------------------------------------------------------------------- configs


def token_list(path, labels):
    """ESPnet 202511's classification token list, as cls.sh's stage 4 writes it: the labels, then <unk>."""
    path.write_text("\n".join([*labels, "<unk>"]) + "\n")
    return path


@pytest.mark.parametrize("config", sorted(p.name for p in (RECIPE / "conf").glob("*.yaml")))
def test_config_builds_a_classifier(config, tmp_path):
    """Each training config builds ESPnet's classification model (SummaryMixing names registered by
    importing espnet2.tasks.cls), which takes a batch of 1-second clips."""
    from espnet2.tasks.cls import CLSTask

    labels = [f"word{i:02d}" for i in range(35)]
    tokens = token_list(tmp_path / "tokens.txt", labels)
    config = RECIPE / "conf" / config
    args = CLSTask.get_parser().parse_args(["--config", str(config), "--token_list", str(tokens)])
    torch.manual_seed(0)
    model = CLSTask.build_model(args)
    assert model.decoder.linear_out.out_features == len(labels)  # one output per label, none for <unk>
    model.eval()
    speech = torch.randn(2, RATE)
    lengths = torch.tensor([RATE, RATE * 3 // 4])
    with torch.no_grad():
        loss, stats, _ = model(speech, lengths, torch.tensor([[3], [7]]), torch.tensor([1, 1]))
        scores = model.score(speech[:1], lengths[:1])
    assert torch.isfinite(loss) and 0.0 <= float(stats["acc"]) <= 1.0
    assert scores.shape == (1, len(labels))
    assert torch.allclose(scores.sum(-1), torch.ones(1), atol=1e-4)


# ----------------------------------------------------------------------------- layout


def test_layout():
    for name in ("run.sh", "local/data.sh", "local/data_prep.py"):
        assert os.access(RECIPE / name, os.X_OK), name
    for name in ("cmd.sh", "path.sh", "db.sh", "utils", "pyscripts", "conf/slurm.conf", "cls.sh"):
        link = RECIPE / name
        assert link.is_symlink(), name
        assert link.exists(), f"{name} -> {os.readlink(link)} does not resolve"
    assert os.readlink(RECIPE / "cls.sh") == "../../TEMPLATE/cls1/cls.sh"
    assert (RECIPE / "cls.sh").resolve() == (TEMPLATE_CLS / "cls.sh").resolve()
    for name in ("train_cls_summarymixing_conformer.yaml", "train_cls_summarymixing_branchformer.yaml",
                 "train_cls_conformer.yaml"):
        assert (RECIPE / "conf" / name).is_file()
