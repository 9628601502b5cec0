"""Models from strangers: a checkpoint that would run code is refused, never executed; an archive
cannot write outside its cache folder; a broken model or audio file gets one clear line."""

import io
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
import torch
import yaml

from conftest import ROOT, command
from espnet_summarymixing.loading.archive import UnsafeArchiveError, safe_extract
from espnet_summarymixing.loading.audio import load_audio
from espnet_summarymixing.loading.models import load_weights, resolve_model

FIXTURE = ROOT / "tests" / "fixtures" / "pre_layout_model" / "model.zip"


class _Payload:
    """Pickled, it calls ``Path.touch`` on the marker when unpickled: any code could run instead."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


@pytest.fixture()
def malicious_model(tmp_path):
    """The fixture model unpacked, with a checkpoint that also carries a code-running pickle."""
    folder = tmp_path / "model"
    with zipfile.ZipFile(FIXTURE) as zf:
        zf.extractall(folder)
    checkpoint = folder / "exp" / "asr_train" / "model.pth"
    state = torch.load(checkpoint, weights_only=True)
    state["payload"] = _Payload(tmp_path / "PWNED")
    torch.save(state, checkpoint)
    return folder, tmp_path / "PWNED"


def test_a_checkpoint_that_would_run_code_is_refused(malicious_model):
    folder, marker = malicious_model
    with pytest.raises(ValueError, match="refused: the checkpoint holds Python objects besides tensors"):
        load_weights(folder / "exp" / "asr_train" / "model.pth")
    assert not marker.exists()


@pytest.mark.parametrize("name, extra", [("transcribe", ["a.wav"]), ("stream_decode", ["--full_context", "a.wav"]),
                                         ("export", ["--output_dir", "onnx"])])
def test_commands_refuse_it_and_say_so(malicious_model, tmp_path, name, extra):
    folder, marker = malicious_model
    wav = tmp_path / "a.wav"
    import soundfile

    soundfile.write(wav, torch.zeros(8000).numpy(), 16000)
    proc = command(name, "--model", folder, *(tmp_path / e if e.endswith(("wav", "onnx")) else e for e in extra))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "error: cannot load the model:" in proc.stderr and "refused" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert not marker.exists() and not (tmp_path / "onnx").exists()


def test_pack_refuses_it_without_a_traceback(malicious_model, tmp_path):
    folder, marker = malicious_model
    proc = command("pack", "--asr_train_config", folder / "exp" / "asr_train" / "config.yaml", "--asr_model_file",
                   folder / "exp" / "asr_train" / "model.pth", "--output", tmp_path / "o.zip")
    assert proc.returncode == 2 and "refused" in proc.stderr and "Traceback" not in proc.stderr
    assert not marker.exists() and not (tmp_path / "o.zip").exists()


def _zip(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _tar(path, members):
    with tarfile.open(path, "w:gz") as tf:
        for name, (kind, data) in members.items():
            info = tarfile.TarInfo(name)
            if kind == "link":
                info.type, info.linkname = tarfile.SYMTYPE, data
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return path


CRAFTED = {
    "dotdot.zip": lambda p, out: _zip(p, {"meta.yaml": "x", "../../evil.txt": "x"}),
    "absolute.zip": lambda p, out: _zip(p, {"meta.yaml": "x", str(out / "evil.txt"): "x"}),
    "dotdot.tar.gz": lambda p, out: _tar(p, {"../../evil.txt": ("file", b"x")}),
    "absolute.tar.gz": lambda p, out: _tar(p, {str(out / "evil.txt"): ("file", b"x")}),
    "symlink.tar.gz": lambda p, out: _tar(p, {"link": ("link", str(out)), "link/evil.txt": ("file", b"x")}),
    "relative_symlink.tar.gz": lambda p, out: _tar(p, {"a/link": ("link", "../../.."), "a/link/evil.txt": ("file", b"x")}),
    "link_then_file.tar.gz": lambda p, out: _tar(p, {"inside": ("link", "."), "inside/evil.txt": ("file", b"x")}),
}


@pytest.mark.parametrize("name", CRAFTED)
def test_crafted_archives_write_nothing_outside_the_cache(name, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    archive = CRAFTED[name](tmp_path / name, outside)
    cache = tmp_path / "a" / "b" / "cache"
    with pytest.raises(UnsafeArchiveError):
        safe_extract(archive, cache / "x")
    with pytest.raises(ValueError, match="refusing archive member"):
        resolve_model(str(archive), str(cache))
    assert not (outside / "evil.txt").exists() and not list(tmp_path.rglob("evil.txt"))


def test_meta_yaml_naming_files_outside_the_model_is_refused(tmp_path):
    (tmp_path / "evil.yaml").write_text("encoder: x\n")
    with zipfile.ZipFile(FIXTURE) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    meta = yaml.safe_load(members["meta.yaml"])
    meta["yaml_files"]["asr_train_config"] = "../../evil.yaml"
    members["meta.yaml"] = yaml.safe_dump(meta)
    archive = _zip(tmp_path / "m.zip", members)
    with pytest.raises(ValueError, match=r"meta.yaml asr_train_config: '../../evil.yaml' points outside"):
        resolve_model(str(archive), str(tmp_path / "cache" / "deep"))


def test_a_packed_model_unpacks_once_and_its_config_points_inside(tmp_path):
    files = resolve_model(str(FIXTURE), str(tmp_path / "cache"))
    again = resolve_model(str(FIXTURE), str(tmp_path / "cache"))
    assert files == again
    assert Path(files["asr_model_file"]).is_relative_to(tmp_path / "cache")
    assert yaml.safe_load(Path(files["asr_train_config"]).read_text())["encoder"] == "summarymixing_conformer"
    assert not list((tmp_path / "cache").glob(".unpacking-*"))  # no half-done unpacking left behind


def test_a_corrupt_archive_is_one_clear_line(tmp_path):
    broken = tmp_path / "model.zip"
    broken.write_bytes(FIXTURE.read_bytes()[:5000])  # truncated
    with pytest.raises(ValueError, match="not a readable zip or tar archive|not a readable archive"):
        resolve_model(str(broken), str(tmp_path / "cache"))
    proc = command("transcribe", "--model", broken, "--cachedir", tmp_path / "cache", broken)
    assert proc.returncode == 2 and "error: cannot load the model:" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_audio_errors_name_the_file_and_the_reason(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'no.wav'}: no such file"):
        load_audio(str(tmp_path / "no.wav"), 16000)
    with pytest.raises(ValueError, match="a directory, not an audio file"):
        load_audio(str(tmp_path), 16000)
    (tmp_path / "text.wav").write_text("not audio")
    with pytest.raises(ValueError, match="not an audio file libsndfile can read"):
        load_audio(str(tmp_path / "text.wav"), 16000)


# ----------------------------------------------------------------------------- round 2 (issue 26)


def _fixture_members():
    with zipfile.ZipFile(FIXTURE) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def test_an_archive_over_the_size_limits_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    from espnet_summarymixing.loading.archive import Limits

    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("meta.yaml", "files: {asr_model_file: zeros.bin}\nyaml_files: {}\n")
        zf.writestr("zeros.bin", b"\0" * (80 << 20))  # 80 MB of zeros: ~80 kB packed
    with pytest.raises(UnsafeArchiveError, match=r"would unpack to \d+ times its size .* compression bomb"):
        safe_extract(bomb, tmp_path / "out")
    assert not list((tmp_path / "out").rglob("*.bin"))
    with pytest.raises(UnsafeArchiveError, match=r"more than the limit of 0.01 GB \(set ESPNET_SUMMARYMIXING"):
        safe_extract(bomb, tmp_path / "out", bound=Limits(int(0.01 * (1 << 30)), 1e9))
    # the command-level path: the model cache stays clean, and the limit can be raised
    monkeypatch.setenv("ESPNET_SUMMARYMIXING_MAX_UNPACK_RATIO", "100000")
    monkeypatch.setenv("ESPNET_SUMMARYMIXING_MAX_UNPACK_GB", "0.05")
    with pytest.raises(ValueError, match="more than the limit of 0.05 GB"):
        resolve_model(str(bomb), str(tmp_path / "cache"))
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    monkeypatch.setenv("ESPNET_SUMMARYMIXING_MAX_UNPACK_GB", "nan")
    with pytest.raises(ValueError, match="expected a positive number"):
        safe_extract(bomb, tmp_path / "out")


def test_members_a_model_does_not_use_are_not_unpacked(tmp_path):
    members = _fixture_members()
    members["exp/asr_train/junk.bin"] = b"x" * 1000  # named nowhere
    members["exp/asr_train/decode_asr.yaml"] = "beam_size: 3\nctc_weight: 0.6\n"
    archive = _zip(tmp_path / "m.zip", members)
    from espnet_summarymixing.loading.models import decode_config_of, locate_model

    located = locate_model(str(archive), str(tmp_path / "cache"))
    assert not (located.root / "exp/asr_train/junk.bin").exists()
    assert (located.root / "exp/asr_train/model.pth").is_file()  # named by meta.yaml
    assert decode_config_of(located) == {"beam_size": 3, "ctc_weight": 0.6}


def test_a_yaml_alias_bomb_in_a_packed_config_is_refused(tmp_path):
    members = _fixture_members()
    meta = yaml.safe_load(members["meta.yaml"])
    config_name = meta["yaml_files"]["asr_train_config"]
    original = members[config_name]
    # 7 levels of 10 aliases: 10^7 values written out (a few hundred bytes of YAML)
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n" for p, c in zip("abcdef", "bcdefg"))
    members[config_name] = original + ("\n" + bomb).encode()
    with pytest.raises(ValueError, match=r"config.yaml expands to more than 1,000,000 values through its aliases"):
        resolve_model(str(_zip(tmp_path / "m.zip", members)), str(tmp_path / "cache"))
    assert not [p for p in (tmp_path / "cache").rglob("*.yaml") if p.stat().st_size > 1 << 20]
    # a few aliases (yaml.safe_dump writes shared lists so) are read as they always were
    members[config_name] = original + b"\nshared: &s [1, 2]\nagain: *s\n"
    files = resolve_model(str(_zip(tmp_path / "ok.zip", members)), str(tmp_path / "cache"))
    assert yaml.safe_load(Path(files["asr_train_config"]).read_text())["again"] == [1, 2]


@pytest.mark.parametrize("text, message", [("encoder: !!python/object:os.system x\n", "not valid YAML"),
                                           ("encoder: [unclosed\n", "not valid YAML"),
                                           ("- a list\n", "not a mapping")])
def test_a_broken_packed_config_is_one_clear_message(tmp_path, text, message):
    members = _fixture_members()
    members[yaml.safe_load(members["meta.yaml"])["yaml_files"]["asr_train_config"]] = text
    with pytest.raises(ValueError, match=message):
        resolve_model(str(_zip(tmp_path / "m.zip", members)), str(tmp_path / "cache"))


@pytest.mark.parametrize("value", ["/etc/hostname", "../../outside.txt"])
def test_a_packed_config_naming_a_file_outside_the_model_is_refused(tmp_path, value):
    (tmp_path / "outside.txt").write_text("secret\n")
    members = _fixture_members()
    name = yaml.safe_load(members["meta.yaml"])["yaml_files"]["asr_train_config"]
    config = yaml.safe_load(members[name])
    config["token_list"] = value
    members[name] = yaml.safe_dump(config)
    with pytest.raises(ValueError, match=rf"config.yaml token_list: '{value}' points outside the model folder"):
        resolve_model(str(_zip(tmp_path / "m.zip", members)), str(tmp_path / "cache" / "deep"))


def test_an_interrupted_unpacking_leaves_nothing_and_stale_staging_is_removed(tmp_path):
    import os
    import signal
    import time

    cache = tmp_path / "cache"
    stale = cache / ".unpacking-old"
    stale.mkdir(parents=True)
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    fresh = cache / ".unpacking-now"  # an unpacking running now in another process: left alone
    fresh.mkdir()
    big = tmp_path / "big.tar"
    with tarfile.open(big, "w") as tf:
        tf.addfile(tarfile.TarInfo("meta.yaml"), io.BytesIO(b""))
        for i in range(40):
            info = tarfile.TarInfo(f"f{i}.txt")
            info.size = 4 << 20
            tf.addfile(info, io.BytesIO(b"y" * info.size))
    code = ("import sys; from espnet_summarymixing.loading.models import resolve_model\n"
            "resolve_model(sys.argv[1], sys.argv[2])")
    proc = subprocess.Popen([sys.executable, "-c", code, str(big), str(cache)])
    deadline = time.time() + 120
    while time.time() < deadline and not [p for p in cache.glob(".unpacking-*/f*.txt")]:
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert [p.name for p in cache.glob(".unpacking-*")] == [".unpacking-now"]
    assert not stale.exists()


def test_non_finite_audio_and_a_fifo_are_reported_per_file(tmp_path):
    import os

    import numpy as np
    import soundfile

    from espnet_summarymixing.loading.audio import read_samples

    wave = np.zeros(1600, dtype=np.float32)
    wave[100] = np.nan
    soundfile.write(tmp_path / "nan.wav", wave, 16000, subtype="FLOAT")
    with pytest.raises(ValueError, match=r"nan.wav: 1 of its 1600 samples are NaN or infinite"):
        read_samples(str(tmp_path / "nan.wav"))
    os.mkfifo(tmp_path / "pipe")  # reading it would block forever
    with pytest.raises(ValueError, match="pipe: not a regular file"):
        read_samples(str(tmp_path / "pipe"))
