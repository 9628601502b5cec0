"""CTC decoding against brute force over every path of small problems, and LM fusion."""

import itertools
import math

import pytest
import torch

from espnet_summarymixing.longform.ctc_search import espnet_lm_scorer, greedy, prefix_beam_search


def _collapse(path, blank=0):
    out = []
    for i, t in enumerate(path):
        if t != blank and (i == 0 or t != path[i - 1]):
            out.append(t)
    return tuple(out)


def _brute_force(log_probs, blank=0):
    """log p(labels) summed over all CTC paths, for every label sequence."""
    t, v = log_probs.shape
    scores = {}
    for path in itertools.product(range(v), repeat=t):
        s = float(sum(log_probs[i, p] for i, p in enumerate(path)))
        labels = _collapse(path, blank)
        scores[labels] = s if labels not in scores else float(torch.logaddexp(torch.tensor(scores[labels]), torch.tensor(s)))
    return scores


@pytest.mark.parametrize("seed", range(6))
def test_prefix_beam_search_finds_the_most_probable_labelling(seed):
    g = torch.Generator().manual_seed(seed)
    log_probs = (torch.randn(6, 3, generator=g) * 2).log_softmax(-1)
    scores = _brute_force(log_probs)
    best = max(scores, key=scores.get)
    hyp = prefix_beam_search(log_probs, beam=len(scores), token_threshold=-math.inf, max_tokens_per_frame=3)
    assert tuple(hyp.tokens) == best
    assert hyp.score == pytest.approx(scores[best], abs=1e-4)
    assert len(hyp.frames) == len(hyp.tokens) and hyp.frames == sorted(hyp.frames)


def test_prefix_beam_search_beats_greedy_where_paths_add_up():
    # frame-wise best path "blank, blank" (0.36) against the labelling "1" (0.64 over its three paths)
    probs = torch.tensor([[0.6, 0.4], [0.6, 0.4]])
    assert greedy(probs.log()).tokens == []
    hyp = prefix_beam_search(probs.log(), beam=4, token_threshold=-math.inf)
    assert hyp.tokens == [1] and hyp.score == pytest.approx(math.log(0.64), abs=1e-6)


def test_prefix_beam_search_times_each_token_at_its_spike():
    # token 1 is barely possible (1e-3) through a long pause, then spikes at frame 15; token 2 at 18.
    # The prefix "1" enters the beam at frame 0, but its time is where it was said.
    probs = torch.full((20, 3), 1e-3)
    probs[:, 0] = 1 - 2e-3
    probs[15] = torch.tensor([0.05, 0.9, 0.05])
    probs[16] = torch.tensor([0.5, 0.45, 0.05])
    probs[18] = torch.tensor([0.05, 0.05, 0.9])
    log_probs = probs.log()
    hyp = prefix_beam_search(log_probs, beam=8)
    assert hyp.tokens == [1, 2] == greedy(log_probs).tokens
    assert hyp.frames == [15, 18] == greedy(log_probs).frames


@pytest.mark.parametrize("seed", range(4))
def test_greedy_is_the_best_path_collapsed_and_blocks_change_nothing(seed):
    g = torch.Generator().manual_seed(seed)
    log_probs = torch.randn(40, 5, generator=g).log_softmax(-1)
    path = log_probs.argmax(-1).tolist()
    hyp = greedy(log_probs)
    assert tuple(hyp.tokens) == _collapse(path)
    assert all(path[f] == tok and (f == 0 or path[f - 1] != tok) for f, tok in zip(hyp.frames, hyp.tokens))
    assert hyp.score == pytest.approx(float(log_probs.max(-1).values.sum()), abs=1e-4)
    blocks = [log_probs[:7], log_probs[7:8], log_probs[8:]]
    assert greedy(blocks) == hyp
    assert prefix_beam_search(blocks, beam=3) == prefix_beam_search(log_probs, beam=3)


def test_lm_fusion_changes_the_choice_and_weight_zero_does_not():
    probs = torch.tensor([[0.1, 0.5, 0.4], [0.9, 0.05, 0.05]]).log()
    assert prefix_beam_search(probs, beam=4).tokens == [1]
    prefers_two = lambda prefix: torch.tensor([-5.0, -5.0, 0.0])  # noqa: E731
    assert prefix_beam_search(probs, beam=4, lm=prefers_two, lm_weight=1.0).tokens == [2]
    assert prefix_beam_search(probs, beam=4, lm=prefers_two, lm_weight=0.0).tokens == [1]


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="frames, vocabulary"):
        greedy(torch.zeros(3))
    with pytest.raises(ValueError, match="blank=5"):
        prefix_beam_search(torch.zeros(2, 3), blank=5)
    with pytest.raises(ValueError, match="beam=0"):
        prefix_beam_search(torch.zeros(2, 3), beam=0)
    assert greedy(torch.zeros(0, 3)).tokens == []


@pytest.mark.parametrize("kind", ["seq_rnn", "transformer"])
def test_espnet_lm_scorer_equals_scoring_each_prefix_from_scratch(kind):
    from espnet2.lm.seq_rnn_lm import SequentialRNNLM
    from espnet2.lm.transformer_lm import TransformerLM

    torch.manual_seed(0)
    vocab = 7
    lm = (SequentialRNNLM(vocab, unit=16, nlayers=1) if kind == "seq_rnn"
          else TransformerLM(vocab, embed_unit=16, att_unit=16, head=2, unit=16, layer=1)).eval()
    score = espnet_lm_scorer(lm, sos_eos=vocab - 1, context=3)
    for prefix in [(), (1,), (1, 2), (1, 2, 3), (1, 2, 4), (2,)]:
        with torch.no_grad():
            y = torch.tensor([[vocab - 1, *prefix]])
            logits, _ = lm(y, None)
        expected = logits[0, -1].log_softmax(-1)
        if kind == "transformer" and len(prefix) > 3:  # sees the last `context` tokens
            with torch.no_grad():
                logits, _ = lm(torch.tensor([[vocab - 1, *prefix[-3:]]]), None)
            expected = logits[0, -1].log_softmax(-1)
        torch.testing.assert_close(score(prefix), expected, atol=1e-5, rtol=1e-5)
