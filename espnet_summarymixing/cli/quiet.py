"""No start-up noise: a command's user sees only the command's own output.

Importing ESPnet's tasks imports ``g2p_en``, which asks nltk to download two corpora; on a machine
without internet each attempt prints three ``[nltk_data] Error loading ...`` lines on stderr. ESPnet
also prints notices on stdout while importing (e.g. "Failed to import Flash Attention"), where they
would mix with the results, and warns of its own dependencies' deprecations while decoding.
:func:`quiet_startup` makes nltk's downloads quiet (a corpus that cannot be downloaded stays
missing, as before: nothing here needs it), sends stdout to stderr while a command works, minus
ESPnet's known import notices, hides ESPnet's and torch's FutureWarning and DeprecationWarning and
turns ESPnet's info logging off. Our own messages and any other warning still reach stderr.
"""

import contextlib
import importlib.abc
import importlib.util
import io
import logging
import sys
import warnings

from espnet_summarymixing._autoload import AfterImport

__all__ = ["quiet_startup", "quiet_nltk_downloads", "NOTICES", "THIRD_PARTY"]

# lines ESPnet prints on stdout while importing, dropped
NOTICES = ("Failed to import Flash Attention",)
# modules whose FutureWarning and DeprecationWarning (about their own dependencies' APIs) are not shown
THIRD_PARTY = r"(espnet|espnet2|torch|torchaudio|typeguard)(\.|$)"


def _quiet(download):
    """nltk's ``download`` with its messages kept off the terminal (the result is unchanged)."""
    if getattr(download, "_summarymixing_quiet", False):
        return download

    def quiet_download(info_or_id=None, *args, **kwargs):
        if info_or_id is None:  # the interactive downloader: left alone
            return download(info_or_id, *args, **kwargs)
        kwargs["quiet"] = True
        kwargs["print_error_to"] = io.StringIO()
        return download(info_or_id, *args, **kwargs)

    quiet_download._summarymixing_quiet = True
    return quiet_download


def _patch(nltk) -> None:
    nltk.download = _quiet(nltk.download)
    if getattr(nltk, "downloader", None) is not None:
        nltk.downloader.download = nltk.download


class _NltkFinder(importlib.abc.MetaPathFinder):
    """Patches nltk when it is first imported (importing nltk takes seconds: only if ESPnet does)."""

    def find_spec(self, name, path=None, target=None):
        if name != "nltk":
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is not None and spec.loader is not None:
            spec.loader = AfterImport(spec.loader, _patch)
        return spec


def quiet_nltk_downloads() -> None:
    """From now on in this process, nltk's downloads print nothing (idempotent; imports no nltk)."""
    nltk = sys.modules.get("nltk")
    if nltk is not None:
        _patch(nltk)
    elif not any(isinstance(f, _NltkFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _NltkFinder())


class _DropNotices(io.TextIOBase):
    """A text stream passing lines on to ``target``, minus ESPnet's import notices."""

    def __init__(self, target):
        self.target, self.pending = target, ""

    def writable(self):
        return True

    def write(self, text):
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            if not line.startswith(NOTICES):
                self.target.write(line + "\n")
        return len(text)

    def flush(self):
        if self.pending and not self.pending.startswith(NOTICES):
            self.target.write(self.pending)
        self.pending = ""
        self.target.flush()


@contextlib.contextmanager
def quiet_startup(level: int = logging.INFO):
    """While a command works: nltk's downloads quiet, stdout sent to stderr minus ESPnet's import
    notices, logging at ``level`` and below off (ESPnet's info lines would drown the results); all
    restored on leaving (but nltk's downloads stay quiet)."""
    quiet_nltk_downloads()
    previous = logging.root.manager.disable
    logging.disable(max(level, previous))
    stream = _DropNotices(sys.stderr)
    try:
        with contextlib.redirect_stdout(stream), warnings.catch_warnings():
            for category in (FutureWarning, DeprecationWarning):  # their API changes: not the user's business
                warnings.filterwarnings("ignore", category=category, module=THIRD_PARTY)
            yield
    finally:
        stream.flush()
        logging.disable(previous)
