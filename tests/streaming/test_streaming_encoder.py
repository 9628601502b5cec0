"""Chunk-causal SummaryMixing Conformer: streaming = chunked forward, no look-ahead, no drift."""

import random

import pytest
import torch

from conftest import sampled, tiny
from espnet_summarymixing.layers import masked as _masked
from espnet_summarymixing.streaming.encoder import StreamingEncoder

# The two streamable conv_context values: left-only, or centred and cut at the chunk end.
CONV_CONTEXTS = ["causal", "chunk"]


def _stream(enc, x, chunk, seed=0):
    rng = random.Random(seed)
    stream, outs, i = StreamingEncoder(enc, chunk), [], 0
    while i < x.size(1):
        n = rng.randint(1, 23)
        outs.append(stream.accept(x[:, i:i + n]))
        i += n
    outs.append(stream.finish())
    return torch.cat(outs, dim=1), stream


BRANCH_EXTRAS = [
    ("branchformer", dict(merge_method="concat")),
    ("branchformer", dict(merge_method="fixed_ave", use_linear_after_conv=True)),
    ("branchformer", dict(use_attn=False)),
    ("e_branchformer", dict(use_ffn=True, macaron_ffn=True, merge_conv_kernel=5)),
    ("e_branchformer", dict(interctc_layer_idx=[1], interctc_use_conditioning=True, num_blocks=3)),
]
# (conv_context, chunk, index in BRANCH_EXTRAS): all 20 in the full suite, each variant once in the quick tier
BRANCH_CASES = [(conv, chunk, i) for i in range(len(BRANCH_EXTRAS)) for chunk in (1, 3) for conv in CONV_CONTEXTS]
BRANCH_QUICK = [("chunk", 1, 0), ("causal", 3, 1), ("chunk", 3, 2), ("causal", 1, 3), ("chunk", 3, 4)]


@pytest.mark.parametrize("conv, chunk, variant", sampled(
    BRANCH_CASES, BRANCH_QUICK, ids=lambda case: f"{case[0]}-{case[1]}-{BRANCH_EXTRAS[case[2]][0]}-extra{case[2]}"))
def test_streaming_branchformers_equal_chunked_forward(variant, chunk, conv):
    name, extra = BRANCH_EXTRAS[variant]
    from espnet2.asr.ctc import CTC

    enc = tiny(name, conv_context=conv, decode_chunk_size=chunk, pos_enc_layer_type="abs_pos", **extra).eval()
    ctc = None
    if extra.get("interctc_use_conditioning"):
        ctc = CTC(odim=7, encoder_output_size=16)
        enc.conditioning_layer = torch.nn.Linear(7, 16)
    x = torch.randn(1, 143, 20)
    with torch.no_grad():
        full = enc(x, torch.tensor([143]), ctc=ctc)[0]
    full = full[0] if isinstance(full, tuple) else full
    rng, stream, outs, i = random.Random(1), StreamingEncoder(enc, chunk, ctc=ctc), [], 0
    while i < x.size(1):
        n = rng.randint(1, 23)
        outs.append(stream.accept(x[:, i:i + n]))
        i += n
    streamed = torch.cat(outs + [stream.finish()], dim=1)
    torch.testing.assert_close(streamed, full, atol=1e-5, rtol=1e-5)


# (conv_context, decode_chunk_size, summary_mode, input_layer, pos_enc_layer_type): all 48 in the full
# suite; the quick tier runs six that take every value and every mode with both contexts.
STREAM_CASES = [(conv, chunk, mode, layer, pos) for layer, pos in [("conv2d", "abs_pos"), ("conv2d6", "scaled_abs_pos"),
                                                                  ("conv1d2", "none"), ("linear", "abs_pos")]
                for mode in ("mixing", "lite", "fast") for chunk in (1, 4) for conv in CONV_CONTEXTS]
STREAM_QUICK = [("causal", 1, "mixing", "conv2d", "abs_pos"), ("chunk", 4, "mixing", "linear", "abs_pos"),
                ("chunk", 1, "lite", "conv2d6", "scaled_abs_pos"), ("causal", 4, "lite", "conv1d2", "none"),
                ("causal", 4, "fast", "linear", "abs_pos"), ("chunk", 4, "fast", "conv2d", "abs_pos")]


@pytest.mark.parametrize("conv, chunk, mode, input_layer, pos",
                         sampled(STREAM_CASES, STREAM_QUICK, ids=lambda case: "-".join(map(str, case))))
def test_streaming_equals_chunked_forward(input_layer, pos, mode, chunk, conv):
    enc = tiny("conformer", num_blocks=3, macaron_style=True, conv_context=conv, decode_chunk_size=chunk,
               input_layer=input_layer, pos_enc_layer_type=pos, summary_mode=mode, cnn_module_kernel=5).eval()
    x = torch.randn(1, 157, 20)
    with torch.no_grad():
        full = enc(x, torch.tensor([157]))[0]
    streamed, _ = _stream(enc, x, chunk)
    assert streamed.shape == full.shape
    torch.testing.assert_close(streamed, full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("conv", CONV_CONTEXTS)
def test_no_frame_sees_beyond_its_chunk(conv):
    chunk = 3
    enc = tiny("conformer", conv_context=conv, decode_chunk_size=chunk, cnn_module_kernel=5).eval()
    x = torch.randn(1, 120, 20)
    with torch.no_grad():
        y = enc(x, torch.tensor([120]))[0]
        for k in (0, 2, 5):
            last = (k + 1) * chunk - 1  # last frame of chunk k; conv2d reads inputs 4j .. 4j + 6
            x2 = x.clone()
            x2[:, 4 * last + 7:] += 5.0
            y2 = enc(x2, torch.tensor([120]))[0]
            torch.testing.assert_close(y2[:, :last + 1], y[:, :last + 1])
            assert not torch.allclose(y2[:, last + 1:], y[:, last + 1:])


def test_full_context_is_not_chunk_causal():
    enc = tiny("conformer", conv_context="causal").eval()  # decode_chunk_size 0: offline
    x = torch.randn(1, 120, 20)
    with torch.no_grad():
        y = enc(x, torch.tensor([120]))[0]
        x[:, 100:] += 5.0
        assert not torch.allclose(enc(x, torch.tensor([120]))[0][:, :3], y[:, :3])


@pytest.mark.slow  # 1,000 chunks one by one: ~15 s each
@pytest.mark.parametrize("conv", CONV_CONTEXTS)
def test_thousand_chunks_without_drift_or_growth(conv):
    enc = tiny("conformer", num_blocks=2, conv_context=conv, decode_chunk_size=1, cnn_module_kernel=3).eval()
    x = torch.randn(1, 4 * 1000 + 3, 20)
    with torch.no_grad():
        full = enc(x, torch.tensor([x.size(1)]))[0]
    stream, outs, sizes = StreamingEncoder(enc), [], set()
    for i in range(0, x.size(1), 4):
        outs.append(stream.accept(x[:, i:i + 4]))
        buffered = stream.buffer.size(1) if stream.buffer is not None else 0
        shapes = tuple(tuple(p.shape) for s in stream.states if s for p in (s[0][0], s[0][1], s[1]))
        sizes.add((buffered, shapes))
    streamed = torch.cat(outs + [stream.finish()], dim=1)
    assert streamed.size(1) == full.size(1) == 1000
    torch.testing.assert_close(streamed, full, atol=1e-5, rtol=1e-5)
    shapes = {shape for _, shape in sizes if shape}
    assert len(shapes) == 1  # the same state shapes at chunk 2 and at chunk 1000
    assert max(buffered for buffered, _ in sizes) <= 7 + 4  # conv2d's receptive field + one step


def test_dynamic_chunk_training_draws_chunks_in_range(monkeypatch):
    enc = tiny("conformer", conv_context="causal", dynamic_chunk_training=True, chunk_size_range=[2, 5],
               full_context_prob=0.3).train()
    seen = []
    cell = type(enc.encoders[0].summary_mixing)
    original = cell.forward

    def spy(self, x, mask=None, chunk_size=0, *args, **kwargs):
        seen.append(chunk_size)
        return original(self, x, mask, chunk_size, *args, **kwargs)

    monkeypatch.setattr(cell, "forward", spy)
    torch.manual_seed(0)
    x = torch.randn(2, 80, 20)
    for _ in range(30):
        enc(x, torch.tensor([80, 60]))[0].sum().backward()
    assert set(seen) <= {0, 2, 3, 4, 5} and 0 in seen and len(set(seen)) >= 4
    enc.eval()
    seen.clear()
    enc(x, torch.tensor([80, 60]))
    assert set(seen) == {0}


@pytest.mark.parametrize("kwargs, message", [
    (dict(decode_chunk_size=4), "need conv_context='chunk' or 'causal', not 'full'"),
    (dict(dynamic_chunk_training=True), "need conv_context='chunk' or 'causal', not 'full'"),
    (dict(conv_context="causal", chunk_size_range=[5, 2]), r"chunk_size_range=\[5, 2\] must be \[min, max\]"),
    (dict(conv_context="causal", chunk_size_range=[0, 2]), r"chunk_size_range=\[0, 2\]"),
    (dict(conv_context="causal", full_context_prob=1.5), "full_context_prob=1.5"),
    (dict(conv_context="causal", decode_chunk_size=-1), "decode_chunk_size=-1"),
])
def test_invalid_chunk_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny("conformer", **kwargs)


def test_streaming_refuses_what_it_cannot_stream():
    with pytest.raises(ValueError, match="needs conv_context='chunk' or 'causal' to be streamed, not 'full'"):
        StreamingEncoder(tiny("conformer"), 4)
    with pytest.raises(ValueError, match="chunk_size=0 must be a positive"):
        StreamingEncoder(tiny("conformer", conv_context="causal"))
    with pytest.raises(ValueError, match="must be a SummaryMixing encoder"):
        StreamingEncoder(torch.nn.Linear(2, 2), 4)
    with pytest.raises(ValueError, match=r"feats must be \(1, n, features\)"):
        StreamingEncoder(tiny("conformer", conv_context="causal"), 4).accept(torch.randn(2, 8, 20))


@pytest.mark.parametrize("name, extra", [("conformer", dict(macaron_style=True)),
                                         ("branchformer", dict(merge_method="concat")),
                                         ("branchformer", dict(merge_method="fixed_ave")),
                                         ("e_branchformer", dict(use_ffn=True, macaron_ffn=True, merge_conv_kernel=5))])
@pytest.mark.parametrize("conv", CONV_CONTEXTS)
def test_chunked_forward_of_every_encoder_sees_no_future(name, extra, conv):
    chunk = 4
    enc = tiny(name, conv_context=conv, decode_chunk_size=chunk, **extra).eval()
    x = torch.randn(2, 160, 20)
    ilens = torch.tensor([160, 131])
    with torch.no_grad():
        y = enc(x, ilens)[0]
        last = 2 * chunk - 1  # end of the second chunk
        x2 = x.clone()
        x2[:, 4 * last + 7:] -= 3.0
        y2 = enc(x2, ilens)[0]
    torch.testing.assert_close(y2[:, :last + 1], y[:, :last + 1])
    assert not torch.allclose(y2[0, last + 1:], y[0, last + 1:])


@pytest.mark.parametrize("name", ["conformer", "branchformer", "e_branchformer"])
@pytest.mark.parametrize("conv", CONV_CONTEXTS)
def test_dynamic_chunk_training_trains_every_encoder(name, conv):
    enc = tiny(name, conv_context=conv, dynamic_chunk_training=True, chunk_size_range=[1, 8]).train()
    x = torch.randn(2, 90, 20)
    for _ in range(4):
        out = enc(x, torch.tensor([90, 70]))[0]
        out.pow(2).mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in enc.parameters() if p.grad is not None)



# ----------------------------------------------------------------------------- chunk-aware convolution


def _chunk_aware_reference(conv, h, chunk):
    """Frame by frame: output t sums w_j h[t + j - r] over the taps whose frame lies in 0 .. end of
    t's chunk (everything else counts as zero)."""
    k = conv.kernel_size[0]
    r = (k - 1) // 2
    b, d, t = h.shape
    out = torch.zeros(b, d, t)
    for i in range(t):
        end = min(t, (i // chunk + 1) * chunk) if chunk else t
        for j in range(k):
            src = i + j - r
            if 0 <= src < end:
                out[:, :, i] += conv.weight[:, 0, j] * h[:, :, src]
        out[:, :, i] += conv.bias
    return out


@pytest.mark.parametrize("kernel, chunk, t", [(5, 1, 9), (5, 3, 10), (7, 4, 16), (15, 2, 23), (3, 50, 12),
                                              (9, 0, 11), (1, 3, 7)])
def test_chunk_context_matches_frame_by_frame_reference(kernel, chunk, t):
    torch.manual_seed(kernel * 100 + t)
    conv = torch.nn.Conv1d(6, 6, kernel, padding=(kernel - 1) // 2, groups=6)
    h = torch.randn(2, 6, t)
    with torch.no_grad():
        got = _masked._time_conv(conv, h, "chunk", chunk_size=chunk)
        torch.testing.assert_close(got, _chunk_aware_reference(conv, h, chunk), atol=1e-5, rtol=1e-5)
        if chunk == 0 or chunk >= t:
            torch.testing.assert_close(got, conv(h))  # full context: the ordinary centred convolution


def test_chunk_context_streams_chunk_by_chunk():
    torch.manual_seed(3)
    conv = torch.nn.Conv1d(4, 4, 7, padding=3, groups=4)
    h, chunk = torch.randn(1, 4, 29), 5
    outs, cache = [], None
    with torch.no_grad():
        for i in range(0, 29, chunk):
            out, cache = _masked._conv_step(conv, h[:, :, i:i + chunk], cache, "chunk")
            outs.append(out)
            assert cache.shape == (1, 4, 3)
        torch.testing.assert_close(torch.cat(outs, 2), _chunk_aware_reference(conv, h, chunk), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name, extra", [("conformer", dict(macaron_style=True)),
                                         ("branchformer", dict(merge_method="concat")),
                                         ("e_branchformer", dict(use_ffn=True, merge_conv_kernel=5))])
def test_chunk_context_in_full_context_is_the_offline_model(name, extra):
    """With conv_context chunk, the full-context forward is exactly the ordinary (centred) encoder."""
    torch.manual_seed(0)
    chunked = tiny(name, conv_context="chunk", dynamic_chunk_training=True, **extra).eval()
    offline = tiny(name, **extra).eval()
    offline.load_state_dict(chunked.state_dict())
    x, ilens = torch.randn(2, 120, 20), torch.tensor([120, 97])
    with torch.no_grad():
        torch.testing.assert_close(chunked(x, ilens)[0], offline(x, ilens)[0])
        chunked.decode_chunk_size = 4
        assert not torch.allclose(chunked(x, ilens)[0], offline(x, ilens)[0])


def test_chunk_sees_the_rest_of_its_chunk_causal_the_past_full_both_sides():
    torch.manual_seed(1)
    conv = torch.nn.Conv1d(3, 3, 5, padding=2, groups=3)
    h = torch.randn(1, 3, 12)
    h2 = h.clone()
    h2[:, :, 5] += 4.0  # frame 5 of chunk 1 (frames 4..7)
    with torch.no_grad():
        for context, moved in (("chunk", [4, 5, 6, 7]), ("causal", [5, 6, 7, 8, 9]), ("full", [3, 4, 5, 6, 7])):
            diff = (_masked._time_conv(conv, h2, context, 4) - _masked._time_conv(conv, h, context, 4)).abs()
            changed = [t for t in range(12) if diff[0, :, t].max() > 0]
            assert changed == moved, (context, changed)


def test_time_convolution_positionwise_layers_cannot_be_chunk_aware():
    with pytest.raises(ValueError, match="positionwise_layer_type='conv1d' convolves over time"):
        tiny("conformer", conv_context="chunk", positionwise_layer_type="conv1d")


def test_a_full_context_convolution_cannot_stream():
    conv = torch.nn.Conv1d(3, 3, 5, padding=2, groups=3)
    with pytest.raises(ValueError, match="context='full' cannot stream: choose 'chunk' or 'causal'"):
        _masked._conv_step(conv, torch.randn(1, 3, 4), None, "full")
