"""The whole long-form path is linear in memory for a recipe-shaped model: front end, ``global_mvn`` or
``utterance_mvn`` normalisation, encoder, CTC and decoding. Every tensor an operator returns is recorded
(tests/encoders/test_linear_memory.py's dispatch mode): ESPnet's own normalisation layers build a
(T + 1)^2 mask, 130 GB for an hour, which this check sees (the last test)."""

import importlib.util
import sys

import pytest
import torch

from conftest import ROOT

_spec = importlib.util.spec_from_file_location("test_linear_memory", ROOT / "tests" / "encoders" /
                                               "test_linear_memory.py")
_linear = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_linear)
sys.path.insert(0, str(ROOT / "tests" / "deploy"))
from tiny_asr_models import make_model  # noqa: E402

SECONDS = 60  # 6,000 feature frames: a (T + 1)^2 mask would hold 36 million elements
PER_FRAME = 1000  # per 10 ms feature frame, as the encoders' test


@pytest.fixture(scope="module", params=["global_mvn", "utterance_mvn"])
def recipe_model(request, tmp_path_factory):
    from espnet_summarymixing.loading.models import load_asr_model

    folder = make_model(tmp_path_factory.mktemp(request.param), normalize=request.param)
    model, args = load_asr_model(str(folder / "config.yaml"), str(folder / "valid.acc.ave.pth"))
    return request.param, model.eval(), args


@pytest.mark.parametrize("mode, decoding", [("one_pass", "greedy"), ("segmented", "beam")])
def test_long_form_recognizer_builds_no_quadratic_tensor(recipe_model, mode, decoding):
    from espnet_summarymixing.longform.recognizer import LongFormRecognizer

    normalize, model, args = recipe_model
    assert type(model.normalize).__name__ == {"global_mvn": "GlobalMVN", "utterance_mvn": "UtteranceMVN"}[normalize]
    # blocks of 10 s: within a block ESPnet's log-mel layer still builds its (block + 1)^2 mask (36 MB for
    # the default 60 s blocks, whatever the recording's length), which a 60 s recording in one block shows
    rec = LongFormRecognizer(model, args, 16000, mode=mode, decoding=decoding, beam_size=2, segment_seconds=20.0,
                             block_seconds=10.0)
    wave = 0.1 * torch.randn(SECONDS * 16000, generator=torch.Generator().manual_seed(0))
    largest, op = _linear.largest_tensor(lambda: rec(wave))
    assert largest <= PER_FRAME * SECONDS * 100, f"{op} made a tensor of {largest:,} elements for {SECONDS} s"


def test_the_check_sees_espnets_normalisation_mask(recipe_model):
    """ESPnet's own layer on the same features: the (T + 1)^2 mask is seen."""
    _, model, _ = recipe_model
    feats = torch.randn(1, SECONDS * 100, 80)
    largest, _ = _linear.largest_tensor(lambda: model.normalize(feats, torch.tensor([SECONDS * 100])))
    assert largest > PER_FRAME * SECONDS * 100
