"""Transcribe audio files with a packed, unpacked or hub-hosted ESPnet ASR model.

    python -m espnet_summarymixing.transcribe --model exp/asr/model.zip a.wav b.flac c.sph

Prints one line per file, ``<file><TAB><text>``. Any sample rate is resampled to the model's,
multi-channel audio is down-mixed, and a file longer than ``--max_segment_seconds`` is cut at
its quietest moments into segments decoded one after the other, so memory stays bounded.
A file that cannot be read or decoded is reported on stderr and the others are still
transcribed; the exit status is 0 only if every file was transcribed.
"""

import argparse
import contextlib
import logging
import sys
from typing import Iterator, List, Optional, Tuple

from espnet_summarymixing.publish.loading import load_audio, load_state, resolve_model, sample_rate

__all__ = ["segments", "Transcriber", "main"]

def segments(wave, rate: int, max_seconds: float, search_seconds: float = 2.0) -> Iterator[Tuple[int, int]]:
    """Cut ``wave`` into pieces of at most ``max_seconds``, each cut at the quietest 10 ms frame
    of the last ``search_seconds`` before the limit."""
    import torch

    limit = int(max_seconds * rate)
    hop = max(1, rate // 100)
    start, n = 0, wave.numel()
    while n - start > limit:
        lo = start + max(hop, limit - int(search_seconds * rate))
        window = wave[lo:start + limit]
        frames = window[: window.numel() // hop * hop].view(-1, hop).pow(2).mean(dim=1)
        cut = lo + int(torch.argmin(frames)) * hop + hop // 2
        yield start, cut
        start = cut
    yield start, n


class Transcriber:
    """A Speech2Text with the model's sample rate and the segmenting above."""

    def __init__(self, model: str, device: str = "cpu", beam_size: int = 10, ctc_weight: float = 0.3,
                 max_segment_seconds: float = 30.0, cachedir: Optional[str] = None):
        from espnet2.bin.asr_inference import Speech2Text

        files = resolve_model(model, cachedir)
        self.speech2text = Speech2Text(asr_train_config=files["asr_train_config"], asr_model_file=None,
                                       device=device, beam_size=beam_size, ctc_weight=ctc_weight, nbest=1)
        load_state(self.speech2text.asr_model, files["asr_model_file"], device)  # refuses one that would run code
        self.rate = sample_rate(self.speech2text.asr_train_args)
        self.max_segment_seconds = max_segment_seconds

    def __call__(self, path: str) -> str:
        import torch

        wave = load_audio(path, self.rate)
        texts = []
        for start, end in segments(wave, self.rate, self.max_segment_seconds):
            with torch.no_grad():
                results = self.speech2text(wave[start:end])
            if isinstance(results, tuple):  # models with intermediate CTC also return those
                results = results[0]
            if results and results[0][0]:
                texts.append(results[0][0])
        return " ".join(texts)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="model.zip, an unpacked model or exp dir, or a hub id")
    p.add_argument("files", nargs="+", help="audio files")
    p.add_argument("--device", default="cpu")
    p.add_argument("--beam_size", type=int, default=10)
    p.add_argument("--ctc_weight", type=float, default=0.3)
    p.add_argument("--max_segment_seconds", type=float, default=30.0,
                   help="longer files are decoded in pieces of at most this length")
    p.add_argument("--cachedir", help="where archives are unpacked (espnet_model_zoo's default if unset)")
    args = p.parse_args(argv)
    if args.max_segment_seconds <= 2.0:
        p.error(f"--max_segment_seconds {args.max_segment_seconds}: must be more than 2 seconds")
    logging.disable(logging.WARNING)  # ESPnet's info/warning lines would drown the transcripts
    out = sys.stdout
    # ESPnet prints notices on stdout while importing; stdout is kept for the transcripts.
    with contextlib.redirect_stdout(sys.stderr):
        try:
            transcriber = Transcriber(args.model, args.device, args.beam_size, args.ctc_weight,
                                      args.max_segment_seconds, args.cachedir)
        except (FileNotFoundError, ValueError, RuntimeError) as err:
            print(f"error: cannot load the model: {err}", file=sys.stderr)
            return 2
        failed = 0
        for path in args.files:
            try:
                text = transcriber(path)
            except (FileNotFoundError, ValueError) as err:  # one bad file must not stop the others
                failed += 1
                reason = str(err)[len(path) + 2:] if str(err).startswith(f"{path}: ") else err
                print(f"{path}: error: {reason}", file=sys.stderr)
                continue
            except Exception as err:
                failed += 1
                print(f"{path}: error: {type(err).__name__}: {err}", file=sys.stderr)
                continue
            print(f"{path}\t{text}", file=out, flush=True)
    if failed:
        print(f"{failed} of {len(args.files)} files failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
