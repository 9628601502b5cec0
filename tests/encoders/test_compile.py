"""torch.compile(fullgraph=True): the three encoders compile without graph breaks for training and
inference, with dynamic batch and time, and give the eager outputs (and gradients)."""

import pytest
import torch

from conftest import batch, tiny, train_stats

NO_DROPOUT = dict(dropout_rate=0.0, positional_dropout_rate=0.0)


def _compiled(name):
    import torch._dynamo

    torch._dynamo.reset()
    encoder = tiny(name, **NO_DROPOUT)
    return encoder, torch.compile(encoder, fullgraph=True, dynamic=True)


@pytest.mark.slow  # inductor compiles forward + backward once per batch: a minute or more on a cold cache
def test_conformer_compiles_for_training_with_equal_gradients():
    from torch._dynamo.utils import counters

    counters.clear()
    encoder, compiled = _compiled("conformer")
    encoder.train()
    graphs = []
    for lengths in ([50, 33], [64, 40, 25, 10]):  # a new batch size and a new length
        x, ilens = batch(lengths)
        compiled(x, ilens)[0].pow(2).mean().backward()
        got = [p.grad.clone() for p in encoder.parameters()]
        encoder.zero_grad()
        out = encoder(x, ilens)[0]
        out.pow(2).mean().backward()
        want = [p.grad.clone() for p in encoder.parameters()]
        encoder.zero_grad()
        for g, w in zip(got, want):
            torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-5)
        graphs.append(counters["stats"]["unique_graphs"])
    # fullgraph: no graph break anywhere. The whole encoder recompiles for a new input length in
    # training, on a stride guard (64 * ((T - 3) // 4)) from the Conv2d subsampling's backward;
    # inference does not (test below), nor do compiled blocks (compile_blocks, next test)
    assert graphs[0] == 1 and graphs[-1] <= len(graphs), graphs


@pytest.mark.slow
@pytest.mark.parametrize("name", ["conformer", "branchformer", "e_branchformer"])
def test_encoders_compile_for_inference(name):
    from torch._dynamo.utils import counters

    counters.clear()
    encoder, compiled = _compiled(name)
    encoder.eval()
    with torch.no_grad():
        for lengths in ([50, 33], [90, 12, 60], [120, 7]):
            x, ilens = batch(lengths)
            out, olens, _ = compiled(x, ilens)
            want, want_lens, _ = encoder(x, ilens)
            assert olens.tolist() == want_lens.tolist()
            torch.testing.assert_close(out, want, rtol=0, atol=1e-5)
    assert counters["stats"]["unique_graphs"] == 1  # one graph for every batch size and length


@pytest.mark.slow
@pytest.mark.parametrize("name", ["conformer", "branchformer", "e_branchformer"])
def test_compiled_blocks_train_with_one_graph_for_every_length(name):
    from torch._dynamo.utils import counters

    import torch._dynamo

    torch._dynamo.reset()
    counters.clear()
    encoder = tiny(name, compile_blocks=True, **NO_DROPOUT).train()
    assert all(layer._compiled_call_impl is not None for layer in encoder.encoders)
    graphs = []
    for lengths in ([50, 33], [71, 71, 20], [99], [37]):
        x, ilens = batch(lengths)
        encoder.set_compiled(True)
        encoder(x, ilens)[0].pow(2).mean().backward()
        got = [p.grad.clone() for p in encoder.parameters()]
        encoder.zero_grad()
        encoder.set_compiled(False)
        encoder(x, ilens)[0].pow(2).mean().backward()
        want = [p.grad.clone() for p in encoder.parameters()]
        encoder.zero_grad()
        for g, w in zip(got, want):
            torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-5)
        graphs.append(counters["stats"]["unique_graphs"])
    # one graph for all blocks, batch sizes >= 2 and lengths; one more for batch size 1 (dynamo
    # specialises sizes 0 and 1)
    assert graphs == [1, 1, 2, 2], graphs


def test_compiled_blocks_refuse_stochastic_depth():
    with pytest.raises(ValueError, match="compile_blocks=True cannot be combined with stochastic_depth_rate=0.1"):
        tiny("conformer", compile_blocks=True, stochastic_depth_rate=0.1)


@pytest.mark.slow
def test_espnet_trains_with_compiled_blocks_and_saves_plain_weights(train_model):
    # compile_blocks through ESPnet's own trainer (espnet2.bin.asr_train, 2 epochs): the checkpoint holds
    # the same parameter names as an eager model (no "_orig_mod." prefix) and loads strictly into one.
    import yaml
    from espnet2.tasks.asr import ASRTask

    model_dir = train_model("summarymixing_conformer", compile_blocks=True)
    config = yaml.safe_load((model_dir / "config.yaml").read_text())
    assert config["encoder_conf"]["compile_blocks"] is True
    stats = train_stats(model_dir)
    losses = [stats[epoch]["train"]["loss"] for epoch in (1, 2)]
    assert losses[1] < losses[0], losses
    state = torch.load(model_dir / "2epoch.pth", map_location="cpu")
    assert not [k for k in state if "_orig_mod" in k]
    config["encoder_conf"]["compile_blocks"] = False
    eager_config = model_dir / "eager.yaml"
    eager_config.write_text(yaml.safe_dump(config))
    model, _ = ASRTask.build_model_from_file(eager_config, None, "cpu")
    model.load_state_dict(state, strict=True)
