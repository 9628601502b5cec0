"""The command layer on its own: one list rule, outputs checked before any work, old flag names that
still work and warn, one "too short" rule, and no torch at import."""

import subprocess
import sys
from pathlib import Path

import pytest

from espnet_summarymixing.cli.inputs import Entry, gather, read_list
from espnet_summarymixing.cli.loop import too_short
from espnet_summarymixing.cli.outputs import check_file, check_folder, unique_targets, write_text


def test_a_path_with_spaces_is_one_path_and_a_key_takes_the_rest_of_the_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "aud").mkdir()
    (tmp_path / "aud" / "two words.wav").write_bytes(b"")
    (tmp_path / "words.wav").write_bytes(b"")  # what the old reader silently took for 'aud/two words.wav'
    listed = tmp_path / "clips.txt"
    listed.write_text("aud/two words.wav\n\n  utt1   aud/two words.wav  \nutt2 missing file.wav\nalone.wav\n"
                      "piped sox a.wav -t wav - |\n")
    entries, bad = read_list(str(listed))
    assert entries == [Entry("aud/two words.wav", "aud/two words.wav", f"{listed}:1"),
                       Entry("utt1", "aud/two words.wav", f"{listed}:3"),
                       Entry("utt2", "missing file.wav", f"{listed}:4"),
                       Entry("alone.wav", "alone.wav", f"{listed}:5")]
    assert bad == [f"{listed}:6: a command (ending in '|'), not an audio file: 'piped sox a.wav -t wav - |'"]
    both, _ = gather(["first.wav"], str(listed))
    assert both[0] == Entry("first.wav", "first.wav") and both[1:] == entries
    with pytest.raises(FileNotFoundError, match="--list .*nope.txt: no such file"):
        read_list(str(tmp_path / "nope.txt"))


def test_classify_reads_the_list_by_that_rule(tmp_path, monkeypatch, capsys):
    """The bug the rule fixes: 'aud/two words.wav' was classified as './words.wav'."""
    from espnet_summarymixing import classify

    monkeypatch.chdir(tmp_path)
    (tmp_path / "aud").mkdir()
    (tmp_path / "aud" / "two words.wav").write_bytes(b"")
    (tmp_path / "clips.txt").write_text("aud/two words.wav\n")
    seen = []
    monkeypatch.setattr(classify, "_classify", lambda args, entries, bad: seen.extend(entries) or 0)
    assert classify.main(["--model", "m.zip", "--list", "clips.txt"]) == 0
    assert [e.path for e in seen] == ["aud/two words.wav"]


def test_output_paths_are_checked_before_any_work(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="a folder; give a file name"):
        check_file(str(tmp_path), "--output")
    with pytest.raises(ValueError, match="is a file, so no folder can be made under it"):
        check_file(str(tmp_path / "file" / "sub" / "hyp.txt"), "--output")
    with pytest.raises(ValueError, match="--output_dir .*file: a file, not a folder"):
        check_folder(str(tmp_path / "file"), "--output_dir")
    assert check_folder(str(tmp_path / "new" / "deeper"), "--output_dir") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()  # checked, not made
    with pytest.raises(ValueError, match="a/x.wav and b/x.wav would both be written to x.wav.srt"):
        unique_targets([("a/x.wav", "x.wav.srt"), ("c/y.wav", "y.wav.srt"), ("b/x.wav", "x.wav.srt")], "--output_dir o")
    write_text(tmp_path / "out" / "hyp.txt", "u1 A\n")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["hyp.txt"]  # no .partial left


@pytest.mark.parametrize("argv, message", [
    (["--output_format", "srt", "--output_dir", "{tmp}/subs", "{tmp}/a/x.wav", "{tmp}/b/x.wav"],
     "error: --output_dir {tmp}/subs: {tmp}/a/x.wav and {tmp}/b/x.wav would both be written to x.wav.srt; nothing was run"),
    (["--output", "{tmp}", "{tmp}/a/x.wav"], "error: --output {tmp}: a folder; give a file name"),
    (["--output", "{tmp}/hyp", "--list", "{tmp}/dup.scp"],
     "transcribe: error: {tmp}/dup.scp:2: {tmp}/b/x.wav: its key 'u1' is also that of {tmp}/dup.scp:1: {tmp}/a/x.wav: "
     "give each input its own key; nothing was run"),
    (["--output", "{tmp}/dup2.scp", "--list", "{tmp}/dup2.scp"],
     "error: --output {tmp}/dup2.scp: is --list ({tmp}/dup2.scp); writing it would destroy it"),
    (["--output", "{tmp}/a/x.wav", "{tmp}/a/x.wav"],
     "error: --output {tmp}/a/x.wav: is an input ({tmp}/a/x.wav); writing it would destroy it"),
    (["--output", "{tmp}/hyp", "--list", "{tmp}/latin1.scp"],
     "transcribe: error: --list {tmp}/latin1.scp:2: not UTF-8 text (invalid continuation byte): expected '<path>' "
     "or '<key> <path>' lines"),
    (["--max_subtitle_chars", "0", "{tmp}/a/x.wav"], "transcribe: error: --max_subtitle_chars 0: must be at least 1"),
    (["--subtitle_pause", "-1", "{tmp}/a/x.wav"], "transcribe: error: --subtitle_pause -1.0: must be a finite number, "
                                                  "0 or more"),
    (["--max_segment_seconds", "inf", "{tmp}/a/x.wav"], "transcribe: error: --max_segment_seconds inf: must be more "
                                                        "than 2 seconds, at most an hour"),
])
def test_transcribe_refuses_outputs_before_loading_the_model(argv, message, tmp_path, capsys):
    """The model does not even exist: the outputs are refused first, in one line."""
    from espnet_summarymixing.transcribe import main

    (tmp_path / "dup.scp").write_text(f"u1 {tmp_path}/a/x.wav\nu1 {tmp_path}/b/x.wav\n")
    (tmp_path / "dup2.scp").write_text(f"u1 {tmp_path}/a/x.wav\n")
    (tmp_path / "latin1.scp").write_bytes(f"u1 {tmp_path}/a/x.wav\nu2 caf\xe9.wav\n".encode("latin-1"))
    try:
        status = main(["--model", str(tmp_path / "missing.zip"), *(a.format(tmp=tmp_path) for a in argv)])
    except SystemExit as exit:  # argparse's usage error: a usage line, then the message
        status = exit.code
    *usage, last = capsys.readouterr().err.splitlines()
    message = message.format(tmp=tmp_path)  # argparse's start with the program's name, "<prog>: error: ..."
    assert status == 2 and last[last.index("error: "):] == message[message.index("error: "):]
    assert all(line.startswith(("usage:", " ")) for line in usage), usage  # argparse's usage lines only
    assert (tmp_path / "dup2.scp").read_text().startswith("u1")  # never truncated


@pytest.mark.parametrize("command, old, new, value, expected", [
    ("onnx_transcribe", "--model_dir", "model", "folder", "folder"),
    ("export", "--out", "output_dir", "onnx", "onnx"),
    ("pack", "--outpath", "output", "m.zip", "m.zip"),
    ("stream_decode", "--block_ms", "block_seconds", "250", 0.25),
])
def test_old_flag_names_still_work_and_warn(command, old, new, value, expected, capsys):
    import importlib

    p = importlib.import_module(f"espnet_summarymixing.{command}").parser()
    args = p.parse_args([old, value])
    assert getattr(args, new) == expected
    err = capsys.readouterr().err
    assert err.startswith(f"warning: {old}") and f"use --{new}" in err


def test_one_too_short_rule():
    from espnet_summarymixing.frames.framing import TooShortError

    class TooShortUttError(Exception):  # ESPnet's, by name
        pass

    assert too_short(TooShortError("the audio is too short: 100 samples"))
    assert too_short(TooShortUttError("has 3 frames and is too short for subsampling"))
    assert not too_short(ValueError("a.wav: not an audio file libsndfile can read"))
    # torch's STFT on fewer samples than half its window (a clip of 1-256 samples)
    assert too_short(RuntimeError("Argument #4: Padding size should be less than the corresponding input dimension, "
                                  "but got: padding (256, 256) at dimension 1 of input [1, 100]"))


@pytest.mark.parametrize("command, argv, message", [
    ("export", ["--tolerance", "nan"], "--tolerance nan: must be a positive finite number"),
    ("export", ["--chunk_size", "4"], "--chunk_size 4 is for the streaming graph: add --streaming"),
    ("onnx_transcribe", ["--threads", "3000000000", "a.wav"], "--threads 3000000000: must be from 1 to 1024"),
    ("onnx_transcribe", ["--block_seconds", "inf", "a.wav"], "--block_seconds inf: must be positive, at most an hour"),
    ("upload", ["--repo", "../x"], "--repo ../x: expected a Hugging Face id, user/name"),
    ("upload", ["--repo", "me/a..b"], "--repo me/a..b: expected a Hugging Face id"),
])
def test_values_are_checked_before_anything_is_loaded(command, argv, message, tmp_path, capsys):
    import importlib

    defaults = {"export": ["--output_dir", str(tmp_path / "o")], "onnx_transcribe": [], "upload": []}
    with pytest.raises(SystemExit) as exit:
        importlib.import_module(f"espnet_summarymixing.{command}").main(
            ["--model", str(tmp_path / "missing"), *defaults[command], *argv])
    assert exit.value.code == 2 and message in capsys.readouterr().err


def test_the_command_layer_and_the_onnx_command_import_no_torch():
    code = ("import sys\nimport espnet_summarymixing.cli.models, espnet_summarymixing.cli.quiet, "
            "espnet_summarymixing.onnx_transcribe, espnet_summarymixing.loading.kinds\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'espnet', 'espnet2', 'nltk')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stderr


def test_nltk_downloads_are_quiet_in_a_command_but_nltk_still_answers():
    """The patch is what silences ESPnet's imports: nltk.download of a missing corpus prints nothing."""
    code = ("from espnet_summarymixing.cli.quiet import quiet_nltk_downloads\nquiet_nltk_downloads()\n"
            "import nltk\nprint(nltk.download('no_such_corpus_xyz'))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False" and "nltk_data" not in proc.stderr


def test_transcribe_decodes_as_the_packed_decode_config_says_and_short_files_whole(tmp_path, capsys):
    """The recipe's decoding settings travel in the zip (pack --inference_config): transcribe uses them
    unless an option overrides them, decodes a short file whole by joint CTC/attention (as the recipe
    does) and a long one by CTC beam search in pieces; --verbose says which and why."""
    import zipfile

    import numpy as np
    import soundfile

    from espnet_summarymixing.transcribe import main

    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "pre_layout_model" / "model.zip"
    model = tmp_path / "model.zip"
    with zipfile.ZipFile(fixture) as src, zipfile.ZipFile(model, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, src.read(name))
        dst.writestr("exp/asr_train/decode_asr.yaml", "beam_size: 3\nctc_weight: 0.6\nmaxlenratio: 0.0\n")
    noise = np.random.default_rng(0).normal(0, 0.1, 16000 * 4).astype(np.float32)
    soundfile.write(tmp_path / "short.wav", noise[:16000], 16000)
    soundfile.write(tmp_path / "long.wav", noise, 16000)
    status = main(["--model", str(model), "--cachedir", str(tmp_path / "cache"), "--verbose", "--ctc_weight", "0.5",
                   "--max_segment_seconds", "2.5", str(tmp_path / "short.wav"), str(tmp_path / "long.wav")])
    err = capsys.readouterr().err
    assert status == 0, err
    assert "files of at most 2.5 s by joint CTC/attention beam search" in err
    assert "beam_size 3 (packed decode config), ctc_weight 0.5 (option), penalty 0 (default)" in err
    assert "short.wav: note: 1.0 s, decoded joint CTC/attention, whole" in err
    assert "long.wav: note: 4.0 s, decoded CTC prefix beam search, in pieces cut at its pauses (segmented)" in err
    # timed output needs CTC: every file then by CTC prefix beam search, a short one whole
    status = main(["--model", str(model), "--cachedir", str(tmp_path / "cache"), "--verbose", "--output_format",
                   "json", "--output", str(tmp_path / "short.json"), str(tmp_path / "short.wav")])
    err = capsys.readouterr().err
    assert status == 0 and "decoding: CTC prefix beam search (beam_size 3 (packed decode config)" in err
    assert "short.wav: note: 1.0 s, decoded CTC prefix beam search, whole (one pass)" in err
