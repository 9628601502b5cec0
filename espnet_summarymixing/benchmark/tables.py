"""The speed and memory results as they are written: the CSV columns, the ratios against each
family's baseline, the Markdown table, the targets met or missed, and the plot.
"""

from pathlib import Path
from typing import List, Optional

from espnet_summarymixing.benchmark.systems import SYSTEMS

__all__ = ["FIELDS", "add_ratios", "format_table", "target_report", "plot"]

FIELDS = [
    "device", "family", "system", "role", "seconds", "frames", "batch_size", "params", "status",
    "train_step_s", "train_ratio", "peak_memory_mb", "memory_ratio", "rtf", "rtf_ratio",
    "train_ms_per_frame", "train_step_median_s", "rtf_median", "sdpa_train_ratio", "sdpa_memory_ratio",
    "ops_per_step", "kernels_per_step", "dtype", "compiled",
]
_STYLES = {"baseline": "-o", "baseline_sdpa": "--o", "ours": "-s", "lower_bound": ":^", "alternative": "--d",
           "variant": "-.x"}


def _ratio(value, base) -> Optional[float]:
    if value in (None, "") or base in (None, "", 0):
        return None
    return value / base


def add_ratios(rows: List[dict]) -> None:
    """Fill the ratio columns against the family's baseline at the same length."""
    base = {(r["family"], r["seconds"]): r for r in rows if r["role"] == "baseline" and r["status"] == "ok"}
    sdpa = {(r["family"], r["seconds"]): r for r in rows if r["role"] == "baseline_sdpa" and r["status"] == "ok"}
    for r in rows:
        b = base.get((r["family"], r["seconds"]), {})
        q = sdpa.get((r["family"], r["seconds"]), {})
        r["sdpa_train_ratio"] = _ratio(r.get("train_step_s"), q.get("train_step_s"))
        r["sdpa_memory_ratio"] = _ratio(r.get("peak_memory_mb"), q.get("peak_memory_mb"))
        r["train_ratio"] = _ratio(r.get("train_step_s"), b.get("train_step_s"))
        r["memory_ratio"] = _ratio(r.get("peak_memory_mb"), b.get("peak_memory_mb"))
        r["rtf_ratio"] = _ratio(r.get("rtf"), b.get("rtf"))
        if r.get("train_step_s"):
            r["train_ms_per_frame"] = 1000 * r["train_step_s"] / (r["frames"] * r["batch_size"])


def _fmt(value, spec="{:.3f}") -> str:
    return "-" if value in (None, "") else spec.format(value)


def format_table(rows: List[dict]) -> str:
    """Markdown table of every measurement, with ratios against the baseline."""
    lines = ["| family | system | length (s) | batch | params (M) | train step (s), min / median | ×base | ×sdpa "
             "| peak mem (MB) | ×base | ×sdpa | RTF | ×base | ATen ops / kernels per step | status |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        kernels = f" / {r['kernels_per_step']}" if r.get("kernels_per_step") not in (None, "") else ""
        lines.append(
            f"| {r['family']} | {r['system']} | {r['seconds']:g} | {r.get('batch_size', '-')} "
            f"| {_fmt(r['params'] / 1e6 if r.get('params') else None, '{:.2f}')} "
            f"| {_fmt(r.get('train_step_s'))} / {_fmt(r.get('train_step_median_s'))} "
            f"| {_fmt(r.get('train_ratio'), '{:.2f}')} | {_fmt(r.get('sdpa_train_ratio'), '{:.2f}')} "
            f"| {_fmt(r.get('peak_memory_mb'), '{:.0f}')} | {_fmt(r.get('memory_ratio'), '{:.2f}')} "
            f"| {_fmt(r.get('sdpa_memory_ratio'), '{:.2f}')} "
            f"| {_fmt(r.get('rtf'), '{:.4f}')} | {_fmt(r.get('rtf_ratio'), '{:.2f}')} "
            f"| {_fmt(r.get('ops_per_step'), '{:,}')}{kernels} | {r['status']} |"
        )
    return "\n".join(lines)


def target_report(rows: List[dict]) -> List[str]:
    """The targets of the SummaryMixing Conformer (issue 4) that this run's lengths allow."""
    get = {(r["system"], r["seconds"]): r for r in rows if r["status"] == "ok"}
    out = []

    def check(label, value, limit):
        if value is not None:
            out.append(f"{label}: {value:.2f} (target <= {limit}) {'met' if value <= limit else 'MISSED'}")

    ours = "conformer_summarymixing"
    for seconds, limit in ((20, 0.75), (60, 0.3)):
        check(f"train step vs self-attention at {seconds} s", get.get((ours, seconds), {}).get("train_ratio"), limit)
    for seconds, limit in ((60, 0.6), (120, 0.35)):
        check(f"peak memory vs self-attention at {seconds} s", get.get((ours, seconds), {}).get("memory_ratio"), limit)
    if any(str(r.get("device", "")).startswith("cuda") for r in rows):  # the GPU targets (issue 16)
        check("train step vs SDPA MHSA at 20 s", get.get((ours, 20), {}).get("sdpa_train_ratio"), 0.65)
        check("peak memory vs SDPA MHSA at 10 s", get.get((ours, 10), {}).get("sdpa_memory_ratio"), 0.6)
    short, long_ = get.get((ours, 5)), get.get((ours, 120))
    if short and long_:
        check("time per frame at 120 s vs 5 s", long_["train_ms_per_frame"] / short["train_ms_per_frame"], 1.15)
    for (system, seconds), r in sorted(get.items(), key=lambda kv: kv[0][1]):
        low = get.get(("conformer_no_mixing", seconds))
        if system == ours and low:
            check(f"train step vs no-mixing lower bound at {seconds:g} s", r["train_step_s"] / low["train_step_s"], 1.1)
    return out


def plot(rows: List[dict], path: Path) -> None:
    """Time, memory and RTF against length, one panel each, one line per system (log scale)."""
    # matplotlib (a second or more to import) loads only when a plot is drawn: not for --no-plot,
    # the other tools, or a worker process.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("train_step_s", "training step (s)"), ("peak_memory_mb", "peak memory (MB)"), ("rtf", "inference RTF")]
    families = list(dict.fromkeys(r["family"] for r in rows))
    fig, axes = plt.subplots(len(families), 3, figsize=(15, 4 * len(families)), squeeze=False)
    for i, family in enumerate(families):
        for j, (key, label) in enumerate(panels):
            ax = axes[i][j]
            for system in [s for s in SYSTEMS if SYSTEMS[s][0] == family]:
                pts = [(r["seconds"], r[key]) for r in rows
                       if r["system"] == system and r["status"] == "ok" and r.get(key)]
                if pts:
                    xs, ys = zip(*sorted(pts))
                    ax.plot(xs, ys, _STYLES[SYSTEMS[system][1]], label=system)
                for seconds in (r["seconds"] for r in rows if r["system"] == system and r["status"] != "ok"):
                    ax.axvline(seconds, color="red", alpha=0.2)
            ax.set_xlabel("utterance length (s)")
            ax.set_ylabel(label)
            ax.set_yscale("log")
            ax.grid(True, which="both", alpha=0.3)
            ax.set_title(f"{family}: {label}")
            if j == 0:
                ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
