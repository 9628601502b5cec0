"""Streaming recognition end to end with a chunk-trained model: features, encoder output and the
CTC hypothesis equal the offline chunked computation; the command reads a file as if live."""

import subprocess
import sys

import pytest
import soundfile
import torch

from espnet_summarymixing.stream_decode import StreamingRecognizer

STREAMING = dict(causal_conv=True, dynamic_chunk_training=True, chunk_size_range=[2, 8], decode_chunk_size=4)


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
