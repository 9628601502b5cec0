"""The LibriSpeech recipes (egs2/librispeech_100/asr1 and egs2/librispeech/asr1) without the corpus:
data preparation on a tiny tree in LibriSpeech's layout (both recipes, both accepted locations, the
combined sets, every inconsistency stopped with the file and line named and nothing half-written), the
download path's checksum and extract-once logic, the options run.sh hands to asr.sh, a dry run of every
YAML under the recipes' conf/, and one optimiser step of every training config scaled down."""

import math
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
import yaml

from recipe_tools import ROOT, TEMPLATE, load_pyscript
from conftest import dry_runs

RECIPES = {name: ROOT / "egs2" / name / "asr1" for name in ("librispeech_100", "librispeech")}
PARTS = {
    "librispeech_100": ["train-clean-100", "dev-clean", "dev-other", "test-clean", "test-other"],
    "librispeech": ["train-clean-100", "train-clean-360", "train-other-500",
                    "dev-clean", "dev-other", "test-clean", "test-other"],
}
COMBINED = {
    "librispeech_100": {"dev": ["dev_clean", "dev_other"]},
    "librispeech": {"dev": ["dev_clean", "dev_other"],
                    "train_960": ["train_clean_100", "train_clean_360", "train_other_500"]},
}
ALL_PARTS = PARTS["librispeech"]
TRAIN_SETS = {"librispeech_100": "train_clean_100", "librispeech": "train_960"}
FS = 16000
PUBLISHED_100 = {"Conformer": ("6.5", "17.3"), "E-Branchformer": ("6.3", "17.0")}
NOT_TRAINED = "not trained yet — no GPU was lent to this session"


# ----------------------------------------------------------------------------- a tiny corpus


def write_part(part_dir: Path, first_speaker: int):
    """Two speakers with one or two chapters each, two or three utterances per chapter (0.1 s each);
    returns {utterance id: words}."""
    rng = np.random.default_rng(first_speaker)
    written = {}
    for s in range(2):
        speaker = str(first_speaker + s)
        for c in range(1 + s):
            chapter = str(1000 + 7 * c + s)
            d = part_dir / speaker / chapter
            d.mkdir(parents=True)
            lines = []
            for u in range(2 + c):
                utt = f"{speaker}-{chapter}-{u:04d}"
                words = f"WORD{u} OF CHAPTER {chapter} SPOKEN BY {speaker}'S VOICE"
                soundfile.write(d / f"{utt}.flac", (0.1 * rng.standard_normal(FS // 10)).astype(np.float32),
                                FS, format="FLAC", subtype="PCM_16")
                lines.append(f"{utt} {words}")
                written[utt] = words
            (d / f"{speaker}-{chapter}.trans.txt").write_text("\n".join(lines[::-1]) + "\n")  # any order
    return written


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """<root>/LibriSpeech/<part>/... for the seven parts (disjoint speakers, as in the corpus)."""
    root = tmp_path_factory.mktemp("librispeech_download_dir")
    words = {}
    for i, part in enumerate(ALL_PARTS):
        words[part] = write_part(root / "LibriSpeech" / part, first_speaker=100 * (i + 1))
    return root, words


def read_table(path: Path):
    lines = path.read_text().splitlines()
    return [tuple(line.split(" ", 1)) for line in lines]


def check_data_dir(d: Path, expected_words):
    """The four files of a prepared part: sorted, consistent, the words as in the transcripts."""
    text = read_table(d / "text")
    assert [u for u, _ in text] == sorted(expected_words)
    assert dict(text) == expected_words
    wav = read_table(d / "wav.scp")
    assert [u for u, _ in wav] == sorted(expected_words)
    for utt, path in wav:
        assert Path(path).is_absolute() and Path(path).name == f"{utt}.flac" and Path(path).is_file()
    utt2spk = dict(read_table(d / "utt2spk"))
    assert all(spk == utt.rsplit("-", 1)[0] for utt, spk in utt2spk.items())  # <speaker>-<chapter>
    spk2utt = read_table(d / "spk2utt")
    assert [s for s, _ in spk2utt] == sorted({s for s in utt2spk.values()})
    assert {s: us.split() for s, us in spk2utt} == {
        s: sorted(u for u, s2 in utt2spk.items() if s2 == s) for s in utt2spk.values()
    }
    load_pyscript("data_dir").validate(d)  # the template's own checks (sorting, spk2utt, same keys)


def data_prep(recipe, *args, check=True):
    proc = subprocess.run([sys.executable, "local/data_prep.py", *map(str, args)], cwd=RECIPES[recipe],
                          capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


# ----------------------------------------------------------------------------- local/data_prep.py


@pytest.mark.parametrize("recipe", RECIPES)
def test_data_prep_writes_sorted_kaldi_dirs(recipe, corpus, tmp_path):
    root, words = corpus
    proc = data_prep(recipe, root, tmp_path / "data", "--parts", *PARTS[recipe])
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == sorted(p.replace("-", "_") for p in PARTS[recipe])
    for part in PARTS[recipe]:
        check_data_dir(tmp_path / "data" / part.replace("-", "_"), words[part])
    assert "dev_clean: 7 utterances, 3 speakers" in proc.stdout


def test_both_recipes_share_one_data_prep():
    a, b = (RECIPES[r] / "local" / "data_prep.py" for r in RECIPES)
    assert a.resolve() == b.resolve()


def test_data_prep_accepts_the_parts_directly(corpus, tmp_path):
    root, words = corpus
    data_prep("librispeech_100", root / "LibriSpeech", tmp_path / "a", "--parts", "dev-other")
    data_prep("librispeech_100", root, tmp_path / "b", "--parts", "dev-other")
    for name in ("wav.scp", "text", "utt2spk", "spk2utt"):
        assert (tmp_path / "a" / "dev_other" / name).read_text() == (tmp_path / "b" / "dev_other" / name).read_text()


def test_data_prep_says_which_location_it_expected(corpus, tmp_path):
    root, _ = corpus
    proc = data_prep("librispeech", tmp_path, tmp_path / "data", "--parts", "dev-clean", "train-clean-360",
                     check=False)
    assert proc.returncode == 1
    assert f"{tmp_path}/LibriSpeech/<part>/" in proc.stderr and f"{tmp_path}/<part>/" in proc.stderr
    assert "dev-clean, train-clean-360" in proc.stderr
    assert not (tmp_path / "data").exists()


def _copy_part(corpus, tmp_path, part="test-clean"):
    root, words = corpus
    src = tmp_path / "src"
    shutil.copytree(root / "LibriSpeech" / "dev-clean", src / "dev-clean")
    shutil.copytree(root / "LibriSpeech" / part, src / part)
    chapter = sorted((src / part).glob("*/*"))[0]
    transcript = next(chapter.glob("*.trans.txt"))
    return src, chapter, transcript


def break_tree(breakage, chapter: Path, transcript: Path):
    """Breaks one chapter of the copied tree; returns (file[:line] and message the error must name)."""
    lines = transcript.read_text().splitlines()
    prefix = f"{chapter.parent.name}-{chapter.name}"
    first = lines[0].split()[0]
    appended = f"{transcript}:{len(lines) + 1}"
    if breakage == "line_without_audio":
        (chapter / f"{first}.flac").unlink()
        return f"{transcript}:1", f"no audio for {first}"
    if breakage == "audio_without_line":
        transcript.write_text("\n".join(lines[1:]) + "\n")
        return str(chapter / f"{first}.flac"), f"no transcript line for {first} in {transcript}"
    if breakage == "missing_transcript":
        transcript.unlink()
        return str(transcript), "not found"
    extra = {
        "line_of_another_chapter": ("9-9-0001 SOME WORDS", f"expected '{prefix}-<utterance> <WORDS>'"),
        "malformed_id": (f"{prefix}-0001-x WORDS", f"expected '{prefix}-<utterance> <WORDS>'"),
        "line_without_words": (f"{prefix}-0999", f"no words for utterance {prefix}-0999"),
        "duplicate_line": (lines[0], "already listed on line 1"),
    }[breakage]
    transcript.write_text("\n".join(lines + [extra[0]]) + "\n")
    return appended, extra[1]


@pytest.mark.parametrize("breakage", [
    "line_without_audio", "audio_without_line", "missing_transcript", "line_of_another_chapter",
    "malformed_id", "line_without_words", "duplicate_line",
])
def test_data_prep_stops_on_inconsistencies_and_writes_nothing(breakage, corpus, tmp_path):
    src, chapter, transcript = _copy_part(corpus, tmp_path)
    out = tmp_path / "data"
    data_prep("librispeech_100", src, out, "--parts", "dev-clean", "test-clean")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    where, message = break_tree(breakage, chapter, transcript)
    # dev-clean comes first and is intact: it is not rewritten either
    proc = data_prep("librispeech_100", src, out, "--parts", "dev-clean", "test-clean", check=False)
    assert proc.returncode == 1
    assert where in proc.stderr and message in proc.stderr, proc.stderr
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in out.iterdir()) == ["dev_clean", "test_clean"]  # no temporary left


# ----------------------------------------------------------------------------- local/data.sh, run.sh


@pytest.fixture
def recipes(tmp_path):
    """Copies of both recipes made with the template's setup.sh (which links cmd.sh and db.sh to the
    template's, as in the repository; the 100 h recipe's data_prep.py links into the 960 h one)."""
    out = {}
    for name, source in RECIPES.items():
        recipe = tmp_path / "egs2" / name / "asr1"
        subprocess.run([TEMPLATE / "setup.sh", recipe], check=True, capture_output=True)
        shutil.copy(source / "run.sh", recipe / "run.sh")
        shutil.rmtree(recipe / "local")  # setup.sh's placeholder data.sh, replaced by the recipe's
        shutil.copytree(source / "local", recipe / "local", symlinks=True)
        shutil.copytree(source / "conf", recipe / "conf", symlinks=True, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("slurm.conf"))  # setup.sh's link to the template's
        out[name] = recipe
    return out


def env(librispeech):
    environ = dict(os.environ)
    environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environ['PATH']}"
    environ["LIBRISPEECH"] = str(librispeech)
    return environ


def data_sh(recipe: Path, librispeech, *args, check=True):
    """Run local/data.sh as the recipe's run.sh calls it (with run.sh's --local_data_opts)."""
    recipe_opts = run_sh_args(recipe).get("local_data_opts", "").split()
    proc = subprocess.run(["local/data.sh", *recipe_opts, *args], cwd=recipe, capture_output=True, text=True,
                          env=env(librispeech), timeout=300)
    if check:
        assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.mark.parametrize("recipe", RECIPES)
@pytest.mark.parametrize("layout", ["download_dir", "parts"])
def test_data_sh_prepares_the_parts_and_the_combined_sets(recipe, layout, corpus, recipes):
    root, words = corpus
    proc = data_sh(recipes[recipe], root if layout == "download_dir" else root / "LibriSpeech")
    assert "Successfully finished" in proc.stdout
    data = recipes[recipe] / "data"
    expected_dirs = [p.replace("-", "_") for p in PARTS[recipe]] + list(COMBINED[recipe])
    assert sorted(p.name for p in data.iterdir()) == sorted(expected_dirs)
    by_dir = {p.replace("-", "_"): words[p] for p in PARTS[recipe]}
    for part in PARTS[recipe]:
        check_data_dir(data / part.replace("-", "_"), words[part])
    for combined, sources in COMBINED[recipe].items():
        union = {u: w for s in sources for u, w in by_dir[s].items()}
        check_data_dir(data / combined, union)
    assert not (recipes[recipe] / "downloads").exists()


def test_data_sh_names_the_expected_layout(recipes, tmp_path):
    proc = data_sh(recipes["librispeech"], tmp_path / "empty", check=False)
    assert proc.returncode != 0
    assert "LibriSpeech/<part>/" in proc.stderr and "train-clean-100" in proc.stderr
    assert not (recipes["librispeech"] / "data" / "dev").exists()


def test_the_100h_data_sh_is_the_960h_one(recipes):
    script = RECIPES["librispeech_100"] / "local" / "data.sh"
    assert script.is_symlink()
    assert script.resolve() == (RECIPES["librispeech"] / "local" / "data.sh").resolve()


@pytest.mark.parametrize("parts, message", [
    ("dev-clean,train-clean-999", "'train-clean-999', which is not a LibriSpeech part"),
    (" , ", "--parts is empty"),
])
def test_data_sh_rejects_bad_parts(recipes, corpus, parts, message):
    root, _ = corpus
    recipe = recipes["librispeech"]
    proc = data_sh(recipe, root, "--parts", parts, check=False)
    assert proc.returncode == 2
    assert message in proc.stderr and "train-other-500" in proc.stderr  # names the valid parts
    assert not (recipe / "data").exists()


def test_data_sh_prepares_only_the_parts_asked_for(recipes, corpus):
    root, words = corpus
    recipe = recipes["librispeech"]
    data_sh(recipe, root, "--parts", "dev-clean test-other")
    assert sorted(p.name for p in (recipe / "data").iterdir()) == ["dev_clean", "test_other"]
    check_data_dir(recipe / "data" / "test_other", words["test-other"])


def test_download_refuses_an_archive_with_the_wrong_checksum(recipes, tmp_path):
    mirror = tmp_path / "mirror"
    (mirror / "LibriSpeech" / "train-clean-100").mkdir(parents=True)
    with tarfile.open(mirror / "train-clean-100.tar.gz", "w:gz") as tar:
        tar.add(mirror / "LibriSpeech", arcname="LibriSpeech")
    recipe = recipes["librispeech_100"]
    proc = data_sh(recipe, "", "--url_base", f"file://{mirror}", check=False)
    assert proc.returncode != 0
    assert "sha256 mismatch" in proc.stderr and "d4ddd1d5a6ab3030" in proc.stderr
    downloads = recipe / "downloads"
    assert (downloads / "train-clean-100.tar.gz.bad").is_file()
    assert not (downloads / "train-clean-100.tar.gz").exists() and not (downloads / "LibriSpeech").exists()


def test_download_is_skipped_once_extracted(recipes, corpus):
    root, words = corpus
    recipe = recipes["librispeech_100"]
    downloads = recipe / "downloads"
    shutil.copytree(root / "LibriSpeech", downloads / "LibriSpeech")
    for part in PARTS["librispeech_100"]:
        (downloads / f".{part}.tar.gz.extracted").touch()
    # an unreachable mirror: any download attempt would fail
    proc = data_sh(recipe, "", "--url_base", "file:///nonexistent/mirror")
    assert proc.stdout.count("already downloaded and extracted") == len(PARTS["librispeech_100"])
    check_data_dir(recipe / "data" / "test_other", words["test-other"])


def run_sh_args(recipe: Path, *args):
    """The arguments run.sh hands to asr.sh (asr.sh replaced by a stub that prints them)."""
    (recipe / "asr.sh").unlink()
    (recipe / "asr.sh").write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@"\n')
    (recipe / "asr.sh").chmod(0o755)
    proc = subprocess.run(["./run.sh", *args], cwd=recipe, capture_output=True, text=True, timeout=60, check=True)
    argv = proc.stdout.splitlines()
    options = {}
    for i, a in enumerate(argv):  # the last value of each option wins, as in asr.sh
        if a.startswith("--") and i + 1 < len(argv):
            options[a[2:]] = argv[i + 1]
    return options


@pytest.mark.parametrize("recipe", RECIPES)
def test_run_sh_passes_espnets_sets_and_options(recipe, recipes):
    options = run_sh_args(recipes[recipe])
    assert options["train_set"] == TRAIN_SETS[recipe]
    assert options["valid_set"] == "dev"
    assert options["test_sets"] == "test_clean test_other dev_clean dev_other"
    assert options["token_type"] == "bpe" and options["nbpe"] == "5000"
    assert options["bpe_train_text"] == options["lm_train_text"] == f"data/{TRAIN_SETS[recipe]}/text"
    assert options["max_wav_duration"] == "30"
    assert options["speed_perturb_factors"] == "0.9 1.0 1.1"
    assert options["asr_config"] == "conf/train_asr_summarymixing.yaml"
    assert options["inference_config"] == "conf/decode_asr.yaml"
    assert options["lm_config"] == "conf/train_lm_transformer.yaml"
    assert "ngpu" not in options  # the caller's (asr.sh: auto)
    for given in (["--use_lm", "true"], ["--use_lm=true"], ["--use-lm", "true", "--stage", "12"]):
        assert run_sh_args(recipes[recipe], *given)["inference_config"] == "conf/decode_asr_lm.yaml"
    for given in (["--use_lm", "true", "--use_lm", "false"], ["--lm_args", "--use_lm=true"]):
        assert run_sh_args(recipes[recipe], *given)["inference_config"] == "conf/decode_asr.yaml"
    assert run_sh_args(recipes[recipe], "--use_lm", "true", "--inference_config", "x.yaml")["inference_config"] == "x.yaml"
    assert run_sh_args(recipes[recipe], "--ngpu", "4")["ngpu"] == "4"


# ----------------------------------------------------------------------------- configs

# every YAML under the recipes' conf/ (a link, conf/train_asr_summarymixing.yaml, is run as its target)
CONF_FILES = sorted(p for r in RECIPES.values() for p in (r / "conf").rglob("*.yaml") if not p.is_symlink())
CONF_IDS = [str(p.relative_to(ROOT / "egs2")) for p in CONF_FILES]
TRAIN_ASR = [p for p in CONF_FILES if p.name.startswith("train_asr")]


@pytest.fixture(scope="module")
def token_list(tmp_path_factory):
    path = tmp_path_factory.mktemp("tokens") / "tokens.txt"
    path.write_text("\n".join(["<blank>", "<unk>", *[f"▁{c}" for c in "ABCDEFGHIJ"], *"KLMNOP", "<sos/eos>"]) + "\n")
    return path


def test_the_recipes_have_the_configs_they_name():
    for recipe in RECIPES.values():
        default = recipe / "conf" / "train_asr_summarymixing.yaml"
        # a link into the recipe's own conf/tuning/ (whose files may themselves link to the repository's conf/)
        assert default.is_symlink() and Path(os.readlink(default)).parent == Path("tuning")
        assert yaml.safe_load(default.read_text())["encoder"] == "summarymixing_conformer"
        for name in ("decode_asr.yaml", "decode_asr_lm.yaml", "train_lm_transformer.yaml", "slurm.conf"):
            assert (recipe / "conf" / name).is_file()
        encoders = {yaml.safe_load(p.read_text())["encoder"] for p in (recipe / "conf" / "tuning").glob("*.yaml")}
        streaming = {"contextual_block_conformer"} if recipe == RECIPES["librispeech_100"] else set()
        assert encoders == {"conformer", "branchformer", "e_branchformer", "summarymixing_conformer",
                            "summarymixing_branchformer", "summarymixing_e_branchformer", *streaming}


@pytest.fixture(scope="module")
def dry_run_results(token_list, tmp_path_factory):
    """{config: (process-like result, saved config)}: every training config (ASR and LM) dry-run by
    espnet2.bin.asr_train / lm_train, all in one fresh interpreter."""
    tmp = tmp_path_factory.mktemp("dry_runs")
    configs = [p for p in CONF_FILES if p.name.startswith(("train_asr", "train_lm"))]
    jobs = [(c, token_list, tmp / f"exp{i}", "lm" if c.name.startswith("train_lm") else "asr")
            for i, c in enumerate(configs)]
    return dict(zip(configs, dry_runs(jobs, tmp)))


def _dry_run_in_slow_tier(config):
    """A training config is dry-run by ESPnet in a fresh interpreter (slow tier); a decoding config is
    parsed here (quick)."""
    trained = config.name.startswith(("train_asr", "train_lm"))
    return pytest.param(config, marks=[pytest.mark.slow] if trained else [])


@pytest.mark.parametrize("config", [_dry_run_in_slow_tier(c) for c in CONF_FILES], ids=CONF_IDS)
def test_every_recipe_yaml_runs_through_espnet(config, request, tmp_path):
    source = yaml.safe_load(config.read_text())
    if config.name.startswith(("train_asr", "train_lm")):
        proc, saved = request.getfixturevalue("dry_run_results")[config]  # not set up for a decoding config
        assert proc.returncode == 0, proc.stderr[-4000:]
    if config.name.startswith("train_asr"):
        assert saved["encoder"] == source["encoder"] and saved["encoder_conf"] == source["encoder_conf"]
        assert "no effect" not in proc.stderr  # no attention-only keys in our encoders' configs
    elif config.name.startswith("train_lm"):
        assert saved["lm"] == source["lm"] and saved["lm_conf"] == source["lm_conf"]
    else:  # a decoding config: every key must be an option of ESPnet's asr_inference
        from espnet2.bin.asr_inference import get_parser

        args = get_parser().parse_args(["--config", str(config), "--output_dir", str(tmp_path),
                                        "--data_path_and_name_and_type", "wav.scp,speech,sound"])
        assert all(getattr(args, k) == v for k, v in source.items())
        assert source["beam_size"] >= 10 and 0 < source["ctc_weight"] < 1
        assert (source["lm_weight"] > 0) == config.name.endswith("_lm.yaml")


STREAMING_TWIN = {"contextual_block_conformer": "summarymixing_conformer"}


def _pairs():
    out = []
    for recipe in RECIPES.values():
        for ours in sorted((recipe / "conf" / "tuning").glob("train_asr_summarymixing_*.yaml")):
            header = " ".join(line[1:].strip() for line in ours.read_text().splitlines() if line.startswith("#"))
            names = re.findall(r"Pairs with (train_asr_\S+?\.yaml)", header)
            out.append((ours, [recipe / "conf" / "tuning" / n for n in names]))
    return out


@pytest.mark.parametrize("ours,baselines", _pairs(), ids=[str(o.relative_to(ROOT / "egs2")) for o, _ in _pairs()])
def test_each_summarymixing_config_trains_side_by_side_with_its_baseline(ours, baselines):
    assert len(baselines) == 1 and baselines[0].is_file(), baselines
    base = baselines[0]
    assert ours.name in base.read_text()  # the baseline names its pair too
    a, b = yaml.safe_load(ours.read_text()), yaml.safe_load(base.read_text())
    strip = lambda c: {k: v for k, v in c.items() if k not in ("encoder", "encoder_conf")}  # noqa: E731
    assert strip(a) == strip(b)
    # ESPnet's streaming Conformer pairs with the streaming (chunk-trained) SummaryMixing Conformer
    assert a["encoder"] == STREAMING_TWIN.get(b["encoder"], "summarymixing_" + b["encoder"])
    if b["encoder"] in STREAMING_TWIN:
        assert a["encoder_conf"]["conv_context"] == "chunk" and a["encoder_conf"]["dynamic_chunk_training"]
        latency = b["encoder_conf"]["hop_size"] + b["encoder_conf"]["look_ahead"]
        assert f"--chunk_size {latency}" in ours.read_text()  # the matched-latency decoding is named
        assert a["encoder_conf"]["chunk_size_range"][1] >= latency
    shared = set(a["encoder_conf"]) & set(b["encoder_conf"]) - {"pos_enc_layer_type"}
    assert {k: a["encoder_conf"][k] for k in shared} == {k: b["encoder_conf"][k] for k in shared}
    assert a["use_amp"] is True


def test_the_100h_configs_are_the_repository_canonical_ones_with_mixed_precision():
    for canonical in sorted((ROOT / "conf" / "tuning").glob("*.yaml")):
        recipe = yaml.safe_load((RECIPES["librispeech_100"] / "conf" / "tuning" / canonical.name).read_text())
        assert recipe.pop("use_amp") is True
        expected = yaml.safe_load(canonical.read_text())
        expected.pop("use_amp", None)
        assert recipe == expected


def test_the_960h_summarymixing_models_follow_the_paper():
    tuning = RECIPES["librispeech"] / "conf" / "tuning"
    conformer = yaml.safe_load((tuning / "train_asr_summarymixing_conformer_e12_size512_mlp2048_heads8.yaml").read_text())
    assert {k: conformer["encoder_conf"][k] for k in ("num_blocks", "linear_units", "summary_heads", "output_size")} == {
        "num_blocks": 12, "linear_units": 2048, "summary_heads": 8, "output_size": 512}
    branch = yaml.safe_load((tuning / "train_asr_summarymixing_branchformer_e18_size512_cgmlp3072.yaml").read_text())
    enc = branch["encoder_conf"]
    assert (enc["output_size"], enc["num_blocks"], enc["cgmlp_linear_units"], enc["cgmlp_conv_kernel"],
            enc["dropout_rate"], enc["summary_heads"]) == (512, 18, 3072, 31, 0.1, 1)
    for c in (conformer, branch):
        assert c["model_conf"]["ctc_weight"] == 0.3 and c["decoder_conf"]["num_blocks"] == 6
    assert yaml.safe_load((RECIPES["librispeech"] / "conf" / "decode_asr.yaml").read_text())["ctc_weight"] == 0.4


# ----------------------------------------------------------------------------- one training step


def scaled_down(config: Path, out: Path) -> Path:
    """The config with a tiny model: 2 blocks of 32, 64 units, a 1-block decoder (LM: 1 layer)."""
    c = yaml.safe_load(config.read_text())
    if "encoder_conf" in c:
        e = c["encoder_conf"]
        e.update(output_size=32, num_blocks=2)
        for key in ("linear_units", "cgmlp_linear_units"):
            if key in e:
                e[key] = 64
        c["decoder_conf"].update(num_blocks=1, linear_units=64)
    else:
        c["lm_conf"].update(embed_unit=16, att_unit=32, unit=64, layer=1)
    out.write_text(yaml.safe_dump(c))
    return out


TRAIN_CONFIGS = TRAIN_ASR + [r / "conf" / "train_lm_transformer.yaml" for r in RECIPES.values()]


@pytest.mark.slow  # an ESPnet training step per config
@pytest.mark.parametrize("config", TRAIN_CONFIGS, ids=[str(p.relative_to(ROOT / "egs2")) for p in TRAIN_CONFIGS])
def test_one_training_step_of_each_config_scaled_down(config, token_list, tmp_path):
    lm = config.name.startswith("train_lm")
    if lm:
        from espnet2.tasks.lm import LMTask as Task
    else:
        from espnet2.tasks.asr import ASRTask as Task
    small = scaled_down(config, tmp_path / "small.yaml")
    args = Task.get_parser().parse_args(["--config", str(small), "--token_list", str(token_list),
                                         "--output_dir", str(tmp_path / "exp"), "--ngpu", "0"])
    torch.manual_seed(0)
    model = Task.build_model(args)
    model.train()
    (optimizer,) = Task.build_optimizers(args, model)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    ntok = len(token_list.read_text().split())
    text = torch.randint(2, ntok - 1, (2, 7))
    text[1, 5:] = -1  # padding (ignore_id)
    text_lengths = torch.tensor([7, 5])
    if lm:
        loss, stats, _ = model(text.clamp(min=0), text_lengths)
    else:
        speech = 0.1 * torch.randn(2, FS)
        speech_lengths = torch.tensor([FS, FS * 3 // 4])
        loss, stats, _ = model(speech, speech_lengths, text, text_lengths)
    assert math.isfinite(loss.item())
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    trained = [n for n, p in model.named_parameters() if p.grad is not None]
    assert trained
    unchanged = [n for n in trained if torch.equal(before[n], dict(model.named_parameters())[n].detach())]
    assert not unchanged, unchanged
    if not lm:  # every part of the model learnt: encoder, decoder, CTC
        assert {n.split(".")[0] for n in trained} >= {"encoder", "decoder", "ctc"}


# ----------------------------------------------------------------------------- README


@pytest.mark.parametrize("recipe", RECIPES)
def test_readme_keeps_published_and_our_numbers_apart(recipe):
    readme = (RECIPES[recipe] / "README.md").read_text()
    published, ours = readme.split("### Ours", 1)
    if recipe == "librispeech_100":
        for model, (clean, other) in PUBLISHED_100.items():
            assert any(model in line and clean in line and other in line for line in published.splitlines())
    else:
        for row in ("| 2.8 | 2.1 | 5.1 |", "| 2.8 | 2.3 | 5.4 |", "| 2.9 | 2.2 | 5.1 |"):
            assert row in published
    assert NOT_TRAINED in ours
    for needle in ("--ngpu 4", "cmd_backend=slurm ./run.sh --ngpu 8 --num_nodes 2", "conf/slurm.conf",
                   "use_amp", "--asr_args \"--use_amp true\"", "accum_grad", "exp/", "data/", "dump/"):
        assert needle in readme, needle


@pytest.mark.parametrize("given", [["--local_data_opts", "--url_base file:///mirror"],
                                   ["--local_data_opts=--url_base file:///mirror"]])
def test_100h_run_sh_keeps_its_parts_with_the_users_local_data_opts(recipes, given):
    options = run_sh_args(recipes["librispeech_100"], *given, "--stage", "2")
    assert options["local_data_opts"] == (
        "--parts train-clean-100,dev-clean,dev-other,test-clean,test-other --url_base file:///mirror")
    assert options["stage"] == "2"
    assert "local_data_opts" not in run_sh_args(recipes["librispeech"])  # 960 h: data.sh's defaults
