"""Recognise speech with an exported model (:mod:`.export`) using onnxruntime and NumPy only.

This module imports neither torch nor ESPnet (tested): a server or a device needs ``onnxruntime``,
``numpy`` and ``soundfile``.

    >>> from espnet_summarymixing.deploy.runtime import greedy_ctc, tokens_to_text
    >>> import numpy as np
    >>> lp = np.log(np.array([[.1, .8, .1], [.1, .8, .1], [.9, .05, .05], [.1, .1, .8]]))
    >>> greedy_ctc(lp)
    [1, 2]
    >>> tokens_to_text(["H", "I", "<space>", "Y", "O", "U"]), tokens_to_text(["\u2581hel", "lo", "\u2581you"])
    ('HI YOU', 'hello you')
"""

import json
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

__all__ = ["OnnxRecognizer", "greedy_ctc", "tokens_to_text", "read_wave"]


def greedy_ctc(log_probs: np.ndarray, blank: int = 0) -> List[int]:
    """Best-path CTC: the most likely token per frame, repeats merged, blanks removed."""
    best = log_probs.argmax(axis=-1)
    keep = np.ones(len(best), dtype=bool)
    keep[1:] = best[1:] != best[:-1]
    return [int(t) for t in best[keep] if t != blank]


def tokens_to_text(tokens: Sequence[str]) -> str:
    """Join tokens as ESPnet does for characters (``<space>``) and sentencepiece pieces (``\u2581``)."""
    text = "".join(" " if t == "<space>" else t for t in tokens)
    return " ".join(text.replace("\u2581", " ").split())


def read_wave(path: str, rate: int) -> np.ndarray:
    """A file as mono float32 samples; ValueError naming the file unless it is at ``rate`` Hz."""
    import soundfile

    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        wave, file_rate = soundfile.read(path, dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError) as err:
        raise ValueError(f"{path}: cannot read the audio ({err})") from None
    if file_rate != rate:
        raise ValueError(f"{path}: sampled at {file_rate} Hz, but the model expects {rate} Hz: "
                         f"resample it first (e.g. sox {path} -r {rate} out.wav)")
    if wave.shape[0] == 0:
        raise ValueError(f"{path}: no audio samples")
    return wave.mean(axis=1) if wave.shape[1] > 1 else wave[:, 0]


class OnnxRecognizer:
    """An exported model folder, loaded once: ``recognizer([wave, ...]) -> [text, ...]``.

    Args:
        model_dir: The folder written by ``python -m espnet_summarymixing.export``.
        int8: Use the 8-bit quantised graph (exported with ``--quantize int8``).
        threads: onnxruntime intra-op threads (default: onnxruntime's choice).
    """

    def __init__(self, model_dir: str, int8: bool = False, threads: Optional[int] = None):
        import onnxruntime

        root = Path(model_dir)
        manifest_path = root / "manifest.json"
        if not manifest_path.is_file():
            raise FileNotFoundError(f"{model_dir}: no manifest.json: not a folder written by "
                                    "python -m espnet_summarymixing.export")
        try:
            self.manifest = json.loads(manifest_path.read_text())
            graph = self.manifest["graphs"]["offline_int8" if int8 else "offline"]
        except (ValueError, KeyError) as err:
            what = "no int8 graph (export with --quantize int8)" if int8 else f"unreadable ({err})"
            raise ValueError(f"{manifest_path}: {what}") from None
        self.rate = int(self.manifest["sample_rate"])
        self.tokens = (root / self.manifest["token_list"]).read_text(encoding="utf-8").splitlines()
        self.blank = int(self.manifest.get("blank_id", 0))
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        try:
            self.session = onnxruntime.InferenceSession(str(root / graph), options,
                                                        providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own exception types
            raise ValueError(f"{root / graph}: not a loadable ONNX model ({err})") from None

    def log_probs(self, waves: Sequence[np.ndarray]) -> List[np.ndarray]:
        """CTC log-probabilities (frames, vocabulary) of each wave, computed in one padded batch."""
        lengths = np.array([len(w) for w in waves], dtype=np.int64)
        batch = np.zeros((len(waves), int(lengths.max())), dtype=np.float32)
        for i, w in enumerate(waves):
            batch[i, :len(w)] = w
        out, out_lengths = self.session.run(None, {"speech": batch, "speech_lengths": lengths})
        return [out[i, :n] for i, n in enumerate(out_lengths)]

    def text(self, log_probs: np.ndarray) -> str:
        return tokens_to_text([self.tokens[t] for t in greedy_ctc(log_probs, self.blank)])

    def __call__(self, waves: Sequence[np.ndarray]) -> List[str]:
        return [self.text(lp) for lp in self.log_probs(waves)]

    def transcribe_file(self, path: str) -> str:
        return self([read_wave(path, self.rate)])[0]
