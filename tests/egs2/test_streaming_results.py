"""The AN4 recipe's local/streaming_results.py: the streaming table and its JSON from decoding folders
laid out as local/streaming.sh and local/onnx.sh --chunk_size write them (hand-made scores and logs)."""

import json
import sys

import pytest
import yaml

from recipe_tools import ROOT

sys.path.insert(0, str(ROOT / "egs2" / "an4" / "asr1" / "local"))
import streaming_results  # noqa: E402  (the recipe's script)


def _decoding(folder, wer, cer, log=None, log_name="stream_decode.log"):
    for metric, err in (("wer", wer), ("cer", cer)):
        (folder / f"score_{metric}").mkdir(parents=True)
        (folder / f"score_{metric}" / "scores.json").write_text(json.dumps({"Err": err}))
    if log:
        (folder / log_name).write_text(log)


def test_each_streamed_decoding_gets_its_latency_compute_and_ratio(tmp_path):
    exp = tmp_path / "asr_ahead"
    exp.mkdir()
    conf = {"conv_context": "chunk", "chunk_size_range": [2, 8], "full_context_prob": 0.5, "lookahead_frames": 2}
    (exp / "config.yaml").write_text(yaml.safe_dump({"encoder_conf": conf}))
    _decoding(exp / "decode_greedy_ctc_full_context" / "test", 10.0, 5.0, "x: 130 utterances, real-time factor 0.004")
    _decoding(exp / "decode_asr_asr_model_valid.acc.ave" / "test", 11.0, 5.5)
    for chunk, wer in ((16, 12.5), (4, 13.0)):
        _decoding(exp / f"decode_greedy_ctc_stream_chunk{chunk}" / "test", wer, 6.0,
                  f"x: 130 utterances (streaming, chunk {chunk}), real-time factor 0.030\n"
                  f"chunk {chunk}, look-ahead 2, algorithmic latency {40 * (chunk + 2) + 46} ms; "
                  "compute per chunk: median 4.5 ms, max 7.9 ms over 900 steps\n")
    _decoding(exp / "decode_greedy_ctc_onnx_stream_chunk4_1thread" / "test", 13.0, 6.0,
              "130 files, 50.0 s of audio in 1.00 s: real-time factor 0.0200\n"
              "chunk 4, look-ahead 2, algorithmic latency 286 ms; compute per chunk: median 2.1 ms, max 3.0 ms "
              "over 900 steps\n", log_name="decode.log")
    _decoding(exp / "decode_greedy_ctc_stream_chunk8" / "test", 14.0, 7.0)  # no log: not a finished decoding
    out = tmp_path / "RESULTS_streaming.md"
    assert streaming_results.main([str(exp), "--out", str(out)]) == 0
    model = json.loads(out.with_suffix(".json").read_text())["models"][0]
    assert model["full_context_greedy"] == [10.0, 5.0] and model["full_context_beam"] == [11.0, 5.5]
    rows = [(d["name"], d["chunk_frames"], d["latency_ms"], d["compute_median_ms"], d["wer_ratio"], d["threads"])
            for d in model["decodings"]]
    assert rows == [("decode_greedy_ctc_onnx_stream_chunk4_1thread", 4, 286, 2.1, 1.3, 1),
                    ("decode_greedy_ctc_stream_chunk4", 4, 286, 4.5, 1.3, None),
                    ("decode_greedy_ctc_stream_chunk16", 16, 766, 4.5, 1.25, None)]
    table = out.read_text()
    assert "| greedy CTC, streamed | 4 (160 ms) | 286 ms | 4.5 / 7.9 ms | 0.03 | 13.0 / 6.0 | 1.3 |" in table
    assert "onnxruntime 1 thread(s) | 4 (160 ms) | 286 ms | 2.1 / 3.0 ms | 0.02 |" in table


def test_a_folder_that_is_not_an_experiment_is_named(tmp_path, capsys):
    with pytest.raises(SystemExit):
        streaming_results.main([str(tmp_path)])
    assert f"{tmp_path}: no config.yaml" in capsys.readouterr().err
