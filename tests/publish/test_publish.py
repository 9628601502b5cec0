"""Publishing: pack -> espnet_model_zoo -> Speech2Text in a fresh interpreter, the transcription
command and its error paths, and the dry-run upload folder."""

import subprocess
import sys
import textwrap
import wave
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
import yaml

from conftest import command, run
from espnet_summarymixing.publish.pack import pack_model
from espnet_summarymixing.loading.audio import load_audio
from espnet_summarymixing.loading.models import resolve_model
from espnet_summarymixing.publish.hub import prepare_folder

RESULTS = "|dataset|Snt|Wrd|Corr|Sub|Del|Ins|Err|S.Err|\n|---|---|---|---|---|---|---|---|---|\n|test|3|5|0.0|0.0|100.0|0.0|100.0|100.0|\n"


@pytest.fixture(scope="module")
def model_dir(train_model):
    return train_model("summarymixing_conformer")


@pytest.fixture(scope="module")
def packed(model_dir, tmp_path_factory):
    """A zip packed with global-MVN statistics, a decoding config and a RESULTS table."""
    root = tmp_path_factory.mktemp("pack")
    config = yaml.safe_load((model_dir / "config.yaml").read_text())
    stats = root / "stats" / "feats_stats.npz"
    stats.parent.mkdir()
    np.savez(stats, count=np.array(100.0), sum=np.zeros(80), sum_square=np.full(80, 100.0))
    config["normalize"], config["normalize_conf"] = "global_mvn", {"stats_file": str(stats)}
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    (root / "decode_asr.yaml").write_text("beam_size: 2\nctc_weight: 0.3\n")
    (root / "RESULTS.md").write_text(RESULTS)
    return pack_model(root / "config.yaml", model_dir / "valid.acc.best.pth", root / "out" / "model.zip",
                      inference_config=root / "decode_asr.yaml", results=root / "RESULTS.md",
                      training_data="four AN4 utterances")


def test_zip_carries_everything_decoding_needs(packed):
    names = set(zipfile.ZipFile(packed).namelist())
    assert {"meta.yaml", "README.md", "exp/asr_train/config.yaml", "exp/asr_train/model.pth",
            "exp/asr_train/decode_asr.yaml", "exp/asr_train/RESULTS.md",
            "exp/asr_train/files/stats_file/feats_stats.npz"} <= names
    card = zipfile.ZipFile(packed).read("README.md").decode()
    assert "summarymixing_conformer" in card and "parameters" in card and "four AN4 utterances" in card
    assert "|test|3|5|" in card and "parcollet2024summarymixing" in card


def test_model_downloader_unpacks_offline_and_stats_follow(packed, tmp_path):
    from espnet_model_zoo.downloader import ModelDownloader

    files = ModelDownloader(tmp_path / "cache").download_and_unpack(str(packed))
    assert set(files) == {"asr_train_config", "asr_model_file"}
    config = yaml.safe_load(Path(files["asr_train_config"]).read_text())
    stats = Path(config["normalize_conf"]["stats_file"])
    assert stats.is_file() and stats.is_relative_to(tmp_path / "cache")


FROM_PRETRAINED = textwrap.dedent(
    """
    import sys
    assert "espnet_summarymixing.encoders.conformer" not in sys.modules
    import soundfile, torch
    from espnet2.bin.asr_inference import Speech2Text
    s2t = Speech2Text.from_pretrained(sys.argv[1], beam_size=2, device="cpu")
    speech, rate = soundfile.read(sys.argv[2], dtype="float32")
    results = s2t(torch.tensor(speech))
    results = results[0] if isinstance(results, tuple) else results
    print(type(s2t.asr_model.encoder).__name__, type(s2t.asr_model.normalize).__name__, repr(results[0][0]))
    """
)


def test_from_pretrained_zip_in_a_fresh_interpreter(packed, data, tmp_path):
    wav = (data["test"] / "wav.scp").read_text().split()[1]
    script = tmp_path / "load.py"
    script.write_text(FROM_PRETRAINED)
    out = run([sys.executable, script, packed, wav], cwd=tmp_path).stdout.strip().splitlines()[-1]
    assert out.startswith("SummaryMixingConformerEncoder GlobalMVN ")


def _write_wav(path, samples, rate, channels=1):
    data = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(data.tobytes())


def test_transcribe_command_good_bad_and_long_files(packed, data, tmp_path):
    good = (data["test"] / "wav.scp").read_text().split()[1]
    speech, rate = soundfile.read(good, dtype="float32")
    stereo_44k = tmp_path / "stereo_44k.wav"
    resampled = torch.nn.functional.interpolate(torch.tensor(speech)[None, None], scale_factor=44100 / rate,
                                                mode="linear")[0, 0].numpy()
    _write_wav(stereo_44k, np.stack([resampled, resampled], axis=1).reshape(-1), 44100, channels=2)
    long_file = tmp_path / "long.flac"
    soundfile.write(long_file, np.tile(speech, int(np.ceil(40 * rate / len(speech)))), rate)
    broken = tmp_path / "broken.wav"
    broken.write_text("not audio")
    missing = tmp_path / "missing.wav"
    files = [good, stereo_44k, broken, missing, long_file]
    proc = command("transcribe", "--model", packed, "--beam_size", "2", "--max_segment_seconds", "10",
                   "--cachedir", tmp_path / "c", *files)
    assert proc.returncode == 1, proc.stderr[-3000:]
    lines = [line.split("\t")[0] for line in proc.stdout.splitlines()]
    assert lines == [str(good), str(stereo_44k), str(long_file)]  # every readable file, in order
    assert f"{broken}: error:" in proc.stderr and f"{missing}: error:" in proc.stderr
    assert "2 of 5 files failed" in proc.stderr


def test_transcribe_exit_status_and_bad_model(packed, data, tmp_path):
    good = (data["test"] / "wav.scp").read_text().split()[1]
    ok = subprocess.run([sys.executable, "-m", "espnet_summarymixing.transcribe", "--model", str(packed),
                         "--beam_size", "1", "--cachedir", str(tmp_path / "c"), good],
                        capture_output=True, text=True, timeout=600)
    assert ok.returncode == 0 and ok.stdout.startswith(f"{good}\t")
    bad = command("transcribe", "--model", tmp_path / "nope.zip", good)
    assert bad.returncode == 2 and "cannot load the model" in bad.stderr and "nope.zip" in bad.stderr


def test_load_audio_resamples_and_downmixes(tmp_path):
    t = np.arange(8000) / 8000
    left, right = np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 440 * t)
    path = tmp_path / "st.wav"
    _write_wav(path, 0.5 * np.stack([left, right], axis=1).reshape(-1), 8000, channels=2)
    wave16 = load_audio(str(path), 16000)
    assert wave16.dim() == 1 and abs(wave16.numel() - 16000) <= 1
    spectrum = torch.fft.rfft(wave16).abs()
    assert abs(int(spectrum.argmax()) - 440) <= 1  # 1 Hz bins over one second
    empty = tmp_path / "empty.wav"
    _write_wav(empty, np.zeros(0), 16000)
    with pytest.raises(ValueError, match="no audio samples"):
        load_audio(str(empty), 16000)


def test_resolve_model_accepts_an_exp_dir_and_names_bad_input(model_dir, tmp_path):
    files = resolve_model(str(model_dir))
    assert files["asr_train_config"].endswith("config.yaml") and files["asr_model_file"].endswith(".pth")
    with pytest.raises(FileNotFoundError, match="neither meta.yaml nor config.yaml"):
        resolve_model(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="no such file or directory"):
        resolve_model(str(tmp_path / "model.zip"))


def test_dry_run_upload_folder_is_complete_and_loadable(packed, data, tmp_path):
    out = tmp_path / "hub"
    proc = command("upload", "--model", packed, "--repo", "me/sm-an4", "--dry_run", out, "--cachedir",
                   tmp_path / "cache")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "would be pushed to me/sm-an4 (an ASR model)" in proc.stdout
    files = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert {"meta.yaml", "README.md", "exp/asr_train/config.yaml", "exp/asr_train/model.pth"} <= files
    card = (out / "README.md").read_text()
    assert 'Speech2Text.from_pretrained("me/sm-an4")' in card and "|test|3|5|" in card
    good = (data["test"] / "wav.scp").read_text().split()[1]
    ok = command("transcribe", "--model", out, "--beam_size", "1", good)
    assert ok.returncode == 0, ok.stderr[-3000:]  # the hub layout loads as it would after a download


def test_upload_and_pack_errors_name_the_input(packed, model_dir, tmp_path):
    with pytest.raises(FileExistsError, match="not empty"):
        (tmp_path / "full").mkdir()
        (tmp_path / "full" / "x").write_text("x")
        prepare_folder(packed, tmp_path / "full", "me/x")
    bad_repo = command("upload", "--model", packed, "--repo", "no-slash", "--dry_run", tmp_path / "o")
    assert bad_repo.returncode == 2 and "--repo no-slash: expected a Hugging Face id, user/name" in bad_repo.stderr
    with pytest.raises(FileNotFoundError, match="--asr_model_file .*missing.pth: no such file"):
        pack_model(model_dir / "config.yaml", tmp_path / "missing.pth", tmp_path / "m.zip")
    config = yaml.safe_load((model_dir / "config.yaml").read_text())
    config["normalize"], config["normalize_conf"] = "global_mvn", {"stats_file": str(tmp_path / "gone.npz")}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(FileNotFoundError, match="normalize_conf.stats_file.*gone.npz"):
        pack_model(tmp_path / "c.yaml", model_dir / "valid.acc.best.pth", tmp_path / "m.zip")
    assert not (tmp_path / "m.zip").exists()  # nothing half-written
