"""Loading what a packed model needs: the model files from any of the ways it is given, its
sample rate, and audio at that rate."""

from pathlib import Path
from typing import Dict, Optional

__all__ = ["resolve_model", "sample_rate", "load_audio"]

_MODEL_FILES = ("valid.acc.ave.pth", "valid.acc.best.pth", "valid.loss.best.pth", "latest.pth", "model.pth")


def resolve_model(model: str, cachedir: Optional[str] = None) -> Dict[str, str]:
    """Return Speech2Text's ``asr_train_config`` and ``asr_model_file`` for a model given as a
    zip/tar archive, an unpacked model or training directory, or a model-zoo/hub name."""
    path = Path(model)
    if path.is_file():
        from espnet_model_zoo.downloader import ModelDownloader

        return ModelDownloader(cachedir).download_and_unpack(str(path.absolute()))
    if path.is_dir():
        if (path / "meta.yaml").is_file():  # an unpacked archive or a hub snapshot
            from espnet_model_zoo.downloader import ModelDownloader

            return ModelDownloader._unpack_cache_dir_for_huggingfase(str(path))
        if (path / "config.yaml").is_file():  # a training directory
            for name in _MODEL_FILES:
                if (path / name).exists():
                    return {"asr_train_config": str(path / "config.yaml"), "asr_model_file": str(path / name)}
            raise FileNotFoundError(f"--model {model}: config.yaml but none of {list(_MODEL_FILES)}")
        raise FileNotFoundError(f"--model {model}: a directory with neither meta.yaml nor config.yaml")
    if "/" in model and not model.startswith((".", "/")) and not path.suffix:
        from espnet_model_zoo.downloader import ModelDownloader

        return ModelDownloader(cachedir).download_and_unpack(model)  # needs the network
    raise FileNotFoundError(f"--model {model}: no such file or directory, and not a hub id like user/name")


def sample_rate(train_args) -> int:
    """The sample rate a model was trained at (``frontend_conf.fs``, ESPnet's default 16 kHz)."""
    fs = (getattr(train_args, "frontend_conf", None) or {}).get("fs", 16000)
    if isinstance(fs, str):
        import humanfriendly

        fs = humanfriendly.parse_size(fs)
    return int(fs)


def load_audio(path: str, rate: int):
    """Read any file libsndfile reads (wav, flac, sph, ogg, ...) as mono float32 at ``rate``."""
    import soundfile
    import torch
    import torchaudio

    data, file_rate = soundfile.read(path, dtype="float32", always_2d=True)  # (samples, channels)
    wave = torch.from_numpy(data).mean(dim=1)  # down-mix
    if wave.numel() == 0:
        raise ValueError("the file holds no audio samples")
    if file_rate != rate:
        wave = torchaudio.functional.resample(wave, file_rate, rate)
    return wave
