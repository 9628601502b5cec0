"""A stream's framing, in NumPy: which STFT frames the audio received so far determines, and the
greedy-CTC hypothesis carried from chunk to chunk. The PyTorch streaming recogniser and the ONNX
one both use these, so that they cut a stream the same way and refuse the same inputs.

ESPnet's default front end computes a centred STFT: feature frame ``t`` is the window of ``n_fft``
samples centred on sample ``t * hop``, the signal reflected at both ends. A frame is final once the
samples up to ``t * hop + n_fft // 2`` have arrived; a segment cut out of the stream is reflected at
its own edges, so the first ``ceil(half / hop)`` frames of a segment (its context) are recomputed
from earlier samples and dropped.

    >>> import numpy as np
    >>> stft = IncrementalStft(n_fft=400, hop=160)
    >>> stft.add(np.zeros(1000, dtype=np.float32))
    >>> segment, skip, count = stft.pending(final=False)
    >>> len(segment), skip, count  # frames 0..5 are final: frame 5 needs the samples before 1000
    (1000, 0, 6)
    >>> stft.advance(count); stft.next_frame
    6
    >>> carry = GreedyCtc(blank=0)
    >>> carry.push([0, 3, 3, 0, 3, 5]); carry.push([5, 5, 0, 2]); carry.tokens
    [3, 3, 5, 2]
"""

from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

__all__ = ["IncrementalStft", "GreedyCtc", "TooShortError", "feed", "latency_seconds", "stream_summary"]


class TooShortError(ValueError):
    """The whole stream is shorter than one STFT window: no feature frame can be computed."""


class IncrementalStft:
    """Samples in as they arrive; out, the segment of audio whose STFT gives the next final frames.

    Args:
        n_fft: STFT window (samples).
        hop: STFT hop (samples).

    Use: :meth:`add` samples; :meth:`pending` gives ``(segment, skip, count)`` (or None): compute the
    features of ``segment`` with the model's front end, keep the ``count`` frames after the first
    ``skip``, then call :meth:`advance` with ``count``.
    """

    def __init__(self, n_fft: int, hop: int):
        if n_fft < 1 or hop < 1:
            raise ValueError(f"n_fft={n_fft} and hop={hop} must be positive")
        self.n_fft, self.hop = int(n_fft), int(hop)
        self.half = self.n_fft // 2
        self.context = -(-self.half // self.hop)  # frames a segment's own reflected edge corrupts
        self.reset()

    def reset(self) -> None:
        """Start a new stream."""
        self.audio = np.zeros(0, dtype=np.float32)  # samples from index audio_start on
        self.audio_start = 0
        self.next_frame = 0  # first feature frame not computed yet

    @property
    def samples(self) -> int:
        """Samples received since the start of the stream."""
        return self.audio_start + len(self.audio)

    def add(self, samples) -> None:
        """Append mono samples (any array-like; converted to float32)."""
        self.audio = np.concatenate([self.audio, np.asarray(samples, dtype=np.float32).reshape(-1)])

    def pending(self, final: bool) -> Optional[Tuple[np.ndarray, int, int]]:
        """The audio segment to compute, the frames to skip at its start and the new frames to keep;
        None when no new frame is final yet. ``final``: the stream has ended, every frame is final.

        Raises :class:`TooShortError` when the stream ends before its first frame could be computed.
        """
        last = self.samples // self.hop if final else (self.samples - self.half) // self.hop
        first = max(0, self.next_frame - self.context)
        segment = self.audio[first * self.hop - self.audio_start:]
        if len(segment) <= self.half:  # the reflection padding needs more than half a window
            if final and self.next_frame == 0:
                raise TooShortError(f"the audio is too short: {self.samples} samples, the model's STFT window "
                                    f"needs more than {self.half}")
            return None
        if last < self.next_frame:
            return None
        return segment, self.next_frame - first, last - self.next_frame + 1

    def advance(self, frames: int) -> None:
        """``frames`` new frames were computed: drop the audio no later frame needs."""
        self.next_frame += frames
        keep_from = max(0, (self.next_frame - self.context) * self.hop)
        if keep_from > self.audio_start:
            self.audio = self.audio[keep_from - self.audio_start:]
            self.audio_start = keep_from

    def features(self, compute: Callable[[np.ndarray], "np.ndarray"], final: bool):
        """The new final frames, as ``compute(segment)`` returns them sliced (any array type with
        frames first), or None; ``compute`` maps a float32 segment to its frames (T, F)."""
        job = self.pending(final)
        if job is None:
            return None
        segment, skip, count = job
        feats = compute(segment)[skip:skip + count]
        self.advance(len(feats))
        return feats


class GreedyCtc:
    """Best-path CTC over a stream: per-frame labels in, tokens out, with repeats merged across
    chunk boundaries (the last label is carried) and blanks removed."""

    def __init__(self, blank: int = 0):
        self.blank = int(blank)
        self.reset()

    def reset(self) -> None:
        self.tokens: List[int] = []
        self.previous = self.blank

    def push(self, labels: Sequence[int]) -> None:
        """Add the best label of each new frame."""
        for label in labels:
            label = int(label)
            if label != self.blank and label != self.previous:
                self.tokens.append(label)
            self.previous = label


def feed(recognizer, wave, block: int, on_partial: Optional[Callable[[float, str], None]] = None) -> str:
    """Feed a whole recording ``block`` samples at a time to a streaming recogniser
    (``reset()``, ``accept_audio(samples) -> text so far``, ``finish() -> text``, ``rate``), as if
    live; ``on_partial(seconds, text)`` sees every change of the hypothesis. Returns the final text."""
    if block < 1:
        raise ValueError(f"block={block} must be at least one sample")
    recognizer.reset()
    shown = ""
    total = len(wave)
    for start in range(0, total, block):
        text = recognizer.accept_audio(wave[start:start + block])
        if on_partial is not None and text != shown:
            shown = text
            on_partial(min(total, start + block) / recognizer.rate, text)
    return recognizer.finish()


def latency_seconds(frames_waited: int, stft: IncrementalStft, rate: int) -> float:
    """The algorithmic latency of a stream that needs ``frames_waited`` feature frames from the
    start of a chunk (the chunk's, its look-ahead's and the subsampling's own look-ahead,
    ``Subsampling.frames_in(chunk + look-ahead)``): those frame shifts and half an STFT window (the
    last frame, centred on its shift, reads n_fft / 2 samples past it). Compute time not included."""
    return (frames_waited * stft.hop + stft.half) / rate


def stream_summary(chunk: int, lookahead: int, latency: float, chunk_seconds: Sequence[float]) -> str:
    """The line a streaming command ends with: chunk, look-ahead, algorithmic latency and the
    compute per chunk (median, max) when chunks were timed."""
    line = f"chunk {chunk}, look-ahead {lookahead}, algorithmic latency {round(1000 * latency)} ms"
    if chunk_seconds:
        ms = sorted(1000 * s for s in chunk_seconds)
        line += f"; compute per chunk: median {ms[len(ms) // 2]:.1f} ms, max {ms[-1]:.1f} ms over {len(ms)} steps"
    return line
