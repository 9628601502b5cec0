"""A trained model's files, found safely from any of the ways it is given, and its weights.

A model is given as a zip/tar archive, an unpacked archive or Hub snapshot (a folder with
``meta.yaml``), a training folder (``config.yaml`` and a checkpoint) or a Hugging Face Hub id.
Archives are unpacked here (:func:`~.archive.safe_extract`: no member may land outside the cache
folder), the paths that ``meta.yaml`` names must stay inside the model folder, and weights are
read with ``torch.load(weights_only=True)``: a checkpoint that holds anything but tensors (a pickle
that would run code) is refused, never executed. ESPnet's own ``Speech2Text.from_pretrained`` and
``build_model_from_file`` do neither. Finding the files imports no torch (:mod:`.kinds` tells a
model's kind from them before anything is built).
"""

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Dict, NamedTuple, Optional, Tuple

import yaml

from espnet_summarymixing.loading.archive import UnsafeArchiveError, check_member, safe_extract

__all__ = ["resolve_model", "locate_model", "Located", "packed_paths", "task_of", "TASK_KEYS", "load_asr_model",
           "load_state", "load_weights", "sample_rate", "default_cachedir", "file_sha256"]

_MODEL_FILES = ("valid.acc.ave.pth", "valid.acc.best.pth", "valid.loss.best.pth", "latest.pth", "model.pth")

# ESPnet's names of a task's training config and model file (espnet2.bin.pack, the inference classes)
TASK_KEYS = {"asr": ("asr_train_config", "asr_model_file"),
             "cls": ("classification_train_config", "classification_model_file")}


def default_cachedir() -> Path:
    """Where archives are unpacked: ``$ESPNET_SUMMARYMIXING_CACHE`` or ``~/.cache/espnet_summarymixing``."""
    return Path(os.environ.get("ESPNET_SUMMARYMIXING_CACHE", Path.home() / ".cache" / "espnet_summarymixing"))


class Located(NamedTuple):
    """Where a model's files are: ``root`` (the model folder: unpacked archive, hub snapshot or
    training folder), ``form`` (``archive``, ``packed folder``, ``hub`` or ``training folder``) and
    ``files``: ESPnet's ``<task>_train_config`` and ``<task>_model_file`` (configs as copies whose
    paths to the model folder's files are absolute)."""

    root: Path
    form: str
    files: Dict[str, str]


def task_of(config: dict) -> str:
    """The ESPnet task a training config belongs to, from its keys alone: ``asr`` or ``cls``.

    ESPnet saves every option of the task's parser: an ASR config always has ``ctc_conf``, a
    classifier's (``espnet2.tasks.cls``) never; a classifier has ``decoder: linear`` and sets
    ``model_conf.classification_type``.

    >>> task_of({"ctc_conf": {}, "decoder": "transformer"}), task_of({"decoder": "linear"})
    ('asr', 'cls')
    """
    if "ctc_conf" in config or "joint_net_conf" in config:
        return "asr"
    if "classification_type" in (config.get("model_conf") or {}) or config.get("decoder") == "linear":
        return "cls"
    return "asr"


def locate_model(model: str, cachedir: Optional[str] = None) -> Located:
    """Find (unpacking an archive, downloading a Hub id) the files of a model given as a zip/tar
    archive, an unpacked model, a training folder or a Hub id (``user/name``). Imports no torch.

    Raises FileNotFoundError for a path that is not there and ValueError for a model that cannot be
    used (a corrupt or unsafe archive, a ``meta.yaml`` naming files outside the model folder).
    """
    path = Path(model)
    cache = Path(cachedir) if cachedir else default_cachedir()
    what = f"--model {model}"
    if path.is_file():
        root = _unpack(path, cache)
        return Located(root, "archive", _packed_files(root, cache, what))
    if path.is_dir():
        if (path / "meta.yaml").is_file():  # an unpacked archive or a hub snapshot
            return Located(path, "packed folder", _packed_files(path, cache, what))
        if (path / "config.yaml").is_file():  # a training directory
            try:
                config = yaml.safe_load((path / "config.yaml").read_text(encoding="utf-8"))
            except yaml.YAMLError as err:
                raise ValueError(f"{what}: config.yaml is not valid YAML ({err})") from None
            if not isinstance(config, dict):
                raise ValueError(f"{what}: config.yaml is not an ESPnet training config")
            config_key, model_key = TASK_KEYS[task_of(config)]
            for name in _MODEL_FILES:
                if (path / name).exists():
                    return Located(path, "training folder",
                                   {config_key: str(path / "config.yaml"), model_key: str(path / name)})
            raise FileNotFoundError(f"{what}: config.yaml but none of {list(_MODEL_FILES)}")
        raise FileNotFoundError(f"{what}: a directory with neither meta.yaml nor config.yaml")
    if "/" in model and not model.startswith((".", "/")) and not path.suffix:
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(model, cache_dir=str(cache / "hub")))  # needs the network
        return Located(folder, "hub", _packed_files(folder, cache, what))
    raise FileNotFoundError(f"{what}: no such file or directory, and not a hub id like user/name")


def resolve_model(model: str, cachedir: Optional[str] = None) -> Dict[str, str]:
    """ESPnet's ``<task>_train_config`` and ``<task>_model_file`` (e.g. ``asr_train_config``,
    ``asr_model_file``) of a model given as :func:`locate_model` takes it."""
    return locate_model(model, cachedir).files


def file_sha256(path: str) -> str:
    """The SHA-256 of a file's content, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _unpack(archive: Path, cache: Path) -> Path:
    """Unpack once per archive content into ``cache``; a half-finished unpacking is never used."""
    name = archive.name.split(".")[0] or "model"
    dest = cache / f"{name}-{file_sha256(str(archive))[:16]}"
    if dest.is_dir():
        return dest
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".unpacking-", dir=cache))
    try:
        safe_extract(archive, staging)
        try:
            staging.rename(dest)
        except OSError:  # unpacked meanwhile by another process
            if not dest.is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


def _inside(root: Path, relative: str, what: str) -> Path:
    """``root / relative``, refusing a path that is absolute or leads outside ``root`` (the archive
    members' check) and one that is not a file there."""
    if not isinstance(relative, str) or not relative:
        raise ValueError(f"{what}: expected a path inside the model folder, got {relative!r}")
    try:
        check_member(relative, root.resolve())
    except UnsafeArchiveError:
        raise ValueError(f"{what}: {relative!r} points outside the model folder {root}") from None
    target = (root / relative).resolve()
    if not target.is_file():
        raise FileNotFoundError(f"{what}: {relative!r} is not in the model folder {root}")
    return target


def packed_paths(root: Path, what: str) -> Tuple[Dict[str, Path], Dict[str, Path]]:
    """The files a packed model's ``meta.yaml`` names, as (``yaml_files``, ``files``), each checked to
    be a file inside ``root``; ``what`` starts the messages."""
    try:
        meta = yaml.safe_load((Path(root) / "meta.yaml").read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ValueError(f"{what}: meta.yaml is not valid YAML ({err})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("yaml_files"), dict) or not isinstance(
        meta.get("files"), dict
    ):
        raise ValueError(f"{what}: meta.yaml needs 'yaml_files' and 'files' mappings (ESPnet's packing)")
    return tuple({key: _inside(Path(root), value, f"{what}: meta.yaml {key}") for key, value in meta[kind].items()}
                 for kind in ("yaml_files", "files"))


def _packed_files(root: Path, cache: Path, what: str) -> Dict[str, str]:
    """The files ``meta.yaml`` names, checked, with a copy of each config (in ``cache``) whose paths to
    files of the model folder are made absolute (as ESPnet's unpacking does, without touching the folder)."""
    configs, files = packed_paths(root, what)
    inside = {str(p.relative_to(root)): str(p.resolve()) for p in root.rglob("*") if p.is_file()}
    resolved = cache / "configs" / hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    resolved.mkdir(parents=True, exist_ok=True)
    out = {key: str(path) for key, path in files.items()}
    for key, path in configs.items():
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(config, dict):
            raise ValueError(f"{what}: {path.name} is not an ESPnet config")
        target = resolved / f"{key}.yaml"
        partial = target.with_suffix(".partial")
        partial.write_text(yaml.safe_dump(_absolute_paths(config, inside)), encoding="utf-8")
        partial.replace(target)
        out[key] = str(target)
    return out


def _absolute_paths(node, inside: Dict[str, str]):
    if isinstance(node, dict):
        return {k: _absolute_paths(v, inside) for k, v in node.items()}
    if isinstance(node, list):
        return [_absolute_paths(v, inside) for v in node]
    if isinstance(node, str) and node in inside:
        return inside[node]
    return node


def load_weights(model_file: str, device: str = "cpu") -> dict:
    """A checkpoint's state dict, read with ``weights_only=True``; ValueError if it holds anything else."""
    import pickle

    import torch

    try:
        return torch.load(model_file, map_location=device, weights_only=True)
    except pickle.UnpicklingError:
        raise ValueError(
            f"{model_file}: refused: the checkpoint holds Python objects besides tensors, which could run "
            "code when loaded; only plain weights (a state dict) are loaded"
        ) from None
    except (EOFError, RuntimeError) as err:
        raise ValueError(f"{model_file}: not a readable PyTorch checkpoint ({err})") from None


def load_state(model, model_file: str, device: str = "cpu") -> None:
    """Load a checkpoint's weights (read safely, :func:`load_weights`) into an ESPnet model, as ESPnet's
    ``build_model_from_file`` does: a DeepSpeed ``module`` entry is unwrapped and keys the model lacks
    or has in addition are tolerated (e.g. global-MVN statistics taken from the config's stats file),
    but named in a warning."""
    import logging

    state = load_weights(model_file, device)
    if "module" in state and isinstance(state["module"], dict):
        state = state["module"]
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith("normalize.")]
    if missing or result.unexpected_keys:
        logging.warning("%s: weights missing from the checkpoint: %s; in the checkpoint but not in the model: %s",
                        model_file, missing or "none", result.unexpected_keys or "none")


def load_asr_model(asr_train_config: str, asr_model_file: str, device: str = "cpu") -> Tuple[object, object]:
    """ESPnet's ASR model built from its config, with the weights loaded safely: (model, train_args)."""
    from espnet2.tasks.asr import ASRTask

    model, args = ASRTask.build_model_from_file(asr_train_config, None, device)
    load_state(model, asr_model_file, device)
    return model, args


def sample_rate(train_args) -> int:
    """The sample rate a model was trained at (``frontend_conf.fs``, ESPnet's default 16 kHz)."""
    fs = (getattr(train_args, "frontend_conf", None) or {}).get("fs", 16000)
    if isinstance(fs, str):
        import humanfriendly

        fs = humanfriendly.parse_size(fs)
    return int(fs)
