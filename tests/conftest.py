"""Shared helpers: tiny encoders and padded batches, the session's trained models, ESPnet dry runs in one
interpreter, and the tiers: ``slow`` (also given to every test of a training fixture) and ``needs_data``
(skipped with the reason without ../shared/data, failed when ``CI`` is set)."""

import contextlib
import hashlib
import importlib
import io
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
import yaml

from an4_subset import char_token_list, make_data_dirs

from espnet_summarymixing.encoders.branchformer import SummaryMixingBranchformerEncoder
from espnet_summarymixing.encoders.conformer import SummaryMixingConformerEncoder
from espnet_summarymixing.encoders.e_branchformer import SummaryMixingEBranchformerEncoder

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
AN4 = Path(os.environ.get("AN4_ROOT", SHARED_DATA / "an4"))

ENCODERS = {
    "conformer": SummaryMixingConformerEncoder,
    "branchformer": SummaryMixingBranchformerEncoder,
    "e_branchformer": SummaryMixingEBranchformerEncoder,
}
TINY = {
    "conformer": dict(output_size=16, linear_units=24, num_blocks=2, cnn_module_kernel=3),
    "branchformer": dict(output_size=16, cgmlp_linear_units=24, num_blocks=2, cgmlp_conv_kernel=3),
    "e_branchformer": dict(
        output_size=16, cgmlp_linear_units=24, num_blocks=2, cgmlp_conv_kernel=3, linear_units=24
    ),
}
FEATS = 20


def tiny(name, input_size=FEATS, **kwargs):
    options = dict(TINY[name])
    options.update(kwargs)
    return ENCODERS[name](input_size, **options)


def batch(lengths, feats=FEATS, seed=0, tokens=False):
    """A padded batch (B, T, feats) (or token ids) with garbage in the padding."""
    g = torch.Generator().manual_seed(seed)
    t = max(lengths)
    if tokens:
        x = torch.randint(1, feats, (len(lengths), t), generator=g)
    else:
        x = torch.randn(len(lengths), t, feats, generator=g)
    for i, n in enumerate(lengths):
        if tokens:
            x[i, n:] = feats - 1
        else:
            x[i, n:] = 7.0 + torch.randn(t - n, feats, generator=g)
    return x, torch.tensor(lengths)


# ----------------------------------------------------------------------------- shared data (../shared/data)


def data_required():
    """True where missing shared data is an error, not a skip: the ``CI`` variable is set (``.ci/run``
    exports it, as CI services do)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_data(*parts):
    """``../shared/data/<parts>``; a test that cannot run without it is skipped with the reason (shown in
    the summary by ``-rs``), or failed when :func:`data_required`."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        message = f"needs ../shared/data/{'/'.join(parts)} ({path} is missing)"
        if data_required():
            pytest.fail(f"{message}; CI is set and CI always has the shared data", pytrace=False)
        pytest.skip(message)
    return path


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "needs_data(*parts): the test needs ../shared/data/<parts> (conftest.require_data: "
        "skipped with the reason when missing, failed when CI is set)")


# Fixtures that train a model with ESPnet (tens of seconds each, shared by the session): a test that
# uses one, directly or through another fixture, is in the slow tier whether or not it is marked. A test
# module adds its own costly fixtures (an ONNX export, a recipe run) with ``SLOW_FIXTURES = ("name", ...)``.
TRAINING_FIXTURES = ("train_model", "talkative_model")


@pytest.hookimpl(tryfirst=True)  # before -m "not slow" deselects
def pytest_collection_modifyitems(config, items):
    heavy = set()  # modules that train, export, pack or run a recipe
    for item in items:
        module = getattr(item, "module", None)
        slow = {*TRAINING_FIXTURES, *getattr(module, "SLOW_FIXTURES", ())}
        if slow.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
            heavy.add(item.fspath)
        marks = getattr(module, "pytestmark", [])
        if any(m.name == "slow" for m in (marks if isinstance(marks, list) else [marks])):
            heavy.add(item.fspath)
    # The heavy modules first (a stable sort keeps each module's tests together): the parallel workers take
    # whole modules in this order (setup.cfg: --dist loadfile --no-loadscope-reorder), so that the long ones
    # start early and the short ones fill in at the end.
    items.sort(key=lambda item: item.fspath not in heavy)


def sampled(cases, quick, ids=None):
    """The cases of a parameter matrix for ``pytest.mark.parametrize``: those in ``quick`` (a few that
    between them take every value) run in the quick tier, the others only in the full suite (slow)."""
    quick = set(quick)
    assert quick <= set(cases), quick - set(cases)
    return [pytest.param(*(case if isinstance(case, tuple) else (case,)), id=None if ids is None else ids(case),
                         marks=() if case in quick else pytest.mark.slow) for case in cases]


def pytest_runtest_setup(item):
    # before any fixture of the test is set up (a recipe run in a module fixture included)
    for mark in item.iter_markers("needs_data"):
        require_data(*mark.args)


# ----------------------------------------------------------------------------- parallel workers (pytest-xdist)
# setup.cfg runs the suite on ``-n auto`` workers (``-n 0``: in this process). The cores are shared out:
# each worker and every command it starts (an ESPnet training, a recipe) uses cores // workers threads,
# since two processes that each use every core slow each other far more than twice.
MAX_WORKERS = 4  # each worker holds torch and ESPnet (~1-3 GB with the commands it runs)


def pytest_xdist_auto_num_workers(config):
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1))


def _threads():
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return max(1, (os.cpu_count() or 1) // workers) if workers > 1 else min(2, os.cpu_count() or 1)


THREADS = _threads()
if "PYTEST_XDIST_WORKER" in os.environ:  # inherited by the commands the tests start
    for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_name] = str(THREADS)


def shared_build(tmp_path_factory, name, build):
    """A folder ``build(folder)`` fills once per test session, whichever worker asks first: the others
    wait for it (a file lock) and reuse it. ``name`` identifies the content."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        folder = tmp_path_factory.mktemp(name)
        build(folder)
        return folder
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp().parent / "shared"  # the session's folder, above each worker's
    root.mkdir(exist_ok=True)
    folder, done = root / name, root / f"{name}.done"
    with FileLock(str(root / f"{name}.lock")):
        if not done.exists():
            if folder.exists():
                shutil.rmtree(folder)  # left by a build that failed
            folder.mkdir()
            build(folder)
            done.touch()
    return folder


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    torch.set_num_threads(THREADS)


ENCODER_CONF = {
    "summarymixing_conformer": dict(
        output_size=32, linear_units=64, num_blocks=2, cnn_module_kernel=7, macaron_style=True,
        interctc_layer_idx=[1], interctc_use_conditioning=True,
    ),
    "summarymixing_branchformer": dict(
        output_size=32, cgmlp_linear_units=64, num_blocks=2, cgmlp_conv_kernel=7,
        merge_method="learned_ave", interctc_layer_idx=[1],
    ),
    "summarymixing_e_branchformer": dict(
        output_size=32, cgmlp_linear_units=64, num_blocks=2, cgmlp_conv_kernel=7, use_ffn=True,
        macaron_ffn=True, linear_units=64, interctc_layer_idx=[1],
    ),
}
# ESPnet encoders that tests train as baselines (not ours: test_espnet_training does not run on them)
BASELINE_CONF = {
    # the streaming self-attention Conformer that the streaming configs pair with
    "contextual_block_conformer": dict(
        output_size=32, attention_heads=2, linear_units=64, num_blocks=2, cnn_module_kernel=7,
        block_size=16, hop_size=8, look_ahead=4,
    ),
}


def run(args, cwd, timeout=600):
    """Run a command in a fresh interpreter; fail with its output if it fails."""
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, args))}\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return proc


def run_command(name: str, *argv) -> tuple:
    """Run ``python -m espnet_summarymixing.<name> argv`` in this process: (exit status, stdout, stderr).
    An exception other than an exit is not caught: the test fails on it (a traceback). A command's start
    in a fresh interpreter (its ``__main__``, the start-up output) is tested once per command in
    tests/cli; elsewhere this saves the ~10 s of CPU an interpreter with ESPnet's imports costs."""
    main = importlib.import_module(f"espnet_summarymixing.{name}").main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main([str(a) for a in argv])
        except SystemExit as exit_:
            status = exit_.code
    return status, out.getvalue(), err.getvalue()


def command(name: str, *argv) -> subprocess.CompletedProcess:
    """:func:`run_command` as a CompletedProcess (returncode 0 for a command that returns None)."""
    status, out, err = run_command(name, *argv)
    code = 0 if status is None else (status if isinstance(status, int) else 1)
    return subprocess.CompletedProcess([name, *map(str, argv)], code, stdout=out, stderr=err)


def train_stats(model_dir):
    """The per-epoch statistics ESPnet's trainer kept in ``model_dir``'s checkpoint.pth."""
    return torch.load(model_dir / "checkpoint.pth", map_location="cpu", weights_only=False)["reporter"]["stats"]


@pytest.fixture(scope="session")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("an4")
    if not (AN4 / "etc").is_dir():  # synthetic tones instead of speech: said, and an error in CI
        if data_required():
            pytest.fail(f"needs AN4 at {AN4}; CI is set and CI always has the shared data", pytrace=False)
        warnings.warn(f"{AN4} is missing: the trained test models learn synthetic tones, not AN4 speech")
    dirs = make_data_dirs(AN4, root, {"train": 12, "valid": 4, "test": 3})
    texts = [line.split(" ", 1)[1].strip() for d in dirs.values() for line in (d / "text").read_text().splitlines()]
    dirs["tokens"] = char_token_list(texts, root / "tokens.txt")
    return dirs


@pytest.fixture(scope="session")
def train_model(data, tmp_path_factory):
    """Train (once per session) a tiny ESPnet ASR model with the given encoder; return its dir."""
    cache = {}

    def train(encoder, normalize="utterance_mvn", **encoder_conf):
        key = (encoder, normalize, repr(sorted(encoder_conf.items())))
        if key not in cache:
            conf = {**{**ENCODER_CONF, **BASELINE_CONF}[encoder], **encoder_conf}
            name = f"{encoder}-{hashlib.sha1(repr(key[1:]).encode()).hexdigest()[:10]}"
            cache[key] = shared_build(tmp_path_factory, name,
                                      lambda exp: _train(encoder, conf, normalize, data, exp)) / "model"
        return cache[key]

    return train


def _train(encoder, encoder_conf, normalize, data, exp):
    config = {
        "encoder": encoder,
        "encoder_conf": encoder_conf,
        "decoder": "transformer",
        "decoder_conf": dict(attention_heads=2, linear_units=64, num_blocks=1),
        "model_conf": dict(ctc_weight=0.3, interctc_weight=0.3, lsm_weight=0.1),
        "frontend_conf": dict(n_fft=512, win_length=400, hop_length=160),
        "normalize": normalize,
        "optim": "adam",
        "optim_conf": dict(lr=0.002),
        "batch_type": "unsorted",
        "batch_size": 4,
        "max_epoch": 2,
        "num_workers": 0,
    }
    (exp / "train.yaml").write_text(yaml.safe_dump(config))
    args = [sys.executable, "-m", "espnet2.bin.asr_train", "--config", exp / "train.yaml",
            "--output_dir", exp / "model", "--token_type", "char", "--token_list", data["tokens"],
            "--ngpu", "0", "--seed", "0", "--use_tensorboard", "false", "--use_matplotlib", "false",
            "--num_att_plot", "0"]
    for part in ("train", "valid"):
        d = data[part]
        args += [f"--{part}_data_path_and_name_and_type", f"{d / 'wav.scp'},speech,sound",
                 f"--{part}_data_path_and_name_and_type", f"{d / 'text'},text,text",
                 f"--{part}_shape_file", d / "wav.scp"]
    run(args, cwd=exp)
    return exp / "model"


@pytest.fixture(scope="session")
def token_list(tmp_path_factory):
    """A character token list for dry runs."""
    path = tmp_path_factory.mktemp("tokens") / "tokens.txt"
    path.write_text("\n".join(["<blank>", "<unk>", *"ABCDEFG", "<space>", "<sos/eos>"]) + "\n")
    return path


def dry_run(config, token_list, output_dir, task="asr"):
    """``python -m espnet2.bin.<task>_train --dry_run true`` on a config (the model is built, nothing is
    trained); fails with ESPnet's message if it fails. Returns (process, the config.yaml ESPnet saved)."""
    proc = subprocess.run(
        [sys.executable, "-m", f"espnet2.bin.{task}_train", "--dry_run", "true", "--config", str(config),
         "--token_list", str(token_list), "--output_dir", str(output_dir),
         "--use_tensorboard", "false", "--ngpu", "0"],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc, yaml.safe_load((output_dir / "config.yaml").read_text())


# One fresh interpreter runs many ESPnet commands in turn (``<module>.main(args)``, which is what
# ``python -m <module>`` runs): each keeps its own output (ESPnet logs through the root logger, which here
# writes to the sys.stderr of the moment) and its own exit status. An interpreter start-up with ESPnet's
# imports costs ~15 s of CPU, a dry run after it ~1 s.
_COMMANDS = """
import contextlib, importlib, json, logging, sys, traceback


class Stderr:
    def write(self, text):
        return sys.stderr.write(text)

    def flush(self):
        sys.stderr.flush()


logging.basicConfig(level="INFO", stream=Stderr(),
                    format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
for module, args, out, err, status in json.loads(sys.argv[1]):
    code = 1
    with open(out, "w") as o, open(err, "w") as e, contextlib.redirect_stdout(o), contextlib.redirect_stderr(e):
        try:
            importlib.import_module(module).main(args)
            code = 0
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
        except BaseException:
            traceback.print_exc()
    with open(status, "w") as f:
        f.write(str(code))
"""


def espnet_commands(commands, workdir):
    """Run ESPnet commands, ``commands`` a list of (module, args) such as ("espnet2.bin.asr_train",
    ["--help"]), one after the other in one fresh interpreter; return a CompletedProcess for each (its
    return code, stdout, stderr). The caller checks the return codes."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    plan = [(module, [str(a) for a in args], *(str(workdir / f"{i}.{x}") for x in ("out", "err", "status")))
            for i, (module, args) in enumerate(commands)]
    script = workdir / "commands.py"
    script.write_text(_COMMANDS)
    run([sys.executable, script, json.dumps(plan)], cwd=workdir, timeout=1800)
    return [subprocess.CompletedProcess([module, *args], int(Path(status).read_text()),
                                        stdout=Path(out).read_text(), stderr=Path(err).read_text())
            for module, args, out, err, status in plan]


def dry_run_command(config, token_list, output_dir, task="asr"):
    """(module, args) of ``python -m espnet2.bin.<task>_train --dry_run true`` on a config."""
    return (f"espnet2.bin.{task}_train",
            ["--dry_run", "true", "--config", config, "--token_list", token_list, "--output_dir", output_dir,
             "--use_tensorboard", "false", "--ngpu", "0"])


def dry_runs(jobs, workdir):
    """Dry runs of many configs in one fresh interpreter (:func:`espnet_commands`): ``jobs`` is a list of
    (config, token_list, output_dir, task); returns, for each, (its CompletedProcess, the config.yaml ESPnet
    saved or None). The caller checks each return code."""
    procs = espnet_commands([dry_run_command(*job) for job in jobs], workdir)
    return [(proc, saved_config(output_dir) if proc.returncode == 0 else None)
            for (_, _, output_dir, _), proc in zip(jobs, procs)]


def saved_config(output_dir):
    """The config.yaml ESPnet saved in ``output_dir``."""
    return yaml.safe_load((Path(output_dir) / "config.yaml").read_text())


# A tiny trained model that speaks: the session's 2-epoch model mostly emits blanks, so its CTC blank
# logit is lowered until about a third of the frames emit a token (random letters, but real words for
# the long-form formats and timings to work on).
@pytest.fixture(scope="session")
def talkative_model(train_model, data, tmp_path_factory):
    from espnet_summarymixing.loading.models import load_asr_model

    exp = train_model("summarymixing_conformer")
    model, _ = load_asr_model(str(exp / "config.yaml"), str(exp / "valid.acc.best.pth"))
    model.eval()
    wav = (data["test"] / "wav.scp").read_text().split()[1]
    wave = torch.tensor(soundfile.read(wav, dtype="float32")[0])[None]
    with torch.no_grad():
        enc, _ = model.encode(wave, torch.tensor([wave.size(1)]))
        enc = enc[0] if isinstance(enc, tuple) else enc
        logits = model.ctc.ctc_lo(enc)[0]
    margin = logits[:, 0] - logits[:, 1:].max(dim=1).values
    shift = float(np.quantile(margin.numpy(), 0.35)) + 1e-3
    state = model.state_dict()
    state["ctc.ctc_lo.bias"][0] -= shift
    out = tmp_path_factory.mktemp("talkative")
    shutil.copy(exp / "config.yaml", out / "config.yaml")
    torch.save(state, out / "valid.acc.best.pth")
    return out
