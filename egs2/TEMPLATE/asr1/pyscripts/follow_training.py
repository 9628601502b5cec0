#!/usr/bin/env python3
"""Show an ESPnet training's progress while it runs: one line per finished epoch.

    follow_training.py exp/asr_x/train.log --pid 1234 --max_epoch 40

Reads the trainer's ``<n>epoch results:`` lines from the log as they appear and prints, for each
epoch, the elapsed time, the training loss and the validation figures ESPnet reports (accuracy,
CER of the CTC and attention branches), until process ``--pid`` ends. Prints nothing else: the log
keeps the details. On SIGTERM it reads the log a last time and exits, so the caller can stop it as
soon as the training returns without losing the last epoch's line.
"""

import argparse
import os
import re
import signal
import sys
import time
from pathlib import Path

RESULTS = re.compile(r"(\d+)epoch results: (.*)")
FIELD = re.compile(r"(\w+)=([-+.\deE]+|nan|inf)")


def duration(results: str):
    """Seconds of the first ``time=`` of a results line: ESPnet writes it like "1 minute and 12.45 seconds"."""
    match = re.search(r"\btime=((?:[\d.]+ (?:hour|minute|second)s?(?:, | and )?)+)", results)
    if match is None:
        return None
    units = {"hour": 3600, "minute": 60, "second": 1}
    return sum(float(n) * units[u] for n, u in re.findall(r"([\d.]+) (hour|minute|second)s?", match.group(1)))


def summarize(line: str, max_epoch: int):
    """The compact progress line for one ``<n>epoch results:`` log line, or None."""
    match = RESULTS.search(line)
    if match is None:
        return None
    epoch, rest = match.groups()
    parts = {}
    for section in re.finditer(r"\[(\w+)\]([^\[]*)", rest):
        parts[section.group(1)] = dict(FIELD.findall(section.group(2)))
    train, valid = parts.get("train", {}), parts.get("valid", {})
    shown = [f"epoch {epoch}/{max_epoch}" if max_epoch else f"epoch {epoch}"]
    if "loss" in train:
        shown.append(f"train loss {float(train['loss']):.2f}")
    for key in ("loss", "acc", "cer_ctc", "cer", "wer"):
        if key in valid:
            shown.append(f"valid {key} {float(valid[key]):.3f}")
    seconds = duration(rest)
    if seconds is not None:
        shown.append(f"{seconds:.0f} s")
    return ", ".join(shown)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("log", type=Path)
    parser.add_argument("--pid", type=int, required=True, help="the training process to wait for")
    parser.add_argument("--max_epoch", type=int, default=0)
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between reads of the log")
    args = parser.parse_args(argv)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    offset, pending, inode = 0, "", None
    started = time.time()
    while True:
        running = _alive(args.pid) and not stop
        # a resumed training's launcher renames the old log and starts a new one: follow only a log
        # written since this started, from its beginning when the file changes
        info = args.log.stat() if args.log.exists() else None
        if info is not None and info.st_mtime >= started - 1:
            if info.st_ino != inode or info.st_size < offset:
                offset, pending, inode = 0, "", info.st_ino
            with args.log.open(errors="replace") as f:
                f.seek(offset)
                pending += f.read()
                offset = f.tell()
            *lines, pending = pending.split("\n")
            for line in lines:
                shown = summarize(line, args.max_epoch)
                if shown:
                    print(f"{time.strftime('%H:%M:%S')} {shown}", flush=True)
        if not running:
            return 0
        deadline = time.monotonic() + args.interval
        while not stop and time.monotonic() < deadline:
            time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main())
