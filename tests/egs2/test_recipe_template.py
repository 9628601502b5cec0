"""The recipe templates without training: option parsing, asr.sh's checks and messages, the stages
asr.sh and cls.sh share (utils/recipe_stages.sh: defined once, the same checks in both), setup.sh,
and AN4's data preparation."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import sampled
from recipe_tools import CLS_TEMPLATE, ROOT, TEMPLATE, UTILS

AN4 = ROOT.parent / "shared" / "data" / "an4"
AN4_RECIPE = ROOT / "egs2" / "an4" / "asr1"


def bash(script, cwd, *args, env=None):
    return subprocess.run(["bash", "-c", script, "script", *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=120)


def venv_env(**extra):
    """The environment of a user whose PATH starts with this interpreter's bin directory."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env.update(extra)
    return env


# ---------------------------------------------------------------------------------------------
# utils/parse_options.sh
PARSE = f"""
nj=4
asr_config=conf/a.yaml
use_lm=false
help_message="usage: try me"
. {TEMPLATE / 'utils' / 'parse_options.sh'}
echo "nj=$nj asr_config=$asr_config use_lm=$use_lm rest=$*"
"""


def test_options_set_variables_in_both_forms_and_keep_the_rest(tmp_path):
    proc = bash(PARSE, tmp_path, "--nj", "8", "--asr-config=conf/b c.yaml", "--use_lm", "true", "pos1", "--nj", "3")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "nj=8 asr_config=conf/b c.yaml use_lm=true rest=pos1 --nj 3"


def test_double_dash_ends_the_options(tmp_path):
    proc = bash(PARSE, tmp_path, "--nj", "2", "--", "--nj", "5")
    assert proc.stdout.strip() == "nj=2 asr_config=conf/a.yaml use_lm=false rest=--nj 5"


def test_config_file_is_sourced_in_order(tmp_path):
    (tmp_path / "opts.sh").write_text("nj=16\nasr_config=from_file.yaml\n")
    proc = bash(PARSE, tmp_path, "--config", "opts.sh", "--nj", "9")
    assert proc.stdout.strip() == "nj=9 asr_config=from_file.yaml use_lm=false rest="


@pytest.mark.parametrize(
    "args, message",
    [
        (["--n_j", "3"], "unknown option --n_j"),
        (["--nj"], "option --nj needs a value"),
        (["--use_lm", "yes"], "option --use_lm takes true or false, got 'yes'"),
        (["--config", "absent.sh"], "--config absent.sh: no such readable file"),
        (["--bad!name", "1"], "invalid option name --bad!name"),
    ],
)
def test_option_errors_name_the_option(tmp_path, args, message):
    proc = bash(PARSE, tmp_path, *args)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "--help" in proc.stderr
    assert proc.stdout == ""


def test_help_prints_the_callers_message(tmp_path):
    proc = bash(PARSE, tmp_path, "--help")
    assert proc.returncode == 0 and proc.stdout.strip() == "usage: try me"


# ---------------------------------------------------------------------------------------------
# utils/option_value.sh: an option of the command line as asr.sh (utils/parse_options.sh) reads it
@pytest.mark.parametrize(
    "args, value",
    [
        ([], ""),
        (["--use_lm", "true"], "true"),
        (["--stage", "3", "--use-lm=true"], "true"),
        (["--use_lm", "true", "--stage", "3", "--use_lm=false"], "false"),  # the last one counts
        (["--asr_args", "--use_lm=true"], ""),  # the value of another option
        (["--stage", "2", "--", "--use_lm", "true"], ""),  # after the options
    ],
)
def test_option_value_agrees_with_parse_options(tmp_path, args, value):
    proc = subprocess.run([TEMPLATE / "utils" / "option_value.sh", "use_lm", *args], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout == value + "\n", proc.stderr
    parsed = bash(f'use_lm=""; stage=1; asr_args=""; . {TEMPLATE / "utils" / "parse_options.sh"}; echo "$use_lm"',
                  tmp_path, *args)
    assert parsed.stdout == value + "\n"


# ---------------------------------------------------------------------------------------------
# setup.sh, and the recipes it makes: one copy of each shared file, the template's
LINKED = ("asr.sh", "path.sh", "utils", "pyscripts", "cmd.sh", "db.sh", "conf/slurm.conf")


def assert_linked_to_the_template(recipe):
    for name in LINKED:
        link = recipe / name
        assert link.is_symlink() and not os.path.isabs(os.readlink(link)), link
        assert link.resolve() == (TEMPLATE / name).resolve(), link


@pytest.mark.parametrize("recipe", ["an4", "librispeech", "librispeech_100", "slurp"])
def test_the_recipes_link_the_templates_shared_and_site_files(recipe):
    assert_linked_to_the_template(ROOT / "egs2" / recipe / "asr1")


def test_setup_links_the_shared_and_site_files(tmp_path):
    target = tmp_path / "egs2" / "mine" / "asr1"
    proc = subprocess.run([TEMPLATE / "setup.sh", target], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert_linked_to_the_template(target)
    assert os.access(target / "run.sh", os.X_OK) and "./asr.sh" in (target / "run.sh").read_text()
    # the placeholder data preparation refuses to run rather than pretending
    proc = subprocess.run(["local/data.sh"], cwd=target, capture_output=True, text=True)
    assert proc.returncode == 1 and "still to be written" in proc.stderr
    # a second run keeps what the user edited
    (target / "run.sh").write_text("edited\n")
    subprocess.run([TEMPLATE / "setup.sh", target], check=True, capture_output=True)
    assert (target / "run.sh").read_text() == "edited\n"


def test_setup_without_argument_shows_usage():
    proc = subprocess.run([TEMPLATE / "setup.sh"], capture_output=True, text=True)
    assert proc.returncode == 2 and "Usage:" in proc.stdout


# ---------------------------------------------------------------------------------------------
# asr.sh's checks, run from a recipe directory made by setup.sh
@pytest.fixture
def recipe(tmp_path):
    target = tmp_path / "egs2" / "toy" / "asr1"
    subprocess.run([TEMPLATE / "setup.sh", target], check=True, capture_output=True)
    (target / "conf" / "train.yaml").write_text("max_epoch: 1\n")
    return target


SETS = ["--train_set", "tr", "--valid_set", "dv", "--test_sets", "ev"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--valid_set", "dv", "--test_sets", "ev"], "--train_set is required"),
        (["--train_set", "tr", "--test_sets", "ev"], "--valid_set is required"),
        ([*SETS, "--token_type", "phone"], "--token_type must be char, bpe or word, got 'phone'"),
        ([*SETS, "--ngpu", "two"], "--ngpu must be auto or a non-negative integer, got 'two'"),
        ([*SETS, "--nj", "0"], "--nj and --inference_nj must be at least 1"),
        ([*SETS, "--stage", "x"], "--stage must be a non-negative integer, got 'x'"),
        ([*SETS, "--fs", "16kHz"], "--fs must be a rate like 16k or 16000, got '16kHz'"),
        ([*SETS, "--audio_format", "mp3"], "--audio_format must be flac or wav, got 'mp3'"),
        ([*SETS, "--asr_config", "conf/absent.yaml"], "--asr_config conf/absent.yaml: no such file"),
        ([*SETS, "--feats_normalize", "cmvn"], "--feats_normalize must be global_mvn, utterance_mvn or none"),
        ([*SETS, "--stage", "99"], "--stage 99 --stop_stage 10000: no stage in this range (the stages are 1 2 3 4 5 "
                                   "6 7 8 10 11 12 13 14 15): nothing to do"),
        ([*SETS, "--stage", "9", "--stop_stage", "9"], "--stage 9 --stop_stage 9: no stage in this range"),
    ],
)
def test_asr_sh_rejects_bad_options_before_running_anything(recipe, args, message):
    proc = subprocess.run(["./asr.sh", *args], cwd=recipe, capture_output=True, text=True, env=venv_env())
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert message in proc.stdout
    assert not (recipe / "data").exists() and not (recipe / "exp").exists()


def test_asr_sh_unknown_option_and_help(recipe):
    proc = subprocess.run(["./asr.sh", "--asr_conf", "x"], cwd=recipe, capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown option --asr_conf" in proc.stderr
    proc = subprocess.run(["./asr.sh", "--help"], cwd=recipe, capture_output=True, text=True)
    assert proc.returncode == 0
    for words in ("10 feature statistics", "13 scoring (WER, CER, TER)", "--speed_perturb_factors", "--inference_nj (4)"):
        assert words in proc.stdout


STAGES = [1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15]  # 9 (n-gram LM) is not provided
SKIPS = ("skip_data_prep", "skip_train", "skip_eval", "skip_packing", "skip_upload")


def documented_skips(text, pattern):
    """{option: the stages it says it skips} from the help text or from asr.sh's option comments."""
    found = {m[1]: set(range(int(m[2]), int(m[3] or m[2]) + 1)) for m in re.finditer(pattern, text, re.MULTILINE)}
    assert set(found) == set(SKIPS), found
    return found


def stage_groups(script):
    """{skip option: the stages its stage_group line gives it}: what run_stages skips."""
    groups = re.findall(r"^stage_group (skip_\w+) (.*)$", script.read_text(), re.MULTILINE)
    return {name: {int(n) for n in re.findall(r'"(\d+) ', entries)} for name, entries in groups}


@pytest.fixture(scope="module")
def skip_ranges(tmp_path_factory):
    """The stages each --skip_* option skips, as asr.sh's --help and its option comments say."""
    recipe = tmp_path_factory.mktemp("skips") / "egs2" / "toy" / "asr1"
    subprocess.run([TEMPLATE / "setup.sh", recipe], check=True, capture_output=True)
    help_text = subprocess.run(["./asr.sh", "--help"], cwd=recipe, capture_output=True, text=True).stdout
    in_help = documented_skips(help_text, r"^  --(skip_\w+) \((?:true|false)\): skip stages? (\d+)(?:-(\d+))? ")
    in_code = documented_skips((TEMPLATE / "asr.sh").read_text(), r"^(skip_\w+)=(?:true|false) +# skip stages? (\d+)(?:-(\d+))? ")
    assert in_help == in_code
    assert stage_groups(TEMPLATE / "asr.sh") == {name: stages & set(STAGES) for name, stages in in_help.items()}
    assert in_help["skip_data_prep"] == set(range(1, 6)) and in_help["skip_train"] == set(range(6, 12))
    return in_help


def test_cls_sh_skips_the_stages_its_help_names(tmp_path):
    recipe = tmp_path / "egs2" / "toy" / "cls1"
    subprocess.run([CLS_TEMPLATE / "setup.sh", recipe], check=True, capture_output=True)
    help_text = subprocess.run(["./cls.sh", "--help"], cwd=recipe, capture_output=True, text=True).stdout
    in_help = documented_skips(help_text, r"^  --(skip_\w+) \((?:true|false)\): skip stages? (\d+)(?:-(\d+))? ")
    in_code = documented_skips((CLS_TEMPLATE / "cls.sh").read_text(), r"^(skip_\w+)=(?:true|false) +# skip stages? (\d+)(?:-(\d+))? ")
    assert in_help == in_code == stage_groups(CLS_TEMPLATE / "cls.sh")
    assert set().union(*in_help.values()) == set(range(1, 11))


# every stage in the full suite; the first and last stage of each --skip_* group in the quick tier
@pytest.mark.parametrize("stage", sampled(STAGES, [1, 5, 6, 11, 12, 14, 15]))
def test_each_skip_option_skips_the_stages_its_help_names(recipe, skip_ranges, stage, tmp_path):
    # A Python that does nothing: each stage that runs logs "Stage N:" first, then stops on what is missing.
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    args = [*SETS, "--asr_config", "conf/train.yaml", "--use_lm", "true", "--ngpu", "0", "--python", str(fake),
            "--hf_repo", "user/toy", "--stage", str(stage), "--stop_stage", str(stage)]
    for skip in (None, *SKIPS):
        flags = [x for s in SKIPS for x in (f"--{s}", "true" if s == skip else "false")]
        proc = subprocess.run(["./asr.sh", *args, *flags], cwd=recipe, capture_output=True, text=True, env=venv_env())
        skipped = skip is not None and stage in skip_ranges[skip]
        assert (f"Stage {stage}:" not in proc.stdout) == skipped, (skip, proc.stdout)
        if skipped:
            assert proc.returncode == 0 and "Successfully finished" in proc.stdout


def test_asr_sh_names_the_stage_that_produces_a_missing_input(recipe):
    proc = subprocess.run(["./asr.sh", *SETS, "--stage", "10", "--stop_stage", "10", "--asr_config", "conf/train.yaml",
                           "--token_type", "char"], cwd=recipe, capture_output=True, text=True, env=venv_env())
    assert proc.returncode == 1
    assert "dump/raw/tr/wav.scp not found: stage 4 (length filtering) writes it" in proc.stdout


def test_asr_sh_stage_1_reports_the_failing_data_preparation(recipe):
    proc = subprocess.run(["./asr.sh", *SETS, "--stop_stage", "1"], cwd=recipe, capture_output=True, text=True,
                          env=venv_env())
    assert proc.returncode != 0
    assert "still to be written" in proc.stderr


# Stands in for the recipe's Python: pyscripts/*.py run for real; ESPnet's collect_stats writes each key of
# its --{train,valid}_shape_file with length 5 to text_shape, aggregate_stats_dirs concatenates the jobs'.
FAKE_ESPNET_PYTHON = """#!{python}
import os, sys
args = sys.argv[1:]
if args[:1] == ["-c"]:
    sys.exit(0)
if args[:1] != ["-m"]:
    os.execv(sys.executable, [sys.executable, *args])
module, rest = args[1], args[2:]
values = lambda name: [rest[i + 1] for i, a in enumerate(rest) if a == name]
out = values("--output_dir")[0]
for part in ("train", "valid"):
    os.makedirs(f"{{out}}/{{part}}", exist_ok=True)
    with open(f"{{out}}/{{part}}/text_shape", "w") as f:
        if module.endswith("_train"):
            f.writelines(line.split()[0] + " 5\\n" for line in open(values(f"--{{part}}_shape_file")[0]))
        else:
            f.writelines(open(f"{{d}}/{{part}}/text_shape").read() for d in values("--input_dir"))
"""


@pytest.mark.parametrize("stage, stats_dir", [(6, "lm_stats_en_char"), (10, "asr_stats_raw_en_char")])
def test_statistics_stages_give_every_key_to_one_of_at_most_nj_jobs(recipe, stage, stats_dir, tmp_path):
    for name, n in (("tr", 5), ("dv", 2)):
        d = recipe / "dump" / "raw" / name
        d.mkdir(parents=True)
        (d / "wav.scp").write_text("".join(f"{name}-{i} /audio/{i}.flac\n" for i in range(n)))
        (d / "text").write_text("".join(f"{name}-{i} A B\n" for i in range(n)))
    tokens = recipe / "data" / "en_token_list" / "char" / "tokens.txt"
    tokens.parent.mkdir(parents=True)
    tokens.write_text("<blank>\n<unk>\nA\nB\n<sos/eos>\n")
    fake = tmp_path / "python"
    fake.write_text(FAKE_ESPNET_PYTHON.format(python=sys.executable))
    fake.chmod(0o755)
    proc = subprocess.run(["./asr.sh", *SETS, "--lang", "en", "--token_type", "char", "--use_lm", "true",
                           "--asr_config", "conf/train.yaml", "--nj", "4", "--ngpu", "0", "--python", str(fake),
                           "--stage", str(stage), "--stop_stage", str(stage)],
                          cwd=recipe, capture_output=True, text=True, env=venv_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    stats = recipe / "exp" / stats_dir
    # --nj 4, but the validation set has 2 keys: 2 jobs, which between them have every training key
    assert sorted(p.name for p in (stats / "logdir").glob("stats.*.log")) == ["stats.1.log", "stats.2.log"]
    for part, name, n in (("train", "tr", 5), ("valid", "dv", 2)):
        assert (stats / part / "text_shape.char").read_text().splitlines() == [f"{name}-{i} 5,5" for i in range(n)]


# ---------------------------------------------------------------------------------------------
# The stages asr.sh and cls.sh share: defined once (utils/recipe_stages.sh, steps in utils/recipe_lib.sh),
# with the same checks in both templates
LIBS = (UTILS / "recipe_lib.sh", UTILS / "recipe_stages.sh")
SCRIPTS = {"asr": TEMPLATE / "asr.sh", "cls": CLS_TEMPLATE / "cls.sh"}
SHARED_STEPS = ("data", "format", "filter", "stats", "train", "pack", "upload")


def shell_functions(text):
    """{name: body} of the functions a bash file defines (``name() {`` at the start of a line)."""
    found = {m[1]: m[2] for m in re.finditer(r"^(\w+)\(\) \{\n(.*?)^\}$", text, re.MULTILINE | re.DOTALL)}
    found.update({m[1]: m[2] for m in re.finditer(r"^(\w+)\(\) \{ (.*) \}$", text, re.MULTILINE)})
    return found


def code_lines(body):
    """The lines of a function body that carry logic (not comments, nor short calls and keywords)."""
    lines = (line.strip() for line in body.splitlines())
    return {line for line in lines if len(line) >= 40 and not line.startswith("#")}


def test_shared_stages_are_defined_once_and_used_by_both_templates():
    shared = {}
    for lib in LIBS:
        functions = shell_functions(lib.read_text())
        assert not set(functions) & set(shared), f"{lib.name} defines again {set(functions) & set(shared)}"
        shared.update(functions)
    assert {f"stage_{step}" for step in SHARED_STEPS} | {"stage_speed_perturb", "collect_stats", "launch_training",
                                                         "run_inference", "check_common_options"} <= set(shared)
    for kind, script in SCRIPTS.items():
        text = script.read_text()
        own = shell_functions(text)
        assert not set(own) & set(shared), f"{script.name} defines a shared function again: {set(own) & set(shared)}"
        for name, body in shared.items():
            copied = {line for line in code_lines(body) if line in text}
            assert not copied, f"{script.name} repeats the body of {name}: {copied}"
        # every stage is run by a function of the script's or the shared one, and the shared steps are there
        steps = re.findall(r'"\d+ (\w+)', " ".join(re.findall(r"^stage_group (.*)$", text, re.MULTILINE)))
        assert set(SHARED_STEPS) <= set(steps), (kind, steps)
        for step in steps:
            assert f"stage_{step}" in own or f"stage_{step}" in shared, (kind, step)
        assert re.search(r"^run_stages$", text, re.MULTILINE)


def test_there_is_one_copy_of_the_shared_library():
    assert (CLS_TEMPLATE / "utils").is_symlink() and (CLS_TEMPLATE / "utils").resolve() == UTILS.resolve()
    copies = [Path(d) / f for d, _, files in os.walk(ROOT / "egs2") for f in files
              if f in ("recipe_lib.sh", "recipe_stages.sh") and not os.path.islink(Path(d) / f)]
    assert sorted(copies) == sorted(LIBS)


def template_recipe(tmp_path, kind):
    """A recipe made by the template's setup.sh (asr1 or cls1), with an (empty) training config."""
    target = tmp_path / "egs2" / "toy" / f"{kind}1"
    subprocess.run([SCRIPTS[kind].parent / "setup.sh", target], check=True, capture_output=True)
    (target / "conf" / "train.yaml").write_text("max_epoch: 1\n")
    return target


def run_template(recipe, kind, *args, python=None):
    extra = ["--ngpu", "0", "--python", str(python)] if python else []
    return subprocess.run([f"./{kind}.sh", *SETS, *extra, *map(str, args)], cwd=recipe, capture_output=True,
                          text=True, env=venv_env(), timeout=120)


def fake_python(tmp_path, pack_status=0):
    """A Python whose `-c` checks pass and whose pack command records its arguments in pack_args and
    exits with pack_status; everything else (pyscripts, other modules) does nothing."""
    fake = tmp_path / "python"
    fake.write_text(f"""#!{sys.executable}
import sys
args = sys.argv[1:]
if args[:2] == ["-m", "espnet_summarymixing.pack"]:
    open({str(tmp_path / "pack_args")!r}, "w").write("\\n".join(args[2:]))
    sys.exit({pack_status})
""")
    fake.chmod(0o755)
    return fake


PACKING = {"asr": (14, "asr", "valid.acc.ave.pth"), "cls": (9, "classification", "valid.acc.best.pth")}


@pytest.mark.parametrize("kind", ["asr", "cls"])
@pytest.mark.parametrize("pack_status", [0, 3])
def test_packing_stage_of_both_templates_packs_the_trained_model_or_stops(tmp_path, kind, pack_status):
    stage, model_kind, model = PACKING[kind]
    recipe = template_recipe(tmp_path, kind)
    exp = recipe / "exp" / "m"
    exp.mkdir(parents=True)
    (exp / "config.yaml").write_text("encoder: x\n")
    (exp / model).write_bytes(b"")
    proc = run_template(recipe, kind, f"--{kind}_exp", "exp/m", "--stage", stage, "--stop_stage", stage,
                        python=fake_python(tmp_path, pack_status))
    args = (tmp_path / "pack_args").read_text().split("\n")
    assert args[args.index(f"--{model_kind}_train_config") + 1] == "exp/m/config.yaml"
    assert args[args.index(f"--{model_kind}_model_file") + 1] == f"exp/m/{model}"
    assert args[args.index("--output") + 1] == "exp/m/model.zip"
    times = exp / "stage_times.tsv"
    if pack_status == 0:
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert times.read_text().startswith(f"{stage}\tpacking exp/m/model.zip\t")
    else:  # the failed pack stops the script, naming the stage; the stage is not recorded as done
        assert proc.returncode == 1
        assert f"Error: stage {stage}: packing failed (see above)" in proc.stdout
        assert "Successfully finished" not in proc.stdout and not times.exists()


@pytest.mark.parametrize(
    "kind, args, message",
    [
        ("asr", [], "--asr_config is required by stage 10 (feature statistics) and stage 11 (training)"),
        ("cls", [], "--cls_config is required by stage 5 (feature statistics) and stage 6 (training)"),
        ("asr", ["--asr_config", "conf/train.yaml", "--skip_upload", "false"],
         "--hf_repo user/name is required by stage 15 (upload) (--skip_upload true skips it)"),
        ("cls", ["--cls_config", "conf/train.yaml", "--skip_upload", "false"],
         "--hf_repo user/name is required by stage 10 (upload) (--skip_upload true skips it)"),
        ("cls", ["--cls_config", "conf/absent.yaml"], "--cls_config conf/absent.yaml: no such file"),
        ("cls", ["--inference_nj", "0"], "--nj and --inference_nj must be at least 1"),
    ],
)
def test_both_templates_check_the_shared_options_before_running_anything(tmp_path, kind, args, message):
    recipe = template_recipe(tmp_path, kind)
    proc = run_template(recipe, kind, *args)
    assert proc.returncode == 1 and message in proc.stdout, proc.stdout + proc.stderr
    assert not (recipe / "data").exists() and not (recipe / "exp").exists() and not (recipe / "dump").exists()
    # not needed when those stages do not run
    if "required" in message:
        skip = "--skip_train" if "config" in message else "--skip_upload"
        needing = [int(n) for n in re.findall(r"stage (\d+)", message)]  # only the stages that need it, skipped
        proc = run_template(recipe, kind, *args, skip, "true", "--stage", min(needing), "--stop_stage", max(needing),
                            python=fake_python(tmp_path))
        assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "kind, stage, args, message",
    [
        ("asr", 3, ["--speed_perturb_factors", "0.9 1.1"], "data/tr_sp/wav.scp not found: stage 2 (speed perturbation) writes it"),
        ("cls", 2, ["--speed_perturb_factors", "0.9 1.1"], "data/tr/wav.scp not found: stage 1 (data preparation) writes it"),
        ("asr", 4, [], "dump/raw/org/tr/utt2num_samples not found: stage 3 (audio formatting) writes it"),
        ("cls", 3, [], "dump/raw/org/tr/utt2num_samples not found: stage 2 (audio formatting) writes it"),
        ("asr", 11, [], "train/speech_shape not found: stage 10 (feature statistics) writes it"),
        ("cls", 6, [], "train/speech_shape not found: stage 5 (feature statistics) writes it"),
        ("asr", 12, [], "config.yaml not found: stage 11 (training) writes it"),
        ("cls", 7, [], "config.yaml not found: stage 6 (training) writes it"),
        ("asr", 15, ["--skip_upload", "false", "--hf_repo", "u/r"], "model.zip not found: stage 14 (packing) writes it"),
        ("cls", 10, ["--skip_upload", "false", "--hf_repo", "u/r"], "model.zip not found: stage 9 (packing) writes it"),
    ],
)
def test_both_templates_name_the_stage_that_writes_a_missing_input(tmp_path, kind, stage, args, message):
    recipe = template_recipe(tmp_path, kind)
    proc = run_template(recipe, kind, f"--{kind}_config", "conf/train.yaml", "--stage", stage, "--stop_stage", stage,
                        *args, python=fake_python(tmp_path))
    assert proc.returncode == 1 and f"Stage {stage}:" in proc.stdout
    assert message in proc.stdout, proc.stdout + proc.stderr


# The options of each template before its shared stages moved to utils/recipe_stages.sh: none may be lost.
OPTIONS = {
    "asr": set("""asr_args asr_config asr_exp asr_stats_dir asr_tag audio_format blank bpe_train_text bpemode cleaner
        dumpdir expdir export_onnx feats_normalize feats_type fs gpu_inference hf_repo inference_args inference_asr_model
        inference_config inference_lm inference_nj inference_tag lang lm_args lm_config lm_exp lm_tag lm_train_text
        local_data_opts max_wav_duration min_wav_duration nbpe ngpu nj nlsyms_txt num_nodes onnx_opts oov packed_model
        python skip_data_prep skip_eval skip_packing skip_train skip_upload sos_eos speed_perturb_factors stage
        stop_stage test_sets token_type train_set use_lm valid_set""".split()),
    "cls": set("""audio_format cls_args cls_config cls_exp cls_stats_dir cls_tag dumpdir expdir feats_normalize fs
        gpu_inference hf_repo inference_batch_size inference_model inference_nj inference_tag label_list local_data_opts max_wav_duration
        min_wav_duration ngpu nj num_nodes packed_model python skip_data_prep skip_eval skip_packing skip_train
        skip_upload speed_perturb_factors stage stop_stage test_sets train_set valid_set""".split()),
}


@pytest.mark.parametrize("kind", ["asr", "cls"])
def test_help_lists_exactly_the_options_each_template_takes(tmp_path, kind):
    recipe = template_recipe(tmp_path, kind)
    help_text = subprocess.run([f"./{kind}.sh", "--help"], cwd=recipe, capture_output=True, text=True).stdout
    listed = dict(re.findall(r"--(\w+) \(([^)]*)\)", help_text))  # option -> the default shown
    assert set(listed) == OPTIONS[kind]
    # the options the script declares: its own, before the help, and the shared ones of common_options
    text = SCRIPTS[kind].read_text()
    own = text[text.index("\ncommon_options\n"):text.index("help_message=")]
    shared = shell_functions((UTILS / "recipe_stages.sh").read_text())["common_options"]
    assert set(re.findall(r"^ *(\w+)=", own + shared, re.MULTILINE)) == OPTIONS[kind]
    # each is taken, at the default shown
    args = [x for name, value in listed.items() for x in (f"--{name}", value.strip('"'))]
    proc = subprocess.run([f"./{kind}.sh", *args, "--help"], cwd=recipe, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n", 1)[1] == help_text.split("\n", 1)[1]  # after the logged command line


def test_cmd_sh_rejects_an_unknown_backend(recipe):
    proc = bash(". ./cmd.sh", recipe, env=venv_env(cmd_backend="pbs"))
    assert proc.returncode == 1 and "cmd_backend must be local or slurm, got 'pbs'" in proc.stderr
    proc = bash(". ./cmd.sh; echo $train_cmd $decode_cmd", recipe, env=venv_env(cmd_backend="slurm"))
    assert proc.stdout.split() == ["utils/slurm.pl", "utils/slurm.pl"]


# ---------------------------------------------------------------------------------------------
# AN4's data preparation
def run_prep(*args):
    return subprocess.run([sys.executable, AN4_RECIPE / "local" / "data_prep.py", *map(str, args)],
                          capture_output=True, text=True)


def lines(path):
    return path.read_text().splitlines()


@pytest.mark.needs_data("an4", "etc")
def test_an4_preparation_gives_espnets_sets(tmp_path):
    proc = run_prep(AN4, tmp_path)
    assert proc.returncode == 0, proc.stderr
    sizes = {name: len(lines(tmp_path / name / "text")) for name in ("train", "train_nodev", "train_dev", "test")}
    assert sizes == {"train": 948, "train_nodev": 848, "train_dev": 100, "test": 130}
    text = dict(line.split(" ", 1) for line in lines(tmp_path / "train" / "text"))
    assert text["fash-an251-b"] == "YES"  # <s> and </s> removed, speaker-first id
    train = lines(tmp_path / "train" / "text")
    assert lines(tmp_path / "train_dev" / "text") == train[:100] and lines(tmp_path / "train_nodev" / "text") == train[100:]
    for name in sizes:
        scp = dict(line.split(" ", 1) for line in lines(tmp_path / name / "wav.scp"))
        assert set(scp) == {line.split(" ", 1)[0] for line in lines(tmp_path / name / "text")}
        assert all(Path(p).is_file() for p in scp.values())
        spk = {line.split()[0] for line in lines(tmp_path / name / "spk2utt")}
        assert spk == {line.split()[1] for line in lines(tmp_path / name / "utt2spk")}


def make_tree(root, train, test, ext=".wav"):
    """A tiny AN4-layout tree: {utt-spk-b: words} per part; empty audio files with ``ext``."""
    for part, utts, wav in (("train", train, "an4_clstk"), ("test", test, "an4test_clstk")):
        (root / "etc").mkdir(parents=True, exist_ok=True)
        (root / "etc" / f"an4_{part}.transcription").write_text(
            "".join(f"<s> {words} </s> ({name})\n" for name, words in utts.items()))
        for name in utts:
            spk = name.split("-")[1]
            (root / "wav" / wav / spk).mkdir(parents=True, exist_ok=True)
            (root / "wav" / wav / spk / f"{name}{ext}").write_bytes(b"")


def test_an4_preparation_accepts_sph_and_names_a_transcript_without_audio(tmp_path):
    train = {"an1-aaa-b": "YES", "an2-aaa-b": "NO", "cen1-bbb-b": "A B C"}
    make_tree(tmp_path / "an4", train, {"an9-ccc-b": "GO"}, ext=".sph")
    proc = run_prep(tmp_path / "an4", tmp_path / "data", "--ndev", 1)
    assert proc.returncode == 0, proc.stderr
    assert lines(tmp_path / "data" / "train_dev" / "text") == ["aaa-an1-b YES"]
    assert lines(tmp_path / "data" / "train_nodev" / "utt2spk") == ["aaa-an2-b aaa", "bbb-cen1-b bbb"]
    assert lines(tmp_path / "data" / "test" / "wav.scp")[0].endswith("an4test_clstk/ccc/an9-ccc-b.sph")

    (tmp_path / "an4" / "wav" / "an4_clstk" / "aaa" / "an2-aaa-b.sph").unlink()
    out = tmp_path / "data2"
    proc = run_prep(tmp_path / "an4", out, "--ndev", 1)
    assert proc.returncode == 1
    assert "an4_train.transcription:2: no audio for an2-aaa-b" in proc.stderr
    assert ".sph, .wav, .flac" in proc.stderr
    assert not out.exists()  # nothing half-written


@pytest.mark.parametrize(
    "line, message",
    [
        ("<s> YES </s>\n", "expected '<words> (<utterance>)'"),
        ("<s> YES </s> (an1-aaa)\n", "is not <utt>-<speaker>-<mic>"),
        ("<s> </s> (an1-aaa-b)\n", "empty transcript for an1-aaa-b"),
        ("<s> YES </s> (an1-aaa-b)\n<s> NO </s> (an1-aaa-b)\n", "an1-aaa-b already listed on line 1"),
    ],
)
def test_an4_preparation_rejects_malformed_transcripts(tmp_path, line, message):
    make_tree(tmp_path / "an4", {"an1-aaa-b": "YES", "an2-aaa-b": "NO"}, {"an9-ccc-b": "GO"})
    (tmp_path / "an4" / "etc" / "an4_train.transcription").write_text(line)
    proc = run_prep(tmp_path / "an4", tmp_path / "data")
    assert proc.returncode == 1 and message in proc.stderr and "an4_train.transcription" in proc.stderr


def test_an4_data_sh_names_a_wrong_corpus_location(tmp_path):
    proc = subprocess.run(["local/data.sh"], cwd=AN4_RECIPE, capture_output=True, text=True,
                          env=venv_env(AN4=str(tmp_path)))
    assert proc.returncode == 1
    assert f"{tmp_path} is not an AN4 tree" in proc.stdout
    assert not (AN4_RECIPE / "downloads").exists()


# ---------------------------------------------------------------------------------------------
# pyscripts/follow_training.py: the one-line-per-epoch progress of stage 11
def test_training_progress_line_from_espnets_epoch_results():
    from recipe_tools import load_pyscript

    follow = load_pyscript("follow_training")
    line = ("[vm] 2026-11-26 11:33:40,490 (trainer:394) INFO: 11epoch results: [train] iter_time=0.005, "
            "loss_ctc=5.740, acc=0.719, loss=12.237, train_time=0.539, time=1 hour, 2 minutes and 12.45 seconds, "
            "total_count=1474, [valid] loss_ctc=19.817, cer_ctc=0.284, acc=0.664, cer=0.716, wer=0.742, "
            "loss=18.091, time=2.45 seconds, total_count=176, [att_plot] time=1.94 seconds, total_count=0")
    assert follow.summarize(line, 18) == (
        "epoch 11/18, train loss 12.24, valid loss 18.091, valid acc 0.664, valid cer_ctc 0.284, "
        "valid cer 0.716, valid wer 0.742, 3732 s")
    assert follow.summarize("INFO: 11epoch:train:1-10batch: loss=3.0", 18) is None
    assert follow.duration("time=26.14 seconds, total_count=268") == pytest.approx(26.14)
