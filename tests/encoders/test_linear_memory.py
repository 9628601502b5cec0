"""The encoders are linear in memory: no forward creates a tensor larger than c * T elements.

Every tensor an operator returns is recorded (a dispatch mode sees all of them, including those
ESPnet's helpers build), so a T x T mask or score matrix anywhere in a forward fails the test
without timing or measuring anything."""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from conftest import ENCODERS, tiny

FRAMES = 6000  # feature frames: a T x T boolean matrix would hold 36 million elements
PER_FRAME = 1000  # generous: the largest tensors of these tiny encoders hold ~300 elements per frame


class _LargestTensor(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.largest, self.op = 0, None

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor) and t.numel() > self.largest:
                self.largest, self.op = t.numel(), str(func)
        return out


def largest_tensor(fn):
    mode = _LargestTensor()
    with mode:
        fn()
    return mode.largest, mode.op


CASES = [(name, training, chunked) for name in ENCODERS for training in (False, True) for chunked in (False, True)]


@pytest.mark.parametrize("name, training, chunked", CASES,
                         ids=[f"{n}-{'train' if t else 'eval'}-{'chunked' if c else 'full'}" for n, t, c in CASES])
def test_no_forward_builds_a_quadratic_tensor(name, training, chunked):
    options = dict(conv_context="chunk", decode_chunk_size=4, dynamic_chunk_training=True, full_context_prob=0.0,
                   chunk_size_range=[4, 4]) if chunked else {}
    enc = tiny(name, **options).train(training)
    x = torch.randn(2, FRAMES, 20)
    ilens = torch.tensor([FRAMES, FRAMES - 1234])

    def step():
        out = enc(x, ilens)[0]
        if training:
            out.pow(2).mean().backward()

    with torch.set_grad_enabled(training):
        largest, op = largest_tensor(step)
    assert largest <= PER_FRAME * FRAMES, f"{op} made a tensor of {largest:,} elements for {FRAMES} frames"


def test_the_check_sees_a_quadratic_mask():
    from espnet.nets.pytorch_backend.nets_utils import make_pad_mask

    largest, _ = largest_tensor(lambda: make_pad_mask(torch.tensor([FRAMES, 10]), maxlen=FRAMES))
    assert largest > PER_FRAME * FRAMES
