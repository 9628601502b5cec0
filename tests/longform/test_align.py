"""Word timings from CTC segmentation on posteriors whose words sit at known frames."""

import math

import numpy as np
import pytest
import torch

from espnet_summarymixing.longform.align import regions, timed_words, words_of
from espnet_summarymixing.longform.ctc_search import Hypothesis, greedy

TOKENS = ["<blank>", "<unk>", "A", "B", "C", "<space>", "<sos/eos>"]
FRAME = 0.04


def _posteriors(frames, events):
    """(frames, vocab) log-probabilities: blank everywhere but at ``events`` {frame: token}."""
    p = np.full((frames, len(TOKENS)), 0.001)
    p[:, 0] = 1.0
    for t, token in events.items():
        p[t] = 0.001
        p[t, token] = 1.0
    p /= p.sum(1, keepdims=True)
    return np.log(p)


def _lookup(log_probs):
    return lambda start, end: log_probs[start:end]


def test_words_start_and_end_where_their_tokens_are():
    # "AB" at frames 50-52 (2 s), "<space>" at 60, "C" at 200 (8 s), "A" at 203
    events = {50: 2, 51: 2, 52: 3, 60: 5, 200: 4, 203: 2}
    lp = _posteriors(300, events)
    hyp = greedy(torch.tensor(lp))
    assert hyp.tokens == [2, 3, 5, 4, 2]
    words = timed_words(_lookup(lp), 300, hyp, TOKENS, FRAME)
    assert [w[0] for w in words] == ["AB", "CA"]
    (_, s1, e1, c1), (_, s2, e2, c2) = words
    assert 2.0 - 0.5 <= s1 <= 2.0 and 52 * FRAME <= e1 <= 52 * FRAME + 0.5
    assert 8.0 - 0.5 <= s2 <= 8.0 and 203 * FRAME <= e2 <= 300 * FRAME
    assert e1 <= s2 and 0.5 < c1 <= 1.0 and 0.5 < c2 <= 1.0
    # cut into regions at the long pause, the same times
    again = timed_words(_lookup(lp), 300, hyp, TOKENS, FRAME, pause_seconds=0.2)
    for (w, s, e, c), (w2, s2_, e2_, c2_) in zip(words, again):
        assert w == w2 and s == pytest.approx(s2_, abs=FRAME) and e == pytest.approx(e2_, abs=FRAME)


def test_low_posteriors_give_low_confidence():
    lp = _posteriors(100, {40: 2})
    lp[40] = np.log(np.array([0.3, 0.05, 0.35, 0.1, 0.1, 0.05, 0.05]))
    hyp = greedy(torch.tensor(lp))
    (_, _, _, low), = timed_words(_lookup(lp), 100, hyp, TOKENS, FRAME)
    (_, _, _, high), = timed_words(_lookup(_posteriors(100, {40: 2})), 100, hyp, TOKENS, FRAME)
    assert low < 0.5 < high


def test_a_region_the_aligner_cannot_fit_keeps_the_decoder_frames():
    lp = _posteriors(6, {0: 2, 1: 3, 2: 5, 3: 4, 4: 5, 5: 2})  # 3 words, 9 labels with blanks, 6 frames
    hyp = greedy(torch.tensor(lp))
    words = timed_words(_lookup(lp), 6, hyp, TOKENS, FRAME)
    assert [(w, round(s, 2), round(e, 2)) for w, s, e, _ in words] == [("AB", 0.0, 0.08), ("C", 0.12, 0.16),
                                                                        ("A", 0.2, 0.24)]
    assert all(math.isclose(c, 1.0 / (1 + 0.006), rel_tol=1e-3) for *_, c in words)


def test_words_of_characters_pieces_and_words():
    hyp = Hypothesis([2, 3, 5, 4, 5, 5, 2], list(range(7)))
    assert [w for w, _ in words_of(hyp, TOKENS)] == ["AB", "C", "A"]
    pieces = ["<blank>", "\u2581HE", "LLO", "\u2581WORLD", "<sos/eos>"]
    assert words_of(Hypothesis([1, 2, 3], [0, 1, 2]), pieces) == [("HELLO", [0, 1]), ("WORLD", [2])]
    whole = ["<blank>", "HELLO", "WORLD", "<sos/eos>"]
    assert words_of(Hypothesis([1, 2], [0, 5]), whole) == [("HELLO", [0]), ("WORLD", [1])]


def test_regions_tile_the_recording_and_cut_in_pauses():
    words = [("A", [0]), ("B", [1]), ("C", [2]), ("D", [3])]
    frames = [10, 12, 60, 300]
    out = regions(words, frames, 400, pause=20, longest=1000)
    assert [(a, b, m) for a, b, m in out] == [(0, 36, [0, 1]), (36, 180, [2]), (180, 400, [3])]
    long = regions(words, [10, 12, 14, 16], 400, pause=20, longest=2)
    assert [m for *_, m in long] == [[0], [1], [2], [3]] and long[-1][1] == 400
