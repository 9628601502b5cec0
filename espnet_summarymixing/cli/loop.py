"""Files handled one at a time by one loop: a file that fails is reported on stderr as
``<file>: error: <reason>`` (``<list>:<line>: <file>: error: <reason>`` for a listed one) and the
others are still handled; the exit status is 0 if every file was handled, 1 if some failed, 2 if the
command could not start (bad options, a model that cannot be loaded or is of the wrong kind).

The one "too short" rule (:func:`too_short`): audio shorter than the model's STFT window or
subsampling. A recogniser then reports a warning and an empty text; a classifier, which must name
a label, an error.

    >>> import io, contextlib
    >>> from espnet_summarymixing.cli.inputs import Entry
    >>> results = []
    >>> def work(entry):
    ...     if entry.path == "bad.wav":
    ...         raise ValueError("bad.wav: not an audio file")
    ...     return entry.path.upper()
    >>> with contextlib.redirect_stderr(io.StringIO()) as err:
    ...     failed = each_file([Entry("a.wav", "a.wav"), Entry("b", "bad.wav", "l.scp:2")], work,
    ...                        lambda entry, result: results.append(result))
    ...     status = finish(failed, 2)
    >>> results, status
    (['A.WAV'], 1)
    >>> print(err.getvalue().strip())
    l.scp:2: bad.wav: error: not an audio file
    1 of 2 files failed
"""

import sys
from typing import Any, Callable, Optional, Sequence

from espnet_summarymixing.cli.inputs import Entry

__all__ = ["CommandError", "run", "too_short", "each_file", "finish", "report", "report_lines", "reason"]


class CommandError(Exception):
    """A command cannot start: printed as ``error: <message>``, exit status ``status`` (2)."""

    def __init__(self, message: str, status: int = 2):
        super().__init__(message)
        self.status = status


def run(body: Callable[[], int]) -> int:
    """``body()``'s exit status; a :class:`CommandError` is printed as ``error: <message>`` (one line)
    and gives its status."""
    try:
        return body()
    except CommandError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        return err.status


def too_short(err: BaseException) -> bool:
    """True for an error saying the audio is too short for the model (its STFT window or its
    subsampling): ESPnet's ``TooShortUttError``, the streaming framing's ``TooShortError``, the
    STFT's padding error on a few samples, or another error that says so."""
    text = str(err).lower()
    # torch's reflect padding of the STFT on fewer samples than half its window
    return type(err).__name__ in ("TooShortUttError", "TooShortError") or "too short" in text or \
        "padding size should be less than" in text


def reason(err: BaseException, path: str) -> str:
    """The message of ``err`` without a leading ``<path>: `` (the loop names the file itself);
    errors other than a missing or unreadable file keep their type."""
    text = str(err)
    if text.startswith(f"{path}: "):
        text = text[len(path) + 2:]
    if not isinstance(err, (FileNotFoundError, ValueError)):
        text = f"{type(err).__name__}: {text}"
    return text


def report(entry: Entry, kind: str, message: str) -> None:
    """``<file>: <kind>: <message>`` on stderr (``kind``: error, warning or note)."""
    print(f"{entry.label()}: {kind}: {message}", file=sys.stderr, flush=True)


def each_file(entries: Sequence[Entry], work: Callable[[Entry], Any], done: Callable[[Entry, Any], None],
              short: Optional[Callable[[Entry], Any]] = None) -> int:
    """Call ``work(entry)`` for each entry, then ``done(entry, result)``; return how many failed.

    Any exception of ``work`` (but an interrupt) fails that entry only: it is reported and the loop
    goes on. A too-short input (:func:`too_short`) gives ``short(entry)`` as the result, with a
    warning, when ``short`` is given, and fails otherwise."""
    failed = 0
    for entry in entries:
        try:
            result = work(entry)
        except Exception as err:  # one bad file must not stop the others
            if too_short(err) and short is not None:
                report(entry, "warning", "too short for the model's front end and subsampling: nothing recognised")
                result = short(entry)
            else:
                failed += 1
                report(entry, "error", "too short for the model's front end and subsampling" if too_short(err)
                       else reason(err, entry.path))
                continue
        done(entry, result)
    return failed


def report_lines(messages: Sequence[str]) -> None:
    """Report the bad lines of a list (``<list>:<line>: <why>``) as ``<list>:<line>: error: <why>``."""
    for message in messages:
        where, why = message.split(": ", 1)
        print(f"{where}: error: {why}", file=sys.stderr, flush=True)


def finish(failed: int, total: int) -> int:
    """Report how many of ``total`` inputs failed (bad list lines included); the exit status, 0 or 1."""
    if failed:
        print(f"{failed} of {total} files failed", file=sys.stderr)
    return 1 if failed else 0
