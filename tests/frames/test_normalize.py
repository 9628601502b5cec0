"""The feature normalisation equals ESPnet's, and its memory is linear in the length."""

import torch

from espnet_summarymixing.frames.normalize import normalize


def _modules(tmp_path):
    import numpy as np
    from espnet2.layers.global_mvn import GlobalMVN
    from espnet2.layers.utterance_mvn import UtteranceMVN

    rng = np.random.default_rng(0)
    mean, var = rng.normal(-3, 1, 6), rng.uniform(0.5, 2, 6)
    stats = tmp_path / "stats.npz"
    np.savez(stats, count=np.array(100), sum=mean * 100, sum_square=(var + mean ** 2) * 100)
    return [GlobalMVN(stats), GlobalMVN(stats, norm_vars=False), UtteranceMVN(), UtteranceMVN(norm_vars=True),
            UtteranceMVN(norm_means=False, norm_vars=True)]


def test_equals_espnet_for_an_utterance_and_is_batch_invariant(tmp_path):
    torch.manual_seed(0)
    feats = torch.randn(2, 30, 6) * 3 - 2
    lengths = torch.tensor([30, 17])
    for module in _modules(tmp_path):
        ours, _ = normalize(module, feats.clone(), lengths)
        for i, n in enumerate(lengths.tolist()):
            alone, _ = module(feats[i:i + 1, :n].clone(), lengths[i:i + 1])
            torch.testing.assert_close(ours[i:i + 1, :n], alone, atol=1e-5, rtol=1e-5)
            assert torch.all(ours[i, n:] == 0), module
    assert normalize(None, feats, lengths)[0] is feats


def test_an_hour_of_frames_needs_no_quadratic_mask(tmp_path):
    """ESPnet's GlobalMVN builds a (T + 1)^2 mask: 32 GB for these 180,000 frames (half an hour)."""
    import resource

    module = _modules(tmp_path)[0]
    feats = torch.zeros(1, 180_000, 6)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out, _ = normalize(module, feats, torch.tensor([180_000]))
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert out.shape == feats.shape and grown_mb < 200
