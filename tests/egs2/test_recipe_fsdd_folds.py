"""The FSDD recipe's leave-one-speaker-out protocol: the fold splits of local/data_prep.py (by speaker and
by take), local/fold_results.py's tables (per fold, mean, seeds, pooled confusion), and ``run.sh --folds``
end to end on a few real clips with a tiny model: a whole cls.sh run per fold, a re-run that skips the
finished folds, and stage 7 classifying every set of a fold in one process per job."""

import json
import sys
from pathlib import Path

import pytest
import yaml

from test_recipe_cls import FSDD_RECIPE, fsdd_subset, needs_fsdd, prep, recipe_run, run_recipe, table

SLOW_FIXTURES = ("folds_run",)  # two folds of the shrunken FSDD recipe, every stage: a minute or more

sys.path.insert(0, str(FSDD_RECIPE / "local"))
sys.path.insert(0, str(FSDD_RECIPE / "pyscripts"))
import fold_results  # noqa: E402  (the recipe's script)
from score_cls import score  # noqa: E402

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def speakers_and_takes(data: Path):
    """{speaker: sorted takes} of a data directory."""
    out = {}
    for clip, speaker in table(data / "utt2spk").items():
        out.setdefault(speaker, set()).add(int(clip.rsplit("_", 1)[1]))
    return {s: sorted(t) for s, t in out.items()}


@needs_fsdd
def test_a_leave_one_speaker_out_fold_tests_an_unseen_voice_and_chooses_on_unseen_takes(tmp_path):
    fsdd = fsdd_subset(tmp_path / "fsdd", takes=(0, 1, 45))
    proc = prep(fsdd, tmp_path / "data", "--test_speakers", "nicolas", "--dev_speakers", "", "--dev_takes", "45-49",
                "--suffix", "_loso-nicolas")
    assert proc.returncode == 0, proc.stderr
    sets = {name: speakers_and_takes(tmp_path / "data" / f"{name}_loso-nicolas") for name in ("train", "dev", "test")}
    assert sets["test"] == {"nicolas": [0, 1, 45]}
    assert sets["dev"] == {s: [45] for s in ("george", "jackson", "lucas")}
    assert sets["train"] == {s: [0, 1] for s in ("george", "jackson", "lucas")}
    assert set(table(tmp_path / "data" / "test_loso-nicolas" / "text").values()) == set(DIGITS)
    assert not (tmp_path / "data" / "train").exists()  # only the suffixed sets


@needs_fsdd
def test_the_takes_split_tests_takes_of_every_speaker(tmp_path):
    fsdd = fsdd_subset(tmp_path / "fsdd", takes=(0, 1, 2, 45))
    proc = prep(fsdd, tmp_path / "data", "--test_speakers", "", "--dev_speakers", "", "--test_takes", "0-1",
                "--dev_takes", "45,46", "--suffix", "_takes")
    assert proc.returncode == 0, proc.stderr
    speakers = ("george", "jackson", "lucas", "nicolas")
    assert speakers_and_takes(tmp_path / "data" / "test_takes") == {s: [0, 1] for s in speakers}
    assert speakers_and_takes(tmp_path / "data" / "dev_takes") == {s: [45] for s in speakers}
    assert speakers_and_takes(tmp_path / "data" / "train_takes") == {s: [2] for s in speakers}


@needs_fsdd
@pytest.mark.parametrize("args, message", [
    (["--dev_takes", "9-3"], "--dev_takes: '9-3' is not a take number or range (e.g. 45-49 or 0,1,2)"),
    (["--test_takes", "first"], "--test_takes: 'first' is not a take number or range"),
    (["--dev_takes", "1", "--test_takes", "0-2"], "take(s) 1 named in both --dev_takes and --test_takes"),
    (["--test_speakers", "", "--dev_speakers", "", "--test_takes", "0", "--dev_takes", "1"],
     "the train set would be empty"),
])
def test_bad_takes_are_refused_and_nothing_is_written(tmp_path, args, message):
    fsdd = fsdd_subset(tmp_path / "fsdd", takes=(0, 1))
    proc = prep(fsdd, tmp_path / "data", *args)
    assert proc.returncode == 1 and message in proc.stderr, proc.stderr
    assert not (tmp_path / "data").exists()


# ---------------------------------------------------------------------------------------------
# local/fold_results.py on hand-made scores


def fake_fold(exp: Path, fold: str, name: str, ref: dict, hyp: dict, seconds: float):
    exp_dir = exp / fold / name
    scoring = exp_dir / "inference_valid.acc.best" / f"test_{fold}" / "scoring"
    scoring.mkdir(parents=True)
    (scoring / "scores.json").write_text(json.dumps(score(ref, hyp, DIGITS)))
    (exp_dir / "train_time.txt").write_text(f"{seconds}\n")


def clips(speaker: str, wrong: int, n: int = 20):
    """``n`` clips of a speaker, two of each digit; the first ``wrong`` ones predicted as the next digit."""
    ref = {f"{speaker}-{i % 10}_{i // 10}": DIGITS[i % 10] for i in range(n)}
    hyp = {clip: (DIGITS[(i + 1) % 10] if i < wrong else label) for i, (clip, label) in enumerate(ref.items())}
    return ref, hyp


def test_fold_results_gives_each_speaker_the_mean_the_seeds_and_the_pooled_confusion(tmp_path):
    exp = tmp_path / "exp"
    wrong = {"cls_sm_sp": {"a": 2, "b": 4, "c": 0}, "cls_sm_seed1_sp": {"a": 4, "b": 4, "c": 2}}
    for name, by_speaker in wrong.items():
        for speaker, n in by_speaker.items():
            fake_fold(exp, f"loso-{speaker}", name, *clips(speaker, n), seconds=100 + 10 * n)
    fake_fold(exp, "takes", "cls_sm_sp", *clips("t", 1), seconds=50)
    fake_fold(exp, "loso-a", "cls_twin_sp", *clips("a", 10), seconds=200)  # one fold of three done
    (exp / "cls_stats_8k_sp").mkdir()  # not a fold: ignored
    out = tmp_path / "report" / "RESULTS_folds.md"
    notes = tmp_path / "notes.md"
    notes.write_text("How these were made: by hand.\n")
    assert fold_results.main([str(exp), "--out", str(out), "--notes", str(notes)]) == 0
    text = out.read_text()
    assert text.index("## Environments") < text.index("How these were made: by hand.") < text.index("## Test accuracy")
    # per fold: 2, 4, 0 wrong of 20 -> 90, 80, 100; mean 90; takes 95; mean time of the speakers' folds
    assert "|cls_sm_sp|90.00|80.00|100.00|**90.00**|" in text
    assert "|2m 00s|95.00|" in text.split("|cls_sm_sp|")[1].splitlines()[0]  # (120 + 140 + 100) / 3 s
    assert "|cls_sm_seed1_sp|80.00|80.00|90.00|**83.33**|" in text
    assert "|cls_twin_sp|50.00|-|-|**50.00 (1 of 3)**|" in text
    # the configuration over its two seeds: (90 + 83.33) / 2; the unfinished twin is not in that table
    configurations = text.split("## Mean over folds and seeds")[1].split("\n## ")[0]
    assert "|cls_sm_sp|2|**86.67**|83.33 - 90.00|95.00|" in configurations
    assert "cls_twin" not in configurations
    # pooled over the held-out speakers: 60 clips, 6 wrong (2 of a, 4 of b, as the next digit)
    pooled = text.split("## cls_sm_sp: every held-out speaker together")[1].split("\n## ")[0]
    assert "|60|54|90.00|" in pooled
    assert "|one|6|6|66.7|66.7|66.7|" in pooled  # 4 of the 6 right; zero -> one in a and b
    assert (tmp_path / "report" / "cls_sm_sp_loso.png").is_file()
    assert "## cls_twin_sp: every held-out speaker" not in text  # one fold of three: nothing to pool
    assert not (tmp_path / "report" / "cls_twin_sp_loso.png").exists()
    records = json.loads(out.with_suffix(".json").read_text())
    accuracy = {(r["experiment"], r["fold"]): r["value"] for r in records if r["metric"] == "accuracy"}
    assert accuracy[("cls_sm_sp", "loso-b")] == 80.0 and accuracy[("cls_sm_sp", "takes")] == 95.0
    assert len(accuracy) == 8


def test_fold_results_with_no_scores_or_no_notes_file_is_an_error(tmp_path, capsys):
    (tmp_path / "exp" / "loso-a").mkdir(parents=True)
    assert fold_results.main([str(tmp_path / "exp")]) == 1
    assert "no fold scores found" in capsys.readouterr().err
    assert fold_results.main([str(tmp_path / "exp"), "--notes", str(tmp_path / "missing.md")]) == 1
    assert f"--notes {tmp_path / 'missing.md'}: No such file or directory" in capsys.readouterr().err
    assert not (tmp_path / "exp" / "RESULTS_folds.md").exists()


# ---------------------------------------------------------------------------------------------
# run.sh --folds, tiny


FOLDS = ("--folds", "nicolas takes", "--stop_stage", "8")


@pytest.fixture(scope="module")
def folds_run(tmp_path_factory):
    return recipe_run(tmp_path_factory, "fsdd_folds", (0, 5, 45), *FOLDS)  # takes fold: test 0, dev 45, train 5


def test_each_fold_is_a_whole_recipe_run_of_its_own(folds_run):
    recipe, _, proc = folds_run
    for fold, test_clips in (("loso-nicolas", 30), ("takes", 40)):
        exp = recipe / "exp" / fold / "cls_tiny"
        assert [int(line.split("\t")[0]) for line in (exp / "stage_times.tsv").read_text().splitlines()] == list(range(1, 9))
        assert yaml.safe_load((exp / "config.yaml").read_text())["train_data_path_and_name_and_type"][0][0] \
            == f"dump/raw/train_{fold}_sp/wav.scp"
        scores = json.loads((exp / "inference_valid.acc.best" / f"test_{fold}" / "scoring" / "scores.json").read_text())
        assert scores["clips"] == test_clips
        # stage 7: both sets of the fold in one process per job, its log in the first set's folder
        inference = exp / "inference_valid.acc.best"
        logs = sorted(p.name for p in (inference / f"dev_{fold}" / "logdir").glob("cls_inference.*.log"))
        assert logs == ["cls_inference.1.log"]  # --inference_nj 1
        log_text = (inference / f"dev_{fold}" / "logdir" / "cls_inference.1.log").read_text()
        assert "--also" in log_text and f"test_{fold}/logdir/output.1" in log_text
        assert len(table(inference / f"test_{fold}" / "text")) == test_clips
        assert not list((inference / f"test_{fold}" / "logdir").glob("cls_inference.*.log"))
    assert speakers_and_takes(recipe / "data" / "test_loso-nicolas") == {"nicolas": [0, 5, 45]}
    assert "nicolas" not in speakers_and_takes(recipe / "data" / "train_loso-nicolas")
    report = (recipe / "exp" / "RESULTS_folds.md").read_text()
    assert "|experiment|nicolas|mean|" in report and "\n|cls_tiny|" in report
    assert (recipe / "exp" / "RESULTS_folds.json").is_file() and (recipe / "exp" / "cls_tiny_loso.png").is_file()
    assert "fold loso-nicolas: ./cls.sh" in proc.stdout and "fold takes: ./cls.sh" in proc.stdout


def test_a_rerun_skips_the_finished_folds_and_other_options_run_again(folds_run):
    recipe, fsdd, _ = folds_run
    proc = run_recipe(recipe, fsdd, *FOLDS)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "fold loso-nicolas: finished before with these options" in proc.stdout
    assert "fold takes: finished before with these options" in proc.stdout
    assert "Stage 1" not in proc.stdout and "\n|cls_tiny|" in proc.stdout
    proc = run_recipe(recipe, fsdd, *FOLDS, "--stage", "8")  # other options: a run of their own
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "finished before" not in proc.stdout and proc.stdout.count("Stage 8") >= 2


def test_an_unknown_fold_speaker_stops_with_the_speakers_found(folds_run):
    recipe, fsdd, _ = folds_run
    proc = run_recipe(recipe, fsdd, "--folds", "alice", "--stop_stage", "1")
    assert proc.returncode != 0
    assert "--test_speakers: alice not in the corpus (speakers found: george, jackson, lucas, nicolas)" in proc.stderr
