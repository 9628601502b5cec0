"""A model packed by the release before the package layout changed (0.1.0) still loads strictly and
decodes to the same text and encoder output (tests/fixtures/pre_layout_model/expect.py says how the
fixture was made). Its cell is a ``summary_mode: lite`` one with the LayerNorms that were then the
default, so this also proves that old checkpoints keep loading now that the defaults follow the
published cells."""

import json
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT

FIXTURE = ROOT / "tests" / "fixtures" / "pre_layout_model"


@pytest.fixture(scope="module")
def decoded(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    proc = subprocess.run([sys.executable, str(FIXTURE / "expect.py"), str(FIXTURE / "model.zip"), str(cache)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout[proc.stdout.index("{"):]), cache


def test_old_packed_model_decodes_as_it_did(decoded):
    got, _ = decoded
    expected = json.loads((FIXTURE / "expected.json").read_text())
    assert got["text"] == expected["text"] and got["encoder_frames"] == expected["encoder_frames"]
    assert got["encoder_out_first"] == pytest.approx(expected["encoder_out_first"], abs=1e-4)
    assert got["encoder_out_abs_sum"] == pytest.approx(expected["encoder_out_abs_sum"], rel=1e-5)


def test_old_config_relies_on_the_old_default(decoded):
    _, cache = decoded
    config = yaml.safe_load(next(cache.rglob("config.yaml")).read_text())
    conf = config["encoder_conf"]
    assert conf["summary_mode"] == "lite" and "summary_branch_norm" not in conf
