"""The AN4 recipe end to end on a shrunken corpus: a few real utterances (FLAC, WAV and SPHERE), a tiny
model trained for one epoch, every stage from data preparation to packing, then an interrupted
training resumed, re-runs, and a broken input stopped with a message that names the stage and file."""

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

from recipe_tools import ROOT, TEMPLATE

AN4 = ROOT.parent / "shared" / "data" / "an4"
AN4_RECIPE = ROOT / "egs2" / "an4" / "asr1"
# conftest: without ../shared/data/an4, skipped with the reason (failed in CI); a recipe run: slow tier
pytestmark = [pytest.mark.needs_data("an4", "etc"), pytest.mark.slow]

N_TRAIN, N_DEV, N_TEST = 14, 4, 4

TINY_ASR = {
    "encoder": "summarymixing_conformer",
    "encoder_conf": dict(output_size=32, linear_units=64, num_blocks=2, cnn_module_kernel=7, input_layer="conv2d"),
    "decoder": "transformer",
    "decoder_conf": dict(attention_heads=2, linear_units=64, num_blocks=1),
    "model_conf": dict(ctc_weight=0.3, lsm_weight=0.1),
    "frontend_conf": dict(n_fft=512, win_length=400, hop_length=160, n_mels=40),
    "optim": "adam",
    "optim_conf": dict(lr=0.002),
    "batch_type": "numel",
    "batch_bins": 400000,
    "max_epoch": 1,
    "num_workers": 0,
    "best_model_criterion": [["valid", "acc", "max"]],
    "keep_nbest_models": 2,
}
TINY_LM = {
    "lm": "seq_rnn",
    "lm_conf": dict(unit=32, nlayers=1),
    "optim": "adam",
    "optim_conf": dict(lr=0.002),
    "batch_type": "folded",
    "batch_size": 8,
    "max_epoch": 1,
    "num_workers": 0,
    "best_model_criterion": [["valid", "loss", "min"]],
    "keep_nbest_models": 1,
}
# maxlenratio -8: at most 8 tokens (a one-epoch model seldom ends a hypothesis: without it the beam search
# runs as many steps as encoder frames, the same code path)
TINY_DECODE = dict(beam_size=2, ctc_weight=0.3, lm_weight=0.3, maxlenratio=-8)


def write_sphere(path: Path, samples: np.ndarray, rate: int) -> None:
    """A NIST SPHERE file as in the official AN4 archive (16-bit little-endian PCM)."""
    fields = [
        "NIST_1A", "   1024", f"sample_count -i {len(samples)}", f"sample_rate -i {rate}", "channel_count -i 1",
        "sample_n_bytes -i 2", "sample_byte_format -s2 01", "sample_coding -s3 pcm", "end_head",
    ]
    header = ("\n".join(fields) + "\n").encode("ascii").ljust(1024, b" ")
    path.write_bytes(header + samples.astype("<i2").tobytes())


def shrunken_an4(root: Path) -> Path:
    """The first utterances of AN4 in its own layout, as .flac, .wav and .sph files."""
    for part, wav, count in (("train", "an4_clstk", N_TRAIN + N_DEV), ("test", "an4test_clstk", N_TEST)):
        lines = (AN4 / "etc" / f"an4_{part}.transcription").read_text().splitlines()[:count]
        (root / "etc").mkdir(parents=True, exist_ok=True)
        (root / "etc" / f"an4_{part}.transcription").write_text("\n".join(lines) + "\n")
        for i, line in enumerate(lines):
            name = line.rsplit("(", 1)[1].rstrip(")")
            spk = name.split("-")[1]
            src = AN4 / "wav" / wav / spk / f"{name}.flac"
            dest = root / "wav" / wav / spk
            dest.mkdir(parents=True, exist_ok=True)
            samples, rate = soundfile.read(src, dtype="int16")
            if i % 3 == 0:
                write_sphere(dest / f"{name}.sph", samples, rate)
            elif i % 3 == 1:
                soundfile.write(dest / f"{name}.wav", samples, rate, subtype="PCM_16")
            else:
                shutil.copy(src, dest / f"{name}.flac")
    return root


def make_recipe(tmp: Path) -> Path:
    """A copy of the AN4 recipe made with the template's setup.sh (cmd.sh and db.sh: links to the
    template's, as in the repository), plus tiny configs."""
    recipe = tmp / "egs2" / "an4" / "asr1"
    subprocess.run([TEMPLATE / "setup.sh", recipe], check=True, capture_output=True)
    shutil.copy(AN4_RECIPE / "run.sh", recipe / "run.sh")
    shutil.copytree(AN4_RECIPE / "local", recipe / "local", dirs_exist_ok=True)
    (recipe / "conf" / "tiny_asr.yaml").write_text(yaml.safe_dump(TINY_ASR))
    (recipe / "conf" / "tiny_lm.yaml").write_text(yaml.safe_dump(TINY_LM))
    (recipe / "conf" / "tiny_decode.yaml").write_text(yaml.safe_dump(TINY_DECODE))
    return recipe


def env(an4: Path):
    environ = dict(os.environ)
    environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environ['PATH']}"
    environ["AN4"] = str(an4)
    return environ


OPTIONS = [
    "--local_data_opts", f"--ndev_utt {N_DEV}", "--speed_perturb_factors", "0.9 1.0 1.1",
    "--token_type", "bpe", "--nbpe", "40", "--nj", "2", "--inference_nj", "2", "--ngpu", "0",
    "--asr_config", "conf/tiny_asr.yaml", "--inference_config", "conf/tiny_decode.yaml",
    "--use_lm", "true", "--lm_config", "conf/tiny_lm.yaml", "--asr_tag", "tiny",
]


def run_recipe(recipe, an4, *args, check=True):
    proc = subprocess.run(["./run.sh", *OPTIONS, *args], cwd=recipe, capture_output=True, text=True,
                          env=env(an4), timeout=1200)
    if check:
        assert proc.returncode == 0, f"{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}"
    return proc


def keys(path: Path):
    return [line.split(maxsplit=1)[0] for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("an4_recipe")
    an4 = shrunken_an4(tmp / "an4")
    recipe = make_recipe(tmp)
    proc = run_recipe(recipe, an4)
    return recipe, an4, proc


def test_every_stage_runs_and_reports_its_time(full_run):
    recipe, _, proc = full_run
    exp = recipe / "exp" / "asr_tiny"
    stages = [line.split("\t") for line in (exp / "stage_times.tsv").read_text().splitlines()]
    assert [int(s[0]) for s in stages] == [1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14]
    assert all(int(s[2]) >= 0 for s in stages)
    assert "Successfully finished" in proc.stdout
    assert "epoch 1/1, train loss" in proc.stdout  # progress while training


def test_data_preparation_and_speed_perturbation(full_run):
    recipe, _, _ = full_run
    data = recipe / "data"
    assert len(keys(data / "train_nodev" / "text")) == N_TRAIN
    assert len(keys(data / "train_dev" / "text")) == N_DEV
    assert len(keys(data / "test" / "text")) == N_TEST
    sp = keys(data / "train_nodev_sp" / "text")
    assert len(sp) == 3 * N_TRAIN
    assert {k.split("-")[0] for k in sp if k.startswith("sp")} == {"sp0.9", "sp1.1"}
    # formatted audio: one flac per utterance, 0.9 lasts 1/0.9 as long as 1.0
    dump = recipe / "dump" / "raw"
    n = dict(line.split() for line in (dump / "org" / "train_nodev_sp" / "utt2num_samples").read_text().splitlines())
    utt = keys(data / "train_nodev" / "text")[0]
    assert abs(int(n[f"sp0.9-{utt}"]) - int(n[utt]) / 0.9) <= 2
    wavs = dict(line.split(maxsplit=1) for line in (dump / "test" / "wav.scp").read_text().splitlines())
    assert len(wavs) == N_TEST and all(p.endswith(".flac") and Path(p).is_file() for p in wavs.values())


def test_tokens_statistics_and_training(full_run):
    recipe, _, _ = full_run
    tokens = (recipe / "data" / "en_token_list" / "bpe_unigram40" / "tokens.txt").read_text().split()
    assert tokens[:2] == ["<blank>", "<unk>"] and tokens[-1] == "<sos/eos>"
    stats = recipe / "exp" / "asr_stats_raw_en_bpe40_sp"
    assert (stats / "train" / "feats_stats.npz").is_file()
    assert len(keys(stats / "train" / "speech_shape")) == len(keys(recipe / "dump" / "raw" / "train_nodev_sp" / "text"))
    exp = recipe / "exp" / "asr_tiny"
    config = yaml.safe_load((exp / "config.yaml").read_text())
    assert config["encoder"] == "summarymixing_conformer"
    assert config["normalize"] == "global_mvn"
    assert config["normalize_conf"]["stats_file"] == str(stats / "train" / "feats_stats.npz").replace(f"{recipe}/", "")
    assert config["frontend_conf"]["n_mels"] == 40 and config["frontend_conf"]["fs"] == "16k"
    assert (exp / "valid.acc.ave.pth").exists() and (exp / "1epoch.pth").exists()
    assert int((exp / "train_time.txt").read_text()) > 0
    command = (exp / "run_command.txt").read_text()  # the exact asr.sh command, for RESULTS.md
    assert command.startswith("./asr.sh ") and "--asr_config conf/tiny_asr.yaml" in command
    assert (recipe / "exp" / "lm_tiny_lm_en_bpe" / "valid.loss.ave.pth").exists()


def test_decoding_scoring_and_results(full_run):
    recipe, _, proc = full_run
    exp = recipe / "exp" / "asr_tiny"
    decode = sorted(exp.glob("decode_*"))
    assert len(decode) == 1 and "_lm_" in decode[0].name
    for test_set, n in (("train_dev", N_DEV), ("test", N_TEST)):
        d = decode[0] / test_set
        assert keys(d / "text") == keys(recipe / "dump" / "raw" / test_set / "text")
        assert len(list((d / "logdir").glob("asr_inference.*.log"))) == 2  # --inference_nj 2
        for metric in ("wer", "cer", "ter"):
            scores = yaml.safe_load((d / f"score_{metric}" / "scores.json").read_text())
            assert scores["Snt"] == n and scores["Wrd"] > 0
            assert abs(scores["Err"] - scores["Sub"] - scores["Del"] - scores["Ins"]) < 1e-6
    results = (exp / "RESULTS.md").read_text()
    for words in ("## Environments", "### WER", "### CER", "### TER", "|dataset|Snt|Wrd|Corr|Sub|Del|Ins|Err|S.Err|",
                  f"/test|{N_TEST}|", "parameters", "training time", "|11|training|", "|13|scoring "):
        assert words in results
    assert "### WER" in proc.stdout  # the tables are shown at the end of the run


def test_packed_model_decodes_in_a_fresh_interpreter(full_run, tmp_path):
    recipe, an4, _ = full_run
    exp = recipe / "exp" / "asr_tiny"
    with zipfile.ZipFile(exp / "model.zip") as z:
        names = z.namelist()
    assert "meta.yaml" in names and any(n.endswith("feats_stats.npz") for n in names)
    assert any(n.endswith("bpe.model") for n in names)
    wav = next(iter((recipe / "dump" / "raw" / "test" / "wav.scp").read_text().split()[1:2]))
    script = (
        "import sys, soundfile\n"
        "from espnet2.bin.asr_inference import Speech2Text\n"
        "s2t = Speech2Text.from_pretrained(sys.argv[1], beam_size=2, maxlenratio=-8)\n"
        "speech, _ = soundfile.read(sys.argv[2])\n"
        "print('HYP', repr(s2t(speech)[0][0]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, exp / "model.zip", wav], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "HYP " in proc.stdout


def test_stages_rerun_and_an_interrupted_training_resumes(full_run):
    recipe, an4, _ = full_run
    exp = recipe / "exp" / "asr_tiny"
    # formatting again keeps the audio already formatted
    formatted = recipe / "dump" / "raw" / "test" / "data"
    mtimes = {p: p.stat().st_mtime_ns for p in formatted.iterdir()}
    run_recipe(recipe, an4, "--stage", "3", "--stop_stage", "3")
    assert {p: p.stat().st_mtime_ns for p in formatted.iterdir()} == mtimes
    # decoding and scoring again give the same hypotheses and tables (of the test set: the one compared)
    decode = next(exp.glob("decode_*"))
    before = [(decode / "test" / f).read_text() for f in ("text", "score_cer/scores.json")]
    run_recipe(recipe, an4, "--stage", "12", "--stop_stage", "13", "--test_sets", "test")
    assert [(decode / "test" / f).read_text() for f in ("text", "score_cer/scores.json")] == before
    # a training stopped after epoch 1 of 2 goes on from its checkpoint when stage 11 is run again
    first = (exp / "1epoch.pth").stat().st_mtime_ns
    proc = run_recipe(recipe, an4, "--stage", "11", "--stop_stage", "11", "--asr_args", "--max_epoch 2",
                      "--asr_exp", str(exp))
    assert "resuming from" in proc.stdout
    assert (exp / "2epoch.pth").exists() and (exp / "1epoch.pth").stat().st_mtime_ns == first
    log = (exp / "train.log").read_text()
    assert "2epoch results" in log and "1epoch results" not in log
    assert "epoch 2/2, train loss" in proc.stdout  # the progress line counts to --asr_args' max_epoch


def test_broken_audio_stops_stage_3_naming_the_file_and_keeps_earlier_outputs(tmp_path):
    an4 = shrunken_an4(tmp_path / "an4")
    test_dir = an4 / "wav" / "an4test_clstk"
    victim = sorted(p for p in test_dir.glob("*/*") if p.suffix == ".flac")[0]
    victim.write_bytes(b"not audio at all")
    recipe = make_recipe(tmp_path)
    proc = run_recipe(recipe, an4, "--stop_stage", "4", check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert str(victim) in out and "stage 3" in out
    assert len(keys(recipe / "data" / "test" / "text")) == N_TEST  # stage 1's output is kept
    formatted = recipe / "dump" / "raw" / "org" / "train_nodev_sp" / "wav.scp"
    assert len(keys(formatted)) == 3 * N_TRAIN  # the sets formatted before the broken one are kept
