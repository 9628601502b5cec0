"""What a model is, read from its files before anything is built, and the model built from them.

Every command takes its model through :func:`inspect_model` (files and config only: no torch), so
that a model of a kind it cannot use is refused in one line before anything is loaded, and then
:func:`load_model` (ESPnet's task builds it, the weights read safely). The kinds:

- ``asr``: an ASR model for full-context (offline) decoding;
- ``streaming``: an ASR model trained to stream: a SummaryMixing encoder trained on chunks
  (``dynamic_chunk_training``) or decoding in chunks (``decode_chunk_size`` > 0); it decodes offline
  too;
- ``classifier``: ESPnet's classification task (``espnet2.tasks.cls``);
- ``onnx``: a folder written by the ONNX export (``manifest.json``), run by onnxruntime alone. A
  packed ASR model may carry one too (:attr:`ModelSource.onnx_dir`).

    >>> kind_of({"encoder": "summarymixing_conformer", "ctc_conf": {}, "encoder_conf": {"decode_chunk_size": 8}})
    'streaming'
    >>> kind_of({"encoder": "conformer", "ctc_conf": {}}), kind_of({"decoder": "linear"})
    ('asr', 'classifier')
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional, Tuple

from espnet_summarymixing.loading.models import (TASK_KEYS, decode_config_of, load_state, locate_model,
                                                 read_yaml, task_of)

__all__ = ["KINDS", "ModelSource", "inspect_model", "inspect_files", "kind_of", "load_model"]

KINDS = {
    "asr": "an ASR model",
    "streaming": "an ASR model trained to stream",
    "classifier": "a classifier",
    "onnx": "an ONNX export",
}


def kind_of(config: dict, task: Optional[str] = None) -> str:
    """The kind (a key of ``KINDS``, not ``onnx``) of a model from its training config alone;
    ``task`` (``asr`` or ``cls``) when its files named it, else read from the config (:func:`task_of`).

    Reads ``encoder_conf`` as written, whatever spelling its time-convolution keys use
    (``conv_context`` or the older ``causal_conv``/``chunk_conv``): training on chunks is what
    makes a model stream."""
    if (task or task_of(config)) == "cls":
        return "classifier"
    conf = config.get("encoder_conf") or {}
    chunk = conf.get("decode_chunk_size")
    chunked = isinstance(chunk, (int, float)) and not isinstance(chunk, bool) and chunk > 0
    ours = str(config.get("encoder", "")).startswith("summarymixing")
    if ours and (chunked or conf.get("dynamic_chunk_training") is True):
        return "streaming"
    return "asr"


@dataclass(frozen=True)
class ModelSource:
    """A model as ``--model`` names it, found and read but not built.

    Attributes:
        given: The model as given (a path or a Hub id), for messages.
        kind: A key of ``KINDS``.
        form: ``archive``, ``packed folder``, ``hub``, ``training folder`` or ``ONNX folder``.
        files: ESPnet's ``<task>_train_config`` and ``<task>_model_file`` (empty for an ONNX folder).
        config: The training config (empty for an ONNX folder).
        onnx_dir: The ONNX export: the folder itself, or one packed with the model or written into
            its training folder (``onnx/``); None if there is none.
        root: The model folder (unpacked archive, snapshot, training folder or ONNX folder).
        decode_config: The packed decoding config (``pack --inference_config``: beam size, CTC
            weight...), empty without one.
    """

    given: str
    kind: str
    form: str
    files: Dict[str, str] = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    onnx_dir: Optional[str] = None
    root: Optional[str] = None
    decode_config: dict = field(default_factory=dict)

    @property
    def description(self) -> str:
        """``a classifier``, ``an ASR model``... for messages."""
        return KINDS[self.kind]

    @property
    def task(self) -> Optional[str]:
        """ESPnet's task (``asr`` or ``cls``); None for an ONNX folder."""
        return None if self.kind == "onnx" else ("cls" if self.kind == "classifier" else "asr")

    @property
    def train_config(self) -> Optional[str]:
        """The training config's path."""
        return self.files.get(TASK_KEYS[self.task][0]) if self.task else None

    @property
    def model_file(self) -> Optional[str]:
        """The checkpoint's path."""
        return self.files.get(TASK_KEYS[self.task][1]) if self.task else None


def _is_onnx_folder(path: Path) -> bool:
    return path.is_dir() and (path / "manifest.json").is_file() and not (path / "meta.yaml").is_file() \
        and not (path / "config.yaml").is_file()


def inspect_model(model: str, cachedir: Optional[str] = None) -> ModelSource:
    """Find a model's files and tell its kind, building nothing (no torch is imported).

    ``model``: a zip/tar archive, an unpacked archive or Hub snapshot, a training folder, a Hub id or
    an ONNX export folder. Raises FileNotFoundError for what is not there and ValueError for a
    model that cannot be used (unsafe or corrupt archive, a task other than ASR or classification).
    """
    path = Path(model)
    if _is_onnx_folder(path):
        return ModelSource(str(model), "onnx", "ONNX folder", onnx_dir=str(path), root=str(path))
    located = locate_model(model, cachedir)
    tasks = [task for task, (config_key, _) in TASK_KEYS.items() if config_key in located.files]
    if not tasks:
        raise ValueError(f"--model {model}: a model of another ESPnet task (its files: {', '.join(located.files)}); "
                         "only ASR models and classifiers are supported")
    config_key, model_key = TASK_KEYS[tasks[0]]
    if model_key not in located.files:
        raise ValueError(f"--model {model}: meta.yaml names {config_key} but no {model_key}")
    config = read_yaml(located.files[config_key], f"--model {model}: its training config")
    kind = kind_of(config, tasks[0])
    onnx = [p.parent for p in sorted(Path(located.root).glob("exp/*/onnx/manifest.json"))]
    if located.form == "training folder" and (Path(located.root) / "onnx" / "manifest.json").is_file():
        onnx = [Path(located.root) / "onnx"]
    return ModelSource(str(model), kind, located.form, dict(located.files), config,
                       str(onnx[0]) if onnx and kind != "classifier" else None, str(located.root),
                       decode_config_of(located))


def inspect_files(train_config: str, model_file: str, task: Optional[str] = None) -> ModelSource:
    """A model given as its training config and checkpoint (ESPnet's ``--asr_train_config`` and
    ``--asr_model_file``, or the classification task's): its kind, read from the config (``task``:
    ``asr`` or ``cls`` when the flags said it). FileNotFoundError names a missing file."""
    what = "--asr_train_config" if task != "cls" else "--classification_train_config"
    for flag, path in ((what, train_config), (what.replace("train_config", "model_file"), model_file)):
        if not Path(path).is_file():
            raise FileNotFoundError(f"{flag} {path}: no such file")
    config = read_yaml(train_config, f"{what} {train_config}")
    task = task or task_of(config)
    kind = kind_of(config, task)
    config_key, model_key = TASK_KEYS[task]
    onnx = Path(train_config).parent / "onnx"
    onnx_dir = str(onnx) if (onnx / "manifest.json").is_file() and task == "asr" else None
    files = {config_key: str(train_config), model_key: str(model_file)}
    return ModelSource(str(model_file), kind, "training files", files, config, onnx_dir, str(Path(train_config).parent))


def load_model(source: ModelSource, device: str = "cpu") -> Tuple[object, object]:
    """Build the model of ``source`` with ESPnet's task (ASR or classification) and load its weights
    safely; return ``(model in eval mode, training arguments)``. An ONNX export has no PyTorch model:
    ValueError."""
    if source.kind == "onnx":
        raise ValueError(f"--model {source.given}: an ONNX export runs with onnxruntime, not PyTorch")
    if source.task == "cls":
        from espnet2.tasks.cls import CLSTask as Task
    else:
        from espnet2.tasks.asr import ASRTask as Task
    model, args = Task.build_model_from_file(source.train_config, None, device)
    load_state(model, source.model_file, device)
    return model.eval(), args
