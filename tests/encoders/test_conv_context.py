"""``conv_context: full | chunk | causal``, and the deprecated ``causal_conv`` / ``chunk_conv`` it
replaced: they still load, to the same model, with a warning that names the new key.

The semantics of each value (what a convolution sees, streaming = chunked forward, chunk's full
context = the offline model) are tested in tests/streaming/test_streaming_encoder.py.
"""

import argparse
import copy
import logging
import zipfile

import pytest
import torch
import yaml

from conftest import ENCODERS, ROOT, batch, tiny
from espnet_summarymixing.layers.masked import CONV_CONTEXTS

OLD_KEYS = {"causal_conv": "causal", "chunk_conv": "chunk"}
# chunked in eval mode, so that what the convolutions see changes the output
CHUNKED = dict(dynamic_chunk_training=True, decode_chunk_size=3)
PRE_LAYOUT_MODEL = ROOT / "tests" / "fixtures" / "pre_layout_model" / "model.zip"


def _outputs(enc, seed=0):
    x, ilens = batch([60, 47], seed=seed)
    with torch.no_grad():
        return enc.eval()(x, ilens)[0]


@pytest.mark.parametrize("name", ENCODERS)
@pytest.mark.parametrize("context", CONV_CONTEXTS)
def test_each_value_builds_and_is_stored_once(name, context):
    options = CHUNKED if context != "full" else {}
    enc = tiny(name, conv_context=context, **options)
    assert enc.conv_context == context
    assert all(layer.conv_context == context for layer in enc.encoders)
    for module in (enc, *enc.encoders):
        assert not hasattr(module, "causal_conv") and not hasattr(module, "chunk_conv")
    assert torch.isfinite(_outputs(enc)).all()


def test_the_default_is_full():
    assert tiny("conformer").conv_context == "full"


@pytest.mark.parametrize("name", ENCODERS)
def test_the_three_values_give_three_models(name):
    """Guards the equality tests below: with the same weights, the context changes the output (chunk
    and causal in a chunked forward; causal and full in full context)."""
    chunk, causal = (tiny(name, conv_context=c, **CHUNKED) for c in ("chunk", "causal"))
    full = tiny(name)
    causal.load_state_dict(chunk.state_dict())
    full.load_state_dict(chunk.state_dict())
    assert not torch.allclose(_outputs(chunk), _outputs(causal))
    causal.decode_chunk_size = 0
    assert not torch.allclose(_outputs(causal), _outputs(full))


@pytest.mark.parametrize("name", ENCODERS)
@pytest.mark.parametrize("key, context", OLD_KEYS.items())
@pytest.mark.parametrize("also_new", [False, True], ids=["old-key-only", "with-the-same-conv_context"])
def test_an_old_key_builds_the_same_model_with_a_warning(name, key, context, also_new, caplog):
    torch.manual_seed(0)
    new = tiny(name, conv_context=context, **CHUNKED)
    extra = dict(conv_context=context) if also_new else {}
    with caplog.at_level(logging.WARNING):
        old = tiny(name, **{key: True}, **extra, **CHUNKED)
    assert f"{key}=True is deprecated: write conv_context: {context} instead" in caplog.text
    assert old.conv_context == context and [l.conv_context for l in old.encoders] == [context] * len(old.encoders)
    assert list(old.state_dict()) == list(new.state_dict())
    old.load_state_dict(new.state_dict(), strict=True)
    torch.testing.assert_close(_outputs(old), _outputs(new), rtol=0, atol=0)
    old.decode_chunk_size = new.decode_chunk_size = 0  # full context too
    torch.testing.assert_close(_outputs(old, seed=1), _outputs(new, seed=1), rtol=0, atol=0)


@pytest.mark.parametrize("key", OLD_KEYS)
def test_an_old_key_set_false_means_full_with_a_warning(key, caplog):
    """Configs printed by ESPnet's --print_config before the change carry both keys as false."""
    with caplog.at_level(logging.WARNING):
        enc = tiny("conformer", **{key: False})
    assert enc.conv_context == "full"
    assert f"{key}=False is deprecated: remove it" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert tiny("conformer", causal_conv=False, chunk_conv=False).conv_context == "full"
    assert "causal_conv=False is deprecated" in caplog.text and "chunk_conv=False is deprecated" in caplog.text
    assert tiny("conformer", causal_conv=False, conv_context="chunk").conv_context == "chunk"  # no contradiction


def test_no_warning_without_the_old_keys(caplog):
    with caplog.at_level(logging.WARNING):
        tiny("conformer", conv_context="chunk", **CHUNKED)
    assert "deprecated" not in caplog.text


CONTRADICTIONS = [
    (dict(causal_conv=True, chunk_conv=True), "causal_conv=True and chunk_conv=True exclude each other"),
    (dict(causal_conv=True, conv_context="chunk"), "causal_conv=True contradicts conv_context='chunk'"),
    (dict(chunk_conv=True, conv_context="causal"), "chunk_conv=True contradicts conv_context='causal'"),
    (dict(chunk_conv=False, conv_context="chunk"), "chunk_conv=False contradicts conv_context='chunk'"),
    (dict(causal_conv=False, conv_context="causal"), "causal_conv=False contradicts conv_context='causal'"),
]


@pytest.mark.parametrize("kwargs, message", CONTRADICTIONS,
                         ids=["-".join(f"{k}={v}" for k, v in kwargs.items()) for kwargs, _ in CONTRADICTIONS])
@pytest.mark.parametrize("name", ENCODERS)
def test_contradictory_keys_are_refused_naming_both(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny(name, **kwargs)


@pytest.mark.parametrize("name", ENCODERS)
def test_an_unknown_value_lists_the_choices(name):
    with pytest.raises(ValueError, match=r"conv_context='left' is not supported: choose one of "
                                         r"\['full', 'chunk', 'causal'\]"):
        tiny(name, conv_context="left")


# --------------------------------------------------------------------- configs and checkpoints written before


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """The config and weights of a model packed by an older release (tests/fixtures)."""
    folder = tmp_path_factory.mktemp("pre_layout_model")
    with zipfile.ZipFile(PRE_LAYOUT_MODEL) as archive:
        archive.extractall(folder)
    config = yaml.safe_load(next(folder.rglob("config.yaml")).read_text())
    weights = torch.load(next(folder.rglob("model.pth")), map_location="cpu")
    return config, weights


def _build(config, weights):
    from espnet2.tasks.asr import ASRTask

    model = ASRTask.build_model(argparse.Namespace(**config))
    model.load_state_dict(weights, strict=True)  # every weight of the old checkpoint, nothing else
    return model.eval()


def _encode(model):
    noise = torch.randn(1, 16000, generator=torch.Generator().manual_seed(0))
    speech = torch.sin(torch.arange(16000) * 0.05)[None] + 0.1 * noise  # (1, samples)
    with torch.no_grad():
        out = model.encode(speech, torch.tensor([16000]))[0]
    return out[0] if isinstance(out, tuple) else out


def _with(config, **encoder_conf):
    config = copy.deepcopy(config)
    config["encoder_conf"].update(encoder_conf)
    return config


@pytest.mark.parametrize("key, context", OLD_KEYS.items())
def test_a_config_written_with_an_old_key_builds_the_new_model(packed, key, context, caplog):
    """An ESPnet training config (as saved beside a checkpoint, and as packed) that says ``chunk_conv:
    true`` or ``causal_conv: true``, built by ESPnet's ASRTask with the old checkpoint's weights, is the
    ``conv_context`` model, with a warning naming the new key."""
    config, weights = packed
    assert not {"causal_conv", "chunk_conv", "conv_context"} & set(config["encoder_conf"])  # as packed
    chunked = dict(dynamic_chunk_training=True, decode_chunk_size=2)
    with caplog.at_level(logging.WARNING):
        old = _build(yaml.safe_load(yaml.safe_dump(_with(config, **{key: True}, **chunked))), weights)
    assert f"{key}=True is deprecated: write conv_context: {context} instead" in caplog.text
    new = _build(_with(config, conv_context=context, **chunked), weights)
    assert old.encoder.conv_context == context
    torch.testing.assert_close(_encode(old), _encode(new), rtol=0, atol=0)
    other = _build(_with(config, conv_context={"chunk": "causal", "causal": "chunk"}[context], **chunked), weights)
    assert not torch.allclose(_encode(other), _encode(new))  # the key decides the model


def test_the_packed_config_without_the_keys_is_full_context(packed, caplog):
    config, weights = packed
    with caplog.at_level(logging.WARNING):
        model = _build(config, weights)
    assert model.encoder.conv_context == "full" and "deprecated" not in caplog.text
