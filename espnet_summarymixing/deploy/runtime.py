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

import time
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from espnet_summarymixing.frames.framing import GreedyCtc, IncrementalStft, latency_seconds, stream_summary
from espnet_summarymixing.frames.geometry import Subsampling
from espnet_summarymixing.loading.audio import read_samples
from espnet_summarymixing.loading.manifest import read_manifest, read_tokens

__all__ = ["OnnxRecognizer", "OnnxStreamingRecognizer", "greedy_ctc", "tokens_to_text", "read_wave"]


def greedy_ctc(log_probs: np.ndarray, blank: int = 0) -> List[int]:
    """Best-path CTC: the most likely token per frame, repeats merged, blanks removed."""
    carry = GreedyCtc(blank)
    carry.push(log_probs.argmax(axis=-1).tolist())
    return carry.tokens


def tokens_to_text(tokens: Sequence[str]) -> str:
    """Join tokens as ESPnet does for characters (``<space>``) and sentencepiece pieces (``\u2581``)."""
    text = "".join(" " if t == "<space>" else t for t in tokens)
    return " ".join(text.replace("\u2581", " ").split())


def read_wave(path: str, rate: int) -> np.ndarray:
    """A file as mono float32 samples (:func:`~espnet_summarymixing.loading.audio.read_samples`);
    ValueError naming the file unless it is at ``rate`` Hz (resampling needs torch)."""
    samples, file_rate, _ = read_samples(path)
    if file_rate != rate:
        raise ValueError(f"{path}: sampled at {file_rate} Hz, but the model expects {rate} Hz: "
                         f"resample it first (e.g. sox {path} -r {rate} out.wav)")
    return samples


MAX_THREADS = 1024
MIN_SECONDS = 0.1  # a failure on audio shorter than this is the front end's "too short"


def _session(path: Path, threads: Optional[int]):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= MAX_THREADS:
            raise ValueError(f"threads={threads!r}: expected an integer from 1 to {MAX_THREADS}")
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own exception types
        raise ValueError(f"{path}: not a loadable ONNX model ({err})") from None


def _load_common(recognizer, root: Path, graph: str) -> None:
    """What both recognisers read from an export folder (checked: :func:`~espnet_summarymixing.loading.
    manifest.read_manifest`): manifest, sample rate, tokens, blank id."""
    recognizer.manifest = read_manifest(root, graph)
    recognizer.rate = recognizer.manifest["sample_rate"]
    recognizer.tokens = read_tokens(root, recognizer.manifest)
    recognizer.blank = recognizer.manifest.get("blank_id", 0)


def _check_vocabulary(session, tokens: List[str], path: Path) -> None:
    """The graph's output size, where fixed, must be the number of tokens."""
    size = session.get_outputs()[0].shape[-1]
    if isinstance(size, int) and size != len(tokens):
        raise ValueError(f"{path}: the graph scores {size} tokens, but the token list has {len(tokens)}")


class OnnxRecognizer:
    """An exported model folder, loaded once: ``recognizer([wave, ...]) -> [text, ...]``.

    Args:
        model_dir: The folder written by ``python -m espnet_summarymixing.export``.
        int8: Use the 8-bit quantised graph (exported with ``--quantize int8``).
        threads: onnxruntime intra-op threads (default: onnxruntime's choice).
    """

    def __init__(self, model_dir: str, int8: bool = False, threads: Optional[int] = None):
        root = Path(model_dir)
        graph = "offline_int8" if int8 else "offline"
        _load_common(self, root, graph)
        self.session = _session(root / self.manifest["graphs"][graph], threads)
        _check_vocabulary(self.session, self.tokens, root / self.manifest["graphs"][graph])

    def log_probs(self, waves: Sequence[np.ndarray]) -> List[np.ndarray]:
        """CTC log-probabilities (frames, vocabulary) of each wave, computed in one padded batch."""
        lengths = np.array([len(w) for w in waves], dtype=np.int64)
        batch = np.zeros((len(waves), int(lengths.max())), dtype=np.float32)
        for i, w in enumerate(waves):
            batch[i, :len(w)] = w
        try:
            out, out_lengths = self.session.run(None, {"speech": batch, "speech_lengths": lengths})
        except Exception as err:  # onnxruntime's own types; on a few samples, the STFT's padding fails
            if lengths.min() < MIN_SECONDS * self.rate:
                raise ValueError(f"too short for the model's front end ({lengths.min()} samples)") from None
            raise ValueError(f"onnxruntime failed: {(str(err).strip().splitlines() or [''])[0]}") from None
        return [out[i, :n] for i, n in enumerate(out_lengths)]

    def text(self, log_probs: np.ndarray) -> str:
        return tokens_to_text([self.tokens[t] for t in greedy_ctc(log_probs, self.blank)])

    def __call__(self, waves: Sequence[np.ndarray]) -> List[str]:
        return [self.text(lp) for lp in self.log_probs(waves)]

    def transcribe_file(self, path: str) -> str:
        return self([read_wave(path, self.rate)])[0]


class OnnxStreamingRecognizer:
    """Audio in as it arrives, a growing greedy CTC hypothesis out, with the graphs of an export made
    with ``--streaming``: the same computation as :class:`~espnet_summarymixing.streaming.recognizer.
    StreamingRecognizer` (features as soon as their STFT window is complete, chunks of
    ``manifest["streaming"]["chunk_size"]`` encoder frames, the state carried between chunks).

    ``accept_audio(samples) -> text so far``; ``finish() -> final text``; ``reset()`` for a new stream.
    """

    def __init__(self, model_dir: str, threads: Optional[int] = None):
        root = Path(model_dir)
        _load_common(self, root, "streaming")
        stream = self.manifest["streaming"]
        self.features = _session(root / self.manifest["graphs"]["features"], threads)
        self.step = _session(root / self.manifest["graphs"]["streaming"], threads)
        _check_vocabulary(self.step, self.tokens, root / self.manifest["graphs"]["streaming"])
        self.stft = IncrementalStft(stream["n_fft"], stream["hop_length"])
        self.geometry = Subsampling.of(stream["subsampling_steps"])
        self.input_frames = stream["input_frames"]
        self.per_chunk = stream["input_frames_per_chunk"]
        self.chunk_size = stream["chunk_size"]
        self.lookahead = stream.get("lookahead_frames", 0)  # exports before look-ahead existed have none
        self.state_specs = [(item["name"], tuple(item["shape"])) for item in stream["state"]]
        self.reset()

    def reset(self) -> None:
        """Start a new stream."""
        self.stft.reset()
        self.buffer: Optional[np.ndarray] = None  # feature frames not consumed by a chunk yet
        self.position = 0  # encoder frames produced so far
        self.state = {name: np.zeros(shape, dtype=np.float32) for name, shape in self.state_specs}
        self.ctc = GreedyCtc(self.blank)
        self.chunk_seconds: List[float] = []  # compute time of each step, scaled to a whole chunk

    @property
    def latency_seconds(self) -> float:
        """The algorithmic latency (:func:`~espnet_summarymixing.frames.framing.latency_seconds`)."""
        return latency_seconds(self.input_frames, self.stft, self.rate)

    def summary(self, chunk_seconds: List[float]) -> str:
        """Chunk, look-ahead, latency and compute per chunk, as every streaming command reports them."""
        return stream_summary(self.chunk_size, self.lookahead, self.latency_seconds, chunk_seconds)

    def _features(self, segment: np.ndarray) -> np.ndarray:
        feats, _ = self.features.run(None, {"speech": segment[None].astype(np.float32),
                                            "speech_lengths": np.array([len(segment)], dtype=np.int64)})
        return feats[0]  # (T, F)

    def _chunk(self, feats: np.ndarray, ahead: int) -> None:
        """One step: ``feats`` give a chunk and ``lookahead`` frames more, the first ``ahead`` of them real."""
        extra = {"ahead": np.array([ahead], dtype=np.int64)} if self.lookahead else {}
        start = time.perf_counter()
        outputs = self.step.run(None, {"feats": feats[None], "position": np.array([self.position], dtype=np.int64),
                                       **extra, **self.state})
        log_probs = outputs[0][0]
        if len(log_probs):
            self.chunk_seconds.append((time.perf_counter() - start) * self.chunk_size / len(log_probs))
        self.state = {name: value for (name, _), value in zip(self.state_specs, outputs[1:])}
        self.position += len(log_probs)
        self.ctc.push(log_probs.argmax(axis=-1).tolist())

    def _consume(self, feats: Optional[np.ndarray], final: bool) -> None:
        if feats is not None and len(feats):
            self.buffer = feats if self.buffer is None else np.concatenate([self.buffer, feats])
        if self.buffer is None:
            return
        while len(self.buffer) >= self.input_frames:
            self._chunk(self.buffer[:self.input_frames], self.lookahead)
            self.buffer = self.buffer[self.per_chunk:]
        while final and self.geometry.frames_out(len(self.buffer)) >= 1:  # the last chunks, their look-ahead cut
            real = int(self.geometry.frames_out(len(self.buffer)))
            frames = min(self.chunk_size, real)
            need = self.geometry.frames_in(frames + self.lookahead)
            window = np.pad(self.buffer[:need], ((0, max(0, need - len(self.buffer))), (0, 0)))
            self._chunk(window, min(self.lookahead, real - frames))
            self.buffer = self.buffer[self.geometry.input_frames_consumed(frames):]
        if final:
            self.buffer = None

    def text(self) -> str:
        return tokens_to_text([self.tokens[t] for t in self.ctc.tokens])

    def accept_audio(self, samples: np.ndarray) -> str:
        """Add mono float samples at the model's rate; return the hypothesis so far."""
        self.stft.add(samples)
        self._consume(self.stft.features(self._features, final=False), final=False)
        return self.text()

    def finish(self) -> str:
        """End of the stream: decode what remains; return the final text (the state is reset, the
        stream's ``chunk_seconds`` kept until the next one starts)."""
        self._consume(self.stft.features(self._features, final=True), final=True)
        text, timed = self.text(), self.chunk_seconds
        self.reset()
        self.chunk_seconds = timed
        return text
