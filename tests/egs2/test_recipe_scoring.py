"""The recipe's scorer (pyscripts/score.py, in place of SCTK's sclite) and its RESULTS.md collector."""

import itertools
import json
import random

import pytest
import torch

from recipe_tools import load_pyscript

score = load_pyscript("score")
collect = load_pyscript("collect_results")


def write_text(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def counts_of(ref, hyp, tokenize=None):
    summary, per_utt = score.score({"u": ref}, {"u": hyp}, tokenize or score.word_tokens)
    return summary, per_utt[0]


def run_score(tmp_path, refs, hyps, *extra, metric="wer", dataset="test"):
    ref = write_text(tmp_path / "ref.txt", refs)
    hyp = write_text(tmp_path / "hyp.txt", hyps)
    out = tmp_path / "out"
    argv = ["--ref", str(ref), "--hyp", str(hyp), "--metric", metric, "--dataset", dataset,
            "--out_dir", str(out), *extra]
    return score.main(argv), out


# ---------------------------------------------------------------- alignment counts


@pytest.mark.parametrize(
    "ref, hyp, expected",  # (Corr, Sub, Del, Ins)
    [
        ("a b c d", "a b c d", (4, 0, 0, 0)),
        ("a b c d", "a x c d", (3, 1, 0, 0)),
        ("a b c d", "a c d", (3, 0, 1, 0)),
        ("a b c d", "a b y c d", (4, 0, 0, 1)),
        ("a b c d", "", (0, 0, 4, 0)),
        ("", "x y", (0, 0, 0, 2)),
        ("a b c", "b c d e", (2, 0, 1, 2)),
    ],
)
def test_counts_on_hand_made_examples(ref, hyp, expected):
    summary, utt = counts_of(ref, hyp)
    c = utt["counts"]
    assert (c["Corr"], c["Sub"], c["Del"], c["Ins"]) == expected
    assert summary["Err"] == c["Sub"] + c["Del"] + c["Ins"]
    assert summary["Wrd"] == c["Corr"] + c["Sub"] + c["Del"] == len(ref.split())
    assert summary["S.Err"] == (ref != hyp)


def test_alignment_marks_gaps_and_errors():
    _, utt = counts_of("a b c d", "a x c e d")
    assert [op for op, _, _ in utt["ops"]] == ["C", "S", "C", "I", "C"]
    ref_line, hyp_line, eval_line = score.alignment_lines(utt["ops"])
    assert ref_line == "REF:  a b c *** d"
    assert hyp_line == "HYP:  a x c e   d"
    assert eval_line == "Eval:   S   I"
    _, utt = counts_of("a b", "b")
    assert score.alignment_lines(utt["ops"])[1] == "HYP:  *** b"


def brute_force_distance(ref, hyp):
    """Edit distance by plain recursion over prefixes (no shared code with the scorer)."""
    cache = {}

    def dist(i, j):
        if (i, j) not in cache:
            if i == 0 or j == 0:
                cache[i, j] = i + j
            else:
                cache[i, j] = min(
                    dist(i - 1, j) + 1, dist(i, j - 1) + 1, dist(i - 1, j - 1) + (ref[i - 1] != hyp[j - 1])
                )
        return cache[i, j]

    return dist(len(ref), len(hyp))


def test_error_count_is_the_edit_distance_on_random_sequences():
    rng = random.Random(1234)
    for _ in range(300):
        ref = [rng.choice("abc") for _ in range(rng.randint(0, 7))]
        hyp = [rng.choice("abcd") for _ in range(rng.randint(0, 7))]
        ops = score.align(ref, hyp)
        c = score.count_ops(ops)
        assert c["Sub"] + c["Del"] + c["Ins"] == brute_force_distance(ref, hyp)
        assert c["Corr"] + c["Sub"] + c["Del"] == len(ref)
        assert c["Corr"] + c["Sub"] + c["Ins"] == len(hyp)
        assert [r for _, r, _ in ops if r is not None] == ref
        assert [h for _, _, h in ops if h is not None] == hyp


def test_exhaustively_small_binary_sequences():
    for n, m in itertools.product(range(4), repeat=2):
        for ref in itertools.product("ab", repeat=n):
            for hyp in itertools.product("ab", repeat=m):
                c = score.count_ops(score.align(list(ref), list(hyp)))
                assert c["Sub"] + c["Del"] + c["Ins"] == brute_force_distance(ref, hyp)


# ---------------------------------------------------------------- tokenizers


def test_cer_counts_spaces():
    assert score.char_tokens("ab  c") == ["a", "b", "<space>", "c"]
    summary, utt = counts_of("ab c", "abc", score.char_tokens)
    assert summary["Wrd"] == 4
    assert (utt["counts"]["Corr"], utt["counts"]["Del"], summary["Err"]) == (3, 1, 1)


def test_ter_with_a_tiny_sentencepiece_model(tmp_path):
    spm = pytest.importorskip("sentencepiece")
    rng = random.Random(0)
    words = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "far", "away"]
    corpus = [" ".join(rng.choice(words) for _ in range(5)) for _ in range(40)]
    write_text(tmp_path / "corpus.txt", corpus)
    spm.SentencePieceTrainer.train(
        input=str(tmp_path / "corpus.txt"), model_prefix=str(tmp_path / "bpe"), vocab_size=20,
        model_type="bpe", character_coverage=1.0, minloglevel=2,
    )
    model = tmp_path / "bpe.model"
    pieces = spm.SentencePieceProcessor(model_file=str(model))
    ref, hyp = "the cat sat on a mat", "the dog sat on a mat"
    n_ref = len(pieces.encode(ref, out_type=str))

    rc, out = run_score(tmp_path, ["u1 " + ref, "u2 " + ref], ["u1 " + ref, "u2 " + hyp],
                        "--bpemodel", str(model), metric="ter")
    assert rc == 0
    result = json.loads((out / "scores.json").read_text())
    assert result["metric"] == "ter" and result["Wrd"] == 2 * n_ref
    assert result["counts"]["Err"] > 0 and result["counts"]["S.Err"] == 1
    assert result["S.Err"] == pytest.approx(50.0)


def test_ter_without_a_bpemodel_is_an_error(tmp_path, capsys):
    rc, _ = run_score(tmp_path, ["u1 a"], ["u1 a"], metric="ter")
    assert rc == 1
    assert "--bpemodel" in capsys.readouterr().err


# ---------------------------------------------------------------- command line


def test_outputs_and_the_espnet_table(tmp_path, capsys):
    refs = ["u1 a b c d", "u2 e f g h", "u3 i j", "u4 k l"]
    hyps = ["u1 a x c d", "u2 e f g h", "u3 i j z", "u4 k"]
    rc, out = run_score(tmp_path, refs, hyps, dataset="test_clean")
    assert rc == 0
    printed = capsys.readouterr().out.splitlines()
    # 12 words: 10 correct, 1 sub, 1 del, 1 ins; 3 of 4 sentences wrong
    assert printed == [
        "|dataset|Snt|Wrd|Corr|Sub|Del|Ins|Err|S.Err|",
        "|---|---|---|---|---|---|---|---|---|",
        "|test_clean|4|12|83.3|8.3|8.3|8.3|25.0|75.0|",
    ]
    result = json.loads((out / "scores.json").read_text())
    assert result["counts"] == {"Snt": 4, "Wrd": 12, "Corr": 10, "Sub": 1, "Del": 1, "Ins": 1,
                                "Err": 3, "S.Err": 3}
    assert (result["dataset"], result["Snt"], result["Wrd"]) == ("test_clean", 4, 12)
    assert result["Err"] == pytest.approx(25.0) and result["S.Err"] == pytest.approx(75.0)
    text = (out / "result.txt").read_text()
    assert "test_clean" in text and printed[2] in text
    assert "id: u1\nScores: (#C #S #D #I) 3 1 0 0\nREF:  a b c d\nHYP:  a x c d\nEval:   S" in text


def test_identical_strings_score_no_errors(tmp_path, capsys):
    rc, _ = run_score(tmp_path, ["u1 a b c"], ["u1 a b c"])
    assert rc == 0
    assert capsys.readouterr().out.splitlines()[2] == "|test|1|3|100.0|0.0|0.0|0.0|0.0|0.0|"


def test_missing_hypotheses_are_scored_empty_with_a_warning(tmp_path, capsys):
    rc, out = run_score(tmp_path, ["u1 a b", "u2 c d e", "u3 f"], ["u1 a b"])
    assert rc == 0
    err = capsys.readouterr().err
    assert "warning" in err and "2 of 3" in err and "u2" in err and "u3" in err
    counts = json.loads((out / "scores.json").read_text())["counts"]
    assert (counts["Del"], counts["Wrd"], counts["S.Err"]) == (4, 6, 2)


def test_empty_hypothesis_line(tmp_path):
    rc, out = run_score(tmp_path, ["u1 a b"], ["u1"])
    assert rc == 0
    assert json.loads((out / "scores.json").read_text())["Del"] == pytest.approx(100.0)


def test_unknown_hypothesis_id_is_an_error(tmp_path, capsys):
    rc, out = run_score(tmp_path, ["u1 a b"], ["u1 a b", "u9 c"])
    assert rc == 1
    err = capsys.readouterr().err
    assert "u9" in err and "hyp.txt" in err and "ref.txt" in err
    assert not (out / "scores.json").exists()


def test_duplicate_ids_and_empty_references_are_errors(tmp_path, capsys):
    assert run_score(tmp_path, ["u1 a", "u1 b"], ["u1 a"])[0] == 1
    assert "ref.txt:2" in capsys.readouterr().err
    assert run_score(tmp_path, [], ["u1 a"])[0] == 1
    assert run_score(tmp_path, [], [])[0] == 1
    assert "no utterances" in capsys.readouterr().err


# ---------------------------------------------------------------- RESULTS.md


def fake_scores(path, dataset, snt, wrd, err):
    path.mkdir(parents=True)
    values = {"dataset": dataset, "metric": path.name[6:], "Snt": snt, "Wrd": wrd,
              "Corr": 100.0 - err, "Sub": err / 2, "Del": err / 4, "Ins": err / 4, "Err": err,
              "S.Err": 2 * err}
    (path / "scores.json").write_text(json.dumps(values))


@pytest.fixture
def fake_exp(tmp_path):
    exp = tmp_path / "asr_train_sm"
    dec = exp / "decode_asr_model_valid.acc.ave"
    fake_scores(dec / "test" / "score_wer", "test", 130, 773, 8.94)
    fake_scores(dec / "dev" / "score_wer", "dev", 100, 500, 12.0)
    fake_scores(dec / "test" / "score_cer", "test", 130, 4000, 3.0)
    fake_scores(exp / "decode_other" / "test" / "score_ter", "test", 130, 900, 5.0)
    fake_scores(exp / "decode_stream" / "test" / "score_wer", "test", 130, 773, 20.0)
    state = {"encoder.w": torch.zeros(1000, 1001), "encoder.b": torch.zeros(1001),
             "decoder.w": torch.zeros(10, 20)}
    torch.save(state, exp / "valid.acc.ave.pth")
    torch.save({"model": state, "epoch": 3}, exp / "checkpoint.pth")
    (exp / "train_time.txt").write_text("3723.4\n")
    (exp / "stage_times.tsv").write_text("10\tASR collect stats\t30\n11\tASR training\t3600\n")
    return exp


def test_collect_results_sections(fake_exp, tmp_path):
    out = tmp_path / "RESULTS.md"
    assert collect.main(["--exp_dir", str(fake_exp), "--out", str(out), "--command", "./run.sh"]) == 0
    text = out.read_text()
    lines = text.splitlines()
    assert lines[1] == "# RESULTS" and "## Environments" in lines
    for key in ("- date:", "- python version:", "- espnet version:", "- pytorch version:",
                "- espnet_summarymixing version:", "- OS:", "- CPU:", "- GPU:"):
        assert any(line.startswith(key) for line in lines), key
    assert "## asr_train_sm" in lines
    assert "- command: `./run.sh`" in lines
    assert "- parameters (valid.acc.ave.pth): 1,002,201 in total, 1,002,001 in the encoder" in lines
    assert "- training time: 1h 02m 03s (3723 s)" in lines
    assert "|11|ASR training|3600|60.0|" in lines and "|total||3630|60.5|" in lines

    header = "|dataset|Snt|Wrd|Corr|Sub|Del|Ins|Err|S.Err|"
    assert lines.count(header) == 3  # one table per metric, whatever the number of decodings
    assert lines.count("### WER") == 1
    wer = lines.index("### WER")
    assert lines[wer + 2: wer + 8] == [
        header,
        "|---|---|---|---|---|---|---|---|---|",
        "|decode_asr_model_valid.acc.ave/dev|100|500|88.0|6.0|3.0|3.0|12.0|24.0|",
        "|decode_asr_model_valid.acc.ave/test|130|773|91.1|4.5|2.2|2.2|8.9|17.9|",
        "|decode_stream/test|130|773|80.0|10.0|5.0|5.0|20.0|40.0|",
        "",
    ]
    cer = lines.index("### CER")
    assert lines[cer + 4] == "|decode_asr_model_valid.acc.ave/test|130|4000|97.0|1.5|0.8|0.8|3.0|6.0|"
    ter = lines.index("### TER")
    assert ter > cer > wer
    assert lines[ter + 4] == "|decode_other/test|130|900|95.0|2.5|1.2|1.2|5.0|10.0|"
    # the same scores for programs, beside it
    rows = json.loads((tmp_path / "RESULTS.json").read_text())
    assert len(rows) == 5 and {r["metric"] for r in rows} == {"wer", "cer", "ter"}
    (test_wer,) = [r for r in rows if (r["decoding"], r["set"], r["metric"]) ==
                   ("decode_asr_model_valid.acc.ave", "test", "wer")]
    assert test_wer["experiment"] == "asr_train_sm" and test_wer["value"] == 8.94
    assert (test_wer["sentences"], test_wer["words"], test_wer["parameters"]) == (130, 773, 1002201)
    assert test_wer["training_seconds"] == 3723.4 and test_wer["date"] and "commit" in test_wer
    # deterministic apart from the date line
    again = tmp_path / "again.md"
    collect.main(["--exp_dir", str(fake_exp), "--out", str(again), "--command", "./run.sh"])
    strip = lambda t: [line for line in t.splitlines() if not line.startswith("- date:")]  # noqa: E731
    assert strip(again.read_text()) == strip(text)


def test_collect_results_newest_state_dict_and_run_command(fake_exp, tmp_path):
    (fake_exp / "valid.acc.ave.pth").unlink()
    torch.save({"encoder.x": torch.zeros(3), "ctc.y": torch.zeros(4)}, fake_exp / "5epoch.pth")
    (fake_exp / "run_command.txt").write_text("./run.sh --stage 11\n")
    out = tmp_path / "R.md"
    assert collect.main(["--exp_dir", str(fake_exp), "--out", str(out), "--title", "AN4"]) == 0
    lines = out.read_text().splitlines()
    assert "# AN4" in lines and "- command: `./run.sh --stage 11`" in lines
    assert "- parameters (5epoch.pth): 7 in total, 3 in the encoder" in lines


def test_collect_results_without_scores_is_an_error(tmp_path, capsys):
    exp = tmp_path / "asr_empty"
    (exp / "decode_x" / "test").mkdir(parents=True)
    assert collect.main(["--exp_dir", str(exp), "--out", str(tmp_path / "R.md")]) == 1
    err = capsys.readouterr().err
    assert str(exp) in err and "score_{wer,cer,ter}/scores.json" in err
    assert not (tmp_path / "R.md").exists()
