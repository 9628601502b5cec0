"""Every input layer the encoders accept, through every path, against the plain forward: chunked
forward vs streamed, blocked long-form subsampling, the ONNX graphs in PyTorch (and, slow, through
onnxruntime). A token embedding is refused by every speech path with a clear message."""

import types

import pytest
import torch

from espnet_summarymixing.deploy.graphs import EncoderGraph, ExportError, StreamingStepGraph, check_exportable
from espnet_summarymixing.encoders.branchformer import SummaryMixingBranchformerEncoder
from espnet_summarymixing.encoders.conformer import SummaryMixingConformerEncoder
from espnet_summarymixing.frames.input_layer import INPUT_LAYERS, InputLayer
from espnet_summarymixing.longform.blocked import blockable_input_layer, blocked_subsampling_forward
from espnet_summarymixing.streaming.encoder import StreamingEncoder

SPEECH_LAYERS = [layer for layer in INPUT_LAYERS if layer != "embed"]
FEATURES, SIZE, CHUNK = 20, 16, 3


def _encoder(input_layer, family=SummaryMixingConformerEncoder, **extra):
    torch.manual_seed(0)
    size = dict(output_size=SIZE, num_blocks=2)
    size.update(dict(linear_units=32, cnn_module_kernel=5) if family is SummaryMixingConformerEncoder
                else dict(cgmlp_linear_units=32, cgmlp_conv_kernel=5))
    features = SIZE if input_layer is None else FEATURES
    return SummaryMixingConformerEncoder(features, input_layer=input_layer, conv_context="chunk",
                                         decode_chunk_size=CHUNK, **size, **extra).eval() \
        if family is SummaryMixingConformerEncoder else \
        family(features, input_layer=input_layer, conv_context="chunk", decode_chunk_size=CHUNK, **size, **extra).eval()


def _model(encoder):
    from espnet2.asr.ctc import CTC

    torch.manual_seed(1)
    return types.SimpleNamespace(encoder=encoder, ctc=CTC(7, SIZE), frontend=None, normalize=None,
                                 preencoder=None, postencoder=None)


@pytest.mark.parametrize("input_layer", SPEECH_LAYERS, ids=str)
def test_every_path_equals_the_plain_forward(input_layer):
    encoder = _encoder(input_layer)
    features = encoder._input_size
    x = torch.randn(2, 83, features)
    lengths = torch.tensor([83, 61])
    with torch.no_grad():
        chunked, chunked_lengths, _ = encoder(x, lengths)  # eval: decode_chunk_size chunks
        # streamed, fed 7 feature frames at a time
        stream = StreamingEncoder(encoder, CHUNK)
        outs = [stream.accept(x[:1, i:i + 7]) for i in range(0, 83, 7)] + [stream.finish()]
        assert torch.allclose(torch.cat(outs, 1), chunked[:1], atol=1e-5)
        # the offline ONNX graph, in PyTorch: padded batch, same lengths and values
        graph_out, graph_lengths = EncoderGraph(encoder)(x, lengths)
        assert graph_lengths.tolist() == chunked_lengths.tolist()
        assert torch.allclose(graph_out, chunked, atol=1e-5)
        # the streaming ONNX step graph, in PyTorch: chunk by chunk with explicit state tensors
        step = StreamingStepGraph(_model(encoder), CHUNK)
        state, position, outs = step.initial_state(), 0, []
        consumed = step.input_layer.geometry.input_frames_consumed(CHUNK)
        start = 0
        while start + step.input_frames <= 83:
            log_probs, *state = step(x[:1, start:start + step.input_frames], torch.tensor([position]), *state)
            outs.append(log_probs)
            position += log_probs.size(1)
            start += consumed
        reference = torch.log_softmax(step.ctc_lo(chunked[:1, :position]), dim=-1)
        assert position >= 2 * CHUNK and torch.allclose(torch.cat(outs, 1), reference, atol=1e-5)
        # the blocked long-form subsampling, 5 output frames at a time
        layer = blockable_input_layer(encoder.embed)
        if InputLayer(encoder.embed).subsampling:
            blocked, _ = blocked_subsampling_forward(encoder.embed, 5)(x, None)
            plain, _ = encoder.embed(x, None)
            assert blocked.shape == plain.shape and torch.allclose(blocked, plain, atol=1e-5)
        else:
            assert layer is None  # nothing to block: the per-frame layer runs as it is
        # full context: the forward equals the pieces of the frame pipeline put together by hand
        encoder.decode_chunk_size = 0
        full, full_lengths, _ = encoder(x, lengths)
        pipeline = encoder.input_layer
        frames = pipeline(x)
        assert torch.allclose(full[:1, :full_lengths[0]], encoder(x[:1], lengths[:1])[0][0], atol=1e-5)
        assert frames.size(1) == full.size(1) == pipeline.frames_out(83)


@pytest.mark.parametrize("input_layer", ["conv2d", "conv1d2", "linear"])
def test_branchformer_streams_through_the_same_frame_pipeline(input_layer):
    encoder = _encoder(input_layer, SummaryMixingBranchformerEncoder)
    x = torch.randn(1, 50, encoder._input_size)
    with torch.no_grad():
        chunked, _, _ = encoder(x, torch.tensor([50]))
        stream = StreamingEncoder(encoder, CHUNK)
        streamed = torch.cat([stream.accept(x[:, i:i + 4]) for i in range(0, 50, 4)] + [stream.finish()], 1)
    assert torch.allclose(streamed, chunked, atol=1e-5)


def test_token_input_is_refused_by_every_speech_path():
    encoder = SummaryMixingConformerEncoder(30, output_size=SIZE, linear_units=32, num_blocks=1,
                                            input_layer="embed", conv_context="chunk", decode_chunk_size=2).eval()
    with pytest.raises(ValueError, match="token input"):
        StreamingEncoder(encoder, 2)
    with pytest.raises(ExportError, match="token input"):
        check_exportable(_model(encoder))
    assert blockable_input_layer(encoder.embed) is None
    with torch.no_grad():  # the offline forward takes token ids
        out, _, _ = encoder(torch.randint(0, 30, (1, 9)), torch.tensor([9]))
    assert out.shape == (1, 9, SIZE)


def test_an_input_layer_this_package_does_not_know_is_named():
    with pytest.raises(ValueError, match="Conv1d is not one of ESPnet's input layers"):
        InputLayer(torch.nn.Conv1d(3, 3, 3))


@pytest.mark.slow
@pytest.mark.parametrize("input_layer", ["conv2d8", "conv1d3", "linear"])
def test_onnxruntime_runs_each_kind_of_input_layer_offline_and_streaming(input_layer, tmp_path):
    """The graphs above, exported and run by onnxruntime on lengths never seen when tracing, for each
    way ESPnet lays an input layer out (``out = Linear`` + ``pos_enc``, a Conv1d stack, a per-frame
    layer; ``conv2d``'s ``Sequential(Linear, pos_enc)`` is exported with every tiny ASR model in
    tests/deploy). About 30 s each."""
    onnxruntime = pytest.importorskip("onnxruntime")
    encoder = _encoder(input_layer)
    dynamic = torch.export.Dim.DYNAMIC
    x = torch.randn(2, 97, encoder._input_size)
    lengths = torch.tensor([97, 70])
    graph = EncoderGraph(encoder).eval()
    program = torch.onnx.export(graph, (torch.randn(2, 120, encoder._input_size), torch.tensor([120, 90])),
                                dynamo=True, dynamic_shapes={"feats": {0: dynamic, 1: dynamic}, "lengths": {0: dynamic}},
                                input_names=["feats", "feats_lengths"], verbose=False)
    program.save(str(tmp_path / "offline.onnx"))
    session = onnxruntime.InferenceSession(str(tmp_path / "offline.onnx"), providers=["CPUExecutionProvider"])
    got, got_lengths = session.run(None, {"feats": x.numpy(), "feats_lengths": lengths.numpy()})
    with torch.no_grad():
        ref, ref_lengths = graph(x, lengths)
    assert got_lengths.tolist() == ref_lengths.tolist()
    assert abs(torch.from_numpy(got) - ref).max() < 1e-4
    step = StreamingStepGraph(_model(encoder), CHUNK).eval()
    state = step.initial_state()
    names = [f"state_{i}" for i in range(len(state))]
    program = torch.onnx.export(step, (torch.randn(1, step.input_frames, encoder._input_size), torch.tensor([0]), *state),
                                dynamo=True, input_names=["feats", "position", *names], verbose=False,
                                dynamic_shapes={"feats": {1: dynamic}, "position": None, "state": tuple([None] * len(state))})
    program.save(str(tmp_path / "step.onnx"))
    session = onnxruntime.InferenceSession(str(tmp_path / "step.onnx"), providers=["CPUExecutionProvider"])
    feeds = [s.numpy() for s in state]
    consumed = step.input_layer.geometry.input_frames_consumed(CHUNK)
    x = torch.randn(1, 4 * consumed + step.input_frames, encoder._input_size)
    for k in range(5):
        window = x[:1, k * consumed:k * consumed + step.input_frames]
        with torch.no_grad():
            ref, *state = step(window, torch.tensor([k * CHUNK]), *state)
        got, *feeds = session.run(None, {"feats": window.numpy(), "position": torch.tensor([k * CHUNK]).numpy(),
                                         **dict(zip(names, feeds))})
        assert abs(torch.from_numpy(got) - ref).max() < 1e-4
