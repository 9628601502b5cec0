"""The user documentation matches the repository: README.md and docs/*.md link only to files (and
headings) that exist, show only commands and flags the commands' ``--help`` lists, and the README stays
short enough to read in five minutes."""

from __future__ import annotations

import configparser
import csv
import functools
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

__all__: list[str] = []

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 250

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
INLINE_CODE = re.compile(r"`([^`\n]+)`")
COMMAND = re.compile(r"(?:python -m espnet_summarymixing\.([A-Za-z_]+)|\bsummarymixing-([a-z][a-z-]*))")
FLAG = re.compile(r"(?<![\w-])(--[A-Za-z][\w-]*)")
# where a shell command ends: a comment, a pipe, a list operator
COMMAND_END = re.compile(r"\s#|\||&&|;")


def console_scripts() -> dict[str, str]:
    """{summarymixing-<name>: module run by ``python -m``} from setup.cfg's console entry points."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    scripts = {}
    for line in config.get("options.entry_points", "console_scripts").strip().splitlines():
        name, target = (part.strip() for part in line.split("=", 1))
        module = target.split(":")[0]
        # a package's ``cli`` module is run as ``python -m <package>``
        scripts[name] = module[: -len(".cli")] if module.endswith(".cli") else module
    return scripts


def commands() -> dict[str, str]:
    """{command as written after ``espnet_summarymixing.``: module} for every command."""
    return {module.split(".", 1)[1]: module for module in console_scripts().values()}


@functools.lru_cache(maxsize=None)
def help_text(module: str) -> str:
    """The ``--help`` output of ``python -m <module>``, run once per module."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"python -m {module} --help failed:\n{done.stderr}"
    return done.stdout


def slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[`*_\[\]()]", lambda m: "_" if m.group(0) == "_" else "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors of a Markdown page's headings (outside code blocks), duplicates numbered as GitHub does."""
    seen: dict[str, int] = {}
    result = set()
    for line in FENCE.sub("", page.read_text()).splitlines():
        match = re.match(r"#{1,6} (.+)", line)
        if not match:
            continue
        base = slug(match.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def links(page: Path) -> list[str]:
    """The link targets of a page, code blocks and inline code left out."""
    text = INLINE_CODE.sub("", FENCE.sub("", page.read_text()))
    return LINK.findall(text)


def broken_links(page: Path) -> list[str]:
    """Relative links of ``page`` whose file or heading does not exist, each with the reason."""
    broken = []
    for target in links(page):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(f"{target}: no such file {resolved}")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target}: no heading with anchor #{anchor} in {resolved.name}")
    return broken


def command_lines(text: str) -> list[str]:
    """Shell command text shown in a page: each line of a code block (backslash continuations joined)
    and each inline code span."""
    shown = []
    for block in FENCE.findall(text):
        body = block.split("\n", 1)[1].rsplit("```", 1)[0]
        shown += body.replace("\\\n", " ").splitlines()
    shown += INLINE_CODE.findall(FENCE.sub("", text))
    return shown


def shown_commands(page: Path) -> list[tuple[str, str, list[str]]]:
    """(command as written, module, flags written after it) for every command a page shows."""
    scripts = console_scripts()
    modules = commands()
    found = []
    for line in command_lines(page.read_text()):
        matches = list(COMMAND.finditer(line))
        for i, match in enumerate(matches):
            end = matches[i + 1].start() if i + 1 < len(matches) else len(line)
            rest = line[match.end():end]
            stop = COMMAND_END.search(rest)
            rest = rest[: stop.start()] if stop else rest
            if match.group(1):
                module = modules.get(match.group(1), "")
            else:
                module = scripts.get(match.group(0), "")
            found.append((match.group(0), module, FLAG.findall(rest)))
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    """Every relative link of README.md and docs/*.md names an existing file, and an anchor a heading."""
    assert broken_links(page) == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_command_and_flag_shown_exists(page):
    """Every ``python -m espnet_summarymixing.<command>`` / ``summarymixing-<command>`` a page shows is
    a command, and each flag written after it is in that command's ``--help``."""
    problems = []
    for written, module, flags in shown_commands(page):
        if not module:
            problems.append(f"{written}: no such command")
            continue
        listed = set(FLAG.findall(help_text(module)))
        problems += [f"{written} {flag}: not in its --help" for flag in flags if flag not in listed]
    assert problems == []


def test_readme_is_short():
    """The README stays a five-minute read: at most 250 lines; detail lives under docs/."""
    count = len((ROOT / "README.md").read_text().splitlines())
    assert count <= README_MAX_LINES, f"README.md has {count} lines, at most {README_MAX_LINES} allowed"


def test_the_checks_can_fail(tmp_path):
    """The link and command checks find a broken link, a missing heading, an unknown command and flag."""
    page = tmp_path / "page.md"
    page.write_text("# Title\n[a](missing.md) [b](#title) [c](#nowhere)\n"
                    "```bash\npython -m espnet_summarymixing.nosuch --x\n"
                    "python -m espnet_summarymixing.pack --model m --no_such_flag  # --ignored\n```\n")
    assert [b.split(":")[0] for b in broken_links(page)] == ["missing.md", "#nowhere"]
    shown = shown_commands(page)
    assert shown[0][1] == "" and shown[1][2] == ["--model", "--no_such_flag"]


# ----------------------------------------------------------------------------- the results table


def _section_errors(results_md: Path) -> dict:
    """{experiment section: {(metric, decoding/dataset): Err}} of the tables collect_results.py generated
    in a recipe's RESULTS.md."""
    found, section, metric = {}, None, None
    for line in results_md.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
        elif line.startswith("### "):
            metric = line[4:].strip().lower()
        elif section and line.startswith("|decode") and line.count("|") == 10:
            cells = line.strip("|").split("|")
            found.setdefault(section, {})[(metric, cells[0])] = float(cells[7])
    return found


def _readme_rows() -> dict:
    """{(corpus, encoder): cells} of the README's results table."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text[text.index("## Results"):].split("\n## ", 1)[0]
    return {tuple(c.strip() for c in line.strip("|").split("|")[:2]): [c.strip() for c in line.strip("|").split("|")]
            for line in table.splitlines() if line.startswith("| AN4") or line.startswith("| FSDD")}


AN4_ROWS = {  # README row -> the experiment of egs2/an4/asr1/RESULTS.md it reports
    "SummaryMixing Conformer": "asr_train_asr_summarymixing_raw_en_char_sp",
    "ESPnet Conformer (rel-pos self-attention)": "asr_train_asr_conformer_e6_size144_mlp576_heads4_k15_raw_en_char_sp",
    "SummaryMixing Conformer, streaming, decoded offline":
        "asr_train_asr_summarymixing_conformer_e6_size144_mlp576_k15_chunk1-16_streaming",
}


def test_the_readme_results_are_the_recipes_results():
    """Every AN4 figure of the README's results table is the test WER / CER of the recipe's RESULTS.md
    (the tables collect_results.py wrote there), and every FSDD one the mean over the held-out speakers of
    the FSDD RESULTS.md (local/fold_results.py), seeds 0 and 1."""
    rows = _readme_rows()
    errors = _section_errors(ROOT / "egs2" / "an4" / "asr1" / "RESULTS.md")
    decode = "decode_asr_asr_model_valid.acc.ave/test"
    for encoder, section in AN4_ROWS.items():
        shown = rows[("AN4", encoder)][-1].strip("*")
        assert shown == f"{errors[section][('wer', decode)]:.1f} / {errors[section][('cer', decode)]:.1f}", encoder
    assert len([key for key in rows if key[0] == "AN4"]) == len(AN4_ROWS)
    mean = {}  # experiment -> mean test accuracy over the held-out speakers (local/fold_results.py's table)
    text = (ROOT / "egs2" / "fsdd" / "cls1" / "RESULTS.md").read_text(encoding="utf-8")
    table = text[text.index("## Test accuracy (%) per held-out speaker"):].split("\n## ", 1)[0]
    for line in table.splitlines():
        cells = line.strip("|").split("|")
        if line.startswith("|cls_train"):
            mean[cells[0]] = float(next(c for c in cells if c.startswith("**")).strip("*"))
    fsdd = {encoder: cells for (corpus, encoder), cells in rows.items() if corpus == "FSDD"}
    assert len(fsdd) == 2
    for encoder, cells in fsdd.items():
        stem = "cls_train_cls_summarymixing" if encoder.startswith("SummaryMixing") else \
            "cls_train_cls_conformer_e4_size96_mlp384_heads4_k15"
        assert cells[-1].strip("*") == f"{mean[stem + '_sp']:.1f} / {mean[stem + '_seed1_sp']:.1f}", encoder


# ----------------------------------------------------------------------------- the speed table

HEADLINE = ROOT / "docs" / "benchmarks" / "cpu_all_families.csv"


def _speed_rows(page: Path) -> list:
    """The rows of the first table under a page's headline benchmark heading: [[cells], ...]."""
    text = page.read_text(encoding="utf-8")
    start = text.index("| length | train step |")
    rows = []
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip().strip("*") for c in line.strip("|").split("|")])
    return rows


def _expected_speed_rows() -> list:
    """The headline table, computed from the benchmark's CSV: SummaryMixing Conformer against ESPnet's
    rel-pos and SDPA self-attention Conformers of the same run, at every length measured."""
    with open(HEADLINE, newline="") as f:
        rows = list(csv.DictReader(f))
    by = {(r["system"], float(r["seconds"])): r for r in rows if r["status"] == "ok"}
    out = []
    for seconds in sorted({s for (system, s) in by if system == "conformer_summarymixing"}):
        ours, rel, sdpa = (by[(name, seconds)] for name in
                           ("conformer_summarymixing", "conformer_selfattn", "conformer_selfattn_sdpa"))
        train, memory, rtf = (float(ours[k]) for k in ("train_step_s", "peak_memory_mb", "rtf"))
        out.append([f"{seconds:g} s", f"{train:.3f} s", f"{train / float(rel['train_step_s']):.2f}",
                    f"{train / float(sdpa['train_step_s']):.2f}", f"{memory:.0f} MB",
                    f"{memory / float(rel['peak_memory_mb']):.2f}", f"{rtf:.4f}", f"{rtf / float(rel['rtf']):.2f}"])
    return out


@pytest.mark.parametrize("page", ["README.md", "docs/speed_and_memory.md"])
def test_the_speed_table_is_the_benchmarks_csv(page):
    assert _speed_rows(ROOT / page) == _expected_speed_rows()
