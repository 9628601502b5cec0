"""Pack a trained model into a zip that ``espnet_model_zoo`` and ``Speech2Text`` load offline.

Unlike a bare ``espnet2.bin.pack``, every file that the training config points to and that
decoding needs (normalisation statistics, sentencepiece model, a token list given as a file)
is found in the config and packed with it, under a fixed layout, with the config rewritten to
point at the packed copies. The zip also carries the decoding config and a model card
(README.md). The archive format is ESPnet's own (``meta.yaml`` + files), so
``ModelDownloader().download_and_unpack("model.zip")`` and
``Speech2Text.from_pretrained("model.zip")`` work on it unchanged.
"""

import shutil
import tempfile
from pathlib import Path
from typing import Dict, List, Optional

import yaml

from espnet_summarymixing.loading.manifest import manifest_files
from espnet_summarymixing.loading.models import DECODE_CONFIG, DECODING_FILES, config_value, read_yaml
from espnet_summarymixing.publish.model_card import model_card

__all__ = ["pack_model", "LAYOUT", "TASKS", "layout"]

# ESPnet's names of a task's training config and model file (those of espnet2.bin.pack and of the
# task's inference class), and the folder of the archive they go in.
TASKS = {
    "asr": ("asr_train_config", "asr_model_file", "exp/asr_train"),
    "cls": ("classification_train_config", "classification_model_file", "exp/cls_train"),
}

# Where each kind of file goes inside the archive (an ASR model; see layout() for the others).
LAYOUT = {
    "config": "exp/asr_train/config.yaml",
    "model": "exp/asr_train/model.pth",
    "inference_config": f"exp/asr_train/{DECODE_CONFIG}",  # where loading looks for it
    "results": "exp/asr_train/RESULTS.md",
    "readme": "README.md",
    "onnx": "exp/asr_train/onnx",
}


def layout(task: str = "asr") -> Dict[str, str]:
    """Where each kind of file goes inside the archive of a ``task`` model (``TASKS``)."""
    if task not in TASKS:
        raise ValueError(f"pack: task must be one of {', '.join(TASKS)}, got '{task}'")
    folder = TASKS[task][2]
    return {kind: path.replace("exp/asr_train", folder) for kind, path in LAYOUT.items()}


def _referenced_files(config: dict) -> Dict[str, Path]:
    """Files the config points to that decoding needs (``DECODING_FILES``): {config key path: file}."""
    found = {}
    for dotted in DECODING_FILES:
        value = config_value(config, dotted)
        if isinstance(value, str) and value not in ("none", ""):
            found[dotted] = Path(value)
    return found


def _set(config: dict, dotted: str, value: str) -> None:
    keys = dotted.split(".")
    for key in keys[:-1]:
        config = config[key]
    config[keys[-1]] = value


def pack_model(
    asr_train_config: Path,
    asr_model_file: Path,
    outpath: Path,
    inference_config: Optional[Path] = None,
    results: Optional[Path] = None,
    training_data: Optional[str] = None,
    options: Optional[List[Path]] = None,
    onnx_dir: Optional[Path] = None,
    task: str = "asr",
) -> Path:
    """Write the zip; return its path. Raises FileNotFoundError naming any missing input.

    ``asr_train_config`` and ``asr_model_file`` are the ``task``'s training config and weights
    (``task="cls"``: a classifier, which ESPnet's ``Classification`` loads from the unpacked
    archive). ``onnx_dir`` (ASR only): a folder written by ``python -m espnet_summarymixing.export``,
    packed under ``exp/asr_train/onnx/`` and listed on the model card."""
    from espnet2.main_funcs.pack_funcs import pack

    places = layout(task)
    config_key, model_key, folder = TASKS[task]
    if onnx_dir is not None and task != "asr":
        raise ValueError("pack: ONNX files are packed with ASR models only")
    asr_train_config, asr_model_file = Path(asr_train_config), Path(asr_model_file)
    inputs = {f"--{config_key}": asr_train_config, f"--{model_key}": asr_model_file}
    if inference_config is not None:
        inputs["--inference_config"] = Path(inference_config)
    if results is not None:
        inputs["--results"] = Path(results)
    for i, option in enumerate(options or []):
        inputs[f"--option #{i + 1}"] = Path(option)
    if onnx_dir is not None:
        inputs["--onnx_dir manifest"] = Path(onnx_dir) / "manifest.json"
    for flag, path in inputs.items():
        if not path.is_file():
            raise FileNotFoundError(f"pack: {flag} {path}: no such file")
    names: Dict[str, Path] = {}
    for option in options or []:  # each goes to <folder>/extra/<its name>
        if Path(option).name in names:
            raise ValueError(f"pack: --option {names[Path(option).name]} and --option {option} have the same name "
                             f"and would be packed as one file: rename one")
        names[Path(option).name] = Path(option)
    try:
        onnx_files = manifest_files(onnx_dir) if onnx_dir is not None else []
    except (OSError, ValueError) as err:
        raise type(err)(f"pack: --onnx_dir {onnx_dir}: {err}") from None
    config = read_yaml(asr_train_config, f"pack: --{config_key}")
    if "encoder" not in config:
        raise ValueError(f"pack: {asr_train_config} is not an ESPnet training config (no 'encoder' key)")
    referenced = _referenced_files(config)
    for key, path in referenced.items():
        if not path.is_file():
            raise FileNotFoundError(
                f"pack: {asr_train_config} sets {key}: {path}, which does not exist; decoding needs it"
            )

    outpath = Path(outpath).absolute()
    with tempfile.TemporaryDirectory() as staging:
        stage = Path(staging)

        def put(src: Path, name: str) -> str:
            (stage / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, stage / name)
            return name

        option_names = []
        for key, path in referenced.items():
            name = put(path, f"{folder}/files/{key.split('.')[-1]}/{path.name}")
            _set(config, key, name)  # unpacking rewrites it to the unpacked location
            option_names.append(name)
        (stage / places["config"]).parent.mkdir(parents=True, exist_ok=True)
        (stage / places["config"]).write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        put(asr_model_file, places["model"])
        if inference_config is not None:
            option_names.append(put(Path(inference_config), places["inference_config"]))
        results_text = None
        if results is not None:
            option_names.append(put(Path(results), places["results"]))
            results_text = Path(results).read_text(encoding="utf-8")
        for option in options or []:
            option_names.append(put(Path(option), f"{folder}/extra/{Path(option).name}"))
        onnx = None
        if onnx_files:
            onnx = {"files": {}, "manifest": yaml.safe_load(onnx_files[0].read_text(encoding="utf-8"))}
            for path in onnx_files:
                option_names.append(put(path, f"{places['onnx']}/{path.name}"))
                onnx["files"][f"{places['onnx']}/{path.name}"] = path.stat().st_size
        card = model_card(stage / places["config"], stage / places["model"], results=results_text,
                          training_data=training_data, onnx=onnx, task=task)
        (stage / places["readme"]).write_text(card, encoding="utf-8")
        option_names.append(places["readme"])

        cwd = Path.cwd()
        try:
            import os

            os.chdir(stage)  # ESPnet stores paths relative to the working directory
            pack(
                files={model_key: places["model"]},
                yaml_files={config_key: places["config"]},
                outpath=str(outpath),
                option=option_names,
            )
        finally:
            os.chdir(cwd)
    return outpath


