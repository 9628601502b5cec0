"""Classify audio clips (keywords, spoken digits, intents...) with a packed, unpacked or hub-hosted
ESPnet classifier (``espnet2.tasks.cls``, as trained by an ``egs2/*/cls1`` recipe).

    python -m espnet_summarymixing.classify --model exp/cls_x/model.zip a.wav b.flac
    python -m espnet_summarymixing.classify --model model.zip --list clips.txt --top_k 3

Prints one line per file, ``<file> → <label> (<probability>)``, or the ``--top_k`` most probable
labels; ``--output_format tsv`` prints ``<file><TAB><label><TAB><probability>`` instead. Files come
as arguments and/or from ``--list`` (``--wav_scp``: ``<path>`` or Kaldi ``<key> <path>`` per line;
a listed file is printed as its key). Any sample rate is resampled to the model's, channels are
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
import logging
import sys
from typing import List, Optional, Tuple

from espnet_summarymixing.cli.inputs import Entry
from espnet_summarymixing.cli.loop import each_file, finish, report, report_lines, run
from espnet_summarymixing.cli.models import model_for
from espnet_summarymixing.cli.options import add_inputs, add_model, inputs_of, require
from espnet_summarymixing.cli.quiet import quiet_startup
from espnet_summarymixing.loading.audio import read_audio
from espnet_summarymixing.loading.models import sample_rate

__all__ = ["Classifier", "main"]

OUTPUT_FORMATS = ("text", "tsv")


class Classifier:
    """A classifier loaded once, called on files: ``classifier(path) -> [(label, probability), ...]``,
    the most probable first (all classes; multi-label models give each label's own probability).

    ``model``: the model as ``--model`` takes it. Raises
    :class:`~espnet_summarymixing.cli.loop.CommandError` for a model that cannot be loaded or is not
    a classifier."""

    def __init__(self, model: str, device: str = "cpu", cachedir: Optional[str] = None):
        loaded = model_for(model, ("classifier",), cachedir, device)
        net, args = loaded.model, loaded.train_args
        self.model = net
        self.device = device
        self.rate = sample_rate(args)
        self.labels = list(args.token_list)[: net.vocab_size]
        self.multi_label = net.classification_type == "multi-label"

    def probabilities(self, wave) -> List[Tuple[str, float]]:
        """Every label's probability for one mono waveform at the model's rate, highest first."""
        import torch

        with torch.no_grad():
            speech = wave.to(self.device, torch.float32).unsqueeze(0)
            lengths = torch.tensor([speech.size(1)], device=self.device)
            scores = self.model.score(speech, lengths)[0].cpu()
        ranked = sorted(zip(self.labels, scores.tolist()), key=lambda pair: -pair[1])
        return [(label, float(p)) for label, p in ranked]

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
    entries, bad = inputs_of(p, args)
    return run(lambda: _classify(args, entries, bad))


def _classify(args, entries: List[Entry], bad: List[str]) -> int:
    report_lines(bad)
    out = sys.stdout
    with quiet_startup(logging.INFO):  # ESPnet's info lines would drown the results; warnings stay
        classifier = Classifier(args.model, args.device, args.cachedir)

        def work(entry: Entry):
            notes: List[str] = []
            try:
                return classifier(entry.path, notes)
            finally:
                for note in notes:
                    report(entry, "note", note)

        def done(entry: Entry, ranked) -> None:
            out.write(format_result(entry.key, ranked, args.top_k, args.output_format))
            out.flush()

        failed = each_file(entries, work, done)  # too short: an error (a classifier must name a label)
    return finish(failed + len(bad), len(entries) + len(bad))


if __name__ == "__main__":
    sys.exit(main())
