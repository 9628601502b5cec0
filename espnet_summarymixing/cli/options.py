"""One flag vocabulary for every command, old spellings kept as aliases that warn.

- ``--model``: every model input (a zip, an unpacked model, a training folder, a Hub id, an ONNX
  export folder); ``--model_dir`` is an old name;
- ``--output`` (one file) or ``--output_dir`` (a folder); ``--out`` and ``--outpath`` are old names;
- durations in seconds (``--block_seconds``); ``--block_ms`` is an old name, converted;
- inputs: audio files as arguments and ``--list`` (``--wav_scp`` is the same option).

    >>> import argparse, contextlib, io
    >>> p = argparse.ArgumentParser()
    >>> add_model(p, "the model")
    >>> add_duration(p, "--block_seconds", 0.1, "audio per step", old_ms="--block_ms")
    >>> with contextlib.redirect_stderr(io.StringIO()) as err:
    ...     args = p.parse_args(["--model_dir", "m", "--block_ms", "80"])
    >>> args.model, args.block_seconds
    ('m', 0.08)
    >>> print(err.getvalue().strip())
    warning: --model_dir is an old name of --model; use --model
    warning: --block_ms 80 is read as --block_seconds 0.08 (durations are in seconds now); use --block_seconds
"""

import argparse
import sys
from typing import Callable, Optional

__all__ = ["add_model", "add_output", "add_output_dir", "add_inputs", "add_duration", "add_alias", "require",
           "inputs_of"]


class _OldName(argparse.Action):
    """An old spelling of an option: stores into the new option's ``dest`` and warns on stderr."""

    def __init__(self, option_strings, dest, new: str, convert: Optional[Callable] = None, unit: str = "", **kwargs):
        super().__init__(option_strings, dest, **kwargs)
        self.new, self.convert, self.unit = new, convert, unit

    def __call__(self, parser, namespace, values, option_string=None):
        if self.convert is None:
            print(f"warning: {option_string} is an old name of {self.new}; use {self.new}", file=sys.stderr)
            setattr(namespace, self.dest, values)
            return
        value = self.convert(values)
        print(f"warning: {option_string} {_shown(values)} is read as {self.new} {_shown(value)} ({self.unit}); "
              f"use {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, value)


def _shown(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def add_alias(p: argparse.ArgumentParser, old: str, new: str, dest: str, type=str,
              convert: Optional[Callable] = None, unit: str = "") -> None:
    """Accept ``old`` as a hidden alias of ``new`` (stored in ``dest``) that warns when used;
    ``convert`` maps an old value to the new option's (e.g. milliseconds to seconds)."""
    p.add_argument(old, dest=dest, type=type, action=_OldName, new=new, convert=convert, unit=unit,
                   default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def add_model(p: argparse.ArgumentParser, help: str, old: tuple = ("--model_dir",)) -> None:
    """``--model`` (required: checked by :func:`require`, so that an old name can stand in for it)."""
    p.add_argument("--model", help=help)
    for name in old:
        add_alias(p, name, "--model", "model")


def add_output(p: argparse.ArgumentParser, help: str, old: tuple = ("--out", "--outpath")) -> None:
    """``--output FILE``, with its old names."""
    p.add_argument("--output", help=help)
    for name in old:
        add_alias(p, name, "--output", "output")


def add_output_dir(p: argparse.ArgumentParser, help: str, old: tuple = ("--out",)) -> None:
    """``--output_dir DIR``, with its old names."""
    p.add_argument("--output_dir", help=help)
    for name in old:
        add_alias(p, name, "--output_dir", "output_dir")


def add_inputs(p: argparse.ArgumentParser, what: str = "audio files") -> None:
    """Audio files as arguments, and ``--list`` (also spelled ``--wav_scp``): a file of more of them,
    each line ``<path>`` or ``<key> <path>`` (:func:`~.inputs.read_list`)."""
    p.add_argument("files", nargs="*", help=f"{what} (any format libsndfile reads)")
    p.add_argument("--list", "--wav_scp", dest="list", metavar="LIST",
                   help="a file listing more audio files: '<path>' or '<key> <path>' per line (a Kaldi wav.scp)")


def add_duration(p: argparse.ArgumentParser, name: str, default: float, help: str,
                 old_ms: Optional[str] = None) -> None:
    """A duration option in seconds; ``old_ms``: its old spelling in milliseconds, converted."""
    dest = name.lstrip("-")
    p.add_argument(name, type=float, default=default, help=f"{help}, in seconds (default {default:g})")
    if old_ms:
        add_alias(p, old_ms, name, dest, type=float, convert=lambda ms: ms / 1000.0,
                  unit="durations are in seconds now")


def inputs_of(p: argparse.ArgumentParser, args: argparse.Namespace):
    """The entries of the files and ``--list`` given (:func:`~.inputs.gather`) and the list's bad lines;
    exits with argparse's usage error for a missing list or when no input is given at all."""
    from espnet_summarymixing.cli.inputs import gather

    try:
        entries, bad = gather(args.files, args.list)
    except (FileNotFoundError, ValueError) as err:
        p.error(str(err))
    if not entries and not bad:
        p.error("no audio file given (as arguments or with --list)")
    return entries, bad


def require(p: argparse.ArgumentParser, args: argparse.Namespace, *names: str) -> None:
    """Exit (status 2, argparse's usage error) unless every option in ``names`` (dest names) was given."""
    for name in names:
        if getattr(args, name, None) is None:
            p.error(f"the following arguments are required: --{name}")
