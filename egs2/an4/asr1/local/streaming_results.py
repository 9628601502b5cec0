#!/usr/bin/env python3
"""The streaming table of one or more models decoded by local/streaming.sh (and local/onnx.sh --chunk_size),
as Markdown and JSON: per model, its training options, the full-context decodings, and each streamed
decoding with its chunk, look-ahead, algorithmic latency, compute per chunk, real-time factor, WER / CER
and the WER ratio to the same model's full-context greedy CTC.

    python local/streaming_results.py exp/asr_..._chunk2-8_streaming exp/asr_..._ahead2_streaming \\
        --out RESULTS_streaming.md        # and RESULTS_streaming.json beside it
"""

import argparse
import json
import re
import sys
from pathlib import Path

import yaml

STREAMED = re.compile(r"chunk (\d+), look-ahead (\d+), algorithmic latency (\d+) ms"
                      r"(?:; compute per chunk: median ([\d.]+) ms, max ([\d.]+) ms)?")
RTF = re.compile(r"real-time factor ([\d.]+)")


def _scores(folder: Path):
    """(WER, CER) of a scored decoding folder, or None when it was not scored."""
    out = []
    for metric in ("wer", "cer"):
        path = folder / f"score_{metric}" / "scores.json"
        if not path.is_file():
            return None
        out.append(round(json.loads(path.read_text())["Err"], 1))
    return tuple(out)


def _log(folder: Path) -> str:
    for name in ("stream_decode.log", "decode.log"):
        if (folder / name).is_file():
            return (folder / name).read_text()
    return ""


def model_rows(exp: Path, test_set: str) -> dict:
    conf = yaml.safe_load((exp / "config.yaml").read_text())["encoder_conf"]
    entry = {
        "exp": str(exp), "chunk_size_range": conf.get("chunk_size_range"),
        "full_context_prob": conf.get("full_context_prob"), "lookahead_frames": conf.get("lookahead_frames", 0),
        "conv_context": conf.get("conv_context"), "decodings": [],
    }
    full = _scores(exp / "decode_greedy_ctc_full_context" / test_set)
    entry["full_context_greedy"] = full
    beams = sorted(exp.glob(f"decode_asr*/{test_set}"))
    entry["full_context_beam"] = _scores(beams[0]) if beams else None
    for folder in sorted(exp.glob(f"decode_greedy_ctc_*stream_chunk*/{test_set}"),
                         key=lambda f: (int(re.search(r"chunk(\d+)", str(f)).group(1)), str(f))):
        scores, log = _scores(folder), _log(folder)
        match, rtf = STREAMED.search(log), RTF.findall(log)
        if scores is None or match is None:
            continue
        chunk, lookahead, latency, median, worst = match.groups()
        name = folder.parent.name
        runtime = "onnxruntime" if "onnx" in name else "PyTorch"
        threads = re.search(r"_(\d+)threads?$", name)
        entry["decodings"].append({
            "name": name, "runtime": runtime, "threads": int(threads.group(1)) if threads else None,
            "chunk_frames": int(chunk), "chunk_ms": 40 * int(chunk), "lookahead_frames": int(lookahead),
            "latency_ms": int(latency), "compute_median_ms": float(median) if median else None,
            "compute_max_ms": float(worst) if worst else None, "rtf": float(rtf[-1]) if rtf else None,
            "wer": scores[0], "cer": scores[1],
            "wer_ratio": round(scores[0] / full[0], 2) if full and full[0] else None,
        })
    return entry


def markdown(models) -> str:
    lines = ["| model (chunks in training, full-context share, look-ahead) | decoding | chunk | algorithmic latency | "
             "compute per chunk (median / max) | RTF | WER / CER | WER / full context |",
             "|---|---|---|---|---|---|---|---|"]
    for m in models:
        name = (f"`{Path(m['exp']).name}` ({m['chunk_size_range'][0]}-{m['chunk_size_range'][1]} frames, "
                f"{m['full_context_prob']}, {m['lookahead_frames']})")
        if m["full_context_beam"]:
            lines.append(f"| {name} | CTC/attention beam search, whole utterance | - | - | - | - | "
                         f"{m['full_context_beam'][0]} / {m['full_context_beam'][1]} | - |")
        if m["full_context_greedy"]:
            lines.append(f"| {name} | greedy CTC, whole utterance | - | - | - | - | "
                         f"{m['full_context_greedy'][0]} / {m['full_context_greedy'][1]} | 1.00 |")
        for d in m["decodings"]:
            how = "greedy CTC, streamed" + (f", onnxruntime {d['threads']} thread(s)" if d["runtime"] != "PyTorch" else "")
            compute = f"{d['compute_median_ms']} / {d['compute_max_ms']} ms" if d["compute_median_ms"] is not None else "-"
            lines.append(f"| {name} | {how} | {d['chunk_frames']} ({d['chunk_ms']} ms) | {d['latency_ms']} ms | "
                         f"{compute} | {d['rtf'] if d['rtf'] is not None else '-'} | {d['wer']} / {d['cer']} | "
                         f"{d['wer_ratio']} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("exps", nargs="+", help="experiment folders decoded by local/streaming.sh")
    p.add_argument("--test_set", default="test")
    p.add_argument("--out", help="Markdown file to write (and a .json beside it); default: print")
    args = p.parse_args(argv)
    models = []
    for exp in map(Path, args.exps):
        if not (exp / "config.yaml").is_file():
            p.error(f"{exp}: no config.yaml (not a trained experiment folder)")
        models.append(model_rows(exp, args.test_set))
    text = markdown(models)
    if args.out:
        out = Path(args.out)
        out.write_text(text)
        out.with_suffix(".json").write_text(json.dumps({"test_set": args.test_set, "models": models}, indent=1) + "\n")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
