"""Writing a command's results: every output path checked before any work starts, two inputs that
would be written to the same name refused, and every file written under a temporary name
(``<name>.partial``) then renamed, so that an interrupted command never leaves a half-written
file under the final name.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> target = check_file(str(folder / "new" / "deeper" / "hyp.txt"), "--output")
    >>> write_text(target, "utt1 HELLO\\n"); target.read_text(), sorted(p.name for p in target.parent.iterdir())
    ('utt1 HELLO\\n', ['hyp.txt'])
    >>> check_file(str(folder), "--output")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: --output ...: a folder; give a file name
    >>> unique_targets([("a/x.wav", "x.wav.srt"), ("b/x.wav", "x.wav.srt")], "--output_dir out")
    Traceback (most recent call last):
    ...
    ValueError: --output_dir out: a/x.wav and b/x.wav would both be written to x.wav.srt; nothing was run
"""

import os
from pathlib import Path
from typing import Dict, Iterable, Optional, Tuple

__all__ = ["check_file", "check_folder", "unique_targets", "write_text", "keyed_output"]


def _writable_ancestor(path: Path, what: str) -> None:
    """ValueError unless the first existing folder above ``path`` is a writable folder (so that
    ``path``'s missing parents can be made)."""
    parent = path.parent
    while not parent.exists():
        if parent == parent.parent:
            break
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"{what}: {parent} is a file, so no folder can be made under it")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{what}: cannot write in {parent}")


def check_file(path: str, flag: str) -> Path:
    """An output file's path, checked before decoding starts: not a folder, and its folder exists
    or can be made. Raises ValueError naming ``flag`` and the path."""
    target = Path(path)
    what = f"{flag} {path}"
    if target.is_dir():
        raise ValueError(f"{what}: a folder; give a file name")
    if target.exists() and not os.access(target, os.W_OK):
        raise ValueError(f"{what}: the file exists and cannot be written")
    _writable_ancestor(target, what)
    return target


def check_folder(path: str, flag: str) -> Path:
    """An output folder's path, checked before decoding starts: a folder, or something that can be
    made one. Raises ValueError naming ``flag`` and the path."""
    folder = Path(path)
    what = f"{flag} {path}"
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{what}: a file, not a folder")
    if folder.is_dir():
        if not os.access(folder, os.W_OK | os.X_OK):
            raise ValueError(f"{what}: cannot write in it")
    else:
        _writable_ancestor(folder, what)
    return folder


def unique_targets(pairs: Iterable[Tuple[str, str]], what: str) -> Dict[str, str]:
    """``{output name: input}`` of (input, output name) pairs; ValueError naming the first two inputs
    that would be written to the same name (before anything runs)."""
    seen: Dict[str, str] = {}
    for source, name in pairs:
        if name in seen:
            raise ValueError(f"{what}: {seen[name]} and {source} would both be written to {name}; nothing was run")
        seen[name] = source
    return seen


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``<path>.partial``, then rename it to ``path`` (its folders made)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)


def keyed_output(path, entries, list_file=None) -> "Optional[Path]":
    """The one file of ``<key> <result>`` lines a command writes with ``--output`` (None without it),
    checked before any work starts: a usable path that is neither an input nor the ``--list`` file,
    and no two inputs with the same key. Raises ValueError naming the flag."""
    if not path:
        return None
    target = check_file(path, "--output")
    resolved = target.resolve()
    for what, source in [("--list", list_file), *(("an input", e.path) for e in entries)]:
        if source and Path(source).resolve() == resolved:
            raise ValueError(f"--output {path}: is {what} ({source}); writing it would destroy it")
    unique_targets(((e.label(), e.key) for e in entries), f"--output {path}: the keys")
    return target
