"""Look-ahead: every encoder frame sees the next few embedded frames, once, before the blocks.

A streaming encoder (``conv_context`` chunk or causal) sees nothing past the end of its chunk, so the
last frames of each chunk decide with no right context at all. ``lookahead_frames: R`` adds, to each
embedded frame t, a learnt per-channel mix of frames t + 1 .. t + R (a depthwise convolution over the
future only, zero past the end of the utterance):

    y_t = x_t + sum_{j=1..R} w_j * x_{t+j}

It sits between the input layer and the blocks, so it does not compound through the layers: a stream
waits for R frames more than the chunk, in every layer at once (latency + R frame shifts), and the
blocks keep their O(1) state. ``w`` starts at zero (the encoder starts as the one without
look-ahead).

    >>> import torch
    >>> ahead = LookAhead(4, 2)
    >>> x = torch.randn(1, 6, 4)
    >>> torch.equal(ahead(x, torch.ones(1, 6, 1)), x)  # w = 0 at the start
    True
    >>> ahead.frames_ready(torch.randn(1, 9, 4)).shape  # a stream: frames whose 2 next frames are known
    torch.Size([1, 7, 4])
"""

import torch

__all__ = ["LookAhead"]


class LookAhead(torch.nn.Module):
    """``y_t = x_t + sum_{j=1..frames} w_j * x_{t+j}``, per channel, over embedded frames (B, T, D).

    Args:
        size (int): D, the encoder's output size.
        frames (int): R >= 1, the frames seen ahead.
    """

    def __init__(self, size: int, frames: int):
        super().__init__()
        if frames < 1:
            raise ValueError(f"lookahead_frames={frames} must be at least 1 to build a look-ahead")
        self.frames = frames
        self.weight = torch.nn.Parameter(torch.zeros(size, 1, frames))  # (D, 1, R): w_1 .. w_R

    def frames_ready(self, x: torch.Tensor) -> torch.Tensor:
        """(B, n, D) consecutive frames, the last R only read -> (B, n - R, D): the output of the
        first n - R frames, each of which has its R next frames in ``x``."""
        future = torch.nn.functional.conv1d(x[:, 1:].transpose(1, 2), self.weight, groups=x.size(2))  # (B, D, n - R)
        return x[:, :x.size(1) - self.frames] + future.transpose(1, 2)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Whole sequences: x (B, T, D), ``valid`` (B, T, 1) 0/1 -> (B, T, D); padded frames and the
        frames past the end count as zeros."""
        x = x * valid
        return self.frames_ready(torch.nn.functional.pad(x, (0, 0, 0, self.frames)))
