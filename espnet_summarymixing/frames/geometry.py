"""How feature frames become encoder frames: the arithmetic of ESPnet's subsampling layers.

Plain Python: the numbers work on ints, NumPy arrays and torch tensors alike, so the encoder, the
streaming encoder, the ONNX graphs, the blocked long-form front end and the ONNX runtime (which
reads the steps from the export's manifest) all count frames the same way.

ESPnet's ``Conv2dSubsampling*`` / ``Conv1dSubsampling*`` are stacks of unpadded convolutions; each
is described by ``(frames lost, stride)``: a convolution of kernel ``k`` and stride ``s`` loses
``k - 1`` frames and keeps one frame in ``s``.

    >>> conv2d = Subsampling(((2, 2), (2, 2)))  # ESPnet's Conv2dSubsampling: two 3x3, stride 2
    >>> conv2d.stride, conv2d.receptive_field, conv2d.lookahead
    (4, 7, 3)
    >>> conv2d.frames_out(100), conv2d.frames_in(24)
    (24, 99)
    >>> NO_SUBSAMPLING.frames_out(100), NO_SUBSAMPLING.frames_in(5)
    (100, 5)
"""

from dataclasses import dataclass
from typing import Sequence, Tuple

__all__ = ["Subsampling", "NO_SUBSAMPLING", "STEPS"]

#: (frames lost, stride) of each convolution of ESPnet's subsampling layers, by ``input_layer`` name.
STEPS = {
    "conv2d": ((2, 2), (2, 2)),
    "conv2d1": ((2, 1), (2, 1)),
    "conv2d2": ((2, 2), (2, 1)),
    "conv2d6": ((2, 2), (4, 3)),
    "conv2d8": ((2, 2), (2, 2), (2, 2)),
    "conv1d1": ((2, 1), (2, 1)),
    "conv1d2": ((2, 1), (2, 2)),
    "conv1d3": ((2, 1), (4, 3)),
}


@dataclass(frozen=True)
class Subsampling:
    """The frame arithmetic of a stack of unpadded convolutions over time.

    Args:
        steps: ``(frames lost, stride)`` per convolution, input side first (``()``: no subsampling).
    """

    steps: Tuple[Tuple[int, int], ...] = ()

    def __post_init__(self):
        steps = tuple((int(lost), int(stride)) for lost, stride in self.steps)
        if any(lost < 0 or stride < 1 for lost, stride in steps):
            raise ValueError(f"subsampling steps {self.steps}: each needs frames lost >= 0 and stride >= 1")
        object.__setattr__(self, "steps", steps)

    @classmethod
    def of(cls, steps: Sequence[Sequence[int]]) -> "Subsampling":
        """From a list of ``[lost, stride]`` pairs (as an export's manifest stores them)."""
        return cls(tuple(tuple(step) for step in steps))

    @property
    def stride(self) -> int:
        """Input frames per output frame."""
        stride = 1
        for _, s in self.steps:
            stride *= s
        return stride

    @property
    def receptive_field(self) -> int:
        """Input frames that one output frame depends on."""
        field, stride = 1, 1
        for lost, s in self.steps:
            field += lost * stride
            stride *= s
        return field

    @property
    def lookahead(self) -> int:
        """Input frames an output frame reads beyond the ``stride`` frames it stands for: what a
        stream must wait for on top of a chunk's own frames."""
        return self.receptive_field - self.stride

    def frames_out(self, frames):
        """Output frames whose receptive field lies inside ``frames`` input frames (int, array or
        tensor; may be 0 or negative for an input shorter than the receptive field)."""
        for lost, stride in self.steps:
            frames = (frames - lost + stride - 1) // stride
        return frames

    def frames_in(self, frames_out: int) -> int:
        """The fewest input frames that give ``frames_out`` output frames (``frames_out`` >= 1)."""
        if frames_out < 1:
            raise ValueError(f"frames_out={frames_out} must be at least 1")
        return (frames_out - 1) * self.stride + self.receptive_field

    def input_frames_consumed(self, frames_out: int) -> int:
        """Input frames that ``frames_out`` output frames move a stream forward by."""
        return frames_out * self.stride


#: The identity: no subsampling (``input_layer`` linear, None).
NO_SUBSAMPLING = Subsampling(())
