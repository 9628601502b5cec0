"""The SummaryMixing cell against its definition (shared/docs/SUMMARYMIXING.md) and the published cells."""

import pytest
import torch
import torch.nn.functional as F

from espnet_summarymixing.layers.summary_mixing import MODES, SummaryMixing, _GroupedLinear, summary_spans

torch.set_num_threads(1)


def _mask(lengths, t):
    return (torch.arange(t)[None, :] < torch.tensor(lengths)[:, None]).unsqueeze(1)  # (B, 1, T)


def _reference(cell, x, mask, chunk_size=0, window=0):
    """The cell written out frame by frame: mean of s over the visible valid frames (all, those up
    to the end of the frame's chunk, or those within ``window`` frames of it), the summary repeated
    over time and concatenated to f, then the full combiner."""
    cell = cell.eval()
    b, t, _ = x.shape
    valid = mask.squeeze(1).float()
    outs = torch.zeros(b, t, cell.size)
    for i in range(b):
        if cell.mode == "fast":
            fs = cell.fused_proj(x[i]).view(t, cell.heads, 2, -1)
            f, s = fs[:, :, 0].reshape(t, -1), fs[:, :, 1].reshape(t, -1)
        else:
            s = cell.summary_proj(x[i])
            f = cell.local_proj(x[i]) if cell.mode == "mixing" else None
        for j in range(t):
            end = t if chunk_size == 0 else min(t, (j // chunk_size + 1) * chunk_size)
            start = 0
            if window:
                start, end = max(0, j - window), min(t, j + window + 1)
            w = valid[i, start:end]
            summ = (w[:, None] * s[start:end]).sum(0) / max(1.0, float(w.sum()))
            if cell.summary_norm is not None:
                summ = cell.summary_norm(summ)
            if cell.mode == "lite":
                y = summ
            else:
                fj = cell.local_norm(f[j]) if cell.local_norm is not None else f[j]
                y = cell.combiner_activation(cell.combiner(torch.cat([fj, summ])))
            outs[i, j] = y * valid[i, j]
    return outs


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("heads", [1, 2])
@pytest.mark.parametrize("branch_norm", [True, False])
def test_matches_frame_by_frame_definition(mode, heads, branch_norm):
    torch.manual_seed(0)
    cell = SummaryMixing(8, hidden_units=12, heads=heads, mode=mode, branch_norm=branch_norm).eval()
    x = torch.randn(3, 7, 8)
    mask = _mask([7, 4, 1], 7)
    torch.testing.assert_close(cell(x, mask), _reference(cell, x, mask), atol=1e-5, rtol=1e-5)


def _dense(layer):
    """(weight (out, in), bias) of a Linear or of a block-diagonal grouped linear layer."""
    if isinstance(layer, torch.nn.Linear):
        return layer.weight, layer.bias
    g = layer.groups
    blocks = layer.weight.view(g, layer.out_features // g, layer.in_features // g)
    return torch.block_diag(*blocks), layer.bias


def _layer_norm(v, norm):
    mean = v.mean(-1, keepdim=True)
    var = ((v - mean) ** 2).mean(-1, keepdim=True)
    return (v - mean) / torch.sqrt(var + norm.eps) * norm.weight + norm.bias


def _published(cell, x, lengths):
    """The published cells, frame by frame, from the weights alone (paper Eq. 1; the authors'
    SpeechBrain 0.5 and 1.0 code with its defaults): every linear layer is followed by the
    activation; SummaryMixing: LayerNorm on f_t and on the mean of s_t, then the combiner on
    [f_t; mean]; SummaryMixing-lite: the mean of s_t on every frame, nothing else;
    SummaryMixing-fast: one projection gives [f_t; s_t] (f first), the combiner on [f_t; mean of s],
    no LayerNorm."""
    act = {"gelu": F.gelu, "swish": F.silu}[cell.activation_type]

    def mlp(layers, v):
        for layer in layers:
            if not isinstance(layer, (torch.nn.GELU, torch.nn.SiLU)):
                w, b = _dense(layer)
                v = act(v @ w.T + b)
        return v

    out = torch.zeros(x.size(0), x.size(1), cell.size)
    for i, n in enumerate(lengths):
        frames = x[i, :n]  # (n, D): the padding is not part of the utterance
        if cell.mode == "fast":
            h = mlp(cell.fused_proj, frames)
            f, s = h[:, :cell.hidden_units], h[:, cell.hidden_units:]
        else:
            s = mlp(cell.summary_proj, frames)
            f = mlp(cell.local_proj, frames) if cell.mode == "mixing" else None
        mean = s.sum(0) / n
        for t in range(n):
            if cell.mode == "lite":
                out[i, t] = mean
                continue
            ft, summary = f[t], mean
            if cell.mode == "mixing":
                ft, summary = _layer_norm(ft, cell.local_norm), _layer_norm(summary, cell.summary_norm)
            w, b = _dense(cell.combiner)
            out[i, t] = act(torch.cat([ft, summary]) @ w.T + b)
    return out


@pytest.mark.parametrize("mode, heads, activation", [
    ("mixing", 1, "gelu"), ("mixing", 2, "swish"), ("lite", 1, "gelu"), ("lite", 4, "swish"),
    ("fast", 1, "gelu"), ("fast", 1, "swish"),
])
def test_defaults_compute_the_published_cells(mode, heads, activation):
    torch.manual_seed(10)
    cell = SummaryMixing(8, hidden_units=12 if mode != "lite" else None, heads=heads, mode=mode,
                         activation=activation).eval()
    with torch.no_grad():  # LayerNorms away from the identity, so that a missing or extra one shows
        for name, p in cell.named_parameters():
            if "norm" in name:
                p.uniform_(-2.0, 2.0)
    x = torch.randn(3, 9, 8)
    lengths = [9, 6, 1]
    got = cell(x, _mask(lengths, 9))
    torch.testing.assert_close(got, _published(cell, x, lengths), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("mode", ["lite", "fast"])
def test_checkpoints_with_the_old_default_layer_norms_still_load_strictly(mode):
    """Before 0.2 the default put LayerNorms in every mode: their weights turn them on again."""
    torch.manual_seed(11)
    old = SummaryMixing(8, mode=mode, branch_norm=True).eval()
    with torch.no_grad():
        for name, p in old.named_parameters():
            if "norm" in name:
                p.uniform_(-2.0, 2.0)
    x, mask = torch.randn(2, 7, 8), _mask([7, 4], 7)
    new = SummaryMixing(8, mode=mode).eval()
    assert new.summary_norm is None
    new.load_state_dict(old.state_dict(), strict=True)
    assert new.branch_norm and new.summary_norm is not None
    torch.testing.assert_close(new(x, mask), old(x, mask))
    plain = SummaryMixing(8, mode=mode)
    plain.load_state_dict(SummaryMixing(8, mode=mode).state_dict(), strict=True)
    assert plain.summary_norm is None  # a checkpoint without them keeps the published cell
    with pytest.raises(RuntimeError, match="summary_norm"):  # an explicit False stays False
        SummaryMixing(8, mode=mode, branch_norm=False).load_state_dict(old.state_dict(), strict=True)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("chunk_size", [1, 3, 5, 100])
def test_chunk_causal_matches_definition(mode, chunk_size):
    torch.manual_seed(1)
    cell = SummaryMixing(8, heads=2, mode=mode).eval()
    x = torch.randn(2, 11, 8)
    mask = _mask([11, 6], 11)
    got = cell(x, mask, chunk_size=chunk_size)
    torch.testing.assert_close(got, _reference(cell, x, mask, chunk_size), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("window", [1, 3, 6])
def test_summary_window_matches_definition_and_padding_changes_nothing(mode, window):
    torch.manual_seed(5)
    cell = SummaryMixing(8, heads=2, mode=mode).eval()
    x = torch.randn(2, 13, 8)
    mask = _mask([13, 8], 13)
    full = cell(x, mask)
    got = cell(x, mask, spans=summary_spans(13, window=window))
    torch.testing.assert_close(got, _reference(cell, x, mask, window=window), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(got[0], full[0])
    alone = cell(x[1:, :8], spans=summary_spans(8, window=window) if window < 7 else None)
    torch.testing.assert_close(got[1:, :8], alone, atol=1e-5, rtol=1e-5)  # as if alone
    assert torch.all(got[1, 8:] == 0)
    assert summary_spans(13, window=12) is None  # a window over every frame is the whole-utterance summary
    assert summary_spans(13, segments=[0]) is None and summary_spans(13) is None


@pytest.mark.parametrize("mode", MODES)
def test_summary_segments_are_utterances_laid_end_to_end(mode):
    torch.manual_seed(6)
    cell = SummaryMixing(8, heads=2, mode=mode).eval()
    x = torch.randn(1, 12, 8)
    got = cell(x, spans=summary_spans(12, segments=(5, 9)))
    for a, b in ((0, 5), (5, 9), (9, 12)):  # each segment as if alone
        torch.testing.assert_close(got[:, a:b], cell(x[:, a:b]), atol=1e-5, rtol=1e-5)


def test_summary_options_reach_every_cell_of_an_encoder_as_arguments_and_are_checked():
    from conftest import tiny

    encoder = tiny("conformer").eval()
    x, lengths = torch.randn(1, 60, 20), torch.tensor([60])
    with torch.no_grad():
        plain = encoder(x, lengths)[0]
        windowed = encoder(x, lengths, summary_window=2)[0]
        assert not torch.allclose(plain, windowed)
        assert torch.equal(encoder(x, lengths)[0], plain)  # nothing was left set on the cells
        segments = encoder(x, lengths, summary_segments=[0, 7])[0]  # 14 encoder frames: 7 + 7
        alone = encoder(x[:, :31], torch.tensor([31]))[0]  # the first 7 frames' input, and its look-ahead
        assert not torch.allclose(segments, plain)
        torch.testing.assert_close(segments[:, 7:], encoder(x, lengths, summary_segments=[7])[0][:, 7:])
    assert alone.size(1) == 7
    for bad in (-1, 2.5):
        with pytest.raises(ValueError, match="encoder frames"):
            encoder(x, lengths, summary_window=bad)
    with pytest.raises(ValueError, match="frame indices"):
        encoder(x, lengths, summary_segments=[-3])
    with pytest.raises(ValueError, match="one recording"):
        encoder(x.repeat(2, 1, 1), lengths.repeat(2), summary_segments=[3])
    with pytest.raises(ValueError, match="exclude each other"):
        encoder(x, lengths, summary_window=2, summary_segments=[3])


@pytest.mark.parametrize("mode", MODES)
def test_chunk_causal_sees_no_future(mode):
    torch.manual_seed(2)
    cell = SummaryMixing(8, mode=mode).eval()
    x = torch.randn(1, 12, 8)
    y = cell(x, chunk_size=4)
    x2 = x.clone()
    x2[:, 8:] += 10.0  # change the third chunk only
    y2 = cell(x2, chunk_size=4)
    torch.testing.assert_close(y2[:, :8], y[:, :8])
    assert not torch.allclose(y2[:, 8:], y[:, 8:])


@pytest.mark.parametrize("mode", MODES)
def test_streaming_equals_chunked_forward(mode):
    torch.manual_seed(3)
    cell = SummaryMixing(8, heads=2, mode=mode).eval()
    c, n = 3, 40
    x = torch.randn(2, c * n, 8)
    mask = _mask([c * n, c * n - 7], c * n)
    full = cell(x, mask, chunk_size=c)
    state, outs = None, []
    for k in range(n):
        y, state = cell.forward_streaming(x[:, k * c:(k + 1) * c], mask[:, :, k * c:(k + 1) * c], state)
        outs.append(y)
        assert state[0].shape == (2, 8) and state[1].shape == (2, 1)  # constant size
    torch.testing.assert_close(torch.cat(outs, dim=1), full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("mode", MODES)
def test_batch_invariance_and_padding_values(mode):
    torch.manual_seed(4)
    cell = SummaryMixing(16, heads=4, mode=mode, activation="swish").eval()
    lengths = [9, 5, 2]
    x = torch.randn(3, 9, 16)
    mask = _mask(lengths, 9)
    y = cell(x, mask)
    for i, n in enumerate(lengths):
        alone = cell(x[i:i + 1, :n], None)
        torch.testing.assert_close(y[i:i + 1, :n], alone, atol=1e-5, rtol=1e-5)
        assert torch.all(y[i, n:] == 0)
    x_garbage = x.clone()
    x_garbage[~mask.squeeze(1)] = 1e4
    torch.testing.assert_close(cell(x_garbage, mask), y)


def test_padded_frames_get_no_gradient_and_every_parameter_learns():
    torch.manual_seed(5)
    for mode in MODES:
        cell = SummaryMixing(8, mode=mode, dropout_rate=0.1).train()
        x = torch.randn(2, 6, 8, requires_grad=True)
        mask = _mask([6, 3], 6)
        cell(x, mask).pow(2).sum().backward()
        assert torch.all(x.grad[1, 3:] == 0), mode
        assert torch.all(torch.isfinite(x.grad))
        for name, p in cell.named_parameters():
            assert p.grad is not None and torch.any(p.grad != 0), (mode, name)


def test_mask_accepts_two_dims_and_none_means_all_valid():
    cell = SummaryMixing(8).eval()
    x = torch.randn(2, 5, 8)
    full = _mask([5, 5], 5)
    torch.testing.assert_close(cell(x, full.squeeze(1)), cell(x, full))
    torch.testing.assert_close(cell(x, None), cell(x, full))


def test_a_given_validity_tensor_replaces_the_mask():
    cell = SummaryMixing(8).eval()
    x = torch.randn(2, 5, 8)
    mask = _mask([5, 3], 5)
    valid = mask.transpose(1, 2).float()  # (B, T, 1)
    torch.testing.assert_close(cell(x, None, valid=valid), cell(x, mask))
    with pytest.raises(ValueError, match=r"valid must have shape \(2, 5, 1\)"):
        cell(x, mask, valid=valid.squeeze(-1))


@pytest.mark.parametrize("branch_norm", [True, False])
def test_paired_branches_equal_the_two_mlps_in_gradients_too(branch_norm):
    # The one-group mixing cell runs F and S as two fused GEMMs; the gradients of every parameter
    # and of the input must be those of the two separate MLPs (the modules a checkpoint holds).
    torch.manual_seed(9)
    cell = SummaryMixing(8, hidden_units=12, branch_norm=branch_norm)
    x = torch.randn(3, 7, 8, requires_grad=True)
    mask = _mask([7, 4, 2], 7)
    target = torch.randn(3, 7, 8)

    def grads(y):
        cell.zero_grad(set_to_none=True)
        x.grad = None
        ((y - target) ** 2).sum().backward()
        return {"x": x.grad.clone(), **{n: p.grad.clone() for n, p in cell.named_parameters()}}

    fused = grads(cell(x, mask))
    valid = mask.transpose(1, 2).float()
    summary = (cell.summary_proj(x) * valid).sum(1, keepdim=True) / valid.sum(1, keepdim=True)
    separate = grads(cell._combine(cell.local_proj(x), summary, valid))
    assert fused.keys() == separate.keys()
    for name in fused:
        torch.testing.assert_close(fused[name], separate[name], atol=1e-5, rtol=1e-5, msg=name)


@pytest.mark.parametrize("mode", MODES)
def test_recompute_keeps_outputs_and_gradients_and_saves_less(mode):
    def run(recompute):
        torch.manual_seed(10)
        cell = SummaryMixing(16, mode=mode, dropout_rate=0.1, recompute=recompute).train()
        x = torch.randn(2, 40, 16, requires_grad=True)
        saved = []

        def pack(t):
            saved.append(t.numel() * t.element_size())
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            torch.manual_seed(11)  # the same dropout draws in both runs
            y = cell(x, _mask([40, 25], 40))
        y.pow(2).sum().backward()
        return y.detach(), x.grad, [p.grad for p in cell.parameters()], sum(saved)

    plain, recomputed = run(False), run(True)
    torch.testing.assert_close(recomputed[0], plain[0])
    torch.testing.assert_close(recomputed[1], plain[1])
    for a, b in zip(recomputed[2], plain[2]):
        torch.testing.assert_close(a, b)
    assert recomputed[3] < plain[3] / 3, (recomputed[3], plain[3])


def test_linear_in_time_a_long_sequence_fits():
    # A T x T score matrix for 200k frames would need 160 GB; the cell needs a few MB.
    cell = SummaryMixing(4, hidden_units=4).eval()
    with torch.no_grad():
        y = cell(torch.randn(1, 200_000, 4))
        yc = cell(torch.randn(1, 200_000, 4), chunk_size=16)
    assert y.shape == yc.shape == (1, 200_000, 4)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("mode", MODES)
def test_finite_under_autocast(dtype, mode):
    torch.manual_seed(6)
    cell = SummaryMixing(16, mode=mode)
    x = 50 * torch.randn(2, 3000, 16)  # large values over many frames
    mask = _mask([3000, 1000], 3000)
    with torch.autocast("cpu", dtype=dtype):
        y = cell(x, mask)
        yc = cell(x, mask, chunk_size=64)
    assert torch.isfinite(y).all() and torch.isfinite(yc).all()
    assert torch.all(y[1, 1000:] == 0)


def test_grouped_linear_is_block_diagonal():
    torch.manual_seed(7)
    layer = _GroupedLinear(8, 12, groups=4)
    dense = torch.zeros(12, 8)
    for g in range(4):
        dense[g * 3:(g + 1) * 3, g * 2:(g + 1) * 2] = layer.weight[g * 3:(g + 1) * 3]
    x = torch.randn(5, 8)
    torch.testing.assert_close(layer(x), x @ dense.T + layer.bias)
    assert layer.weight.numel() == 12 * 8 // 4


def test_heads_divide_the_branch_parameters():
    def count(cell):
        return sum(p.numel() for n, p in cell.named_parameters() if "proj" in n)

    one, four = SummaryMixing(64, heads=1), SummaryMixing(64, heads=4)
    assert count(four) < count(one) / 3


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(mode="quadratic"), "mode='quadratic'"),
        (dict(heads=3), "heads=3 must divide size=8"),
        (dict(heads=2, hidden_units=5), "heads=2 must divide hidden_units=5"),
        (dict(heads=0), "heads=0"),
        (dict(hidden_units=0), "hidden_units=0"),
        (dict(activation="sigmoid"), "activation='sigmoid'"),
        (dict(dropout_rate=1.0), "dropout_rate=1.0"),
        (dict(dropout_rate=-0.1), "dropout_rate=-0.1"),
    ],
)
def test_invalid_configuration(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        SummaryMixing(8, **kwargs)


def test_invalid_inputs():
    cell = SummaryMixing(8)
    with pytest.raises(ValueError, match=r"x must have shape \(B, T, 8\)"):
        cell(torch.randn(2, 5, 7))
    with pytest.raises(ValueError, match="mask shape"):
        cell(torch.randn(2, 5, 8), torch.ones(2, 1, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"mask must be \(B, 1, T\)"):
        cell(torch.randn(2, 5, 8), torch.ones(2, 2, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="chunk_size=-1"):
        cell(torch.randn(2, 5, 8), chunk_size=-1)


def test_every_argument_reaches_the_cell():
    cell = SummaryMixing(8, hidden_units=6, heads=2, mode="mixing", activation="relu",
                         branch_norm=False, dropout_rate=0.25)
    assert cell.local_proj[0].out_features == 6 and cell.summary_proj[2].out_features == 6
    assert cell.local_proj[0].groups == 2
    assert isinstance(cell.local_proj[1], torch.nn.ReLU)
    assert isinstance(cell.combiner_activation, torch.nn.ReLU)
    assert cell.local_norm is None and cell.summary_norm is None
    assert cell.dropout.p == 0.25
    assert cell.combiner.in_features == 12 and cell.combiner.out_features == 8
    lite = SummaryMixing(8, mode="lite")
    assert not hasattr(lite, "local_proj") and not hasattr(lite, "combiner")
    fast = SummaryMixing(8, mode="fast")
    assert fast.fused_proj[0].out_features == 16 and not hasattr(fast, "summary_proj")
