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

Input: audio files as arguments and/or ``--list`` (``--wav_scp``): ``<path>`` or ``<key> <path>``
per line. Output: ``--output_format text`` prints ``<key><TAB><text>`` per file (the key of a file
given as an argument is its path), or writes Kaldi ``<key> <text>`` lines to ``--output``; ``json``
(words with times and confidences), ``srt`` and ``vtt`` (subtitles split at pauses, at most
``--max_subtitle_chars``) go to ``<output_dir>/<file name or key>.<format>``, or for a single file to
``--output`` or stdout. Any sample rate is resampled to the model's, channels are down-mixed. A
file that cannot be read or decoded is reported on stderr and the others are still transcribed;
the exit status is 0 if every file was transcribed, 1 if some failed, 2 if nothing could start (a
bad option, a model that cannot be loaded or is not an ASR model).
"""

import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional

from espnet_summarymixing.cli.inputs import Entry
from espnet_summarymixing.cli.loop import CommandError, each_file, finish, report, report_lines, run
from espnet_summarymixing.cli.models import model_for
from espnet_summarymixing.cli.options import add_inputs, add_model, add_output, add_output_dir, inputs_of, require
from espnet_summarymixing.cli.outputs import check_file, check_folder, keyed_output, unique_targets, write_text
from espnet_summarymixing.cli.quiet import quiet_startup
from espnet_summarymixing.loading.audio import read_audio
from espnet_summarymixing.loading.models import load_state, sample_rate

__all__ = ["Transcriber", "main"]

DECODINGS = ("beam", "greedy", "joint")
OUTPUT_FORMATS = ("text", "json", "srt", "vtt")
KINDS = ("asr", "streaming")  # a streaming-trained model decodes offline too


class Transcriber:
    """A model loaded once, called on files: ``transcriber(path) -> Transcript`` (text, timed words).

    ``model``: the model as ``--model`` takes it; the other arguments mirror the command's options.
    ``joint`` decoding uses ESPnet's ``Speech2Text`` on pieces of at most ``max_segment_seconds`` and
    gives text without timings. Raises :class:`~espnet_summarymixing.cli.loop.CommandError` for a
    model that cannot be loaded or is not an ASR model.
    """

    def __init__(self, model: str, device: str = "cpu", mode: str = "segmented", decoding: str = "beam",
                 beam_size: int = 10, ctc_weight: float = 0.3, max_segment_seconds: float = 30.0,
                 summary_window_seconds: float = 0.0, lm_train_config: Optional[str] = None,
                 lm_file: Optional[str] = None, lm_weight: float = 0.3, timestamps: bool = True,
                 cachedir: Optional[str] = None, segment_pause_seconds: float = 0.5,
                 summary_pause_seconds: float = 0.0, word_pause_seconds: float = 0.3):
        from espnet_summarymixing.longform.recognizer import LongFormRecognizer

        self.decoding = decoding
        self.max_segment_seconds = max_segment_seconds
        if (lm_train_config or lm_file) and decoding == "joint":
            raise CommandError("an LM is supported with --decoding beam (CTC prefix beam search), not joint")
        loaded = model_for(model, KINDS, cachedir, device, build=decoding != "joint")
        if decoding == "joint":
            from espnet2.bin.asr_inference import Speech2Text

            try:
                self.speech2text = Speech2Text(asr_train_config=loaded.source.train_config, asr_model_file=None,
                                               device=device, beam_size=beam_size, ctc_weight=ctc_weight, nbest=1)
                load_state(self.speech2text.asr_model, loaded.source.model_file, device)  # refuses code-running pickles
            except (OSError, ValueError, RuntimeError) as err:
                raise CommandError(f"cannot load the model: {err}") from None
            self.rate = sample_rate(self.speech2text.asr_train_args)
            return
        asr_model, args = loaded.model, loaded.train_args
        lm = None
        if lm_train_config or lm_file:
            try:
                lm = _espnet_lm(lm_train_config, lm_file, args.token_list, device)
            except (OSError, ValueError, RuntimeError) as err:
                raise CommandError(f"cannot load the LM: {err}") from None
        self.rate = sample_rate(args)
        try:
            self.recognizer = LongFormRecognizer(
                asr_model, args, self.rate, mode=mode, decoding=decoding, beam_size=beam_size, lm=lm,
                lm_weight=lm_weight, segment_seconds=max_segment_seconds,
                segment_pause_seconds=segment_pause_seconds, summary_window_seconds=summary_window_seconds,
                summary_pause_seconds=summary_pause_seconds, word_pause_seconds=word_pause_seconds,
                timestamps=timestamps,
            )
        except ValueError as err:
            raise CommandError(str(err)) from None

    def __call__(self, path: str, notes: Optional[List[str]] = None):
        """The transcript of one file; what was wrong with it but could be read is appended to
        ``notes`` (printed on stderr when ``notes`` is None)."""
        import torch

        from espnet_summarymixing.longform.recognizer import Transcript, quiet_cuts

        wave, rate, found = read_audio(path, self.rate)
        if rate < self.rate:
            found.append(f"{rate} Hz audio resampled to the model's {self.rate} Hz (the band above {rate // 2} Hz "
                         f"is empty: expect lower accuracy than on {self.rate} Hz recordings)")
        if notes is None:
            for note in found:
                print(f"{path}: note: {note}", file=sys.stderr)
        else:
            notes.extend(found)
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


def parser() -> argparse.ArgumentParser:
    """The command's options."""
    from espnet_summarymixing.longform.recognizer import MODES

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model(p, "model.zip, an unpacked model or exp dir, or a hub id")
    add_inputs(p)
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
    add_output(p, "text: write Kaldi '<key> <text>' lines to this file instead of stdout; json/srt/vtt: "
                  "the file of a single input")
    add_output_dir(p, "json/srt/vtt: write <file name or key>.<format> here (needed for several files)", old=())
    p.add_argument("--max_subtitle_chars", type=int, default=84, help="srt/vtt: longest subtitle")
    p.add_argument("--max_subtitle_seconds", type=float, default=7.0, help="srt/vtt: longest subtitle")
    p.add_argument("--subtitle_pause", type=float, default=0.5, help="srt/vtt: a pause this long ends a subtitle")
    p.add_argument("--cachedir", help="where archives are unpacked")
    return p


def _check(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    require(p, args, "model")
    if args.max_segment_seconds <= 2.0:
        p.error(f"--max_segment_seconds {args.max_segment_seconds}: must be more than 2 seconds")
    if args.beam_size < 1:
        p.error(f"--beam_size {args.beam_size}: must be at least 1")
    if args.output_format != "text" and args.decoding == "joint":
        p.error(f"--output_format {args.output_format} needs word timings: use --decoding beam or greedy "
                "(joint decoding gives text only)")
    if args.output_format == "text" and args.output_dir:
        p.error("--output_dir is for --output_format json/srt/vtt; text goes to stdout or --output")
    if args.output and args.output_dir:
        p.error("give --output or --output_dir, not both")


def _targets(entries: List[Entry], args) -> dict:
    """{input key: output file} of the timed formats' per-file outputs (empty otherwise), checked."""
    if args.output_format == "text" or not args.output_dir:
        return {}
    folder = check_folder(args.output_dir, "--output_dir")
    names = [(e.label(), f"{Path(e.path).name if e.key == e.path else e.key}.{args.output_format}")
             for e in entries]
    unique_targets(names, f"--output_dir {args.output_dir}")
    return {e.key: folder / name for e, (_, name) in zip(entries, names)}


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command; return its exit status."""
    p = parser()
    args = p.parse_args(argv)
    _check(p, args)
    return run(lambda: _transcribe(p, args))


def _transcribe(p: argparse.ArgumentParser, args) -> int:
    from espnet_summarymixing.longform.recognizer import Transcript
    from espnet_summarymixing.longform.subtitles import group_segments, render

    entries, bad = inputs_of(p, args)
    timed = args.output_format != "text"
    if timed and len(entries) > 1 and not args.output_dir:
        p.error(f"--output_format {args.output_format} with {len(entries)} files needs --output_dir")
    try:
        targets = _targets(entries, args)
        if timed:  # one recording's JSON or subtitles
            output = check_file(args.output, "--output") if args.output else None
        else:
            output = keyed_output(args.output, entries)
    except ValueError as err:
        raise CommandError(str(err)) from None
    report_lines(bad)
    out = sys.stdout
    lines: List[str] = []
    with quiet_startup(logging.WARNING):  # ESPnet's info and warning lines would drown the transcripts
        transcriber = Transcriber(
            args.model, args.device, args.mode, args.decoding, args.beam_size, args.ctc_weight,
            args.max_segment_seconds, args.summary_window_seconds, args.lm_train_config, args.lm_file,
            args.lm_weight, timestamps=timed, cachedir=args.cachedir,
            segment_pause_seconds=args.segment_pause_seconds, summary_pause_seconds=args.summary_pause_seconds,
            word_pause_seconds=args.word_pause_seconds,
        )

        def work(entry: Entry):
            notes: List[str] = []
            try:
                return transcriber(entry.path, notes)
            finally:
                for note in notes:
                    report(entry, "note", note)

        def done(entry: Entry, result) -> None:
            if not timed:
                if output is not None:
                    lines.append(f"{entry.key} {result.text}".rstrip() + "\n")
                else:
                    out.write(f"{entry.key}\t{result.text}\n")
                    out.flush()
                return
            if args.output_format == "json":
                segments = group_segments(result.words, args.subtitle_pause, 10**9, float("inf"))
                text = render(segments, "json", source=str(entry.path), duration=result.duration)
            else:
                segments = group_segments(result.words, args.subtitle_pause, args.max_subtitle_chars,
                                          args.max_subtitle_seconds)
                text = render(segments, args.output_format)
            target = targets.get(entry.key) or output
            if target is None:
                out.write(text)
                out.flush()
                return
            write_text(target, text)
            print(f"{entry.key}\t{target}", file=out, flush=True)

        failed = each_file(entries, work, done, short=lambda entry: Transcript(""))
    if output is not None and not timed:
        write_text(output, "".join(lines))
    return finish(failed + len(bad), len(entries) + len(bad))


if __name__ == "__main__":
    sys.exit(main())
