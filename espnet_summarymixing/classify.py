"""Classify audio clips (keywords, spoken digits, intents...) with a packed, unpacked or hub-hosted
ESPnet classifier (``espnet2.tasks.cls``, as trained by an ``egs2/*/cls1`` recipe).

    python -m espnet_summarymixing.classify --model exp/cls_x/model.zip a.wav b.flac
    python -m espnet_summarymixing.classify --model model.zip --list clips.txt --top_k 3

Prints one line per file, ``<file> → <label> (<probability>)``, or the ``--top_k`` most probable
labels; ``--output_format tsv`` prints ``<file><TAB><label><TAB><probability>`` instead. Files come
as arguments and/or from ``--list`` (one path per line, or Kaldi ``<key> <path>`` lines as in a
wav.scp). Any sample rate is resampled to the model's, channels are down-mixed. A file that cannot
be read, holds no samples or is too short for the encoder's subsampling is reported on stderr and
the others are still classified; the exit status is 0 only if every file was classified (1 if some
failed, 2 if the model could not be loaded).

The model is given like ``transcribe``'s: a zip/tar archive from the recipes' packing stage, an
unpacked archive, a training folder (``config.yaml`` with ``valid.acc.best.pth`` or another
checkpoint; run from the recipe folder, since ESPnet's config names the statistics file relative to
it) or a Hugging Face Hub id; its weights are read with ``weights_only=True``.
"""

import argparse
import contextlib
import logging
import sys
from pathlib import Path
from typing import List, Optional, Tuple

from espnet_summarymixing.publish.loading import load_state, read_audio, resolve_model, sample_rate

__all__ = ["Classifier", "main"]

OUTPUT_FORMATS = ("text", "tsv")


def _model_files(files: dict) -> Tuple[str, str]:
    """(training config, model file) of :func:`resolve_model`'s answer, whichever task's names it uses."""
    config = next((v for k, v in files.items() if k.endswith("_train_config")), None)
    model = next((v for k, v in files.items() if k.endswith("_model_file")), None)
    if config is None or model is None:
        raise ValueError(f"the model names no training config and model file (found: {', '.join(files)})")
    return config, model


class Classifier:
    """A classifier loaded once, called on files: ``classifier(path) -> [(label, probability), ...]``,
    the most probable first (all classes; multi-label models give each label's own probability)."""

    def __init__(self, model: str, device: str = "cpu", cachedir: Optional[str] = None):
        from espnet2.tasks.cls import CLSTask

        config, model_file = _model_files(resolve_model(model, cachedir))
        net, args = CLSTask.build_model_from_file(config, None, device)
        if not hasattr(net, "classification_type"):
            raise ValueError(f"--model {model}: not a classification model (its config builds {type(net).__name__})")
        load_state(net, model_file, device)
        self.model = net.eval()
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

    def __call__(self, path: str) -> List[Tuple[str, float]]:
        wave, _, notes = read_audio(path, self.rate)
        for note in notes:
            logging.getLogger(__name__).warning("%s: %s", path, note)
        return self.probabilities(wave)


def _too_short(err: Exception) -> bool:
    return type(err).__name__ == "TooShortUttError" or "too short" in str(err).lower()


def read_list(path: Path) -> List[str]:
    """Paths from a list file: one per line, or ``<key> <path>`` (a Kaldi wav.scp); blank lines skipped."""
    if not path.is_file():
        raise FileNotFoundError(f"--list {path}: no such file")
    paths = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) > 2 or fields[-1] == "|":
            raise ValueError(f"--list {path}:{number}: expected a path or '<key> <path>', got '{line.strip()}'")
        paths.append(fields[-1])
    return paths


def format_result(path: str, ranked: List[Tuple[str, float]], top_k: int, output_format: str) -> str:
    best = ranked[:top_k]
    if output_format == "tsv":
        return "".join(f"{path}\t{label}\t{p:.4f}\n" for label, p in best)
    return f"{path} → " + ", ".join(f"{label} ({p:.3f})" for label, p in best) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="*", help="audio files (any format libsndfile reads)")
    p.add_argument("--model", required=True, help="model.zip, an unpacked model, a training folder or a hub id")
    p.add_argument("--list", type=Path, help="a file listing more audio files (a path or '<key> <path>' per line)")
    p.add_argument("--top_k", type=int, default=1, help="how many labels to print per file, most probable first")
    p.add_argument("--output_format", choices=OUTPUT_FORMATS, default="text")
    p.add_argument("--device", default="cpu")
    p.add_argument("--cachedir", help="where archives are unpacked")
    args = p.parse_args(argv)
    if args.top_k < 1:
        p.error(f"--top_k {args.top_k}: must be at least 1")
    files = list(args.files)
    if args.list is not None:
        try:
            files += read_list(args.list)
        except (FileNotFoundError, ValueError) as err:
            p.error(str(err))
    if not files:
        p.error("no audio file given (as arguments or with --list)")
    logging.disable(logging.INFO)  # ESPnet's info lines would drown the results; warnings stay
    out = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):  # ESPnet prints notices on stdout while importing
        try:
            classifier = Classifier(args.model, args.device, args.cachedir)
        except (FileNotFoundError, ValueError, RuntimeError) as err:
            print(f"error: cannot load the model: {err}", file=sys.stderr)
            return 2
        failed = 0
        for path in files:
            try:
                ranked = classifier(path)
            except (FileNotFoundError, ValueError) as err:  # one bad file must not stop the others
                failed += 1
                reason = str(err)[len(path) + 2:] if str(err).startswith(f"{path}: ") else err
                print(f"{path}: error: {reason}", file=sys.stderr)
                continue
            except Exception as err:
                failed += 1
                if _too_short(err):
                    print(f"{path}: error: too short for the model's subsampling: not classified", file=sys.stderr)
                else:
                    print(f"{path}: error: {type(err).__name__}: {err}", file=sys.stderr)
                continue
            out.write(format_result(path, ranked, args.top_k, args.output_format))
            out.flush()
    if failed:
        print(f"{failed} of {len(files)} files failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
