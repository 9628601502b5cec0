"""A stream's framing: the features of audio fed in pieces equal the features of the whole, the
greedy CTC of a stream equals the greedy CTC of the whole, and one rule for audio that is too short."""

import numpy as np
import pytest
import torch

from espnet_summarymixing.frames.framing import GreedyCtc, IncrementalStft, TooShortError, feed


@pytest.fixture(scope="module")
def frontend():
    from espnet2.asr.frontend.default import DefaultFrontend

    return DefaultFrontend(fs=16000, n_fft=512, win_length=400, hop_length=160, n_mels=20).eval()


def _features(frontend, wave: np.ndarray) -> torch.Tensor:
    with torch.no_grad():
        feats, _ = frontend(torch.from_numpy(wave)[None], torch.tensor([len(wave)]))
    return feats[0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_streamed_features_equal_the_whole_recordings(frontend, seed):
    rng = np.random.default_rng(seed)
    wave = rng.normal(0, 0.1, 16000 + int(rng.integers(0, 800))).astype(np.float32)
    stft = IncrementalStft(512, 160)
    pieces, start = [], 0
    while start < len(wave):
        size = int(rng.integers(1, 2000))
        stft.add(wave[start:start + size])
        start += size
        feats = stft.features(lambda seg: _features(frontend, seg), final=False)
        if feats is not None:
            pieces.append(feats)
    last = stft.features(lambda seg: _features(frontend, seg), final=True)
    pieces += [last] if last is not None else []
    streamed = torch.cat(pieces)
    whole = _features(frontend, wave)
    assert streamed.shape == whole.shape == (len(wave) // 160 + 1, 20)
    assert torch.allclose(streamed, whole, atol=1e-4)
    assert len(stft.audio) <= 512 + 2000  # the audio no later frame needs is dropped


def test_too_short_is_one_rule_for_the_whole_stream():
    stft = IncrementalStft(512, 160)
    stft.add(np.zeros(200, dtype=np.float32))
    assert stft.pending(final=False) is None
    with pytest.raises(TooShortError, match="too short: 200 samples"):
        stft.pending(final=True)
    # a stream that gave frames may end with a few samples: never an error
    stft.reset()
    stft.add(np.zeros(16000, dtype=np.float32))
    job = stft.pending(final=False)
    stft.advance(job[2])
    stft.add(np.zeros(3, dtype=np.float32))
    segment, skip, count = stft.pending(final=True)
    assert count >= 1 and stft.next_frame + count == (16000 + 3) // 160 + 1


@pytest.mark.parametrize("seed", range(4))
def test_greedy_ctc_over_chunks_equals_the_whole(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, 200).tolist()  # many repeats and blanks (0)
    whole = GreedyCtc(0)
    whole.push(labels)
    carry, start = GreedyCtc(0), 0
    while start < len(labels):
        size = int(rng.integers(1, 9))
        carry.push(labels[start:start + size])
        start += size
    assert carry.tokens == whole.tokens
    reference = [t for i, t in enumerate(labels) if t != 0 and (i == 0 or labels[i - 1] != t)]
    assert whole.tokens == reference


def test_feed_reports_partials_and_returns_the_final_text():
    class Echo:  # a recogniser whose text is the number of samples it has seen
        rate = 10

        def reset(self):
            self.n = 0

        def accept_audio(self, samples):
            self.n += len(samples)
            return str(self.n // 20)

        def finish(self):
            return f"done {self.n}"

    seen = []
    assert feed(Echo(), np.zeros(95), 10, lambda t, text: seen.append((t, text))) == "done 95"
    assert seen == [(1.0, "0"), (2.0, "1"), (4.0, "2"), (6.0, "3"), (8.0, "4")]  # each change, once
    with pytest.raises(ValueError, match="block=0"):
        feed(Echo(), np.zeros(5), 0)
