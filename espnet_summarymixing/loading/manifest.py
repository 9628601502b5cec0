"""An ONNX export's ``manifest.json``, read as from a stranger: every field the runtime or ``pack``
uses is type- and range-checked, and every file it names must be a file inside the export folder.
One :class:`ValueError` names the field and what was expected. Standard library only (the ONNX
runtime imports no torch).

    >>> check_int({"n": 0}, "n", "manifest.json", low=1)
    Traceback (most recent call last):
    ...
    ValueError: manifest.json: n: expected an integer of at least 1, got 0
"""

import json
import math
from pathlib import Path
from typing import List, Optional

from espnet_summarymixing.loading.archive import inside

__all__ = ["read_manifest", "read_tokens", "manifest_files", "check_int", "GRAPH_OPTIONS"]

# how to get a graph that an export lacks
GRAPH_OPTIONS = {"offline_int8": "--quantize int8", "streaming": "--streaming", "features": "--streaming"}
MAX_MANIFEST_BYTES = 1 << 20
MAX_STATE_VALUES = 1 << 26  # 256 MB of float32 carried between chunks: far above any real model


def check_int(data: dict, key: str, where: str, low: int = 0, high: Optional[int] = None) -> int:
    """``data[key]``, an integer in [low, high]; ValueError naming ``where: key`` otherwise."""
    value = data.get(key) if isinstance(data, dict) else None
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bound = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise ValueError(f"{where}: {key}: expected an integer {bound}, got {value!r}")
    return value


def _inside(root: Path, name, where: str, must_exist: bool = True) -> Path:
    return inside(root, name, where, "export folder", must_exist)


def _check_streaming(stream, where: str) -> None:
    if not isinstance(stream, dict):
        raise ValueError(f"{where}: expected the streaming graph's settings (an object), got {stream!r}")
    check_int(stream, "chunk_size", where, 1, 1 << 16)
    frames = check_int(stream, "input_frames", where, 1, 1 << 20)
    check_int(stream, "input_frames_per_chunk", where, 1, frames)
    n_fft = check_int(stream, "n_fft", where, 1, 1 << 16)
    check_int(stream, "hop_length", where, 1, n_fft)
    steps = stream.get("subsampling_steps")
    if not isinstance(steps, list) or not all(
            isinstance(s, list) and len(s) == 2 and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                                                        for v in s) and s[1] >= 1 for s in steps):
        raise ValueError(f"{where}: subsampling_steps: expected a list of [frames lost, stride] integer pairs "
                         f"(stride >= 1), got {steps!r}")
    state = stream.get("state")
    if not isinstance(state, list):
        raise ValueError(f"{where}: state: expected a list of {{name, shape}}, got {state!r}")
    for i, item in enumerate(state):
        shape = item.get("shape") if isinstance(item, dict) else None
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not isinstance(shape, list) or \
                not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in shape):
            raise ValueError(f"{where}: state[{i}]: expected {{'name': text, 'shape': [integers >= 0]}}, got {item!r}")
        if math.prod(shape) > MAX_STATE_VALUES:
            raise ValueError(f"{where}: state[{i}]: shape {shape} holds {math.prod(shape)} values, more than "
                             f"{MAX_STATE_VALUES}: not a real model's state")


def read_manifest(root, graph: Optional[str] = None) -> dict:
    """The checked manifest of the export folder ``root``: every file it names inside the folder, the
    token list there; with ``graph`` (``offline``, ``offline_int8``, ``streaming``), that graph's file
    (and for ``streaming`` the features graph and the streaming settings) must be there. FileNotFoundError for a missing folder, manifest or file it
    names; ValueError naming the field for anything else."""
    root = Path(root)
    path = root / "manifest.json"
    where = str(path)
    if not path.is_file():
        raise FileNotFoundError(f"{root}: no manifest.json: not a folder written by python -m "
                                "espnet_summarymixing.export")
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise ValueError(f"{where}: {path.stat().st_size} bytes, more than a manifest can be")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{where}: not valid JSON ({err})") from None
    if not isinstance(manifest, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(manifest).__name__}")
    graphs = manifest.get("graphs")
    if not isinstance(graphs, dict) or not graphs:
        raise ValueError(f"{where}: graphs: expected an object {{name: file}}, got {graphs!r}")
    for name, file in graphs.items():  # all inside the folder; those used must be there (below)
        _inside(root, file, f"{where}: graphs.{name}", must_exist=False)
    check_int(manifest, "sample_rate", where, 1000, 384000)
    _inside(root, manifest.get("token_list"), f"{where}: token_list")
    if "blank_id" in manifest:
        check_int(manifest, "blank_id", where, 0)
    if graph is not None:
        needed = [graph, "features"] if graph == "streaming" else [graph]
        for name in needed:
            if name not in graphs:
                how = GRAPH_OPTIONS.get(name)
                raise ValueError(f"{where}: no {name} graph" + (f" (export with {how})" if how else ""))
            _inside(root, graphs[name], f"{where}: graphs.{name}")
        if graph == "streaming":
            _check_streaming(manifest.get("streaming"), f"{where}: streaming")
    return manifest


def read_tokens(root, manifest: dict) -> List[str]:
    """The token list the manifest names (one token per line, UTF-8), checked against ``blank_id``."""
    path = Path(root) / manifest["token_list"]
    try:
        tokens = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: token_list is not UTF-8 text ({err.reason})") from None
    if not tokens:
        raise ValueError(f"{path}: token_list is empty: expected one token per line")
    blank = manifest.get("blank_id", 0)
    if blank >= len(tokens):
        raise ValueError(f"{path}: blank_id {blank} is not one of its {len(tokens)} tokens")
    return tokens


def manifest_files(root) -> List[Path]:
    """The manifest, then every file it names (graphs, tokens, ``feats_stats.npz`` if present), each a
    file inside ``root`` (what ``pack --onnx_dir`` packs)."""
    root = Path(root)
    manifest = read_manifest(root)
    for name, file in manifest["graphs"].items():
        _inside(root, file, f"{root / 'manifest.json'}: graphs.{name}")
    names = [*manifest["graphs"].values(), manifest["token_list"]]
    if (root / "feats_stats.npz").is_file():
        names.append("feats_stats.npz")
    return [root / "manifest.json", *(root / name for name in dict.fromkeys(names))]
