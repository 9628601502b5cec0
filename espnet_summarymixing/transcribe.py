"""Transcribe audio files of any length with a packed, unpacked or hub-hosted ESPnet ASR model.

    python -m espnet_summarymixing.transcribe --model exp/asr/model.zip a.wav b.flac c.sph
    python -m espnet_summarymixing.transcribe --model model.zip --output_format srt --output_dir subs lecture.flac

A recording of any length first goes through the encoder in one pass (front end and subsampling
in blocks, :mod:`espnet_summarymixing.longform`), whose CTC decoding finds the pauses; by default
(``--mode segmented``) it is then cut in the middle of every pause longer than
``--segment_pause_seconds`` (pieces longer than ``--max_segment_seconds`` also at their quietest
moments) and the pieces are encoded one by one, which measured best with models trained on single
utterances (README, "Long recordings"); ``--mode one_pass`` keeps the single pass (optionally with
a summary over a sliding window or per pause-delimited stretch). Decoding is CTC (``--decoding
beam``: prefix beam search, with ``--lm_train_config/--lm_file`` an ESPnet LM; ``greedy``), the
words timed by CTC segmentation; ``--decoding joint`` is ESPnet's joint CTC/attention beam search
(``Speech2Text``) on pieces cut at quiet moments, text only.

Output: ``--output_format text`` prints ``<file><TAB><text>`` per file; ``json`` (words with times
and confidences), ``srt`` and ``vtt`` (subtitles split at pauses, at most ``--max_subtitle_chars``)
go to ``<output_dir>/<file name>.<format>``, or to stdout for a single file. Any sample rate is
resampled to the model's, channels are down-mixed. A file that cannot be read or decoded is
reported on stderr and the others are still transcribed; the exit status is 0 only if every file
was transcribed.
"""

import argparse
import contextlib
import logging
import sys
from pathlib import Path
from typing import List, Optional

from espnet_summarymixing.publish.loading import load_asr_model, load_state, read_audio, resolve_model, sample_rate

__all__ = ["Transcriber", "main"]

DECODINGS = ("beam", "greedy", "joint")
OUTPUT_FORMATS = ("text", "json", "srt", "vtt")


class Transcriber:
    """A model loaded once, called on files: ``transcriber(path) -> Transcript`` (text, timed words).

    Args mirror the command's options; ``joint`` decoding uses ESPnet's ``Speech2Text`` on pieces
    of at most ``max_segment_seconds`` and gives text without timings.
    """

    def __init__(self, model: str, device: str = "cpu", mode: str = "segmented", decoding: str = "beam",
                 beam_size: int = 10, ctc_weight: float = 0.3, max_segment_seconds: float = 30.0,
                 summary_window_seconds: float = 0.0, lm_train_config: Optional[str] = None,
                 lm_file: Optional[str] = None, lm_weight: float = 0.3, timestamps: bool = True,
                 cachedir: Optional[str] = None, segment_pause_seconds: float = 0.5,
                 summary_pause_seconds: float = 0.0, word_pause_seconds: float = 0.3):
        from espnet_summarymixing.longform.recognizer import LongFormRecognizer

        files = resolve_model(model, cachedir)
        self.decoding = decoding
        self.max_segment_seconds = max_segment_seconds
        if decoding == "joint":
            from espnet2.bin.asr_inference import Speech2Text

            if lm_train_config or lm_file:
                raise ValueError("an LM is supported with --decoding beam (CTC prefix beam search), not joint")
            self.speech2text = Speech2Text(asr_train_config=files["asr_train_config"], asr_model_file=None,
                                           device=device, beam_size=beam_size, ctc_weight=ctc_weight, nbest=1)
            load_state(self.speech2text.asr_model, files["asr_model_file"], device)  # refuses code-running pickles
            self.rate = sample_rate(self.speech2text.asr_train_args)
            return
        asr_model, args = load_asr_model(files["asr_train_config"], files["asr_model_file"], device)
        lm = None
        if lm_train_config or lm_file:
            lm = _espnet_lm(lm_train_config, lm_file, args.token_list, device)
        self.rate = sample_rate(args)
        self.recognizer = LongFormRecognizer(
            asr_model, args, self.rate, mode=mode, decoding=decoding, beam_size=beam_size, lm=lm,
            lm_weight=lm_weight, segment_seconds=max_segment_seconds, segment_pause_seconds=segment_pause_seconds,
            summary_window_seconds=summary_window_seconds, summary_pause_seconds=summary_pause_seconds,
            word_pause_seconds=word_pause_seconds, timestamps=timestamps,
        )

    def __call__(self, path: str):
        import torch

        from espnet_summarymixing.longform.recognizer import Transcript, quiet_cuts

        wave, rate, notes = read_audio(path, self.rate)
        if rate < self.rate:
            notes.append(f"{rate} Hz audio resampled to the model's {self.rate} Hz (the band above {rate // 2} Hz "
                         f"is empty: expect lower accuracy than on {self.rate} Hz recordings)")
        for note in notes:
            print(f"{path}: note: {note}", file=sys.stderr)
        if self.decoding != "joint":
            return self.recognizer(wave)
        texts = []
        for start, end in quiet_cuts(wave, self.rate, self.max_segment_seconds):
            with torch.no_grad():
                results = self.speech2text(wave[start:end])
            if isinstance(results, tuple):  # models with intermediate CTC also return those
                results = results[0]
            if results and results[0][0]:
                texts.append(results[0][0])
        return Transcript(" ".join(texts), [], wave.numel() / self.rate)


def _espnet_lm(lm_train_config: Optional[str], lm_file: Optional[str], token_list, device: str):
    """An ESPnet LM as a scorer of the prefix beam search; its tokens must be the ASR model's."""
    from espnet2.tasks.lm import LMTask

    from espnet_summarymixing.longform.ctc_search import espnet_lm_scorer

    if not (lm_train_config and lm_file):
        raise ValueError("an LM needs both --lm_train_config and --lm_file")
    lm_model, lm_args = LMTask.build_model_from_file(lm_train_config, None, device)
    load_state(lm_model, lm_file, device)
    if list(lm_args.token_list) != list(token_list):
        raise ValueError(f"--lm_train_config {lm_train_config}: its token list differs from the ASR model's")
    return espnet_lm_scorer(lm_model.eval(), len(token_list) - 1, device)


def _too_short(err: Exception) -> bool:
    return type(err).__name__ == "TooShortUttError"


def main(argv: Optional[List[str]] = None) -> int:
    from espnet_summarymixing.longform.recognizer import MODES, Transcript
    from espnet_summarymixing.longform.subtitles import group_segments, render

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="model.zip, an unpacked model or exp dir, or a hub id")
    p.add_argument("files", nargs="+", help="audio files")
    p.add_argument("--device", default="cpu")
    p.add_argument("--mode", choices=MODES, default="segmented",
                   help="segmented: pieces cut at the pauses a first one-pass decoding finds, encoded one by one; "
                        "one_pass: the whole recording through the encoder at once")
    p.add_argument("--decoding", choices=DECODINGS, default="beam",
                   help="beam: CTC prefix beam search; greedy: best CTC path; joint: ESPnet's joint "
                        "CTC/attention beam search on pieces (text only)")
    p.add_argument("--beam_size", type=int, default=10)
    p.add_argument("--ctc_weight", type=float, default=0.3, help="joint decoding: weight of CTC")
    p.add_argument("--lm_train_config", help="ESPnet LM config (beam decoding), trained on the model's tokens")
    p.add_argument("--lm_file", help="ESPnet LM weights")
    p.add_argument("--lm_weight", type=float, default=0.3)
    p.add_argument("--max_segment_seconds", type=float, default=30.0,
                   help="segmented mode and joint decoding: longest piece")
    p.add_argument("--segment_pause_seconds", type=float, default=0.5,
                   help="segmented mode: cut in pauses longer than this (0: at quiet moments only, for length)")
    p.add_argument("--summary_pause_seconds", type=float, default=0.0,
                   help="one pass, SummaryMixing encoders: a second pass where each frame's summary is that of "
                        "its stretch between pauses longer than this (0 = off)")
    p.add_argument("--word_pause_seconds", type=float, default=0.3,
                   help="tokens further apart than this belong to different words (0 = off)")
    p.add_argument("--summary_window_seconds", type=float, default=0.0,
                   help="one pass, SummaryMixing encoders: each frame's summary over this many seconds "
                        "around it (0 = the whole recording)")
    p.add_argument("--output_format", choices=OUTPUT_FORMATS, default="text")
    p.add_argument("--output_dir", help="write <file name>.<format> here (needed for several files in "
                                        "json/srt/vtt)")
    p.add_argument("--max_subtitle_chars", type=int, default=84, help="srt/vtt: longest subtitle")
    p.add_argument("--max_subtitle_seconds", type=float, default=7.0, help="srt/vtt: longest subtitle")
    p.add_argument("--subtitle_pause", type=float, default=0.5, help="srt/vtt: a pause this long ends a subtitle")
    p.add_argument("--cachedir", help="where archives are unpacked")
    args = p.parse_args(argv)
    if args.max_segment_seconds <= 2.0:
        p.error(f"--max_segment_seconds {args.max_segment_seconds}: must be more than 2 seconds")
    if args.beam_size < 1:
        p.error(f"--beam_size {args.beam_size}: must be at least 1")
    timed = args.output_format != "text"
    if timed and args.decoding == "joint":
        p.error(f"--output_format {args.output_format} needs word timings: use --decoding beam or greedy "
                "(joint decoding gives text only)")
    if timed and len(args.files) > 1 and not args.output_dir:
        p.error(f"--output_format {args.output_format} with {len(args.files)} files needs --output_dir")
    out_dir = Path(args.output_dir) if args.output_dir else None
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
    logging.disable(logging.WARNING)  # ESPnet's info/warning lines would drown the transcripts
    out = sys.stdout
    # ESPnet prints notices on stdout while importing; stdout is kept for the transcripts.
    with contextlib.redirect_stdout(sys.stderr):
        try:
            transcriber = Transcriber(
                args.model, args.device, args.mode, args.decoding, args.beam_size, args.ctc_weight,
                args.max_segment_seconds, args.summary_window_seconds, args.lm_train_config, args.lm_file,
                args.lm_weight, timestamps=timed, cachedir=args.cachedir,
                segment_pause_seconds=args.segment_pause_seconds, summary_pause_seconds=args.summary_pause_seconds,
                word_pause_seconds=args.word_pause_seconds,
            )
        except (FileNotFoundError, ValueError, RuntimeError) as err:
            print(f"error: cannot load the model: {err}", file=sys.stderr)
            return 2
        failed = 0
        for path in args.files:
            try:
                result = transcriber(path)
            except (FileNotFoundError, ValueError) as err:  # one bad file must not stop the others
                failed += 1
                reason = str(err)[len(path) + 2:] if str(err).startswith(f"{path}: ") else err
                print(f"{path}: error: {reason}", file=sys.stderr)
                continue
            except Exception as err:
                if not _too_short(err):
                    failed += 1
                    print(f"{path}: error: {type(err).__name__}: {err}", file=sys.stderr)
                    continue
                print(f"{path}: warning: too short for the model's subsampling: no speech transcribed",
                      file=sys.stderr)
                result = Transcript("")
            if not timed:
                text = f"{path}\t{result.text}\n"
            elif args.output_format == "json":
                segments = group_segments(result.words, args.subtitle_pause, 10**9, float("inf"))
                text = render(segments, "json", source=str(path), duration=result.duration)
            else:
                segments = group_segments(result.words, args.subtitle_pause, args.max_subtitle_chars,
                                          args.max_subtitle_seconds)
                text = render(segments, args.output_format)
            if out_dir and timed:
                target = out_dir / f"{Path(path).name}.{args.output_format}"
                partial = target.with_name(target.name + ".partial")
                partial.write_text(text, encoding="utf-8")
                partial.replace(target)
                print(f"{path}\t{target}", file=out, flush=True)
            else:
                out.write(text)
                out.flush()
    if failed:
        print(f"{failed} of {len(args.files)} files failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
