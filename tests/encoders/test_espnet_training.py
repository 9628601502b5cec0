"""Train each SummaryMixing encoder a few steps with ESPnet on real AN4 speech, then reload
and decode it (Speech2Text and the asr_inference command) in fresh interpreters that never import this
package explicitly."""

import json
import sys
import textwrap

import pytest
import torch
import yaml

from conftest import ENCODER_CONF, run, train_stats


# Decoding length: the 2-epoch models never emit <sos/eos>, so without a limit the beam search runs for
# as many steps as encoder frames (~100 per utterance); 8 tokens take the same code path.
MAX_TOKENS = 8


@pytest.fixture(scope="module")
def models(train_model):
    """{encoder: its trained model directory}, every encoder of ENCODER_CONF (trained once per session)."""
    return {encoder: train_model(encoder) for encoder in ENCODER_CONF}


@pytest.fixture(scope="module", params=list(ENCODER_CONF))
def trained(request, models):
    return request.param, models[request.param]


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
    from espnet2.bin import asr_inference  # no import of espnet_summarymixing
    out = {}
    for encoder, config, model_file, wav, enc_file in json.loads(sys.argv[1]):
        s2t = asr_inference.Speech2Text(asr_train_config=config, asr_model_file=model_file, device="cpu",
                                        beam_size=2, ctc_weight=0.3, nbest=1, maxlenratio=-%d)
        speech = torch.tensor(soundfile.read(wav)[0], dtype=torch.float32)[None]
        with torch.no_grad():
            enc, _ = s2t.asr_model.encode(speech, torch.tensor([speech.size(1)]))
        torch.save(enc, enc_file)
        results = s2t(speech[0])
        if isinstance(results, tuple):  # with intermediate CTC: (n-best, intermediate outputs)
            results = results[0]
        out[encoder] = {"encoder": type(s2t.asr_model.encoder).__name__, "text": results[0][0]}
    for command in json.loads(sys.argv[2]):  # what python -m espnet2.bin.asr_inference runs
        asr_inference.main(command)
    print(json.dumps(out))
    """ % MAX_TOKENS
)


def inference_command(model_dir, wav_scp, output_dir):
    """The arguments of ``python -m espnet2.bin.asr_inference`` decoding ``wav_scp`` with a model."""
    return ["--asr_train_config", str(model_dir / "config.yaml"),
            "--asr_model_file", str(model_dir / "valid.acc.best.pth"), "--data_path_and_name_and_type", f"{wav_scp},speech,sound", "--key_file", str(wav_scp),
            "--output_dir", str(output_dir), "--ngpu", "0", "--beam_size", "2", "--batch_size", "1",
            "--maxlenratio", str(-MAX_TOKENS)]


@pytest.fixture(scope="module")
def reloaded(models, data, tmp_path_factory):
    """Every trained model reloaded and decoded twice, each time in a fresh interpreter, and the test set
    decoded by ESPnet's asr_inference command with each model. Two interpreter start-ups, not five per
    model: one interpreter loads all the models in turn, the first one runs the command's main() after.
    Returns the test utterance, per run {encoder: (class name and text, the saved encoder output)}, and
    {encoder: the command's output directory}."""
    tmp = tmp_path_factory.mktemp("reload")
    wav_scp = data["test"] / "wav.scp"
    wav = wav_scp.read_text().split()[1]
    script = tmp / "reload.py"
    script.write_text(RELOAD)
    decoded = {e: tmp / f"decode_{e}" for e in models}
    runs = []
    for i in range(2):
        jobs = [(e, str(d / "config.yaml"), str(d / "2epoch.pth"), wav, str(tmp / f"{e}.enc{i}.pt"))
                for e, d in models.items()]
        commands = [inference_command(d, wav_scp, decoded[e]) for e, d in models.items()] if i == 0 else []
        proc = run([sys.executable, script, json.dumps(jobs), json.dumps(commands)], cwd=tmp)
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        runs.append({e: (out[e], torch.load(tmp / f"{e}.enc{i}.pt")) for e in models})
    return wav, runs, decoded


def test_reload_in_fresh_process_gives_identical_outputs(trained, reloaded):
    from espnet2.tasks.asr import ASRTask

    encoder, model_dir = trained
    wav, runs, _ = reloaded
    (out0, enc0), (out1, enc1) = runs[0][encoder], runs[1][encoder]
    assert out0["encoder"].startswith("SummaryMixing")
    assert out0["text"] == out1["text"]
    torch.testing.assert_close(enc0, enc1, rtol=0, atol=0)

    import soundfile

    model, _ = ASRTask.build_model_from_file(model_dir / "config.yaml", model_dir / "2epoch.pth", "cpu")
    model.eval()
    speech = torch.tensor(soundfile.read(wav)[0], dtype=torch.float32)[None]
    with torch.no_grad():
        here, _ = model.encode(speech, torch.tensor([speech.size(1)]))
    torch.testing.assert_close(here, enc0, rtol=1e-5, atol=1e-5)


def test_asr_inference_command_decodes(trained, reloaded, data):
    encoder, _ = trained
    _, _, decoded = reloaded
    wav_scp = data["test"] / "wav.scp"
    hyps = (decoded[encoder] / "1best_recog" / "text").read_text().splitlines()
    keys = [line.split()[0] for line in wav_scp.read_text().splitlines()]
    assert [h.split()[0] for h in hyps] == keys
