"""Classification in batches: every clip gets the probabilities of a batch of one (ESPnet's
``Classification``), a too-short clip the error it gets alone; the command prints in the order given
whatever the batch size; the recipes' batched ``cls_inference`` writes ESPnet's files with ESPnet's
figures."""

import importlib.util

import numpy as np
import pytest
import soundfile
import torch

from conftest import ROOT, command
from test_command_matrix import LABELS, make_classifier

from espnet_summarymixing.classify import Classifier, per_clip_frontend
from espnet_summarymixing.cli.loop import too_short

# clip lengths in samples at 16 kHz: different lengths (padding), one too short for the conv2d subsampling
LENGTHS = [16000, 7000, 23000, 12345, 300, 9000, 16000]
SHORT = LENGTHS.index(300)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_classifier(tmp_path_factory.mktemp("classifier"))


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(0)
    paths = []
    for i, n in enumerate(LENGTHS):
        t = np.arange(n) / 16000
        wave = 0.3 * np.sin(2 * np.pi * (200 + 90 * i) * t) + 0.05 * rng.standard_normal(n)
        paths.append(root / f"clip{i}.wav")
        soundfile.write(paths[-1], wave.astype(np.float32), 16000)
    return paths


def _waves(clips):
    return [torch.tensor(soundfile.read(p, dtype="float32")[0]) for p in clips]


@pytest.mark.parametrize("batch_size", [1, 3, 32])
def test_batches_give_each_clip_its_own_probabilities(model_dir, clips, batch_size):
    classifier = Classifier(str(model_dir))
    waves = _waves(clips)
    got = classifier.batch_scores(waves, batch_size)
    for i, wave in enumerate(waves):
        if i == SHORT:
            with pytest.raises(Exception) as alone:
                classifier.scores(wave)
            assert type(got[i]) is type(alone.value) and too_short(got[i]), got[i]
        else:
            torch.testing.assert_close(got[i], classifier.scores(wave), rtol=0, atol=2e-6)


def test_features_of_a_batch_are_each_clips_own(model_dir, clips):
    """Without per_clip_frontend a clip's last frames would see the batch's padding instead of ESPnet's
    reflection of its own end: the check above depends on it."""
    classifier = Classifier(str(model_dir))
    waves = _waves(clips)[:2]
    speech = torch.zeros(2, waves[0].numel())
    speech[1, : waves[1].numel()] = waves[1]
    lengths = torch.tensor([w.numel() for w in waves])
    frontend = classifier.model.frontend
    with torch.no_grad():
        alone, _ = frontend(waves[1][None], lengths[1:])
        padded, _ = frontend(speech, lengths)
        with per_clip_frontend(classifier.model):
            own, own_lengths = frontend(speech, lengths)
    n = alone.size(1)
    torch.testing.assert_close(own[1, :n], alone[0], rtol=0, atol=0)
    assert own_lengths.tolist() == [padded.size(1), n] and not own[1, n:].any()
    assert not torch.allclose(padded[1, n - 1], alone[0, n - 1])  # the last frame differs when padded
    assert "forward" not in frontend.__dict__  # put back


def test_the_command_prints_the_same_in_the_given_order_whatever_the_batch(model_dir, clips, tmp_path):
    missing = tmp_path / "missing.wav"
    files = [*clips[:3], missing, *clips[3:]]
    outputs = [command("classify", "--model", model_dir, "--top_k", "3", "--batch_size", str(b), *files)
               for b in (1, 2, 64)]
    for proc in outputs:
        assert proc.returncode == 1
        assert [line.split(" → ")[0] for line in proc.stdout.splitlines()] == \
            [str(p) for p in files if p not in (missing, clips[SHORT])]
        assert f"{clips[SHORT]}: error: too short" in proc.stderr and f"{missing}: error: no such file" in proc.stderr
        assert "2 of 8 files failed" in proc.stderr
    assert outputs[0].stdout == outputs[1].stdout == outputs[2].stdout
    bad = command("classify", "--model", model_dir, "--batch_size", "0", *clips)
    assert bad.returncode == 2 and "--batch_size 0: must be at least 1" in bad.stderr


def _recipe_cls_inference():
    path = ROOT / "egs2" / "TEMPLATE" / "cls1" / "pyscripts" / "cls_inference.py"
    spec = importlib.util.spec_from_file_location("recipe_cls_inference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _lines(path):
    return dict((line.split(" ", 1) + [""])[:2] for line in path.read_text().splitlines())


@pytest.mark.parametrize("all_probabilities", ["true", "false"])
def test_recipe_inference_writes_espnets_files_with_espnets_figures(model_dir, clips, tmp_path, all_probabilities):
    from espnet2.bin import cls_inference as espnet

    scp = tmp_path / "wav.scp"
    scp.write_text("".join(f"clip{i} {p}\n" for i, p in enumerate(clips)))
    common = ["--ngpu", "0", "--data_path_and_name_and_type", f"{scp},speech,sound",
              "--classification_train_config", str(model_dir / "config.yaml"),
              "--classification_model_file", str(model_dir / "valid.acc.ave.pth"),
              "--output_all_probabilities", all_probabilities]
    espnet.main(["--batch_size", "1", "--output_dir", str(tmp_path / "espnet"), *common])
    assert _recipe_cls_inference().main(["--batch_size", "3", "--output_dir", str(tmp_path / "ours"), *common]) == 0
    for name in ("text", "token", "score"):
        want = _lines(tmp_path / "espnet" / "prediction" / name)
        got = _lines(tmp_path / "ours" / "prediction" / name)
        assert sorted(got) == sorted(want) == sorted(f"clip{i}" for i in range(len(clips))), name
        for key in want:
            if name == "score":
                np.testing.assert_allclose([float(v) for v in got[key].split()],
                                           [float(v) for v in want[key].split()], rtol=0, atol=2e-6)
            else:
                assert got[key] == want[key], (name, key)
    assert _lines(tmp_path / "ours" / "prediction" / "token")[f"clip{SHORT}"] == "-1"  # ESPnet's too-short line
    assert set(_lines(tmp_path / "ours" / "prediction" / "text").values()) <= {*LABELS, ""}


def test_recipe_inference_classifies_further_sets_with_also_as_separate_runs_would(model_dir, clips, tmp_path):
    """Stage 7 classifies every evaluation set in one process per job (``--also``): each set's files are
    those a run of its own writes."""
    scps = []
    for name, part in (("a", clips[:4]), ("b", clips[4:]), ("c", clips[1:3])):
        scps.append(tmp_path / f"{name}.scp")
        scps[-1].write_text("".join(f"{name}{i} {p}\n" for i, p in enumerate(part)))
    keys = tmp_path / "keys_c.scp"
    keys.write_text("c1 x\n")  # a key file: only c1 of set c
    common = ["--ngpu", "0", "--batch_size", "2", "--classification_train_config", str(model_dir / "config.yaml"),
              "--classification_model_file", str(model_dir / "valid.acc.ave.pth"), "--output_all_probabilities", "true"]
    cls_inference = _recipe_cls_inference()
    assert cls_inference.main([*common, "--data_path_and_name_and_type", f"{scps[0]},speech,sound",
                               "--output_dir", str(tmp_path / "together" / "a"),
                               "--also", f"{scps[1]},,{tmp_path / 'together' / 'b'}",
                               "--also", f"{scps[2]},{keys},{tmp_path / 'together' / 'c'}"]) == 0
    for name, scp, key_file in (("a", scps[0], None), ("b", scps[1], None), ("c", scps[2], keys)):
        alone = [*common, "--data_path_and_name_and_type", f"{scp},speech,sound",
                 "--output_dir", str(tmp_path / "alone" / name)] + (["--key_file", str(key_file)] if key_file else [])
        assert cls_inference.main(alone) == 0
        for file in ("text", "token", "score"):
            got = (tmp_path / "together" / name / "prediction" / file).read_text()
            assert got == (tmp_path / "alone" / name / "prediction" / file).read_text(), (name, file)
    assert sorted(_lines(tmp_path / "together" / "c" / "prediction" / "text")) == ["c1"]
    assert len(_lines(tmp_path / "together" / "b" / "prediction" / "text")) == len(clips) - 4


def test_recipe_inference_refuses_a_malformed_also(model_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _recipe_cls_inference().main(["--ngpu", "0", "--output_dir", str(tmp_path), "--data_path_and_name_and_type",
                                      "x,speech,sound", "--classification_train_config", "c.yaml",
                                      "--also", "only-one-part"])
    assert exit_info.value.code == 2
    assert "expected DATA,KEYS,OUTPUT_DIR (KEYS may be empty), got 'only-one-part'" in capsys.readouterr().err
