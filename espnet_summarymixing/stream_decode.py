"""Streaming CTC recognition with a chunk-causal SummaryMixing Conformer.

    python -m espnet_summarymixing.stream_decode --model exp/asr/model.zip --chunk_size 8 long.wav
    python -m espnet_summarymixing.stream_decode --model exp/asr/model.zip --chunk_size 8 \
        --wav_scp dump/raw/test/wav.scp --output exp/asr/stream8/text      # a whole set, for scoring

The file is read as if it were live, ``--block_ms`` of audio at a time: features are computed as
soon as their STFT window is complete (identical to the offline frontend), encoded chunk by chunk
(:class:`~espnet_summarymixing.streaming.StreamingEncoder`) and decoded greedily with CTC; each
time the hypothesis grows, a partial line ``[12.34 s] TEXT`` is printed, then the final text and
the compute time per chunk. Memory stays constant whatever the length of the file. With
``--wav_scp`` every utterance of a Kaldi ``wav.scp`` is streamed the same way and the final texts
go to ``--output`` as ``<utt> <text>`` lines; ``--full_context`` decodes the same set offline (each
utterance encoded whole, same greedy CTC) for an offline-vs-streaming comparison of one model.
"""

import argparse
import contextlib
import logging
import sys
import time
from typing import List, Optional

import torch

from espnet_summarymixing.streaming import StreamingEncoder
from espnet_summarymixing.transcribe import sample_rate

__all__ = ["StreamingRecognizer", "main"]


class StreamingRecognizer:
    """Audio samples in, growing CTC greedy hypothesis out.

    Args:
        asr_train_config: ESPnet training config of a model whose encoder is a
            SummaryMixing encoder with ``chunk_conv: true`` or ``causal_conv: true``.
        asr_model_file: Its checkpoint.
        chunk_size: Encoder frames per chunk (default: the encoder's ``decode_chunk_size``).
        device: torch device.
        offline_only: Only :meth:`decode_offline` will be used: any ESPnet ASR model with a CTC
            branch is accepted (an offline-trained SummaryMixing or self-attention model), so that
            it can be compared with a streaming model under the same greedy CTC decoding.
    """

    def __init__(self, asr_train_config: str, asr_model_file: str, chunk_size: Optional[int] = None,
                 device: str = "cpu", offline_only: bool = False):
        from espnet2.asr.frontend.default import DefaultFrontend
        from espnet2.layers.utterance_mvn import UtteranceMVN
        from espnet2.tasks.asr import ASRTask
        from espnet2.text.build_tokenizer import build_tokenizer
        from espnet2.text.token_id_converter import TokenIDConverter

        model, args = ASRTask.build_model_from_file(asr_train_config, asr_model_file, device)
        self.model = model.eval()
        if model.ctc is None:
            raise ValueError("the model has no CTC branch (ctc_weight 0): greedy CTC decoding needs one")
        self.offline_only = offline_only
        self.converter = TokenIDConverter(token_list=args.token_list)
        self.tokenizer = build_tokenizer(token_type=args.token_type, bpemodel=args.bpemodel)
        self.rate = sample_rate(args)
        if offline_only:
            self.encoder = None
            self.reset()
            return
        if not isinstance(model.frontend, DefaultFrontend) or model.frontend.stft is None:
            raise ValueError("streaming needs ESPnet's default STFT frontend")
        if isinstance(model.normalize, UtteranceMVN):
            raise ValueError(
                "normalize: utterance_mvn needs the whole utterance; train the streaming model with "
                "global_mvn (or no normalisation)"
            )
        self.encoder = StreamingEncoder(model.encoder, chunk_size, ctc=model.ctc)
        stft = model.frontend.stft
        if not stft.center:
            raise ValueError("streaming expects the frontend's STFT with center=True (ESPnet's default)")
        self.n_fft, self.hop = stft.n_fft, stft.hop_length
        self.reset()

    def reset(self) -> None:
        """Start a new utterance."""
        if self.encoder is not None:
            self.encoder.reset()
        self.audio = torch.zeros(0)  # samples from sample index self.audio_start on
        self.audio_start = 0
        self.next_frame = 0  # first feature frame not computed yet
        self.token_ids: List[int] = []
        self.previous = 0  # last CTC label, carried across chunks (0 = blank)
        self.chunk_seconds: List[float] = []

    def _features(self, final: bool) -> torch.Tensor:
        """Feature frames that the audio so far determines exactly (all of them when final)."""
        half, hop = self.n_fft // 2, self.hop
        total = self.audio_start + self.audio.numel()
        last = total // hop if final else (total - half) // hop  # frame t needs samples < t*hop + half
        if last < self.next_frame or self.audio.numel() == 0:
            return torch.zeros(1, 0, 1)
        context = -(-half // hop)  # frames whose left edge the segment's own padding would corrupt
        first = max(0, self.next_frame - context)
        start = first * hop
        segment = self.audio[start - self.audio_start:]
        with torch.no_grad():
            feats, _ = self.model.frontend(segment[None], torch.tensor([segment.numel()]))
            if self.model.normalize is not None:
                feats, _ = self.model.normalize(feats, torch.tensor([feats.size(1)]))
        begin = self.next_frame - first
        feats = feats[:, begin:begin + last - self.next_frame + 1]
        self.next_frame += feats.size(1)
        keep_from = max(0, (self.next_frame - context) * hop)  # where the next segment starts
        if keep_from > self.audio_start:
            self.audio = self.audio[keep_from - self.audio_start:]
            self.audio_start = keep_from
        return feats

    def _decode(self, enc: torch.Tensor) -> None:
        if enc.size(1) == 0:
            return
        with torch.no_grad():
            best = self.model.ctc.argmax(enc)[0].tolist()
        for label in best:
            if label != 0 and label != self.previous:
                self.token_ids.append(label)
            self.previous = label

    def text(self) -> str:
        """The hypothesis so far."""
        tokens = self.converter.ids2tokens(self.token_ids)
        return self.tokenizer.tokens2text(tokens)

    def accept_audio(self, samples: torch.Tensor) -> str:
        """Add mono samples at the model's rate; return the current hypothesis."""
        if self.offline_only:
            raise ValueError("this recognizer was built with offline_only=True: use decode_offline")
        self.audio = torch.cat([self.audio, samples.float().reshape(-1)])
        feats = self._features(final=False)
        if feats.size(1):
            start = time.perf_counter()
            enc = self.encoder.accept(feats)
            self._decode(enc)
            if enc.size(1):
                self.chunk_seconds.append((time.perf_counter() - start) * self.encoder.chunk_size / enc.size(1))
        return self.text()

    def decode_offline(self, samples: torch.Tensor) -> str:
        """The greedy CTC text of a whole utterance encoded at once with full context."""
        self.reset()
        encoder = self.model.encoder
        saved = getattr(encoder, "decode_chunk_size", None)
        if saved is not None:
            encoder.decode_chunk_size = 0
        try:
            with torch.no_grad():
                wave = samples.float().reshape(1, -1)
                enc, _ = self.model.encode(wave, torch.tensor([wave.size(1)]))
        finally:
            if saved is not None:
                encoder.decode_chunk_size = saved
        if isinstance(enc, tuple):  # with intermediate CTC: (output, intermediate outputs)
            enc = enc[0]
        self._decode(enc)
        return self.text()

    def stream(self, samples: torch.Tensor, block: int, on_partial=None) -> str:
        """Feed a whole utterance ``block`` samples at a time, as if live; return the final text."""
        self.reset()
        shown = ""
        for start in range(0, samples.numel(), block):
            text = self.accept_audio(samples[start:start + block])
            if on_partial is not None and text != shown:
                shown = text
                on_partial(min(samples.numel(), start + block) / self.rate, text)
        return self.finish()

    def finish(self) -> str:
        """End of the audio: decode what remains; return the final hypothesis."""
        feats = self._features(final=True)
        if feats.size(1):
            self._decode(self.encoder.accept(feats))
        self._decode(self.encoder.finish())
        return self.text()


def _compute_summary(chunk_seconds: List[float]) -> str:
    ms = sorted(1000 * s for s in chunk_seconds)
    return f"compute per chunk: median {ms[len(ms) // 2]:.1f} ms, max {ms[-1]:.1f} ms over {len(ms)} steps"


def _decode_set(rec: StreamingRecognizer, args, load_audio) -> int:
    """Stream (or, with --full_context, decode offline) every utterance of --wav_scp into --output."""
    from pathlib import Path

    entries = [line.split(maxsplit=1) for line in Path(args.wav_scp).read_text().splitlines() if line.strip()]
    block = max(1, int(rec.rate * args.block_ms / 1000))
    lines, chunk_seconds, audio_seconds, compute = [], [], 0.0, 0.0
    for i, (utt, path) in enumerate(entries, 1):
        wave = load_audio(path.strip(), rec.rate)
        start = time.perf_counter()
        text = rec.decode_offline(wave) if args.full_context else rec.stream(wave, block)
        compute += time.perf_counter() - start
        audio_seconds += wave.numel() / rec.rate
        chunk_seconds += rec.chunk_seconds
        lines.append(f"{utt} {text}".rstrip() + "\n")
        if i % max(1, len(entries) // 10) == 0 or i == len(entries):
            print(f"stream_decode: {i}/{len(entries)} utterances", file=sys.stderr, flush=True)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text("".join(sorted(lines)))
    mode = "offline, full context" if args.full_context else f"streaming, chunk {rec.encoder.chunk_size}"
    print(f"{args.output}: {len(lines)} utterances ({mode}), real-time factor {compute / audio_seconds:.3f}",
          file=sys.stderr)
    if chunk_seconds:
        print(_compute_summary(chunk_seconds), file=sys.stderr)
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="model.zip, an unpacked model or exp dir")
    p.add_argument("file", nargs="?", help="audio file, read as if it were live")
    p.add_argument("--wav_scp", help="decode every utterance of this Kaldi wav.scp instead of one file")
    p.add_argument("--output", help="with --wav_scp: the text file of hypotheses to write")
    p.add_argument("--full_context", action="store_true",
                   help="with --wav_scp: encode each utterance whole (offline) instead of streaming it; "
                        "any ESPnet ASR model with CTC, streamable or not")
    p.add_argument("--chunk_size", type=int, help="encoder frames per chunk (default: decode_chunk_size)")
    p.add_argument("--block_ms", type=float, default=100.0, help="audio arriving per step, in ms")
    p.add_argument("--device", default="cpu")
    p.add_argument("--cachedir")
    args = p.parse_args(argv)
    if (args.file is None) == (args.wav_scp is None):
        p.error("give either one audio file or --wav_scp")
    if args.wav_scp is not None and args.output is None:
        p.error("--wav_scp needs --output")
    if args.full_context and args.wav_scp is None:
        p.error("--full_context only applies with --wav_scp")
    from espnet_summarymixing.transcribe import load_audio, resolve_model

    logging.disable(logging.WARNING)
    out = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        try:
            files = resolve_model(args.model, args.cachedir)
            rec = StreamingRecognizer(files["asr_train_config"], files["asr_model_file"], args.chunk_size,
                                      args.device, offline_only=args.full_context)
            if args.wav_scp is not None:
                return _decode_set(rec, args, load_audio)
            wave = load_audio(args.file, rec.rate)
        except (FileNotFoundError, ValueError, RuntimeError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2

        def partial(seconds, text):
            print(f"[{seconds:7.2f} s] {text}", file=out, flush=True)

        final = rec.stream(wave, max(1, int(rec.rate * args.block_ms / 1000)), partial)
        print(final, file=out, flush=True)
        if rec.chunk_seconds:
            print(_compute_summary(rec.chunk_seconds), file=sys.stderr)
    return 0

if __name__ == "__main__":
    sys.exit(main())
