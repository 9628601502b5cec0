"""One pass over a long recording: the blocked front end and subsampling equal the unblocked
computation (ours and ESPnet's encoders), and the recognizer's output is consistent with it."""

import copy

import numpy as np
import pytest
import soundfile
import torch
from espnet.nets.pytorch_backend.transformer.embedding import PositionalEncoding, RelPositionalEncoding
from espnet.nets.pytorch_backend.transformer.subsampling import (
    Conv2dSubsampling,
    Conv2dSubsampling6,
    Conv2dSubsampling8,
)
from espnet2.asr.frontend.default import DefaultFrontend
from espnet2.text.build_tokenizer import build_tokenizer
from espnet2.text.token_id_converter import TokenIDConverter

from espnet_summarymixing.longform.blocked import blocked, blocked_frontend_forward, blocked_subsampling_forward
from espnet_summarymixing.longform.ctc_search import greedy, prefix_beam_search
from espnet_summarymixing.longform.recognizer import LongFormRecognizer, pause_cuts, quiet_cuts
from espnet_summarymixing.loading.models import load_asr_model


@pytest.mark.parametrize("samples", [16000 * 7 + 37, 16000 * 5, 16000 * 3 + 159])
@pytest.mark.parametrize("block", [64, 100, 257])
def test_blocked_frontend_equals_unblocked(samples, block):
    frontend = DefaultFrontend(fs=16000, n_fft=512, win_length=400, hop_length=160, n_mels=80)
    wave = torch.randn(1, samples, generator=torch.Generator().manual_seed(samples))
    lengths = torch.tensor([samples])
    ref, ref_lens = frontend(wave, lengths)
    out, out_lens = blocked_frontend_forward(frontend, block)(wave, lengths)
    assert out.shape == ref.shape and torch.equal(out_lens, ref_lens)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("layer", [Conv2dSubsampling, Conv2dSubsampling6, Conv2dSubsampling8])
@pytest.mark.parametrize("pos_enc", [PositionalEncoding, RelPositionalEncoding])
@pytest.mark.parametrize("frames", [701, 523])
def test_blocked_subsampling_equals_unblocked(layer, pos_enc, frames):
    embed = layer(80, 32, 0.0, pos_enc(32, 0.0)).eval()
    x = torch.randn(1, frames, 80, generator=torch.Generator().manual_seed(frames))
    mask = torch.ones(1, 1, frames, dtype=torch.bool)
    with torch.no_grad():
        ref, ref_mask = embed(x, mask)
        out, out_mask = blocked_subsampling_forward(embed, 16)(x, mask)
    assert torch.equal(out_mask, ref_mask)
    for a, b in zip(out if isinstance(out, tuple) else (out,), ref if isinstance(ref, tuple) else (ref,)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.fixture(scope="module")
def model(talkative_model):
    exp = talkative_model
    asr_model, args = load_asr_model(str(exp / "config.yaml"), str(exp / "valid.acc.best.pth"))
    return asr_model.eval(), args


@pytest.fixture(scope="module")
def recording(data):
    """~40 s of real speech: the test utterances one after the other, over and over."""
    waves = [soundfile.read(line.split()[1], dtype="float32")[0] for line in (data["test"] / "wav.scp").read_text().splitlines()]
    one = np.concatenate(waves)
    return torch.tensor(np.tile(one, int(np.ceil(40 * 16000 / one.size)))[: 40 * 16000 + 123])


def _encode(model, wave, block_seconds=None):
    with torch.no_grad():
        if block_seconds is None:
            enc, _ = model.encode(wave[None], torch.tensor([wave.numel()]))
        else:
            with blocked(model, block_seconds) as parts:
                assert parts == {"frontend": True, "subsampling": True}
                enc, _ = model.encode(wave[None], torch.tensor([wave.numel()]))
    return enc[0] if isinstance(enc, tuple) else enc


def test_blocked_encode_equals_unblocked_ours_and_espnets(model, recording):
    from espnet2.asr.encoder.conformer_encoder import ConformerEncoder

    asr_model, _ = model
    ref = _encode(asr_model, recording)
    torch.testing.assert_close(_encode(asr_model, recording, block_seconds=3.0), ref, atol=1e-4, rtol=1e-4)
    assert "forward" not in asr_model.frontend.__dict__ and "forward" not in asr_model.encoder.embed.__dict__
    espnet = copy.deepcopy(asr_model)
    espnet.encoder = ConformerEncoder(80, output_size=32, attention_heads=2, linear_units=64, num_blocks=2,
                                      cnn_module_kernel=7).eval()
    torch.testing.assert_close(_encode(espnet, recording, block_seconds=2.5), _encode(espnet, recording),
                               atol=1e-4, rtol=1e-4)


def test_recognizer_one_pass_is_the_unblocked_greedy_path_with_ordered_words(model, recording):
    asr_model, args = model
    rec = LongFormRecognizer(asr_model, args, 16000, mode="one_pass", decoding="greedy", block_seconds=3.0,
                             word_pause_seconds=0.2)
    result = rec(recording)
    assert rec.frame_seconds == pytest.approx(0.04)
    expected = greedy(asr_model.ctc.log_softmax(_encode(asr_model, recording))[0])
    assert result.hypothesis.tokens == expected.tokens and result.hypothesis.frames == expected.frames
    tokenizer, converter = build_tokenizer("char"), TokenIDConverter(args.token_list)
    # the same characters; words also end at pauses of more than 0.2 s
    assert "".join(result.text.split()) == "".join(tokenizer.tokens2text(converter.ids2tokens(expected.tokens)).split())
    assert result.duration == pytest.approx(recording.numel() / 16000)
    assert len(result.words) >= 10 and " ".join(w.text for w in result.words) == " ".join(result.text.split())
    for a, b in zip(result.words, result.words[1:]):
        assert a.start <= a.end <= b.start + 1e-6
    assert all(0.0 <= w.start <= w.end <= result.duration and 0.0 <= w.confidence <= 1.0 for w in result.words)


def test_segmented_mode_cuts_in_the_pauses_of_a_first_pass_and_encodes_each_piece_alone(model, recording):
    asr_model, args = model
    rec = LongFormRecognizer(asr_model, args, 16000, mode="segmented", decoding="greedy", segment_seconds=10.0,
                             segment_pause_seconds=0.4, timestamps=False)
    cuts = rec.cuts(recording)
    assert cuts[0][0] == 0 and cuts[-1][1] == recording.numel() and all(a[1] == b[0] for a, b in zip(cuts, cuts[1:]))
    assert all(end - start <= 10 * 16000 for start, end in cuts)
    first = greedy(asr_model.ctc.log_softmax(_encode(asr_model, recording))[0])
    in_pauses = {640 * c for c in pause_cuts(first.frames, 10)}
    assert in_pauses and in_pauses <= {start for start, _ in cuts}  # every pause of more than 0.4 s is a cut
    expected = torch.cat([_encode(asr_model, recording[a:b])[0] for a, b in cuts])
    torch.testing.assert_close(rec.encode(recording), expected, atol=1e-5, rtol=1e-5)
    lengths_only = LongFormRecognizer(asr_model, args, 16000, mode="segmented", segment_seconds=10.0,
                                      segment_pause_seconds=0.0, timestamps=False)
    assert lengths_only.cuts(recording) == list(quiet_cuts(recording, 16000, 10.0))
    words = rec(recording).text.split()
    assert words and len(words) >= len(cuts)  # a word never spans two pieces


def test_summary_of_each_stretch_between_pauses_is_a_second_pass(model, recording):
    asr_model, args = model
    rec = LongFormRecognizer(asr_model, args, 16000, mode="one_pass", decoding="greedy", summary_pause_seconds=0.4,
                             timestamps=False)
    first = greedy(asr_model.ctc.log_softmax(_encode(asr_model, recording))[0])
    with torch.no_grad():  # the same pass with the segments given to the encoder as an argument
        feats, feats_lengths = asr_model._extract_feats(recording[None], torch.tensor([recording.numel()]))
        feats, feats_lengths = asr_model.normalize(feats, feats_lengths)
        enc, _, _ = asr_model.encoder(feats, feats_lengths, ctc=asr_model.ctc,
                                      summary_segments=pause_cuts(first.frames, 10))
        enc = enc[0] if isinstance(enc, tuple) else enc
    expected = greedy(asr_model.ctc.log_softmax(enc)[0])
    assert expected != first
    assert rec(recording).hypothesis == expected
    assert greedy(asr_model.ctc.log_softmax(_encode(asr_model, recording))[0]) == first  # nothing left set


def test_quiet_cuts_cut_in_silence_and_cover_everything():
    rate = 1000
    wave = torch.ones(25 * rate)
    wave[8500:8600] = 0.0  # a pause just before the 10 s limit
    cuts = list(quiet_cuts(wave, rate, max_seconds=10))
    assert cuts[0][0] == 0 and cuts[-1][1] == wave.numel()
    assert all(a[1] == b[0] for a, b in zip(cuts, cuts[1:]))
    assert all(end - start <= 10 * rate for start, end in cuts)
    assert 8500 <= cuts[0][1] <= 8600


def test_segmented_beam_search_decodes_each_piece_alone(model, recording):
    """Segmented with beam search: the cuts come from a greedy first pass (linear in the length), and
    each piece is searched alone, so that no prefix grows over a whole recording (a prefix beam search's
    cost per frame grows with its prefixes: an hour decoded as one took longer than the hour)."""
    asr_model, args = model
    options = dict(mode="segmented", segment_seconds=10.0, segment_pause_seconds=0.4, timestamps=False)
    rec = LongFormRecognizer(asr_model, args, 16000, decoding="beam", beam_size=3, **options)
    cuts = rec.cuts(recording)
    assert len(cuts) > 1 and cuts == LongFormRecognizer(asr_model, args, 16000, decoding="greedy", **options).cuts(recording)
    tokens, frames, offset = [], [], 0
    for start, end in cuts:
        enc = _encode(asr_model, recording[start:end])[0]
        with torch.no_grad():
            hyp = prefix_beam_search(asr_model.ctc.log_softmax(enc[None])[0], 3)
        tokens += hyp.tokens
        frames += [offset + frame for frame in hyp.frames]
        offset += enc.size(0)
    result = rec(recording).hypothesis
    assert tokens and result.tokens == tokens and result.frames == frames
