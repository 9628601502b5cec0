"""The three SummaryMixing encoders: options, invariances, errors, ESPnet's interfaces."""

import inspect
import logging
import re

import pytest
import torch
from espnet.nets.pytorch_backend.transformer.embedding import (
    PositionalEncoding,
    ScaledPositionalEncoding,
)
from espnet.nets.pytorch_backend.transformer.multi_layer_conv import (
    Conv1dLinear,
    MultiLayeredConv1d,
)
from espnet.nets.pytorch_backend.transformer.subsampling import TooShortUttError
from espnet2.asr.ctc import CTC
from espnet2.asr.encoder.abs_encoder import AbsEncoder

from conftest import ENCODERS, FEATS, batch, tiny
from espnet_summarymixing.frames.input_layer import INPUT_LAYERS
from espnet_summarymixing.layers.summary_mixing import ACTIVATIONS, MODES

POS_ENC = ["abs_pos", "scaled_abs_pos", "none", "rel_pos", "legacy_rel_pos"]
GATES = ["identity", "hardtanh", "tanh", "relu", "selu", "swish"]
STRING_OPTIONS = {
    "conformer": {
        "input_layer": INPUT_LAYERS,
        "pos_enc_layer_type": POS_ENC,
        "positionwise_layer_type": ["linear", "conv1d", "conv1d-linear"],
        "activation_type": list(ACTIVATIONS),
        "summary_mode": MODES,
        "summary_activation": list(ACTIVATIONS),
    },
    "branchformer": {
        "input_layer": INPUT_LAYERS,
        "pos_enc_layer_type": POS_ENC,
        "gate_activation": GATES,
        "merge_method": ["concat", "learned_ave", "fixed_ave"],
        "summary_mode": MODES,
        "summary_activation": list(ACTIVATIONS),
    },
    "e_branchformer": {
        "input_layer": INPUT_LAYERS,
        "pos_enc_layer_type": POS_ENC,
        "gate_activation": GATES,
        "ffn_activation_type": list(ACTIVATIONS),
        "positionwise_layer_type": ["linear"],
        "summary_mode": MODES,
        "summary_activation": list(ACTIVATIONS),
    },
}
CASES = [(e, k, v) for e, opts in STRING_OPTIONS.items() for k, vs in opts.items() for v in vs]


def _inputs(input_layer, lengths=(40, 23)):
    if input_layer == "embed":
        return batch(list(lengths), tokens=True)
    return batch(list(lengths))


def _build(name, **kwargs):
    input_layer = kwargs.get("input_layer", "conv2d")
    input_size = 16 if input_layer is None else FEATS
    return tiny(name, input_size=input_size, dropout_rate=0.0, positional_dropout_rate=0.0, **kwargs)


@pytest.mark.parametrize("name, option, value", CASES, ids=[f"{e}-{k}-{v}" for e, k, v in CASES])
def test_forward_backward_every_string_option(name, option, value):
    kwargs = {option: value}
    if name == "e_branchformer" and option == "ffn_activation_type":
        kwargs.update(use_ffn=True, macaron_ffn=True)
    enc = _build(name, **kwargs).train()
    x, ilens = _inputs(kwargs.get("input_layer", "conv2d"))
    if kwargs.get("input_layer", "conv2d") is None:
        x = torch.randn(2, 40, 16)
    out, olens, states = enc(x, ilens)
    assert isinstance(enc, AbsEncoder) and states is None
    assert out.shape == (2, int(olens.max()), 16)
    assert olens[0] > olens[1] > 0
    out.pow(2).sum().backward()
    missing = [n for n, p in enc.named_parameters() if p.grad is None]
    assert not missing, missing
    assert all(torch.isfinite(p.grad).all() for p in enc.parameters())


BATCH_CONFIGS = [
    ("conformer", dict(macaron_style=True)),
    ("conformer", dict(positionwise_layer_type="conv1d", normalize_before=False, concat_after=True)),
    ("conformer", dict(positionwise_layer_type="conv1d-linear", input_layer="conv2d6")),
    ("conformer", dict(summary_mode="fast", summary_heads=4, input_layer="linear")),
    ("branchformer", dict(merge_method="learned_ave", pos_enc_layer_type="abs_pos")),
    ("branchformer", dict(merge_method="fixed_ave", use_linear_after_conv=True, input_layer="conv1d2")),
    ("branchformer", dict(summary_mode="lite", input_layer="conv2d8")),
    ("e_branchformer", dict(use_ffn=True, macaron_ffn=True)),
    ("e_branchformer", dict(summary_heads=2, merge_conv_kernel=5, input_layer="conv2d2")),
]


@pytest.mark.parametrize("name, kwargs", BATCH_CONFIGS)
def test_batch_invariance_and_padding_values(name, kwargs):
    enc = _build(name, **kwargs).eval()
    lengths = [60, 41, 23, 17]
    x, ilens = batch(lengths, seed=1)
    with torch.no_grad():
        out, olens, _ = enc(x, ilens)
        for i, n in enumerate(lengths):
            alone, alone_len, _ = enc(x[i:i + 1, :n], ilens[i:i + 1])
            assert alone_len.item() == olens[i].item()
            torch.testing.assert_close(out[i:i + 1, : olens[i]], alone, atol=1e-5, rtol=1e-5)
            assert torch.all(out[i, olens[i]:] == 0)
        other = x.clone()
        for i, n in enumerate(lengths):
            other[i, n:] = -100.0
        torch.testing.assert_close(enc(other, ilens)[0], out, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ENCODERS)
def test_one_frame_and_equal_length_batches(name):
    enc = _build(name, input_layer="linear").eval()
    out, olens, _ = enc(torch.randn(3, 1, FEATS), torch.tensor([1, 1, 1]))
    assert out.shape == (3, 1, 16) and olens.tolist() == [1, 1, 1]
    enc = _build(name).eval()
    out, olens, _ = enc(torch.randn(3, 7, FEATS), torch.tensor([7, 7, 7]))  # conv2d's minimum
    assert out.shape == (3, 1, 16) and olens.tolist() == [1, 1, 1]
    x = torch.randn(2, 30, FEATS)
    out, olens, _ = enc(x, torch.tensor([30, 30]))
    torch.testing.assert_close(out[1:], enc(x[1:], torch.tensor([30]))[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ENCODERS)
def test_bad_inputs_are_rejected_clearly(name):
    enc = _build(name).eval()
    with pytest.raises(ValueError, match="utterance of 0 frames"):
        enc(torch.randn(2, 30, FEATS), torch.tensor([30, 0]))
    with pytest.raises(ValueError, match="length 31 beyond the 30 frames"):
        enc(torch.randn(2, 30, FEATS), torch.tensor([31, 5]))
    with pytest.raises(ValueError, match=r"xs_pad must be \(B, T, 20\) features"):
        enc(torch.randn(30, FEATS), torch.tensor([30]))
    with pytest.raises(ValueError, match=r"ilens must have shape \(2,\)"):
        enc(torch.randn(2, 30, FEATS), torch.tensor([30]))
    with pytest.raises(TooShortUttError, match="too short for subsampling"):
        enc(torch.randn(1, 5, FEATS), torch.tensor([5]))


INVALID = [
    ("conformer", dict(input_layer="conv3d"), "input_layer='conv3d' is not supported"),
    ("conformer", dict(pos_enc_layer_type="learned"), "pos_enc_layer_type='learned' is not supported"),
    ("conformer", dict(positionwise_layer_type="conv2d"), "positionwise_layer_type='conv2d'"),
    ("conformer", dict(activation_type="mish"), "activation_type='mish'"),
    ("conformer", dict(cnn_module_kernel=4), "cnn_module_kernel=4 must be a positive odd"),
    ("conformer", dict(positionwise_layer_type="conv1d", positionwise_conv_kernel_size=4),
     "positionwise_conv_kernel_size=4 must be odd"),
    ("conformer", dict(stochastic_depth_rate=[0.1]), "has 1 values but num_blocks=2"),
    ("conformer", dict(stochastic_depth_rate=1.0), r"stochastic_depth_rate=1.0 must be in \[0.0, 1.0\)"),
    ("conformer", dict(dropout_rate=1.0), r"dropout_rate=1.0 must be in"),
    ("conformer", dict(linear_units=0), "linear_units=0"),
    ("conformer", dict(num_blocks=0), "num_blocks=0"),
    ("conformer", dict(summary_heads=3), "summary_heads=3 must divide output_size=16"),
    ("conformer", dict(summary_heads=2, summary_hidden_units=7), "summary_heads=2 must divide summary_hidden_units=7"),
    ("conformer", dict(summary_mode="expdecay"), "summary_mode='expdecay' is not supported"),
    ("conformer", dict(summary_activation="mish"), "summary_activation='mish'"),
    ("conformer", dict(summary_dropout_rate=1.5), "summary_dropout_rate=1.5"),
    ("conformer", dict(interctc_layer_idx=[2]), r"interctc_layer_idx=\[2\] has \[2\] outside 1..1"),
    ("conformer", dict(interctc_use_conditioning=True), "interctc_use_conditioning=True needs"),
    ("conformer", dict(ctc_trim=True), "ctc_trim=True needs"),
    ("conformer", dict(layer_drop_rate=1.0), "layer_drop_rate=1.0"),
    ("conformer", dict(gradient_checkpoint_layers=[5]), r"gradient_checkpoint_layers=\[5\] has \[5\]"),
    ("branchformer", dict(merge_method="sum"), "merge_method='sum' is not supported"),
    ("branchformer", dict(use_attn=False, use_cgmlp=False), "needs at least one branch"),
    ("branchformer", dict(cgmlp_linear_units=25), "cgmlp_linear_units=25 must be a positive even"),
    ("branchformer", dict(cgmlp_conv_kernel=4), "cgmlp_conv_kernel=4 must be a positive odd"),
    ("branchformer", dict(gate_activation="gelu"), "gate_activation='gelu' is not supported"),
    ("branchformer", dict(cgmlp_weight=1.5), r"cgmlp_weight=1.5 must be in \[0, 1\]"),
    ("branchformer", dict(cgmlp_weight=[0.5]), "cgmlp_weight has 1 values but num_blocks=2"),
    ("branchformer", dict(attn_branch_drop_rate=[0.1, 0.2, 0.3]), "attn_branch_drop_rate has 3 values"),
    ("branchformer", dict(input_layer="vgg2l"), "input_layer='vgg2l'"),
    ("branchformer", dict(merge_method="learned_ave", conv_context="causal"), "pools each branch over the whole"),
    ("branchformer", dict(decode_chunk_size=2), "need conv_context='chunk' or 'causal', not 'full'"),
    ("e_branchformer", dict(dynamic_chunk_training=True), "need conv_context='chunk' or 'causal', not 'full'"),
    ("e_branchformer", dict(merge_conv_kernel=2), "merge_conv_kernel=2 must be a positive odd"),
    ("e_branchformer", dict(macaron_ffn=True), "macaron_ffn=True needs use_ffn=True"),
    ("e_branchformer", dict(positionwise_layer_type="conv1d"), "positionwise_layer_type='conv1d'"),
    ("e_branchformer", dict(ffn_activation_type="mish"), "ffn_activation_type='mish'"),
    ("e_branchformer", dict(summary_heads=5), "summary_heads=5 must divide output_size=16"),
]


@pytest.mark.parametrize("name, kwargs, message", INVALID, ids=[f"{n}-{list(k)[0]}" for n, k, _ in INVALID])
def test_invalid_configuration(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny(name, **kwargs)


def _layer(enc):
    return enc.encoders[0]


def _pos(enc):
    return [m for m in enc.embed.modules() if isinstance(m, PositionalEncoding)]


def _forward(enc, **kwargs):
    x, ilens = _inputs("conv2d")
    return enc(x, ilens, **kwargs)


def _layer_calls(enc, runs=5):
    calls = []
    for layer in enc.encoders:
        layer.register_forward_hook(lambda *a: calls.append(1))
    enc.train()
    for _ in range(runs):
        _forward(enc)
    return len(calls)


def _checkpoint_calls(enc, monkeypatch):
    calls = []
    original = torch.utils.checkpoint.checkpoint

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(torch.utils.checkpoint, "checkpoint", counting)
    enc.train()
    _forward(enc)[0].sum().backward()
    return len(calls)


def _warns(name, kwargs, key, caplog):
    with caplog.at_level(logging.WARNING):
        tiny(name, **kwargs)
    return key in caplog.text and "no effect" in caplog.text


# Each keyword: (keyword arguments to build with, check that the value reached its layer).
COMMON_PROBES = {
    "output_size": (dict(output_size=24), lambda e: e.output_size() == 24 and _forward(e)[0].shape[-1] == 24),
    "num_blocks": (dict(num_blocks=3), lambda e: len(e.encoders) == 3),
    "dropout_rate": (dict(dropout_rate=0.3), lambda e: _layer(e).dropout.p == 0.3),
    "positional_dropout_rate": (
        dict(positional_dropout_rate=0.3, pos_enc_layer_type="abs_pos"),
        lambda e: _pos(e)[0].dropout.p == 0.3,
    ),
    "input_layer": (dict(input_layer="linear"), lambda e: isinstance(e.embed[0], torch.nn.Linear)),
    "pos_enc_layer_type": (
        dict(pos_enc_layer_type="scaled_abs_pos"),
        lambda e: isinstance(_pos(e)[0], ScaledPositionalEncoding),
    ),
    "padding_idx": (dict(input_layer="embed", padding_idx=0), lambda e: e.embed[0].padding_idx == 0),
    "layer_drop_rate": (dict(layer_drop_rate=0.99), lambda e: _layer_calls(e) < 5),
    "max_pos_emb_len": (
        dict(max_pos_emb_len=7000, pos_enc_layer_type="abs_pos"),
        lambda e: _pos(e)[0].pe.size(1) == 7000,
    ),
    "interctc_layer_idx": (
        dict(interctc_layer_idx=[1]),
        lambda e: isinstance(_forward(e)[0], tuple) and _forward(e)[0][1][0][0] == 1,
    ),
    "interctc_use_conditioning": (
        dict(interctc_layer_idx=[1], interctc_use_conditioning=True),
        lambda e: e.interctc_use_conditioning and pytest.raises(ValueError, _forward, e) is not None,
    ),
    "summary_mode": (dict(summary_mode="lite"), lambda e: _layer(e).summary_mixing.mode == "lite"),
    "summary_heads": (dict(summary_heads=4), lambda e: _layer(e).summary_mixing.heads == 4),
    "summary_hidden_units": (
        dict(summary_hidden_units=32), lambda e: _layer(e).summary_mixing.local_proj[0].out_features == 32
    ),
    "summary_activation": (
        dict(summary_activation="tanh"),
        lambda e: isinstance(_layer(e).summary_mixing.combiner_activation, torch.nn.Tanh),
    ),
    "summary_branch_norm": (dict(summary_branch_norm=False), lambda e: _layer(e).summary_mixing.local_norm is None),
    "summary_dropout_rate": (dict(summary_dropout_rate=0.2), lambda e: _layer(e).summary_mixing.dropout.p == 0.2),
    "summary_recompute": (dict(summary_recompute=True), lambda e: _layer(e).summary_mixing.recompute),
    "compile_blocks": (dict(compile_blocks=True), lambda e: _layer(e)._compiled_call_impl is not None),
}
CGMLP_PROBES = {
    "cgmlp_linear_units": (dict(cgmlp_linear_units=40), lambda e: _layer(e).cgmlp.channel_proj1[0].out_features == 40),
    "cgmlp_conv_kernel": (dict(cgmlp_conv_kernel=5), lambda e: _layer(e).cgmlp.csgu.conv.kernel_size == (5,)),
    "use_linear_after_conv": (dict(use_linear_after_conv=True), lambda e: _layer(e).cgmlp.csgu.linear is not None),
    "gate_activation": (dict(gate_activation="tanh"), lambda e: isinstance(_layer(e).cgmlp.csgu.act, torch.nn.Tanh)),
}
CHUNK_PROBES = {
    "conv_context": (dict(conv_context="causal"),
                     lambda e: e.conv_context == "causal" and all(l.conv_context == "causal" for l in e.encoders)),
    # the deprecated aliases reach the same place (test_conv_context.py: same model, a warning)
    "causal_conv": (dict(causal_conv=True),
                    lambda e: e.conv_context == "causal" and all(l.conv_context == "causal" for l in e.encoders)),
    "chunk_conv": (dict(chunk_conv=True),
                   lambda e: e.conv_context == "chunk" and all(l.conv_context == "chunk" for l in e.encoders)),
    "dynamic_chunk_training": (
        dict(conv_context="causal", dynamic_chunk_training=True),
        lambda e: any(e.train()._chunk_size() for _ in range(20)) and e.eval()._chunk_size() == 0,
    ),
    "chunk_size_range": (
        dict(conv_context="causal", dynamic_chunk_training=True, chunk_size_range=[3, 3], full_context_prob=0.0),
        lambda e: {e.train()._chunk_size() for _ in range(5)} == {3},
    ),
    "full_context_prob": (
        dict(conv_context="causal", dynamic_chunk_training=True, full_context_prob=1.0),
        lambda e: {e.train()._chunk_size() for _ in range(5)} == {0},
    ),
    "decode_chunk_size": (dict(conv_context="causal", decode_chunk_size=2), lambda e: e.eval()._chunk_size() == 2),
    "lookahead_frames": (dict(conv_context="chunk", lookahead_frames=2),
                         lambda e: e.lookahead.weight.shape == (e.output_size(), 1, 2)),
}
ATTENTION_ONLY = ["attention_heads", "attention_dropout_rate", "rel_pos_type", "zero_triu", "qk_norm", "use_flash_attn"]
ATTENTION_VALUES = dict(attention_heads=4, attention_dropout_rate=0.1, rel_pos_type="latest", zero_triu=False,
                        qk_norm=False, use_flash_attn=True, selfattention_layer_type="rel_selfattn",
                        attention_layer_type="rel_selfattn")
PROBES = {
    "conformer": {
        **COMMON_PROBES,
        **CHUNK_PROBES,
        "linear_units": (dict(linear_units=40), lambda e: _layer(e).feed_forward.w_1.out_features == 40),
        "normalize_before": (
            dict(normalize_before=False), lambda e: e.after_norm is None and not _layer(e).normalize_before
        ),
        "concat_after": (dict(concat_after=True), lambda e: hasattr(_layer(e), "concat_linear")),
        "positionwise_layer_type": (
            dict(positionwise_layer_type="conv1d-linear"), lambda e: isinstance(_layer(e).feed_forward, Conv1dLinear)
        ),
        "positionwise_conv_kernel_size": (
            dict(positionwise_layer_type="conv1d", positionwise_conv_kernel_size=5),
            lambda e: isinstance(_layer(e).feed_forward, MultiLayeredConv1d)
            and _layer(e).feed_forward.w_1.kernel_size == (5,),
        ),
        "macaron_style": (dict(macaron_style=True), lambda e: _layer(e).feed_forward_macaron is not None),
        "activation_type": (
            dict(activation_type="relu"),
            lambda e: isinstance(_layer(e).feed_forward.activation, torch.nn.ReLU)
            and isinstance(_layer(e).conv_module.activation, torch.nn.ReLU),
        ),
        "use_cnn_module": (dict(use_cnn_module=False), lambda e: _layer(e).conv_module is None),
        "cnn_module_kernel": (dict(cnn_module_kernel=5), lambda e: _layer(e).conv_module.depthwise_conv.kernel_size == (5,)),
        "ctc_trim": (dict(interctc_layer_idx=[1], ctc_trim=True), lambda e: e.ctc_trim),
        "stochastic_depth_rate": (
            dict(stochastic_depth_rate=[0.2, 0.4]), lambda e: [l.stochastic_depth_rate for l in e.encoders] == [0.2, 0.4]
        ),
        "selfattention_layer_type": None,
    },
    "branchformer": {
        **COMMON_PROBES,
        **CGMLP_PROBES,
        **CHUNK_PROBES,
        "use_attn": (dict(use_attn=False), lambda e: _layer(e).summary_mixing is None),
        "use_cgmlp": (dict(use_cgmlp=False), lambda e: _layer(e).cgmlp is None),
        "merge_method": (dict(merge_method="learned_ave"), lambda e: hasattr(_layer(e), "pooling_proj1")),
        "cgmlp_weight": (
            dict(merge_method="fixed_ave", cgmlp_weight=[0.2, 0.7]), lambda e: [l.cgmlp_weight for l in e.encoders] == [0.2, 0.7]
        ),
        "attn_branch_drop_rate": (
            dict(merge_method="learned_ave", attn_branch_drop_rate=0.3), lambda e: _layer(e).attn_branch_drop_rate == 0.3
        ),
        "stochastic_depth_rate": (dict(stochastic_depth_rate=0.2), lambda e: _layer(e).stochastic_depth_rate == 0.2),
        "attention_layer_type": None,
    },
    "e_branchformer": {
        **COMMON_PROBES,
        **CGMLP_PROBES,
        **CHUNK_PROBES,
        "use_ffn": (dict(use_ffn=True), lambda e: _layer(e).feed_forward is not None and _layer(e).feed_forward_macaron is None),
        "macaron_ffn": (dict(use_ffn=True, macaron_ffn=True), lambda e: _layer(e).feed_forward_macaron is not None),
        "ffn_activation_type": (
            dict(use_ffn=True, ffn_activation_type="relu"), lambda e: isinstance(_layer(e).feed_forward.activation, torch.nn.ReLU)
        ),
        "linear_units": (dict(use_ffn=True, linear_units=40), lambda e: _layer(e).feed_forward.w_1.out_features == 40),
        "positionwise_layer_type": "validated",  # 'linear' is its only value: any other is refused
        "merge_conv_kernel": (dict(merge_conv_kernel=5), lambda e: _layer(e).depthwise_conv_fusion.kernel_size == (5,)),
        "attention_layer_type": None,
    },
}
for _probes in PROBES.values():
    for _key in ATTENTION_ONLY:
        _probes[_key] = None  # checked by test_attention_only_keys_warn
    _probes["gradient_checkpoint_layers"] = "checkpoint"
PROBE_CASES = [(n, k) for n, p in PROBES.items() for k, v in p.items() if isinstance(v, tuple)]
VALIDATED = [(n, k) for n, p in PROBES.items() for k, v in p.items() if v == "validated"]


@pytest.mark.parametrize("name", ENCODERS)
def test_every_keyword_has_a_probe(name):
    keywords = set(inspect.signature(ENCODERS[name].__init__).parameters) - {"self", "input_size"}
    assert keywords == set(PROBES[name])


@pytest.mark.parametrize("name, keyword", PROBE_CASES, ids=[f"{n}-{k}" for n, k in PROBE_CASES])
def test_every_keyword_reaches_its_layer(name, keyword):
    kwargs, check = PROBES[name][keyword]
    assert check(tiny(name, **kwargs))


@pytest.mark.parametrize("name", ENCODERS)
def test_gradient_checkpoint_layers_reach_the_forward(name, monkeypatch):
    assert _checkpoint_calls(tiny(name, gradient_checkpoint_layers=[0, 2]), monkeypatch) == 2
    assert _checkpoint_calls(tiny(name), monkeypatch) == 0


@pytest.mark.parametrize("name", ENCODERS)
def test_attention_only_keys_warn(name, caplog):
    keys = [k for k, v in PROBES[name].items() if v is None]
    kwargs = {k: ATTENTION_VALUES[k] for k in keys}
    assert _warns(name, kwargs, "attention_heads=4", caplog)
    for key in keys:
        assert f"{key}=" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        tiny(name, pos_enc_layer_type="rel_pos")
    assert "'abs_pos'" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        tiny(name)
    assert "no effect" not in caplog.text


@pytest.mark.parametrize("name", ENCODERS)
def test_docstring_documents_every_argument(name):
    """Each constructor argument has its own ``name (type): ...`` entry in the ``Args:`` section."""
    cls = ENCODERS[name]
    entries = _documented_arguments(cls.__doc__)
    arguments = [k for k in inspect.signature(cls.__init__).parameters if k != "self"]
    assert sorted(set(arguments) - set(entries)) == [], f"{cls.__name__}: undocumented"
    assert sorted(set(entries) - set(arguments)) == [], f"{cls.__name__}: documented but not an argument"
    assert len(entries) == len(set(entries)), f"{cls.__name__}: an argument documented twice"


def _documented_arguments(doc):
    """The argument names of the entries of a Google-style ``Args:`` section."""
    lines = doc.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "Args:")
    indent = len(lines[start]) - len(lines[start].lstrip())
    names = []
    for line in lines[start + 1:]:
        if line.strip() and len(line) - len(line.lstrip()) <= indent:
            break  # the next section
        match = re.match(rf"^ {{{indent + 4}}}(\w+) \([^)]*\): \S", line)
        if match:
            names.append(match.group(1))
    return names


def test_docstring_parser_sees_a_missing_entry():
    doc = ENCODERS["conformer"].__doc__
    entries = _documented_arguments(doc)
    assert "dropout_rate" in entries and "num_blocks" in entries and "conv_context" in entries
    for key in ("dropout_rate", "num_blocks", "conv_context"):
        pruned = "\n".join(line for line in doc.splitlines() if not line.lstrip().startswith(f"{key} ("))
        assert key not in _documented_arguments(pruned)  # found inside another entry's text: still missing


@pytest.mark.parametrize("name, keyword", VALIDATED)
def test_keywords_with_one_allowed_value_refuse_others(name, keyword):
    with pytest.raises(ValueError, match=f"{keyword}='conv1d'"):
        tiny(name, **{keyword: "conv1d"})


@pytest.mark.parametrize("name", ENCODERS)
def test_intermediate_ctc_structure_and_conditioning(name):
    enc = tiny(name, num_blocks=3, interctc_layer_idx=[1, 2], interctc_use_conditioning=True).train()
    ctc = CTC(odim=7, encoder_output_size=16)
    enc.conditioning_layer = torch.nn.Linear(7, 16)  # what ESPnet's ASR model does
    x, ilens = batch([40, 23])
    (out, inter), olens, _ = enc(x, ilens, ctc=ctc)
    assert [idx for idx, _ in inter] == [1, 2]
    for _, hidden in inter:
        assert hidden.shape == out.shape
    assert olens.tolist() == [9, 5]
    (out + sum(h for _, h in inter)).sum().backward()
    assert enc.conditioning_layer.weight.grad is not None
    hs, _, _ = enc(x, ilens, ctc=ctc, return_all_hs=True)
    assert len(hs[1]) == 3


def test_ctc_trim_shortens_with_confident_blanks():
    enc = tiny("conformer", num_blocks=3, interctc_layer_idx=[1], ctc_trim=True).eval()
    ctc = CTC(odim=5, encoder_output_size=16)
    with torch.no_grad():
        ctc.ctc_lo.weight.zero_()
        ctc.ctc_lo.bias.copy_(torch.tensor([50.0, 0, 0, 0, 0]))  # every frame a sure blank
    x, ilens = batch([200, 150])
    (_, _), olens, _ = enc(x, ilens, ctc=ctc)
    assert olens.max() < 49 and olens.min() >= 1


def test_padding_mask_argument_matches_ilens():
    enc = tiny("conformer").eval()
    x, ilens = batch([40, 23])
    pad = torch.arange(40)[None, :] >= ilens[:, None]
    torch.testing.assert_close(enc(x, ilens, masks=pad)[0], enc(x, ilens)[0])


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("name", ENCODERS)
def test_encoders_finite_under_autocast(name, dtype):
    enc = tiny(name).train()
    x, ilens = batch([400, 250])
    with torch.autocast("cpu", dtype=dtype):
        out, olens, _ = enc(30 * x, ilens)
    assert torch.isfinite(out).all()
    out.float().pow(2).mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in enc.parameters() if p.grad is not None)


PADDING_CASES = [(n, layer, bad) for n in ENCODERS for layer in INPUT_LAYERS if layer != "embed"
                 for bad in (float("nan"), float("inf"))]


@pytest.mark.parametrize("name, input_layer, bad", PADDING_CASES,
                         ids=[f"{n}-{l}-{b}" for n, l, b in PADDING_CASES])
def test_nan_or_inf_in_the_padding_never_reaches_valid_frames(name, input_layer, bad):
    input_size = 16 if input_layer is None else FEATS
    enc = tiny(name, input_size=input_size, input_layer=input_layer).eval()
    x = torch.randn(2, 40, input_size)
    ilens = torch.tensor([40, 23])
    clean = x.clone()
    clean[1, 23:] = 0.0
    x[1, 23:] = bad
    with torch.no_grad():
        out, olens, _ = enc(x, ilens)
        assert torch.isfinite(out).all()
        torch.testing.assert_close(out, enc(clean, ilens)[0])


@pytest.mark.parametrize("name", ENCODERS)
def test_wrong_features_dtype_or_empty_batch_are_named(name):
    enc = tiny(name).eval()
    with pytest.raises(ValueError, match=r"xs_pad has 19 features per frame, but this encoder was built with input_size=20"):
        enc(torch.randn(2, 40, 19), torch.tensor([40, 30]))
    with pytest.raises(ValueError, match=r"xs_pad is torch.float16 but the encoder's weights are torch.float32"):
        enc(torch.randn(2, 40, FEATS, dtype=torch.float16), torch.tensor([40, 30]))
    with pytest.raises(ValueError, match=r"xs_pad is an empty batch \(B = 0\)"):
        enc(torch.randn(0, 40, FEATS), torch.zeros(0, dtype=torch.long))
    with torch.autocast("cpu", dtype=torch.bfloat16):  # mixed precision: the input may differ
        enc(torch.randn(2, 40, FEATS, dtype=torch.bfloat16), torch.tensor([40, 30]))
