"""Every YAML under conf/ dry-runs through ESPnet, and the parity pair really is equal in size."""

import subprocess
import sys

import pytest
import yaml

from conftest import ROOT, dry_runs

AN4_CONF = ROOT / "egs2" / "an4" / "asr1" / "conf"
CONFIGS = sorted({p.resolve() for p in [*(ROOT / "conf").rglob("*.yaml"), *(AN4_CONF / "tuning").glob("*.yaml")]})
# (SummaryMixing config, its self-attention baseline): trained side by side, so equal but for the encoder
PAIRS = [
    (ROOT / "conf" / "tuning" / "train_asr_summarymixing_conformer_e12_size256_mlp1024.yaml",
     ROOT / "conf" / "tuning" / "train_asr_conformer_e12_size256_mlp1024_heads4.yaml"),
    (AN4_CONF / "tuning" / "train_asr_summarymixing_conformer_e6_size144_mlp576_k15.yaml",
     AN4_CONF / "tuning" / "train_asr_conformer_e6_size144_mlp576_heads4_k15.yaml"),
]


def test_the_default_config_links_to_the_summarymixing_conformer():
    default = ROOT / "conf" / "train_asr_summarymixing.yaml"
    assert default.is_symlink()
    assert yaml.safe_load(default.read_text())["encoder"] == "summarymixing_conformer"


@pytest.fixture(scope="module")
def dry_run_results(token_list, tmp_path_factory):
    """{config: (process-like result, saved config)}: every config dry-run in one fresh interpreter."""
    tmp = tmp_path_factory.mktemp("dry_runs")
    jobs = [(config, token_list, tmp / f"exp{i}", "asr") for i, config in enumerate(CONFIGS)]
    return dict(zip(CONFIGS, dry_runs(jobs, tmp)))


@pytest.mark.slow  # a fresh interpreter with ESPnet (one for every config)
@pytest.mark.parametrize("config", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_dry_runs(config, dry_run_results):
    proc, saved = dry_run_results[config]
    assert proc.returncode == 0, proc.stderr[-4000:]
    source = yaml.safe_load(config.read_text())
    assert saved["encoder"] == source["encoder"]
    assert saved["encoder_conf"] == source["encoder_conf"]  # only the keys the user set
    assert "no effect" not in proc.stderr  # our configs carry no attention-only keys


def _encoder_parameters(config):
    import espnet2.tasks.asr as asr

    conf = yaml.safe_load(config.read_text())
    encoder = asr.encoder_choices.get_class(conf["encoder"])(input_size=80, **conf["encoder_conf"])
    return sum(p.numel() for p in encoder.parameters())


def test_parameter_parity_with_espnet_conformer():
    tuning = ROOT / "conf" / "tuning"
    ours = _encoder_parameters(tuning / "train_asr_summarymixing_conformer_e12_size256_mlp1024.yaml")
    espnet = _encoder_parameters(tuning / "train_asr_conformer_e12_size256_mlp1024_heads4.yaml")
    assert espnet == pytest.approx(20.9e6, rel=0.01)  # ESPnet's 12 x 256 Conformer on 80 mels
    assert abs(ours / espnet - 1) <= 0.05, (ours, espnet)


@pytest.mark.parametrize("pair", PAIRS, ids=[ours.name for ours, _ in PAIRS])
def test_configs_differ_from_the_baseline_only_in_the_encoder(pair):
    ours, base = (yaml.safe_load(p.read_text()) for p in pair)
    strip = lambda c: {k: v for k, v in c.items() if k not in ("encoder", "encoder_conf")}  # noqa: E731
    assert strip(ours) == strip(base)
    shared = set(ours["encoder_conf"]) & set(base["encoder_conf"])
    assert all(ours["encoder_conf"][k] == base["encoder_conf"][k] for k in shared - {"pos_enc_layer_type"})


def test_recipes_link_to_the_canonical_configs_instead_of_copying_them():
    """A recipe config named like one under conf/tuning/ is a link to it: no copy to drift."""
    canonical = {p.name: p.resolve() for p in (ROOT / "conf" / "tuning").glob("*.yaml")}
    linked = 0
    for config in (ROOT / "egs2").glob("*/*/conf/tuning/*.yaml"):
        if config.name in canonical:
            assert config.is_symlink() and config.resolve() == canonical[config.name], config
            linked += 1
    assert linked == len(canonical)  # every canonical config is used by a recipe (LibriSpeech 100 h)
