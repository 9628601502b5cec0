"""Streaming recognition end to end with a chunk-trained model: features, encoder output and the
CTC hypothesis equal the offline chunked computation; the command reads a file as if live."""

import subprocess
import sys

import pytest
import soundfile
import torch

from espnet_summarymixing.streaming.recognizer import StreamingRecognizer

STREAMING = dict(chunk_conv=True, dynamic_chunk_training=True, chunk_size_range=[2, 8], decode_chunk_size=4)


@pytest.fixture(scope="module")
def streaming_model(train_model):
    return train_model("summarymixing_conformer", normalize=None, **STREAMING)


@pytest.fixture(scope="module")
def speech(data):
    wav = (data["test"] / "wav.scp").read_text().split()[1]
    return wav, torch.tensor(soundfile.read(wav, dtype="float32")[0])


def _offline(rec, wave):
    model = rec.model
    with torch.no_grad():
        feats, _ = model.frontend(wave[None], torch.tensor([wave.numel()]))
        enc, _ = model.encode(wave[None], torch.tensor([wave.numel()]))
    enc = enc[0] if isinstance(enc, tuple) else enc
    return feats, enc


def test_streamed_features_encoder_and_text_equal_offline(streaming_model, speech):
    _, wave = speech
    rec = StreamingRecognizer(streaming_model / "config.yaml", streaming_model / "valid.acc.best.pth")
    feats_offline, enc_offline = _offline(rec, wave)
    feats, encs = [], []
    for start in range(0, wave.numel(), 1234):
        rec.audio = torch.cat([rec.audio, wave[start:start + 1234]])
        f = rec._features(final=False)
        feats.append(f)
        encs.append(rec.encoder.accept(f) if f.size(1) else f[:, :, :0])
    f = rec._features(final=True)
    feats.append(f)
    encs += [rec.encoder.accept(f), rec.encoder.finish()]
    feats = torch.cat([f for f in feats if f.size(1)], dim=1)
    torch.testing.assert_close(feats, feats_offline, atol=1e-4, rtol=1e-4)
    enc = torch.cat([e for e in encs if e.numel()], dim=1)
    torch.testing.assert_close(enc, enc_offline, atol=1e-4, rtol=1e-4)

    rec.reset()
    for start in range(0, wave.numel(), 1600):
        rec.accept_audio(wave[start:start + 1600])
    streamed_text = rec.finish()
    best = rec.model.ctc.argmax(enc_offline)[0].tolist()
    ids = [t for i, t in enumerate(best) if t != 0 and (i == 0 or t != best[i - 1])]
    assert streamed_text == rec.tokenizer.tokens2text(rec.converter.ids2tokens(ids))


def test_stream_decode_command_prints_partials_and_the_final_text(streaming_model, speech):
    wav, _ = speech
    proc = subprocess.run([sys.executable, "-m", "espnet_summarymixing.stream_decode", "--model",
                           str(streaming_model), "--block_ms", "80", wav], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines and all(line.startswith("[") for line in lines[:-1])
    assert "compute per chunk: median" in proc.stderr


def test_utterance_mvn_models_are_refused(train_model):
    model_dir = train_model("summarymixing_conformer")
    with pytest.raises(ValueError, match="utterance_mvn needs the whole utterance"):
        StreamingRecognizer(model_dir / "config.yaml", model_dir / "valid.acc.best.pth")


def test_decoding_a_whole_set_streamed_and_offline(streaming_model, data, tmp_path):
    scp = data["test"] / "wav.scp"
    utts = [line.split() for line in scp.read_text().splitlines()]
    base = [sys.executable, "-m", "espnet_summarymixing.stream_decode", "--model", str(streaming_model),
            "--wav_scp", str(scp), "--block_ms", "100"]
    for extra, name in (([], "stream"), (["--full_context"], "offline")):
        proc = subprocess.run(base + extra + ["--output", str(tmp_path / name / "text")], capture_output=True,
                              text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert f"{len(utts)} utterances" in proc.stderr and "real-time factor" in proc.stderr
    hyps = {name: dict((line.split(" ", 1) + [""])[:2] for line in (tmp_path / name / "text").read_text().splitlines())
            for name in ("stream", "offline")}
    assert sorted(hyps["stream"]) == sorted(u for u, _ in utts)

    rec = StreamingRecognizer(streaming_model / "config.yaml", streaming_model / "valid.acc.best.pth")
    for utt, wav in utts:
        wave = torch.tensor(soundfile.read(wav, dtype="float32")[0])
        assert hyps["stream"][utt] == rec.stream(wave, 1600)
        # offline: the whole utterance with full context, then the same greedy CTC
        enc_module = rec.model.encoder
        enc_module.decode_chunk_size = 0
        _, enc = _offline(rec, wave)
        enc_module.decode_chunk_size = STREAMING["decode_chunk_size"]
        best = rec.model.ctc.argmax(enc)[0].tolist()
        ids = [t for i, t in enumerate(best) if t != 0 and (i == 0 or t != best[i - 1])]
        assert hyps["offline"][utt] == rec.tokenizer.tokens2text(rec.converter.ids2tokens(ids))
    assert rec.model.encoder.decode_chunk_size == STREAMING["decode_chunk_size"]


@pytest.mark.parametrize("encoder", ["summarymixing_branchformer", "contextual_block_conformer"])
def test_full_context_decodes_models_that_cannot_stream(train_model, data, tmp_path, encoder):
    """Models this package cannot stream — an offline-trained one (centred convolutions, learned_ave
    merging, utterance_mvn) or ESPnet's streaming Conformer — are decoded by --full_context with the
    same greedy CTC, for comparisons."""
    model_dir = train_model(encoder)
    config, weights = model_dir / "config.yaml", model_dir / "valid.acc.best.pth"
    with pytest.raises(ValueError):
        StreamingRecognizer(config, weights)
    scp = data["test"] / "wav.scp"
    out = tmp_path / "offline" / "text"
    proc = subprocess.run([sys.executable, "-m", "espnet_summarymixing.stream_decode", "--model", str(model_dir),
                           "--wav_scp", str(scp), "--full_context", "--output", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "(offline, full context)" in proc.stderr
    hyps = dict((line.split(" ", 1) + [""])[:2] for line in out.read_text().splitlines())
    rec = StreamingRecognizer(config, weights, offline_only=True)
    for utt, wav in (line.split() for line in scp.read_text().splitlines()):
        wave = torch.tensor(soundfile.read(wav, dtype="float32")[0])
        best = rec.model.ctc.argmax(_offline(rec, wave)[1])[0].tolist()
        ids = [t for i, t in enumerate(best) if t != 0 and (i == 0 or t != best[i - 1])]
        assert hyps[utt] == rec.tokenizer.tokens2text(rec.converter.ids2tokens(ids))
    with pytest.raises(ValueError, match="offline_only=True: use decode_offline"):
        rec.accept_audio(wave)


@pytest.mark.parametrize("args, message", [
    (["a.wav", "--wav_scp", "x.scp", "--output", "o"], "give either one audio file or --wav_scp"),
    ([], "give either one audio file or --wav_scp"),
    (["--wav_scp", "x.scp"], "--wav_scp needs --output"),
    (["a.wav", "--full_context"], "--full_context only applies with --wav_scp"),
    (["a.wav", "--block_ms", "0"], "--block_ms 0: must be in (0, 60000] ms"),
    (["a.wav", "--block_ms", "-5"], "--block_ms -5: must be in (0, 60000] ms"),
    (["a.wav", "--chunk_size", "0"], "--chunk_size 0: must be at least 1"),
    (["--wav_scp", "missing.scp", "--output", "o"], "--wav_scp missing.scp: no such file"),
])
def test_stream_decode_argument_errors(args, message, capsys):
    from espnet_summarymixing.stream_decode import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--model", "m.zip", *args])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_blocks_shorter_than_the_stft_window_stream_the_same_text(streaming_model, speech):
    """Audio arriving 8 or 16 ms at a time (less than the 32 ms STFT window) is buffered, not a crash."""
    _, wave = speech
    rec = StreamingRecognizer(streaming_model / "config.yaml", streaming_model / "valid.acc.best.pth")
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
    proc = subprocess.run([sys.executable, "-m", "espnet_summarymixing.stream_decode", "--model", str(streaming_model),
                           "--wav_scp", str(scp), "--output", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stderr[-3000:]
    written = [line.split(" ", 1)[0] for line in out.read_text().splitlines()]
    assert written == sorted([utts[0][0], utts[1][0]])
    err = proc.stderr
    assert f"{scp}:2: utterance ghost: {tmp_path / 'missing.wav'}: no such file" in err
    assert f"{scp}:3: expected '<utterance id> <audio file>'" in err
    assert f"{scp}:4: expected '<utterance id> <audio file>', not a command" in err
    assert f"{scp}:5: utterance folder: {tmp_path}: a directory, not an audio file" in err
    assert f"4 entries of {scp} failed" in err
