"""lookahead_frames: every frame sees R frames ahead, once, before the blocks; streamed = chunked forward."""

import pytest
import torch

from conftest import batch, sampled, tiny
from espnet_summarymixing.layers.lookahead import LookAhead
from espnet_summarymixing.streaming.encoder import StreamingEncoder
from test_streaming_encoder import _stream

EXTRAS = {"conformer": dict(macaron_style=True, cnn_module_kernel=5), "branchformer": dict(merge_method="concat"),
          "e_branchformer": dict(use_ffn=True, macaron_ffn=True, merge_conv_kernel=5)}


def _lively(enc):
    """Random look-ahead weights (a new encoder's are zero: no look-ahead at all)."""
    with torch.no_grad():
        enc.lookahead.weight.normal_(0, 0.5, generator=torch.Generator().manual_seed(1))
    return enc


def test_lookahead_is_the_equation_zero_past_the_end():
    ahead = LookAhead(3, 2)
    with torch.no_grad():
        ahead.weight.normal_()
    x = torch.randn(2, 7, 3)
    valid = torch.ones(2, 7, 1)
    valid[1, 5:] = 0
    got = ahead(x, valid)
    w = ahead.weight[:, 0, :]  # (D, R)
    for b, length in ((0, 7), (1, 5)):
        for t in range(length):
            want = x[b, t] + sum(w[:, j - 1] * x[b, t + j] for j in (1, 2) if t + j < length)
            torch.testing.assert_close(got[b, t], want)
    with pytest.raises(ValueError, match="lookahead_frames=0 must be at least 1"):
        LookAhead(3, 0)


def test_a_new_lookahead_changes_nothing_and_old_checkpoints_load():
    plain = tiny("conformer", conv_context="chunk", decode_chunk_size=2).eval()
    ahead = tiny("conformer", conv_context="chunk", decode_chunk_size=2, lookahead_frames=3).eval()
    missing, unexpected = ahead.load_state_dict(plain.state_dict(), strict=False)
    assert missing == ["lookahead.weight"] and unexpected == []
    x, lengths = batch([60, 41])
    with torch.no_grad():
        torch.testing.assert_close(ahead(x, lengths)[0], plain(x, lengths)[0])
    assert "lookahead.weight" not in plain.state_dict()  # the default adds no parameter


@pytest.mark.parametrize("conv", ["chunk", "causal"])
@pytest.mark.parametrize("lookahead", [1, 3])
def test_a_frame_sees_exactly_lookahead_frames_past_its_chunk(lookahead, conv):
    chunk = 3
    enc = _lively(tiny("conformer", conv_context=conv, decode_chunk_size=chunk, lookahead_frames=lookahead,
                       cnn_module_kernel=5)).eval()
    x = torch.randn(1, 120, 20)
    with torch.no_grad():
        y = enc(x, torch.tensor([120]))[0]
        for k in (0, 4):
            last = (k + 1) * chunk - 1 + lookahead  # the last frame chunk k may read; conv2d reads 4j .. 4j + 6
            x2 = x.clone()
            x2[:, 4 * last + 7:] += 5.0  # beyond it: chunk k unchanged
            torch.testing.assert_close(enc(x2, torch.tensor([120]))[0][:, :(k + 1) * chunk], y[:, :(k + 1) * chunk])
            x3 = x.clone()
            x3[:, 4 * last + 6] += 5.0  # inside it: the chunk's frames change
            assert not torch.allclose(enc(x3, torch.tensor([120]))[0][:, k * chunk:(k + 1) * chunk],
                                      y[:, k * chunk:(k + 1) * chunk])


CASES = [(name, conv, chunk, lookahead) for name in EXTRAS for conv in ("chunk", "causal")
         for chunk in (1, 4) for lookahead in (1, 3)]
QUICK = [("conformer", "chunk", 4, 3), ("branchformer", "causal", 1, 3), ("e_branchformer", "chunk", 1, 1)]


@pytest.mark.parametrize("name, conv, chunk, lookahead", sampled(CASES, QUICK, ids=lambda c: "-".join(map(str, c))))
def test_streaming_with_lookahead_equals_chunked_forward_padded_or_alone(name, conv, chunk, lookahead):
    enc = _lively(tiny(name, num_blocks=2, conv_context=conv, decode_chunk_size=chunk, lookahead_frames=lookahead,
                       **EXTRAS[name])).eval()
    x, lengths = batch([157, 90])
    with torch.no_grad():
        full, out_lengths, _ = enc(x, lengths)
    for b in range(2):
        streamed, _ = _stream(enc, x[b:b + 1, :lengths[b]], chunk, seed=b)
        assert streamed.size(1) == out_lengths[b]
        torch.testing.assert_close(streamed[0], full[b, :out_lengths[b]], atol=1e-5, rtol=1e-5)


def test_the_stream_holds_only_lookahead_frames():
    enc = _lively(tiny("conformer", num_blocks=1, conv_context="chunk", decode_chunk_size=2, lookahead_frames=3)).eval()
    stream = StreamingEncoder(enc)
    held = []
    for _ in range(50):  # 8 input frames: 2 embedded frames a step (the first step 1)
        stream.accept(torch.randn(1, 8, 20))
        held.append(stream.ahead.size(1))
    assert held[:2] == [1, 3] and set(held[2:]) == {3}
    assert stream.finish().size(1) > 0 and stream.ahead is None  # flushed, reset


@pytest.mark.parametrize("value", [-1, True])  # a float: typeguard stops it first
def test_invalid_lookahead(value):
    with pytest.raises(ValueError, match=f"lookahead_frames={value!r} must be 0"):
        tiny("conformer", conv_context="chunk", lookahead_frames=value)


@pytest.mark.parametrize("chunk, lookahead, frames", [(4, 0, 19), (4, 2, 27), (16, 0, 67), (1, 3, 19)])
def test_a_stream_waits_for_the_chunk_its_lookahead_and_the_subsampling(chunk, lookahead, frames):
    enc = tiny("conformer", conv_context="chunk", decode_chunk_size=chunk, lookahead_frames=lookahead).eval()
    stream = StreamingEncoder(enc)
    assert stream.frames_waited == frames  # 4 input frames per encoder frame, and 3 more for the last one
    x = torch.randn(1, frames, 20)
    assert stream.accept(x[:, :-1]).size(1) == 0 and stream.accept(x[:, -1:]).size(1) == chunk
