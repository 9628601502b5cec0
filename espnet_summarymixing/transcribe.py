"""Transcribe audio files of any length with a packed, unpacked or hub-hosted ESPnet ASR model.

    python -m espnet_summarymixing.transcribe --model exp/asr/model.zip a.wav b.flac c.sph
    python -m espnet_summarymixing.transcribe --model model.zip --output_format srt --output_dir subs lecture.flac

How a file is decoded (``--verbose`` says it, per file):

- **Decoding** (``--decoding auto``): text output from a model with an attention decoder is decoded
  as its recipe did, by ESPnet's joint CTC/attention beam search (``Speech2Text``) with the beam
  size, CTC weight and length settings of the decoding config packed with it (``pack
  --inference_config``); options given override them. Timed output (json/srt/vtt), an LM
  (``--lm_train_config/--lm_file``) or a CTC-only model use CTC prefix beam search, the words timed
  by CTC segmentation. ``--decoding greedy`` is the best CTC path.
- **Length** (``--mode auto``): a file of at most ``--max_segment_seconds`` (30 s) is decoded whole,
  as the model was trained. A longer one is encoded in one pass (front end and subsampling in
  blocks, :mod:`espnet_summarymixing.longform`), whose CTC decoding finds the pauses; it is cut in
  the middle of every pause longer than ``--segment_pause_seconds`` (pieces still too long also at
  their quietest moments) and the pieces are encoded one by one, which measured best with models
  trained on single utterances (docs/long_recordings.md). ``--mode one_pass`` keeps the single pass
  (optionally with a summary over a sliding window or per pause-delimited stretch); joint decoding
  cuts long files at quiet moments.

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
from espnet_summarymixing.cli.outputs import check_folder, keyed_output, unique_targets, write_text
from espnet_summarymixing.cli.quiet import quiet_startup
from espnet_summarymixing.loading.audio import read_audio
from espnet_summarymixing.loading.models import load_state, sample_rate

__all__ = ["Transcriber", "main"]

DECODINGS = ("auto", "beam", "greedy", "joint")
# what transcribe reads from a packed decoding config, and ESPnet's defaults of the same
DECODE_DEFAULTS = {"beam_size": 10, "ctc_weight": 0.3, "lm_weight": 0.3, "penalty": 0.0, "maxlenratio": 0.0,
                   "minlenratio": 0.0}
DECODE_KEYS = tuple(DECODE_DEFAULTS)
OUTPUT_FORMATS = ("text", "json", "srt", "vtt")
KINDS = ("asr", "streaming")  # a streaming-trained model decodes offline too


class Transcriber:
    """A model loaded once, called on files: ``transcriber(path) -> Transcript`` (text, timed words).

    ``model``: the model as ``--model`` takes it; the other arguments mirror the command's options.
    Decoding settings left as None come from the model's packed decoding config (``beam_size``,
    ``ctc_weight``, ``lm_weight``, ``penalty``, ``maxlenratio``, ``minlenratio``: what its recipe
    decoded with), else ESPnet's defaults. ``decoding="auto"``: ESPnet's joint CTC/attention beam
    search (``Speech2Text``, as the recipe decodes) where the model has an attention decoder, the CTC
    weight is below 1, and neither timings nor an LM are asked for; CTC prefix beam search
    otherwise (and for files longer than ``max_segment_seconds``). ``joint`` decoding works on pieces of at most ``max_segment_seconds`` and gives text
    without timings. ``mode="auto"``: a file of at most ``max_segment_seconds`` is decoded whole,
    a longer one in pieces cut at its pauses. Raises
    :class:`~espnet_summarymixing.cli.loop.CommandError` for a model that cannot be loaded or is not
    an ASR model.
    """

    def __init__(self, model: str, device: str = "cpu", mode: str = "auto", decoding: str = "auto",
                 beam_size: Optional[int] = None, ctc_weight: Optional[float] = None,
                 max_segment_seconds: float = 30.0, summary_window_seconds: float = 0.0,
                 lm_train_config: Optional[str] = None, lm_file: Optional[str] = None,
                 lm_weight: Optional[float] = None, timestamps: bool = True, cachedir: Optional[str] = None,
                 segment_pause_seconds: float = 0.5, summary_pause_seconds: float = 0.0,
                 word_pause_seconds: float = 0.3):
        from espnet_summarymixing.longform.recognizer import LongFormRecognizer

        self.verbose = False  # a note per file on how it was decoded
        self.max_segment_seconds = max_segment_seconds
        if (lm_train_config or lm_file) and decoding == "joint":
            raise CommandError("an LM is supported with --decoding beam (CTC prefix beam search), not joint")
        source = model_for(model, KINDS, cachedir, device, build=False).source
        packed = {k: v for k, v in source.decode_config.items() if k in DECODE_KEYS}
        given = {"beam_size": beam_size, "ctc_weight": ctc_weight, "lm_weight": lm_weight}
        self.settings = {**DECODE_DEFAULTS, **packed, **{k: v for k, v in given.items() if v is not None}}
        self.settings_from = {k: ("option" if given.get(k) is not None else "packed decode config" if k in packed
                                  else "default") for k in self.settings}
        lm_given = bool(lm_train_config or lm_file)
        if decoding == "auto":  # joint for short files where the recipe would decode so, else CTC beam
            attention = str(source.config.get("decoder") or "none") != "none"
            joint = attention and self.settings["ctc_weight"] < 1.0 and not timestamps and not lm_given
            self.joint_seconds = max_segment_seconds if joint else 0.0
        else:
            self.joint_seconds = float("inf") if decoding == "joint" else 0.0
        self.decoding = decoding
        ctc_decoding = "greedy" if decoding == "greedy" else "beam"
        if self.joint_seconds:
            from espnet2.bin.asr_inference import Speech2Text

            options = {k: self.settings[k] for k in ("beam_size", "ctc_weight", "penalty", "maxlenratio",
                                                     "minlenratio")}
            try:
                self.speech2text = Speech2Text(asr_train_config=source.train_config, asr_model_file=None,
                                               device=device, nbest=1, **options)
                load_state(self.speech2text.asr_model, source.model_file, device)  # refuses code-running pickles
            except (OSError, ValueError, RuntimeError) as err:
                raise CommandError(f"cannot load the model: {err}") from None
            asr_model, args = self.speech2text.asr_model, self.speech2text.asr_train_args
        else:
            loaded = model_for(source, KINDS, cachedir, device)
            asr_model, args = loaded.model, loaded.train_args
        self.rate = sample_rate(args)
        self.recognizer = None
        if self.joint_seconds == float("inf"):
            return
        lm = None
        if lm_given:
            try:
                lm = _espnet_lm(lm_train_config, lm_file, args.token_list, device)
            except (OSError, ValueError, RuntimeError) as err:
                raise CommandError(f"cannot load the LM: {err}") from None
        try:
            self.recognizer = LongFormRecognizer(
                asr_model, args, self.rate, mode=mode, decoding=ctc_decoding, beam_size=self.settings["beam_size"],
                lm=lm, lm_weight=self.settings["lm_weight"], segment_seconds=max_segment_seconds,
                segment_pause_seconds=segment_pause_seconds, summary_window_seconds=summary_window_seconds,
                summary_pause_seconds=summary_pause_seconds, word_pause_seconds=word_pause_seconds,
                timestamps=timestamps,
            )
        except ValueError as err:
            raise CommandError(str(err)) from None

    def _settings(self, keys) -> str:
        return ", ".join(f"{k} {self.settings[k]:g} ({self.settings_from[k]})" for k in keys)

    def describe(self) -> str:
        """The decoding and its settings, each with where it came from (``--verbose``)."""
        joint = ("joint CTC/attention beam search (ESPnet's Speech2Text; "
                 + self._settings(("beam_size", "ctc_weight", "penalty", "maxlenratio", "minlenratio")) + ")")
        ctc = ("greedy CTC" if self.decoding == "greedy"
               else "CTC prefix beam search (" + self._settings(("beam_size", "lm_weight")) + ")")
        if self.joint_seconds == float("inf"):
            return f"decoding: {joint}"
        if self.joint_seconds:
            return f"decoding: files of at most {self.joint_seconds:g} s by {joint}; longer ones by {ctc}"
        return f"decoding: {ctc}"

    def mode_for(self, samples: int) -> str:
        """How a file of ``samples`` samples is decoded, in words (``--verbose``)."""
        if samples <= self.joint_seconds * self.rate:
            pieces = samples > self.max_segment_seconds * self.rate
            return "joint CTC/attention, " + ("in pieces cut at quiet moments" if pieces else "whole")
        kind = "greedy CTC" if self.decoding == "greedy" else "CTC prefix beam search"
        mode = self.recognizer.mode_for(samples)
        return f"{kind}, " + ("whole (one pass)" if mode == "one_pass" else "in pieces cut at its pauses (segmented)")

    def __call__(self, path: str, notes: Optional[List[str]] = None):
        """The transcript of one file; what was wrong with it but could be read is appended to
        ``notes`` (printed on stderr when ``notes`` is None)."""
        import torch

        from espnet_summarymixing.longform.recognizer import Transcript, quiet_cuts

        wave, rate, found = read_audio(path, self.rate)
        if rate < self.rate:
            found.append(f"{rate} Hz audio resampled to the model's {self.rate} Hz (the band above {rate // 2} Hz "
                         f"is empty: expect lower accuracy than on {self.rate} Hz recordings)")
        if self.verbose:
            found.append(f"{wave.numel() / self.rate:.1f} s, decoded {self.mode_for(wave.numel())}")
        if notes is None:
            for note in found:
                print(f"{path}: note: {note}", file=sys.stderr)
        else:
            notes.extend(found)
        if wave.numel() > self.joint_seconds * self.rate:
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
    p.add_argument("--mode", choices=MODES, default="auto",
                   help="auto: a file of at most --max_segment_seconds whole, a longer one segmented; "
                        "segmented: pieces cut at the pauses a first one-pass decoding finds, encoded one by one; "
                        "one_pass: the whole recording through the encoder at once")
    p.add_argument("--decoding", choices=DECODINGS, default="auto",
                   help="auto: joint for text output from a model with an attention decoder (and a CTC weight "
                        "below 1), else beam; beam: CTC prefix beam search; greedy: best CTC path; joint: "
                        "ESPnet's joint CTC/attention beam search, as recipes decode (text only)")
    p.add_argument("--beam_size", type=int, help="default: the packed decoding config's, else 10")
    p.add_argument("--ctc_weight", type=float,
                   help="joint decoding: weight of CTC (default: the packed decoding config's, else 0.3)")
    p.add_argument("--lm_train_config", help="ESPnet LM config (beam decoding), trained on the model's tokens")
    p.add_argument("--lm_file", help="ESPnet LM weights")
    p.add_argument("--lm_weight", type=float, help="default: the packed decoding config's, else 0.3")
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
    p.add_argument("--verbose", action="store_true",
                   help="say on stderr how the files are decoded: the decoding, its settings and where they "
                        "come from, and per file whether it was decoded whole or in pieces")
    return p


def _check(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Every value, before the model is loaded (argparse's usage error, exit status 2)."""
    import math

    require(p, args, "model")
    if not 2.0 < args.max_segment_seconds <= 3600:  # nan and inf too
        p.error(f"--max_segment_seconds {args.max_segment_seconds}: must be more than 2 seconds, at most an hour")
    for name in ("segment_pause_seconds", "summary_pause_seconds", "word_pause_seconds", "summary_window_seconds",
                 "subtitle_pause", "lm_weight"):
        value = getattr(args, name)
        if value is not None and not (math.isfinite(value) and value >= 0):
            p.error(f"--{name} {value}: must be a finite number, 0 or more")
    if args.ctc_weight is not None and not 0.0 <= args.ctc_weight <= 1.0:
        p.error(f"--ctc_weight {args.ctc_weight}: must be from 0 to 1")
    if args.max_subtitle_chars < 1:
        p.error(f"--max_subtitle_chars {args.max_subtitle_chars}: must be at least 1")
    if not 0 < args.max_subtitle_seconds < float("inf"):
        p.error(f"--max_subtitle_seconds {args.max_subtitle_seconds}: must be a positive finite number")
    if args.beam_size is not None and args.beam_size < 1:
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
            output = keyed_output(args.output, entries, args.list)
        else:
            output = keyed_output(args.output, entries, args.list)
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
        transcriber.verbose = args.verbose
        if args.verbose:
            print(f"transcribe: {transcriber.describe()}", file=sys.stderr, flush=True)

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
