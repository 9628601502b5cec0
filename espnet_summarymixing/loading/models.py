"""A trained model's files, found safely from any of the ways it is given, and its weights.

A model is given as a zip/tar archive, an unpacked archive or Hub snapshot (a folder with
``meta.yaml``), a training folder (``config.yaml`` and a checkpoint) or a Hugging Face Hub id.
Archives are unpacked here (:func:`~.archive.safe_extract`: no member may land outside the cache
folder, the archive may not unpack to more than :func:`~.archive.limits`, and members a model does
not use are left out), the paths that ``meta.yaml`` and the packed configs name must stay inside
the model folder, YAML is refused where its aliases would expand it beyond bounds (:func:`read_yaml`),
and weights are read with ``torch.load(weights_only=True)``: a checkpoint that holds anything but tensors (a pickle
that would run code) is refused, never executed. ESPnet's own ``Speech2Text.from_pretrained`` and
``build_model_from_file`` do neither. Finding the files imports no torch (:mod:`.kinds` tells a
model's kind from them before anything is built).
"""

import contextlib
import hashlib
import logging
import os
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path, PurePosixPath
from typing import Callable, Dict, Iterator, NamedTuple, Optional, Tuple

import yaml

from espnet_summarymixing.loading.archive import inside, members_of, read_member, safe_extract

__all__ = ["resolve_model", "locate_model", "Located", "packed_paths", "task_of", "TASK_KEYS", "load_asr_model",
           "load_state", "load_weights", "sample_rate", "default_cachedir", "file_sha256", "read_yaml",
           "DECODING_FILES", "DECODE_CONFIG", "decode_config_of", "config_value"]

# The config keys (dotted) naming files that decoding reads: ``pack`` copies them into the archive,
# and in a packed model each must name a file inside the model folder.
DECODING_FILES = ("token_list", "bpemodel", "normalize_conf.stats_file")
# The decoding config of a packed model: beside its training config (``pack --inference_config``)
DECODE_CONFIG = "decode_asr.yaml"
MAX_YAML_BYTES = 16 << 20
MAX_YAML_VALUES = 1_000_000  # a config with an inline 50,000-token list holds ~50,000
STALE_SECONDS = 3600  # a staging folder this old was left by an unpacking that was killed

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
    decode_config: Optional[Path] = None


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
        return Located(root, "archive", *_packed_files(root, cache, what))
    if path.is_dir():
        if (path / "meta.yaml").is_file():  # an unpacked archive or a hub snapshot
            return Located(path, "packed folder", *_packed_files(path, cache, what))
        if (path / "config.yaml").is_file():  # a training directory
            config = read_yaml(path / "config.yaml", what)
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
        return Located(folder, "hub", *_packed_files(folder, cache, what))
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


def _expanded_size(data, limit: int) -> int:
    """How many values ``data`` holds once every alias is written out (a shared object counted at each
    of its uses), computed in time linear in the distinct objects; stops counting above ``limit``."""
    sizes: Dict[int, int] = {}

    def size(node) -> int:
        if not isinstance(node, (dict, list)):
            return 1
        if id(node) not in sizes:
            sizes[id(node)] = 0  # a cycle (a recursive alias) counts as over the limit below
            children = [*node.keys(), *node.values()] if isinstance(node, dict) else node
            total = 1
            for child in children:
                total += size(child)
                if total > limit:
                    break
            sizes[id(node)] = total
        elif sizes[id(node)] == 0:
            return limit + 1
        return sizes[id(node)]

    return size(data)


def read_yaml(path, what: str, text: Optional[str] = None) -> dict:
    """A model's YAML file (``meta.yaml``, a config) as a mapping: safe (no tags that build objects), at
    most 16 MB, and at most a million values once its aliases are expanded (a few nested aliases, an
    "alias bomb", would otherwise expand a small file into gigabytes wherever it is copied or written
    out); ValueError starting with ``what`` otherwise."""
    if text is None:
        path = Path(path)
        if path.stat().st_size > MAX_YAML_BYTES:
            raise ValueError(f"{what}: {path.name} is {path.stat().st_size} bytes, more than a config can be")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise ValueError(f"{what}: {Path(path).name} is not UTF-8 text ({err.reason})") from None
    try:
        data = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError) as err:
        raise ValueError(f"{what}: {Path(path).name} is not valid YAML ({' '.join(str(err).split())})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{what}: {Path(path).name} is not a mapping of options")
    expanded = _expanded_size(data, MAX_YAML_VALUES)
    if expanded > MAX_YAML_VALUES:
        raise ValueError(f"{what}: {Path(path).name} expands to more than {MAX_YAML_VALUES:,} values through its "
                         "aliases (*name): refused, an alias bomb?")
    return data


def config_value(config: dict, dotted: str):
    """``config["a"]["b"]`` for ``dotted`` "a.b" (None where a level is missing or not a mapping)."""
    for key in dotted.split("."):
        if not isinstance(config, dict):
            return None
        config = config.get(key)
    return config


def _kept_members(archive: Path) -> Callable[[str], bool]:
    """Which members of a model archive to unpack: ``meta.yaml``, what it names, the files its configs
    name, small text files (model card, decoding config, results) and an ONNX export's files (named by
    its ``manifest.json``); anything else is left out (and said)."""
    what = f"--model {archive}"
    members = members_of(archive)
    meta_text = read_member(archive, "meta.yaml", members=members)
    try:
        meta = read_yaml("meta.yaml", what, meta_text.decode("utf-8", "replace")) if meta_text else None
    except ValueError:
        meta = None
    if meta is None:  # not a packed model: said after unpacking (within the size limits)
        return lambda name: True
    def names(kind):
        value = meta.get(kind)
        return [v for v in value.values() if isinstance(v, str)] if isinstance(value, dict) else []

    named = {"meta.yaml", *names("yaml_files"), *names("files")}
    for config_name in names("yaml_files"):
        text = read_member(archive, config_name, members=members)
        try:
            config = read_yaml(config_name, what, text.decode("utf-8", "replace")) if text else {}
        except ValueError:
            config = {}  # refused, with its reason, when the model is read
        named.update(v for v in map(lambda k: config_value(config, k), DECODING_FILES) if isinstance(v, str))
    for manifest in [m for m in members if PurePosixPath(m).name == "manifest.json"]:
        import json

        folder = PurePosixPath(manifest).parent
        try:
            data = json.loads(read_member(archive, manifest, members=members))
            names = [*data["graphs"].values(), data["token_list"], "feats_stats.npz"]
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # read (and refused if broken) when the export is used
        named.add(manifest)
        named.update(str(folder / n) for n in names if isinstance(n, str))
    small_text = (".yaml", ".yml", ".md", ".txt", ".json")
    return lambda name: name in named or (name.endswith(small_text) and members.get(name, 0) <= MAX_YAML_BYTES)


@contextlib.contextmanager
def _cleaned_on_termination() -> Iterator[None]:
    """SIGTERM raises SystemExit inside the block (in the main thread), so that ``finally`` clauses
    run: a killed unpacking removes its staging folder."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not settable here
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _remove_stale(cache: Path) -> None:
    """Staging folders left by an unpacking that was killed (SIGKILL, power loss): removed after an hour
    (a younger one may belong to an unpacking running now)."""
    for folder in cache.glob(".unpacking-*"):
        try:
            if time.time() - folder.stat().st_mtime > STALE_SECONDS:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            pass


def _unpack(archive: Path, cache: Path) -> Path:
    """Unpack once per archive content into ``cache``; a half-finished unpacking is never used."""
    name = archive.name.split(".")[0] or "model"
    dest = cache / f"{name}-{file_sha256(str(archive))[:16]}"
    if dest.is_dir():
        return dest
    cache.mkdir(parents=True, exist_ok=True)
    _remove_stale(cache)
    keep = _kept_members(archive)
    with _cleaned_on_termination():
        staging = Path(tempfile.mkdtemp(prefix=".unpacking-", dir=cache))
        try:
            left_out = safe_extract(archive, staging, keep=keep)
            if left_out:
                logging.warning("%s: left out %d member(s) that the model does not use: %s", archive,
                                len(left_out), ", ".join(left_out[:5]) + (" ..." if len(left_out) > 5 else ""))
            try:
                staging.rename(dest)
            except OSError:  # unpacked meanwhile by another process
                if not dest.is_dir():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return dest


def _inside(root: Path, relative: str, what: str) -> Path:
    """``root / relative`` resolved: a file inside the model folder (:func:`~.archive.inside`)."""
    return inside(root, relative, what, "model folder").resolve()


def packed_paths(root: Path, what: str) -> Tuple[Dict[str, Path], Dict[str, Path]]:
    """The files a packed model's ``meta.yaml`` names, as (``yaml_files``, ``files``), each checked to
    be a file inside ``root``; ``what`` starts the messages."""
    meta = read_yaml(Path(root) / "meta.yaml", what)
    if not isinstance(meta.get("yaml_files"), dict) or not isinstance(meta.get("files"), dict):
        raise ValueError(f"{what}: meta.yaml needs 'yaml_files' and 'files' mappings (ESPnet's packing)")
    return tuple({key: _inside(Path(root), value, f"{what}: meta.yaml {key}") for key, value in meta[kind].items()}
                 for kind in ("yaml_files", "files"))


def _packed_files(root: Path, cache: Path, what: str) -> Tuple[Dict[str, str], Optional[Path]]:
    """The files ``meta.yaml`` names, checked, with a copy of each config (in ``cache``) whose paths to
    files of the model folder are made absolute (as ESPnet's unpacking does, without touching the
    folder); and the decoding config beside the training config, if any."""
    configs, files = packed_paths(root, what)
    inside = {str(p.relative_to(root)): str(p.resolve()) for p in root.rglob("*") if p.is_file()}
    resolved = cache / "configs" / hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    resolved.mkdir(parents=True, exist_ok=True)
    out = {key: str(path) for key, path in files.items()}
    for key, path in configs.items():
        config = read_yaml(path, what)
        for dotted in DECODING_FILES:  # every file decoding reads must be one of the model's
            value = config_value(config, dotted)
            if isinstance(value, str) and value not in ("", "none"):
                _inside(Path(root), value, f"{what}: {path.name} {dotted}")
        target = resolved / f"{key}.yaml"
        partial = target.with_suffix(".partial")
        partial.write_text(yaml.safe_dump(_absolute_paths(config, inside)), encoding="utf-8")
        partial.replace(target)
        out[key] = str(target)
    top = Path(root).resolve()
    decode = [d for d in (p.parent / DECODE_CONFIG for p in configs.values())
              if d.is_file() and top in d.resolve().parents]
    return out, (decode[0] if decode else None)


def decode_config_of(located: Located) -> dict:
    """The packed decoding config of a model (empty without one): beam size, CTC weight, LM weight..."""
    if located.decode_config is None:
        return {}
    return read_yaml(located.decode_config, f"--model {located.root}")


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
