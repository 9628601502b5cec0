#!/usr/bin/env python3
"""Train a sentencepiece model on the text column of a Kaldi ``text`` file (stage 5, ``--token_type bpe``).

    spm_train.py --text dump/raw/train_nodev/text --vocab_size 30 --model_type unigram \
        --model_prefix data/token_list/bpe_unigram30/bpe

writes ``<model_prefix>.model`` and ``.vocab``. Options mirror sentencepiece's trainer; ESPnet's recipes
use full character coverage and no extra symbols beyond ``--user_defined_symbols``.
"""

import argparse
import sys
import tempfile
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--text", type=Path, required=True, help="Kaldi text file: <utt-id> <transcript>")
    parser.add_argument("--vocab_size", type=int, required=True)
    parser.add_argument("--model_type", default="unigram", choices=["unigram", "bpe", "char", "word"])
    parser.add_argument("--model_prefix", type=Path, required=True)
    parser.add_argument("--character_coverage", type=float, default=1.0)
    parser.add_argument("--user_defined_symbols", default="", help="comma-separated symbols kept whole")
    args = parser.parse_args(argv)

    import sentencepiece as spm

    if not args.text.is_file():
        print(f"spm_train.py: {args.text}: no such file", file=sys.stderr)
        return 1
    lines = [line.split(maxsplit=1)[1] for line in args.text.read_text().splitlines() if len(line.split()) > 1]
    if not lines:
        print(f"spm_train.py: {args.text}: no transcript to train on", file=sys.stderr)
        return 1
    args.model_prefix.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(lines) + "\n")
    options = dict(
        input=f.name,
        vocab_size=args.vocab_size,
        model_type=args.model_type,
        model_prefix=str(args.model_prefix),
        character_coverage=args.character_coverage,
        input_sentence_size=100_000_000,
        shuffle_input_sentence=True,
        minloglevel=2,
    )
    if args.user_defined_symbols:
        options["user_defined_symbols"] = args.user_defined_symbols
    try:
        spm.SentencePieceTrainer.train(**options)
    except RuntimeError as e:  # e.g. vocab_size larger than the text allows
        print(f"spm_train.py: sentencepiece failed on {args.text} with vocab_size {args.vocab_size}: {e}",
              file=sys.stderr)
        return 1
    finally:
        Path(f.name).unlink()
    print(f"{args.model_prefix}.model: {args.vocab_size} pieces from {len(lines)} transcripts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
