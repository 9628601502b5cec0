"""Encoder names resolve in ESPnet without any user import, and only where they belong."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import dry_run_command, espnet_commands, saved_config

ENCODER_CLASSES = {
    "summarymixing_conformer": "SummaryMixingConformerEncoder",
    "summarymixing_branchformer": "SummaryMixingBranchformerEncoder",
    "summarymixing_e_branchformer": "SummaryMixingEBranchformerEncoder",
}
NAMES = list(ENCODER_CLASSES)


def python(code, env=None):
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_startup_imports_neither_torch_nor_espnet():
    loaded = python(
        """
        import json, sys
        print(json.dumps(sorted(m for m in sys.modules
                                if m.split(".")[0] in ("torch", "espnet", "espnet2", "espnet_summarymixing"))))
        """
    )
    assert loaded == ["espnet_summarymixing", "espnet_summarymixing._autoload"]


@pytest.mark.slow  # a fresh interpreter importing eight ESPnet tasks
def test_names_resolve_in_every_task_that_offers_espnet_conformers():
    found = python(
        """
        import importlib, json
        from espnet2.train.class_choices import ClassChoices
        out = {}
        for task in ["asr", "slu", "st", "s2t", "enh_s2t", "enh", "lid", "spk"]:
            module = importlib.import_module("espnet2.tasks." + task)
            for attr, value in vars(module).items():
                if isinstance(value, ClassChoices):
                    out[task + "." + attr] = sorted(k for k in value.classes if "summarymixing" in k)
        print(json.dumps(out))
        """
    )
    for key in ["asr.encoder_choices", "slu.encoder_choices", "st.encoder_choices", "s2t.encoder_choices",
                "enh_s2t.asr_encoder_choices", "enh_s2t.st_encoder_choices"]:
        assert found[key] == sorted(NAMES), key
    # Enhancement and speaker encoders have nothing in common with ours: untouched.
    for key in ["enh.encoder_choices", "spk.encoder_choices", "asr.frontend_choices", "asr.decoder_choices"]:
        assert found.get(key, []) == [], key


ENCODER_CONFS = {
    "summarymixing_conformer": "output_size=16,linear_units=16,num_blocks=1,cnn_module_kernel=3",
    "summarymixing_branchformer": "output_size=16,cgmlp_linear_units=16,num_blocks=1,cgmlp_conv_kernel=3",
    "summarymixing_e_branchformer": "output_size=16,cgmlp_linear_units=16,num_blocks=1,cgmlp_conv_kernel=3",
}


@pytest.fixture(scope="module")
def command_line(token_list, tmp_path_factory):
    """``asr_train --help`` (once: the same text for every encoder) and a dry run of a config of each
    encoder, all in one fresh interpreter: (help text, {name: (its CompletedProcess, the saved config)})."""
    tmp = tmp_path_factory.mktemp("command_line")
    commands = [("espnet2.bin.asr_train", ["--help"])]
    for name, conf in ENCODER_CONFS.items():
        config = tmp / f"{name}.yaml"
        config.write_text(f"encoder: {name}\nencoder_conf: {{{conf.replace('=', ': ')}}}\n"
                          "model_conf: {ctc_weight: 1.0}\n")
        commands.append(dry_run_command(config, token_list, tmp / f"exp_{name}"))
    help_proc, *procs = espnet_commands(commands, tmp / "commands")
    assert help_proc.returncode == 0, help_proc.stderr[-4000:]
    return help_proc.stdout, {name: (proc, saved_config(tmp / f"exp_{name}") if proc.returncode == 0 else None)
                              for name, proc in zip(ENCODER_CONFS, procs)}


@pytest.mark.slow  # a fresh interpreter with ESPnet (one for every encoder)
@pytest.mark.parametrize("name", ENCODER_CONFS)
def test_command_line_lists_and_builds_the_encoders(name, command_line):
    help_text, built_by = command_line
    assert name in help_text
    proc, saved = built_by[name]
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert saved["encoder"] == name
    built = ENCODER_CLASSES[name]
    assert f"(encoder): {built}(" in proc.stderr  # ESPnet logs the model it built


@pytest.mark.slow  # a fresh interpreter with ESPnet
def test_register_is_idempotent_and_the_hook_can_be_switched_off():
    result = python(
        """
        import json
        import espnet2.tasks.asr as asr
        before = "summarymixing_conformer" in asr.encoder_choices.classes
        from espnet_summarymixing import register
        first = register(["espnet2.tasks.asr"])
        count = len(asr.encoder_choices.classes)
        second = register(["espnet2.tasks.asr"])
        print(json.dumps([before, first, second, count == len(asr.encoder_choices.classes)]))
        """,
        env={"ESPNET_SUMMARYMIXING_AUTOLOAD": "0"},
    )
    before, first, second, same = result
    assert before is False
    assert "espnet2.tasks.asr.encoder_choices" in first
    assert second == [] and same


def test_registered_classes_are_our_encoders():
    from espnet2.asr.encoder.abs_encoder import AbsEncoder
    import espnet2.tasks.asr as asr

    from espnet_summarymixing import (
        SummaryMixingBranchformerEncoder,
        SummaryMixingConformerEncoder,
        SummaryMixingEBranchformerEncoder,
    )

    classes = asr.encoder_choices.classes
    assert classes["summarymixing_conformer"] is SummaryMixingConformerEncoder
    assert classes["summarymixing_branchformer"] is SummaryMixingBranchformerEncoder
    assert classes["summarymixing_e_branchformer"] is SummaryMixingEBranchformerEncoder
    assert all(issubclass(classes[n], AbsEncoder) for n in NAMES)
    with pytest.raises(ValueError, match="--encoder must be one of"):
        asr.encoder_choices.get_class("summarymixing_transformer")
