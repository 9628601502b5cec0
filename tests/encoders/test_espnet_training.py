"""Train each SummaryMixing encoder a few steps with ESPnet on real AN4 speech, then reload
and decode it in fresh interpreters that never import this package explicitly."""

import json
import sys
import textwrap

import pytest
import torch
import yaml

from conftest import ENCODER_CONF, run, train_stats


@pytest.fixture(scope="module", params=list(ENCODER_CONF))
def trained(request, train_model):
    return request.param, train_model(request.param)


def test_training_writes_checkpoints_and_learns(trained):
    encoder, model_dir = trained
    saved = yaml.safe_load((model_dir / "config.yaml").read_text())
    assert saved["encoder"] == encoder
    assert (model_dir / "2epoch.pth").exists() and (model_dir / "valid.acc.best.pth").exists()
    stats = train_stats(model_dir)
    losses = [stats[epoch]["train"]["loss"] for epoch in (1, 2)]
    assert losses[1] < losses[0], losses
    interctc = stats[2]["train"].get("loss_interctc_layer1")
    assert interctc is not None and interctc > 0


def test_checkpoint_matches_the_rebuilt_model_strictly(trained):
    from espnet2.tasks.asr import ASRTask

    _, model_dir = trained
    model, _ = ASRTask.build_model_from_file(model_dir / "config.yaml", None, "cpu")
    state = torch.load(model_dir / "2epoch.pth", map_location="cpu")
    expected = model.state_dict()
    assert set(state) == set(expected)
    assert all(state[k].shape == expected[k].shape for k in state)
    model.load_state_dict(state, strict=True)


RELOAD = textwrap.dedent(
    """
    import json, sys
    assert not [m for m in sys.modules if m.split(".")[0] in ("torch", "espnet", "espnet2")]
    import soundfile, torch
    from espnet2.bin.asr_inference import Speech2Text  # no import of espnet_summarymixing
    s2t = Speech2Text(asr_train_config=sys.argv[1], asr_model_file=sys.argv[2], device="cpu",
                      beam_size=2, ctc_weight=0.3, nbest=1)
    speech = torch.tensor(soundfile.read(sys.argv[3])[0], dtype=torch.float32)[None]
    with torch.no_grad():
        enc, _ = s2t.asr_model.encode(speech, torch.tensor([speech.size(1)]))
    torch.save(enc, sys.argv[4])
    results = s2t(speech[0])
    if isinstance(results, tuple):  # with intermediate CTC: (n-best, intermediate outputs)
        results = results[0]
    text = results[0][0]
    print(json.dumps({"encoder": type(s2t.asr_model.encoder).__name__, "text": text}))
    """
)


def test_reload_in_fresh_process_gives_identical_outputs(trained, data, tmp_path):
    from espnet2.tasks.asr import ASRTask

    _, model_dir = trained
    wav = (data["test"] / "wav.scp").read_text().split()[1]
    script = tmp_path / "reload.py"
    script.write_text(RELOAD)
    outs = []
    for i in range(2):
        proc = run([sys.executable, script, model_dir / "config.yaml", model_dir / "2epoch.pth", wav,
                    tmp_path / f"enc{i}.pt"], cwd=tmp_path)
        outs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert outs[0]["encoder"].startswith("SummaryMixing")
    assert outs[0]["text"] == outs[1]["text"]
    enc0, enc1 = torch.load(tmp_path / "enc0.pt"), torch.load(tmp_path / "enc1.pt")
    torch.testing.assert_close(enc0, enc1, rtol=0, atol=0)

    import soundfile

    model, _ = ASRTask.build_model_from_file(model_dir / "config.yaml", model_dir / "2epoch.pth", "cpu")
    model.eval()
    speech = torch.tensor(soundfile.read(wav)[0], dtype=torch.float32)[None]
    with torch.no_grad():
        here, _ = model.encode(speech, torch.tensor([speech.size(1)]))
    torch.testing.assert_close(here, enc0, rtol=1e-5, atol=1e-5)


def test_asr_inference_command_decodes(trained, data, tmp_path):
    _, model_dir = trained
    wav_scp = data["test"] / "wav.scp"
    run([sys.executable, "-m", "espnet2.bin.asr_inference", "--asr_train_config", model_dir / "config.yaml",
         "--asr_model_file", model_dir / "valid.acc.best.pth", "--data_path_and_name_and_type",
         f"{wav_scp},speech,sound", "--key_file", wav_scp, "--output_dir", tmp_path / "decode",
         "--ngpu", "0", "--beam_size", "2", "--batch_size", "1"], cwd=tmp_path)
    hyps = (tmp_path / "decode" / "1best_recog" / "text").read_text().splitlines()
    keys = [line.split()[0] for line in wav_scp.read_text().splitlines()]
    assert [h.split()[0] for h in hyps] == keys
