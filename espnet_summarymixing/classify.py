"""Classify audio clips (keywords, spoken digits, intents...) with a packed, unpacked or hub-hosted
ESPnet classifier (``espnet2.tasks.cls``, as trained by an ``egs2/*/cls1`` recipe).

    python -m espnet_summarymixing.classify --model exp/cls_x/model.zip a.wav b.flac
    python -m espnet_summarymixing.classify --model model.zip --list clips.txt --top_k 3

Prints one line per file, ``<file> → <label> (<probability>)``, or the ``--top_k`` most probable
labels, in the order given; ``--output_format tsv`` prints ``<file><TAB><label><TAB><probability>``
instead. The clips are classified ``--batch_size`` at a time, with the labels and probabilities of one
at a time (each clip's features are computed alone, then padded). Files come as arguments and/or
from ``--list`` (``--wav_scp``: ``<path>`` or Kaldi ``<key> <path>`` per line; a listed file is
printed as its key). Any sample rate is resampled to the model's, channels are
down-mixed. A file that cannot be read, holds no samples or is too short for the encoder's
subsampling is reported on stderr and the others are still classified; the exit status is 0 only if
every file was classified (1 if some failed, 2 if the model could not be loaded or is not a
classifier).

The model is given like ``transcribe``'s: a zip/tar archive from the recipes' packing stage, an
unpacked archive, a training folder (``config.yaml`` with ``valid.acc.best.pth`` or another
checkpoint; run from the recipe folder, since ESPnet's config names the statistics file relative to
it) or a Hugging Face Hub id; its weights are read with ``weights_only=True``.
"""

import argparse
import contextlib
import logging
import sys
from typing import Iterator, List, Optional, Sequence, Tuple, Union

from espnet_summarymixing.cli.inputs import Entry
from espnet_summarymixing.cli.loop import each_file, finish, report, report_lines, run
from espnet_summarymixing.cli.models import model_for
from espnet_summarymixing.cli.options import add_inputs, add_model, inputs_of, require
from espnet_summarymixing.cli.quiet import quiet_startup
from espnet_summarymixing.loading.audio import read_audio
from espnet_summarymixing.loading.models import sample_rate

__all__ = ["Classifier", "main", "per_clip_frontend"]

OUTPUT_FORMATS = ("text", "tsv")
BATCH_SIZE = 32  # clips per forward pass (1-2 s keyword clips: ~100 MB of activations for a 4 x 144 encoder)

Ranked = List[Tuple[str, float]]


@contextlib.contextmanager
def per_clip_frontend(model) -> Iterator[dict]:
    """Within the ``with``, ``model.frontend`` computes the features of each clip of a padded batch
    alone (its samples up to its length), then pads them: as a batch of one would. ESPnet's centred
    STFT reflects the end of the signal it is given, so a clip's last frames would otherwise see the
    batch's zero padding. Yields a dict whose ``"lengths"`` is set to the feature lengths of the last
    call. The module's weights and type are untouched."""
    seen: dict = {}
    frontend = getattr(model, "frontend", None)
    if frontend is None:
        yield seen
        return
    import torch

    original = type(frontend).forward

    def forward(speech, lengths):
        feats = [original(frontend, speech[i:i + 1, :n], lengths[i:i + 1]) for i, n in enumerate(lengths.tolist())]
        lens = torch.cat([n for _, n in feats])
        out = feats[0][0].new_zeros(len(feats), int(lens.max()), feats[0][0].size(-1))
        for i, (f, _) in enumerate(feats):
            out[i, : f.size(1)] = f[0]
        seen["lengths"] = lens
        return out, lens

    frontend.forward = forward
    try:
        yield seen
    finally:
        frontend.__dict__.pop("forward", None)


class Classifier:
    """A classifier loaded once, called on files: ``classifier(path) -> [(label, probability), ...]``,
    the most probable first (all classes; multi-label models give each label's own probability).

    ``model``: the model as ``--model`` takes it. Raises
    :class:`~espnet_summarymixing.cli.loop.CommandError` for a model that cannot be loaded or is not
    a classifier."""

    def __init__(self, model, device: str = "cpu", cachedir: Optional[str] = None):
        loaded = model_for(model, ("classifier",), cachedir, device)  # a path, hub id or ModelSource
        net, args = loaded.model, loaded.train_args
        self.model = net
        self.train_args = args
        self.device = device
        self.rate = sample_rate(args)
        self.labels = list(args.token_list)[: net.vocab_size]
        self.multi_label = net.classification_type == "multi-label"
        from espnet_summarymixing.frames.input_layer import InputLayer  # torch: after the model, not at start-up

        try:  # the encoder's input layer, for its too-short rule (_too_short)
            self._input_layer = InputLayer(net.encoder.embed)
        except (AttributeError, ValueError):  # an input layer of another kind: the batch's output length decides
            self._input_layer = None

    def scores(self, wave):
        """Every class's probability (a tensor in the model's class order) for one mono waveform at
        the model's rate, as ESPnet's ``Classification`` computes it; raises for a clip too short
        for the front end and subsampling."""
        import torch

        with torch.no_grad():
            speech = wave.to(self.device, torch.float32).unsqueeze(0)
            lengths = torch.tensor([speech.size(1)], device=self.device)
            return self.model.score(speech, lengths)[0].cpu()

    def batch_scores(self, waves: Sequence, batch_size: int = BATCH_SIZE) -> List[Union[object, Exception]]:
        """:meth:`scores` of many waveforms, in one forward pass per ``batch_size`` of them (longest
        first, to pad little): for each, its scores, or the exception it raises alone (a clip too
        short for the model is classified alone, which raises)."""
        import torch

        out: List[Union[object, Exception]] = [None] * len(waves)
        order = sorted(range(len(waves)), key=lambda i: -waves[i].numel())
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            alone = list(rows)
            if len(rows) > 1:
                lengths = torch.tensor([waves[i].numel() for i in rows])
                speech = torch.zeros(len(rows), int(lengths.max()))
                for j, i in enumerate(rows):
                    speech[j, : waves[i].numel()] = waves[i].to(torch.float32)
                try:
                    with torch.no_grad(), per_clip_frontend(self.model) as seen:
                        speech, lengths = speech.to(self.device), lengths.to(self.device)
                        enc, enc_lens = self.model.encode(speech, lengths)
                        probs = self.model.classification_function(self.model.decoder(enc, enc_lens)).cpu()
                    frames = seen.get("lengths", lengths).tolist()
                    alone = []
                    for j, i in enumerate(rows):
                        if self._too_short(frames[j], int(enc_lens[j])):
                            alone.append(i)
                        else:
                            out[i] = probs[j]
                except Exception:  # a clip the front end cannot take: each alone, for its own error
                    alone = list(rows)
            for i in alone:
                try:
                    out[i] = self.scores(waves[i])
                except Exception as err:
                    out[i] = err
        return out

    def _too_short(self, frames: int, encoded: int) -> bool:
        """Whether a clip of ``frames`` feature frames (``encoded`` encoder frames in a batch) is too
        short for the encoder's input layer alone (it raises there): ESPnet's rule, by
        :class:`~espnet_summarymixing.frames.input_layer.InputLayer`. In a padded batch ESPnet's mask
        arithmetic keeps such a clip one encoder frame, so its batch result is not used."""
        from espnet_summarymixing.frames.input_layer import TooShortUttError

        if self._input_layer is not None:
            try:
                self._input_layer.check_length(frames)
            except TooShortUttError:
                return True
        return encoded < 1

    def ranked(self, scores) -> Ranked:
        """The labels with their probabilities, highest first."""
        ranked = sorted(zip(self.labels, scores.tolist()), key=lambda pair: -pair[1])
        return [(label, float(p)) for label, p in ranked]

    def probabilities(self, wave) -> Ranked:
        """Every label's probability for one mono waveform at the model's rate, highest first."""
        return self.ranked(self.scores(wave))

    def __call__(self, path: str, notes: Optional[List[str]] = None) -> List[Tuple[str, float]]:
        """The ranked labels of one file; what was wrong with it but could be read is appended to
        ``notes``."""
        wave, _, found = read_audio(path, self.rate)
        if notes is not None:
            notes.extend(found)
        return self.probabilities(wave)


def format_result(name: str, ranked: List[Tuple[str, float]], top_k: int, output_format: str) -> str:
    """The lines printed for one file: its ``top_k`` labels in ``output_format`` (``text``, ``tsv``)."""
    best = ranked[:top_k]
    if output_format == "tsv":
        return "".join(f"{name}\t{label}\t{p:.4f}\n" for label, p in best)
    return f"{name} → " + ", ".join(f"{label} ({p:.3f})" for label, p in best) + "\n"


def parser() -> argparse.ArgumentParser:
    """The command's options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model(p, "model.zip, an unpacked model, a training folder or a hub id")
    add_inputs(p)
    p.add_argument("--top_k", type=int, default=1, help="how many labels to print per file, most probable first")
    p.add_argument("--output_format", choices=OUTPUT_FORMATS, default="text")
    p.add_argument("--batch_size", type=int, default=BATCH_SIZE,
                   help=f"clips per forward pass (default {BATCH_SIZE}; 1: one at a time)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--cachedir", help="where archives are unpacked")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command; return its exit status."""
    p = parser()
    args = p.parse_args(argv)
    require(p, args, "model")
    if args.top_k < 1:
        p.error(f"--top_k {args.top_k}: must be at least 1")
    if args.batch_size < 1:
        p.error(f"--batch_size {args.batch_size}: must be at least 1")
    entries, bad = inputs_of(p, args)
    return run(lambda: _classify(args, entries, bad))


def _classify(args, entries: List[Entry], bad: List[str]) -> int:
    report_lines(bad)
    out = sys.stdout
    with quiet_startup(logging.INFO):  # ESPnet's info lines would drown the results; warnings stay
        classifier = Classifier(args.model, args.device, args.cachedir)

        def done(entry: Entry, ranked) -> None:
            out.write(format_result(entry.key, ranked, args.top_k, args.output_format))
            out.flush()

        failed = 0
        for start in range(0, len(entries), args.batch_size):  # a batch read, classified, printed in order
            waves: List[Tuple[Entry, object]] = []
            failed += each_file(entries[start:start + args.batch_size], lambda entry: _read(entry, classifier.rate),
                                lambda entry, wave: waves.append((entry, wave)))
            results = iter(classifier.batch_scores([wave for _, wave in waves], args.batch_size))
            # too short: an error (a classifier must name a label)
            failed += each_file([entry for entry, _ in waves], lambda entry: classifier.ranked(_value(next(results))),
                                done)
    return finish(failed + len(bad), len(entries) + len(bad))


def _read(entry: Entry, rate: int):
    """The waveform of one input at ``rate``; what was wrong with it but could be read is reported as
    notes."""
    wave, _, notes = read_audio(entry.path, rate)
    for note in notes:
        report(entry, "note", note)
    return wave


def _value(result):
    """A result of :meth:`Classifier.batch_scores`: the scores, or its exception raised."""
    if isinstance(result, Exception):
        raise result
    return result


if __name__ == "__main__":
    sys.exit(main())
