"""Streaming recognition end to end with a chunk-trained model: features, encoder output and the
CTC hypothesis equal the offline chunked computation; the command reads a file as if live."""

import subprocess
import sys

import pytest
import soundfile
import torch

from conftest import command

from espnet_summarymixing.loading.models import load_asr_model
from espnet_summarymixing.streaming.recognizer import StreamingRecognizer, full_context_text

STREAMING = dict(conv_context="chunk", dynamic_chunk_training=True, chunk_size_range=[2, 8], decode_chunk_size=4)


@pytest.fixture(scope="module")
def streaming_model(train_model):
    return train_model("summarymixing_conformer", normalize=None, **STREAMING)


@pytest.fixture(scope="module")
def speech(data):
    wav = (data["test"] / "wav.scp").read_text().split()[1]
    return wav, torch.tensor(soundfile.read(wav, dtype="float32")[0])


def _load(model_dir):
    return load_asr_model(str(model_dir / "config.yaml"), str(model_dir / "valid.acc.best.pth"))


def _recognizer(model_dir, **kwargs):
    return StreamingRecognizer(*_load(model_dir), **kwargs)


def _offline(rec, wave):
    model = rec.model
    with torch.no_grad():
        feats, _ = model.frontend(wave[None], torch.tensor([wave.numel()]))
        enc, _ = model.encode(wave[None], torch.tensor([wave.numel()]))
    enc = enc[0] if isinstance(enc, tuple) else enc
    return feats, enc


def _greedy_text(rec, enc):
    best = rec.model.ctc.argmax(enc)[0].tolist()
    ids = [t for i, t in enumerate(best) if t != 0 and (i == 0 or t != best[i - 1])]
    from espnet2.text.build_tokenizer import build_tokenizer
    from espnet2.text.token_id_converter import TokenIDConverter

    args = rec.train_args
    tokens = TokenIDConverter(token_list=args.token_list).ids2tokens(ids)
    return build_tokenizer(token_type=args.token_type, bpemodel=args.bpemodel).tokens2text(tokens)


def test_streamed_features_encoder_and_text_equal_offline(streaming_model, speech):
    _, wave = speech
    rec = _recognizer(streaming_model)
    feats_offline, enc_offline = _offline(rec, wave)
    feats, encs = [], []
    for start in range(0, wave.numel(), 1234):
        rec.stft.add(wave[start:start + 1234].numpy())
        f = rec.stft.features(rec._features, final=False)
        if f is not None and f.size(0):
            feats.append(f)
            encs.append(rec.encoder.accept(f[None]))
    f = rec.stft.features(rec._features, final=True)
    if f is not None and f.size(0):
        feats.append(f)
        encs.append(rec.encoder.accept(f[None]))
    encs.append(rec.encoder.finish())
    torch.testing.assert_close(torch.cat(feats)[None], feats_offline, atol=1e-4, rtol=1e-4)
    enc = torch.cat([e for e in encs if e.numel()], dim=1)
    torch.testing.assert_close(enc, enc_offline, atol=1e-4, rtol=1e-4)

    rec.reset()
    for start in range(0, wave.numel(), 1600):
        rec.accept_audio(wave[start:start + 1600])
    assert rec.finish() == _greedy_text(rec, enc_offline)


def test_stream_decode_command_prints_partials_and_the_final_text(streaming_model, speech):
    wav, _ = speech
    proc = subprocess.run([sys.executable, "-m", "espnet_summarymixing.stream_decode", "--model",
                           str(streaming_model), "--block_seconds", "0.08", wav], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines and all(line.startswith("[") for line in lines[:-1])
    assert lines[-1] == _recognizer(streaming_model).stream(speech[1], 1280)
    assert "compute per chunk: median" in proc.stderr
    assert "nltk_data" not in proc.stderr and "Traceback" not in proc.stderr


def test_utterance_mvn_models_are_refused(train_model):
    model_dir = train_model("summarymixing_conformer")
    with pytest.raises(ValueError, match="utterance_mvn needs the whole utterance"):
        _recognizer(model_dir)


def test_decoding_a_whole_set_streamed_and_offline(streaming_model, data, tmp_path):
    scp = data["test"] / "wav.scp"
    utts = [line.split() for line in scp.read_text().splitlines()]
    base = ["--model", streaming_model, "--wav_scp", scp, "--block_ms", "100"]  # --block_seconds' old name
    for extra, name in (([], "stream"), (["--full_context"], "offline")):
        proc = command("stream_decode", *base, *extra, "--output", tmp_path / name / "text")
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert f"{len(utts)} utterances" in proc.stderr and "real-time factor" in proc.stderr
        assert "warning: --block_ms 100 is read as --block_seconds 0.1" in proc.stderr
        if name == "stream":  # 4 frames of 40 ms + 30 ms of subsampling look-ahead + 16 ms of half a window
            assert "chunk 4, look-ahead 0, algorithmic latency 206 ms" in proc.stderr
    hyps = {name: dict((line.split(" ", 1) + [""])[:2] for line in (tmp_path / name / "text").read_text().splitlines())
            for name in ("stream", "offline")}
    assert sorted(hyps["stream"]) == sorted(u for u, _ in utts)

    rec = _recognizer(streaming_model)
    for utt, wav in utts:
        wave = torch.tensor(soundfile.read(wav, dtype="float32")[0])
        assert hyps["stream"][utt] == rec.stream(wave, 1600)
        # offline: the whole utterance with full context, then the same greedy CTC
        enc_module = rec.model.encoder
        enc_module.decode_chunk_size = 0
        _, enc = _offline(rec, wave)
        enc_module.decode_chunk_size = STREAMING["decode_chunk_size"]
        assert hyps["offline"][utt] == _greedy_text(rec, enc)
    assert rec.model.encoder.decode_chunk_size == STREAMING["decode_chunk_size"]


@pytest.mark.parametrize("encoder", ["summarymixing_branchformer", "contextual_block_conformer"])
def test_full_context_decodes_models_that_cannot_stream(train_model, data, tmp_path, encoder):
    """Models this package cannot stream — an offline-trained one (centred convolutions, learned_ave
    merging, utterance_mvn) or ESPnet's streaming Conformer — are decoded by --full_context with the
    same greedy CTC, for comparisons; without it, the command says what to use instead."""
    model_dir = train_model(encoder)
    model, args = _load(model_dir)
    with pytest.raises(ValueError):
        StreamingRecognizer(model, args)
    scp = data["test"] / "wav.scp"
    out = tmp_path / "offline" / "text"
    proc = command("stream_decode", "--model", model_dir, "--wav_scp", scp, "--full_context", "--output", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "(offline, full context)" in proc.stderr
    hyps = dict((line.split(" ", 1) + [""])[:2] for line in out.read_text().splitlines())
    for utt, wav in (line.split() for line in scp.read_text().splitlines()):
        wave = torch.tensor(soundfile.read(wav, dtype="float32")[0])
        assert hyps[utt] == full_context_text(model, args, wave)
    proc = command("stream_decode", "--model", model_dir, "--wav_scp", scp)
    assert proc.returncode == 2 and proc.stderr.splitlines() == [
        f"error: {model_dir} is an ASR model: it was not trained to stream: use python -m "
        "espnet_summarymixing.transcribe (or stream_decode --full_context for greedy CTC over the whole utterance)"]


@pytest.mark.parametrize("args, message", [
    ([], "no audio file given"),
    (["a.wav", "--block_seconds", "0"], "--block_seconds 0: must be in (0, 60] seconds"),
    (["a.wav", "--block_ms", "-5"], "--block_seconds -0.005: must be in (0, 60] seconds"),
    (["a.wav", "--chunk_size", "0"], "--chunk_size 0: must be at least 1"),
    (["--wav_scp", "missing.scp", "--output", "o"], "--list missing.scp: no such file"),
])
def test_stream_decode_argument_errors(args, message, capsys):
    from espnet_summarymixing.stream_decode import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--model", "m.zip", *args])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_blocks_shorter_than_the_stft_window_stream_the_same_text(streaming_model, speech):
    """Audio arriving 8 or 16 ms at a time (less than the 32 ms STFT window) is buffered, not a crash."""
    _, wave = speech
    rec = _recognizer(streaming_model)
    reference = rec.stream(wave, 1600)
    for block in (128, 256, 7):
        assert rec.stream(wave, block) == reference, block
    with pytest.raises(ValueError, match="the audio is too short: 100 samples"):
        rec.stream(wave[:100], 160)


def test_one_bad_entry_of_a_set_loses_nothing_else(streaming_model, data, tmp_path):
    utts = [line.split() for line in (data["test"] / "wav.scp").read_text().splitlines()]
    scp = tmp_path / "wav.scp"
    scp.write_text(f"{utts[0][0]} {utts[0][1]}\n"
                   f"ghost {tmp_path / 'missing.wav'}\n"
                   f"lonely\n"
                   f"piped sox a.wav -t wav - |\n"
                   f"folder {tmp_path}\n"
                   f"{utts[1][0]} {utts[1][1]}\n")
    out = tmp_path / "out" / "text"
    proc = command("stream_decode", "--model", streaming_model, "--wav_scp", scp, "--output", out)
    assert proc.returncode == 1, proc.stderr[-3000:]
    written = [line.split(" ", 1)[0] for line in out.read_text().splitlines()]
    assert written == [utts[0][0], utts[1][0]]
    err = proc.stderr
    assert f"{scp}:2: {tmp_path / 'missing.wav'}: error: no such file" in err
    assert f"{scp}:3: lonely: error: no such file" in err
    assert f"{scp}:4: error: a command (ending in '|'), not an audio file" in err
    assert f"{scp}:5: {tmp_path}: error: a directory, not an audio file" in err
    assert "4 of 6 files failed" in err and "Traceback" not in err
