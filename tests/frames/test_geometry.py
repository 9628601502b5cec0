"""The frame arithmetic equals what ESPnet's subsampling layers really output."""

import pytest
import torch

from espnet_summarymixing.frames.geometry import NO_SUBSAMPLING, STEPS, Subsampling
from espnet_summarymixing.frames.input_layer import SUBSAMPLING, InputLayer, build_input_layer


@pytest.mark.parametrize("name", sorted(SUBSAMPLING))
def test_frames_out_is_what_espnet_outputs_and_frames_in_is_the_fewest(name):
    embed = build_input_layer(name, 20, 8, 0.0, "abs_pos", 0.0, 500, -1).eval()
    geometry = InputLayer(embed).geometry
    assert geometry == Subsampling(STEPS[name])
    field = geometry.receptive_field
    with torch.no_grad():
        for frames in range(field, field + 3 * geometry.stride + 5):
            out, _ = embed(torch.randn(1, frames, 20), None)
            assert out.size(1) == geometry.frames_out(frames), frames
    for frames in range(1, field):
        assert geometry.frames_out(frames) < 1  # ESPnet calls these too short
    for count in range(1, 12):
        fewest = geometry.frames_in(count)
        assert geometry.frames_out(fewest) == count and geometry.frames_out(fewest - 1) == count - 1
        assert geometry.frames_out(fewest + geometry.input_frames_consumed(1)) == count + 1
    assert geometry.lookahead == field - geometry.stride >= 0


def test_the_receptive_field_is_what_one_output_frame_depends_on():
    embed = build_input_layer("conv2d6", 20, 8, 0.0, "abs_pos", 0.0, 500, -1).eval()
    geometry = InputLayer(embed).geometry
    x = torch.randn(1, 60, 20, requires_grad=True)
    out, _ = embed(x, None)
    out[0, 3].sum().backward()
    touched = x.grad[0].abs().sum(-1).nonzero().flatten()
    assert touched.min() == 3 * geometry.stride
    assert touched.max() - touched.min() + 1 == geometry.receptive_field


def test_lengths_work_on_tensors_and_the_manifest_form_round_trips():
    geometry = Subsampling(STEPS["conv2d"])
    lengths = torch.tensor([7, 8, 11, 100])
    assert geometry.frames_out(lengths).tolist() == [geometry.frames_out(int(n)) for n in lengths]
    assert Subsampling.of([list(s) for s in geometry.steps]) == geometry
    assert NO_SUBSAMPLING.frames_out(lengths).tolist() == lengths.tolist()
    assert (NO_SUBSAMPLING.stride, NO_SUBSAMPLING.receptive_field, NO_SUBSAMPLING.lookahead) == (1, 1, 0)


def test_bad_steps_and_counts_are_refused():
    with pytest.raises(ValueError, match="stride >= 1"):
        Subsampling(((2, 0),))
    with pytest.raises(ValueError, match="frames_out=0"):
        Subsampling(STEPS["conv2d"]).frames_in(0)
