"""The audio a command works on: files given as arguments and the lines of ``--list`` files, read
by one rule.

A line of a list is ``<path>`` or ``<key> <path>`` (a Kaldi wav.scp). The rule, in order:

1. a blank line is skipped;
2. a line ending in ``|`` is a command (Kaldi's pipes), not a file: a bad line;
3. if the whole line (without the surrounding blanks) names a file or folder, it is a ``<path>``:
   ``aud/two words.wav`` is that file, never the key ``aud/two`` and the file ``words.wav``;
4. otherwise a line of several words is ``<key> <path>``: the first word is the key and the rest of
   the line, spaces included, the path (``utt1 aud/two words.wav``);
5. a line of one word is a ``<path>``.

A path is read relative to the working directory, as Kaldi does. The key of a ``<path>`` is the path
itself. Bad lines are reported with ``<list>:<line>:`` and the others are still used.

    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> open(os.path.join(folder, "two words.wav"), "w").close()
    >>> listed = os.path.join(folder, "list.txt")
    >>> _ = open(listed, "w").write(f"{folder}/two words.wav\\nutt1 {folder}/two words.wav\\n\\nx sox a.wav - |\\n")
    >>> entries, bad = read_list(listed)
    >>> [(e.key == e.path, e.path.endswith("/two words.wav"), e.where[-2:]) for e in entries]
    [(True, True, ':1'), (False, True, ':2')]
    >>> entries[1].key, bad[0].endswith("list.txt:4: a command (ending in '|'), not an audio file: 'x sox a.wav - |'")
    ('utt1', True)
"""

from pathlib import Path
from typing import List, NamedTuple, Optional, Sequence, Tuple

__all__ = ["Entry", "read_list", "gather"]


class Entry(NamedTuple):
    """One input: ``key`` (the utterance id, or the path), ``path``, and ``where`` it was listed
    (``<list>:<line>``, empty for a command-line argument)."""

    key: str
    path: str
    where: str = ""

    def label(self) -> str:
        """How messages name the input: ``<path>``, or ``<list>:<line>: <path>``."""
        return f"{self.where}: {self.path}" if self.where else self.path


def _parse(line: str) -> Tuple[Optional[str], Optional[str]]:
    """(key, path) of a list line by the module's rule; (None, None) for a blank line."""
    text = line.strip()
    if not text:
        return None, None
    if Path(text).exists():
        return text, text
    fields = text.split(maxsplit=1)
    if len(fields) == 1:
        return text, text
    return fields[0], fields[1].strip()


def read_list(path: str) -> Tuple[List[Entry], List[str]]:
    """The entries of a list file and the messages for its bad lines (``<list>:<line>: why``).

    Raises FileNotFoundError if the list itself is not a file, ValueError if it is not UTF-8 text."""
    listed = Path(path)
    if not listed.is_file():
        raise FileNotFoundError(f"--list {path}: no such file")
    try:
        text = listed.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        line = listed.read_bytes()[:err.start].count(b"\n") + 1
        raise ValueError(f"--list {path}:{line}: not UTF-8 text ({err.reason}): expected "
                                "'<path>' or '<key> <path>' lines") from None
    entries, bad = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        where = f"{path}:{number}"
        if line.strip().endswith("|"):
            bad.append(f"{where}: a command (ending in '|'), not an audio file: {line.strip()[:80]!r}")
            continue
        key, audio = _parse(line)
        if key is not None:
            entries.append(Entry(key, audio, where))
    return entries, bad


def gather(files: Sequence[str], list_file: Optional[str]) -> Tuple[List[Entry], List[str]]:
    """The command's inputs: ``files`` (command-line arguments), then the entries of ``list_file``;
    and the messages for the list's bad lines. ValueError for two inputs with one key."""
    entries = [Entry(str(f), str(f)) for f in files]
    bad: List[str] = []
    if list_file is not None:
        listed, bad = read_list(list_file)
        entries += listed
    first: dict = {}
    for entry in entries:  # a key is an utterance id: two inputs of one key would give two results of one id
        if entry.key in first:
            raise ValueError(f"{entry.label()}: its key {entry.key!r} is also that of {first[entry.key].label()}: "
                             "give each input its own key; nothing was run")
        first[entry.key] = entry
    return entries, bad
