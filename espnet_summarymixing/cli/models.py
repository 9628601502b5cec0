"""Every command takes its model through :func:`model_for`: the model's kind is read from its files
before anything is built (:func:`~espnet_summarymixing.loading.kinds.inspect_model`), a kind the
command cannot use is refused in one line naming the command that can, and then the model is built.

    >>> use("classifier")
    'use python -m espnet_summarymixing.classify'
"""

from typing import Dict, Iterable, NamedTuple, Optional, Union

from espnet_summarymixing.cli.loop import CommandError
from espnet_summarymixing.loading.kinds import ModelSource, inspect_model, load_model

__all__ = ["COMMAND_FOR", "Loaded", "model_for", "use"]

# the command that works on each kind of model
COMMAND_FOR = {"asr": "transcribe", "streaming": "stream_decode", "classifier": "classify", "onnx": "onnx_transcribe"}


def use(kind: str) -> str:
    """``use python -m espnet_summarymixing.<the command for this kind>``."""
    return f"use python -m espnet_summarymixing.{COMMAND_FOR[kind]}"


class Loaded(NamedTuple):
    """A command's model: ``source`` (what it is, its files) and, when built, the ESPnet ``model``
    (eval mode) and its ``train_args``."""

    source: ModelSource
    model: Optional[object] = None
    train_args: Optional[object] = None


def model_for(model: Union[str, ModelSource], accepts: Iterable[str], cachedir: Optional[str] = None,
              device: str = "cpu", build: bool = True, advice: Optional[Dict[str, str]] = None) -> Loaded:
    """The model ``--model`` names (or one already inspected), for a command that can use the kinds
    ``accepts``.

    ``onnx`` in ``accepts`` also takes a packed model or training folder that carries an ONNX export.
    ``advice``: what to tell, per refused kind, instead of "use <the command for that kind>".
    ``build``: build the PyTorch model (else only its files are found and read).

    Raises :class:`~.loop.CommandError` (exit status 2) with one line: ``cannot load the model: ...``
    or ``<model> is <kind>: <advice>``."""
    accepts = set(accepts)
    try:
        source = model if isinstance(model, ModelSource) else inspect_model(model, cachedir)
    except (OSError, ValueError) as err:
        raise CommandError(f"cannot load the model: {err}") from None
    if source.kind not in accepts and not ("onnx" in accepts and source.onnx_dir):
        advice = (advice or {}).get(source.kind) or use(source.kind)
        raise CommandError(f"{source.given} is {source.description}: {advice}")
    if not build or source.kind == "onnx":
        return Loaded(source)
    try:
        net, train_args = load_model(source, device)
    except Exception as err:  # ESPnet's own errors too: one line, never a traceback
        message = str(err) if isinstance(err, (OSError, ValueError)) else f"{type(err).__name__}: {err}"
        raise CommandError(f"cannot load the model: {message}") from None
    return Loaded(source, net, train_args)
