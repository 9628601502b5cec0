"""Model cards (README.md) for packed or uploaded ESPnet models with a SummaryMixing encoder."""

from pathlib import Path
from typing import Optional

import yaml

__all__ = ["model_card", "CITATION"]

CITATION = """@inproceedings{parcollet2024summarymixing,
  title={SummaryMixing: A Linear-Complexity Alternative to Self-Attention for Speech Recognition and Understanding},
  author={Parcollet, Titouan and van Dalen, Rogier and Zhang, Shucong and Bhattacharya, Sourav},
  booktitle={Interspeech},
  year={2024}
}"""


def _count_parameters(config_path: Path, model_path: Optional[Path]) -> dict:
    """Total and encoder parameters, read from the checkpoint (no model is built)."""
    if model_path is None or not Path(model_path).exists():
        return {}
    from espnet_summarymixing.loading.models import load_weights

    state = load_weights(model_path)  # ValueError for a checkpoint that is more than weights
    total = sum(v.numel() for v in state.values())
    encoder = sum(v.numel() for k, v in state.items() if k.startswith("encoder."))
    return {"total": total, "encoder": encoder}


def _data_description(config: dict) -> str:
    parts = []
    for entry in config.get("train_data_path_and_name_and_type") or []:
        path = entry[0] if isinstance(entry, (list, tuple)) else str(entry).split(",")[0]
        parts.append(f"`{Path(path).parent.name}/{Path(path).name}`")
    return ", ".join(parts) or "not recorded in the config"


def _onnx_section(onnx: Optional[dict]) -> list:
    if not onnx:
        return []
    manifest = onnx["manifest"]
    folder = next(iter(onnx["files"])).rsplit("/", 1)[0]
    stream = manifest.get("streaming")
    lines = [
        "## Deploying with ONNX",
        "",
        f"`{folder}/` holds the model exported to ONNX (opset {manifest['versions']['opset']}; input: the "
        f"{manifest['input']} at {manifest['sample_rate']} Hz, output: CTC log-probabilities), which runs with "
        "onnxruntime and NumPy alone:",
        "",
        "| file | size |",
        "|---|---|",
        *(f"| `{path}` | {size / 1e6:.1f} MB |" for path, size in onnx["files"].items()),
        "",
        f"Export check: largest difference to PyTorch {manifest['check']['max_abs_difference']:.1e} "
        "(log-probabilities)"
        + (f"; streaming graph: chunks of {stream['chunk_size']} encoder frames ({stream['chunk_seconds']} s), "
           f"{stream['check']['max_abs_difference']:.1e} to PyTorch's streaming encoder." if stream else "."),
        "",
        "```bash",
        "pip install onnxruntime numpy soundfile",
        "pip install --no-deps espnet-summarymixing   # the runtime needs neither torch nor ESPnet",
        f"python -m espnet_summarymixing.onnx_transcribe --model_dir {folder} audio.wav"
        + (" [--streaming]" if stream else ""),
        "```",
        "",
    ]
    return lines


def _labels_row(config: dict, task: str) -> str:
    tokens = config.get("token_list") or []
    if task == "asr":
        return f"| tokens | {config.get('token_type', '?')}, {len(tokens)} units |"
    labels = [t for t in tokens if t not in ("<blank>", "<unk>")]
    shown = ", ".join(f"`{label}`" for label in labels[:40]) + (", ..." if len(labels) > 40 else "")
    return f"| classes | {len(labels)}: {shown} |"


def _asr_usage(tag: str) -> list:
    return [
        "```bash",
        "pip install espnet-summarymixing   # registers the encoder names in ESPnet",
        f"python -m espnet_summarymixing.transcribe --model {tag} audio.wav",
        "```",
        "",
        "```python",
        "import soundfile",
        "from espnet2.bin.asr_inference import Speech2Text",
        "",
        f'speech2text = Speech2Text.from_pretrained("{tag}")',
        'speech, rate = soundfile.read("audio.wav")  # 16 kHz mono',
        "text = speech2text(speech)[0][0]  # best hypothesis",
        "```",
    ]


def _cls_usage(tag: str, config: dict) -> list:
    rate = (config.get("frontend_conf") or {}).get("fs", "the model's")
    return [
        "```bash",
        "pip install espnet-summarymixing   # registers the encoder names in ESPnet",
        f"python -m espnet_summarymixing.classify --model {tag} clip1.wav clip2.wav   # file -> label (probability)",
        "```",
        "",
        "```python",
        "import soundfile",
        "from espnet_model_zoo.downloader import ModelDownloader",
        "from espnet2.bin.cls_inference import Classification",
        "",
        f'files = ModelDownloader().download_and_unpack("{tag}")',
        "classifier = Classification(**files)",
        f'speech, rate = soundfile.read("clip.wav")  # mono, {rate} Hz',
        "ids, probabilities, label = classifier(speech)",
        "```",
    ]


def model_card(
    config_path: Path,
    model_path: Optional[Path] = None,
    repo_id: Optional[str] = None,
    results: Optional[str] = None,
    training_data: Optional[str] = None,
    onnx: Optional[dict] = None,
    task: str = "asr",
) -> str:
    """Markdown model card from a training config, its checkpoint and optional RESULTS text.

    Args:
        config_path: ESPnet training ``config.yaml``.
        model_path: The packed checkpoint, for parameter counts.
        repo_id: Hugging Face repository id used in the usage snippet.
        results: Scoring tables (e.g. a recipe's RESULTS.md), copied verbatim.
        training_data: A sentence on the training data; default: the data paths in the config.
        onnx: ``{"files": {path in the archive: bytes}, "manifest": the export's manifest}`` when
            ONNX files are packed: listed in a "Deploying with ONNX" section.
        task: ``"asr"`` (speech recognition) or ``"cls"`` (a classifier: its classes and ESPnet's
            ``Classification`` in the usage section).
    """
    config = yaml.safe_load(Path(config_path).read_text(encoding="utf-8"))
    encoder = config.get("encoder", "?")
    conf = config.get("encoder_conf") or {}
    counts = _count_parameters(config_path, model_path)
    tag = repo_id or "<path to model.zip or hub id>"
    summary_keys = {k: v for k, v in conf.items() if k.startswith("summary_")}
    lines = [
        "---",
        "tags:",
        "- espnet",
        "- audio",
        "- automatic-speech-recognition" if task == "asr" else "- audio-classification",
        "- summarymixing",
        "library_name: espnet",
        "license: cc-by-4.0",
        "---",
        "",
        f"# ESPnet {'ASR model' if task == 'asr' else 'classifier'} with a SummaryMixing encoder (`{encoder}`)",
        "",
        "SummaryMixing replaces self-attention by a per-frame MLP and one mean over the utterance:",
        "the encoder's cost and memory grow linearly with the length of the audio.",
        "",
        "## Model",
        "",
        "| | |",
        "|---|---|",
        f"| encoder | `{encoder}`: {conf.get('num_blocks', '?')} blocks x {conf.get('output_size', '?')} |",
        f"| SummaryMixing | {', '.join(f'{k}={v}' for k, v in summary_keys.items()) or 'defaults'} |",
        f"| decoder | `{config.get('decoder', '?')}` |",
        _labels_row(config, task),
        f"| frontend / normalisation | `{config.get('frontend', '?')}` / `{config.get('normalize', '?')}` |",
    ]
    if counts:
        lines.append(f"| parameters | {counts['total']:,} in all, {counts['encoder']:,} in the encoder |")
    lines += [
        f"| training data | {training_data or _data_description(config)} |",
        (f"| CTC weight (training) | {(config.get('model_conf') or {}).get('ctc_weight', '?')} |" if task == "asr"
         else f"| classification | {(config.get('model_conf') or {}).get('classification_type', 'multi-class')} |"),
        "",
        "## Results",
        "",
        results.strip() if results else "No scoring results were packed with this model.",
        "",
        "## Usage",
        "",
        *(_asr_usage(tag) if task == "asr" else _cls_usage(tag, config)),
        "",
        "The encoder names resolve in ESPnet once `espnet-summarymixing` is installed; no import is needed.",
        "",
        *_onnx_section(onnx),
        "## Citation",
        "",
        "```bibtex",
        CITATION,
        "```",
        "",
    ]
    return "\n".join(lines)
