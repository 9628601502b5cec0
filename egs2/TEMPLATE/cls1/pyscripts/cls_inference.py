"""ESPnet's classification inference (``espnet2.bin.cls_inference``), batched: the same flags and the
same output files, with ``--batch_size`` clips per forward pass (ESPnet's refuses more than one). The
classification recipes' stage 7 (``cls.sh --inference_batch_size``) runs it from the recipe folder:

    python -m pyscripts.cls_inference --batch_size 32 --ngpu 0 \\
        --data_path_and_name_and_type dump/raw/test/wav.scp,speech,sound --key_file keys.scp \\
        --classification_train_config exp/cls_x/config.yaml \\
        --classification_model_file exp/cls_x/valid.acc.best.pth \\
        --output_dir out --output_all_probabilities true

``--also DATA,KEYS,OUTPUT_DIR`` (repeatable; KEYS may be empty) classifies one more set with the
same model, loaded once, as if the command had been run again with ``--data_path_and_name_and_type
DATA,speech,sound --key_file KEYS --output_dir OUTPUT_DIR``: stage 7 classifies every evaluation set
in one process per job, which saves ESPnet's imports (13-16 s of CPU here) for each further set.

Writes ``<output_dir>/prediction/{text,score,token}`` line for line as ESPnet's does: the label(s),
the probabilities (every class's with ``--output_all_probabilities true``, else the predicted
ones') and the class ids, per clip key. A clip too short for the front end and subsampling gets
ESPnet's line for it (no label, token ``-1``, score ``0``) and a warning. The clips are read by
ESPnet's own loader and preprocessing; their features are computed one clip at a time
(:func:`~espnet_summarymixing.classify.per_clip_frontend`), so a clip gets the probabilities a batch
of one gives (float rounding aside). The weights are read with ``weights_only=True``.
"""

import argparse
import logging
import sys
import time
from typing import Iterator, List, Optional, Tuple

from espnet_summarymixing.classify import Classifier
from espnet_summarymixing.cli.loop import CommandError, run, too_short
from espnet_summarymixing.loading.kinds import inspect_files

__all__ = ["main"]


def parser():
    """ESPnet's ``cls_inference`` parser (the same flags and defaults) and ``--also``."""
    from espnet2.bin.cls_inference import get_parser

    p = get_parser()
    p.add_argument("--also", action="append", default=[], type=_also, metavar="DATA,KEYS,OUTPUT_DIR",
                   help="one more set to classify with the same model: its wav.scp, key file (may be empty) "
                        "and output folder (repeatable)")
    return p


def _also(value: str) -> Tuple[str, Optional[str], str]:
    parts = value.split(",")
    if len(parts) != 3 or not parts[0] or not parts[2]:
        raise argparse.ArgumentTypeError(f"expected DATA,KEYS,OUTPUT_DIR (KEYS may be empty), got '{value}'")
    return parts[0], parts[1] or None, parts[2]


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command; return its exit status."""
    p = parser()
    args = p.parse_args(argv)
    if args.batch_size < 1:
        p.error(f"--batch_size {args.batch_size}: must be at least 1")
    if args.dtype != "float32":
        p.error(f"--dtype {args.dtype}: only float32 is supported")
    logging.basicConfig(level=args.log_level,
                        format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    return run(lambda: _infer(args))


def _infer(args) -> int:
    from espnet2.fileio.datadir_writer import DatadirWriter
    from espnet2.tasks.cls import CLSTask
    from espnet2.torch_utils.set_all_random_seed import set_all_random_seed

    set_all_random_seed(args.seed)
    try:
        source = inspect_files(args.classification_train_config, args.classification_model_file, task="cls")
    except (OSError, ValueError) as err:
        raise CommandError(f"cannot load the model: {err}") from None
    classifier = Classifier(source, "cuda" if args.ngpu >= 1 else "cpu")
    train_args = classifier.train_args
    sets = [(args.data_path_and_name_and_type, args.key_file, args.output_dir)]
    sets += [([(data, "speech", "sound")], keys, out) for data, keys, out in args.also]
    preprocess_fn, collate_fn = CLSTask.build_preprocess_fn(train_args, False), CLSTask.build_collate_fn(train_args, False)
    for data, key_file, output_dir in sets:
        loader = CLSTask.build_streaming_iterator(
            data, dtype=args.dtype, batch_size=1, key_file=key_file, num_workers=args.num_workers,
            preprocess_fn=preprocess_fn, collate_fn=collate_fn,
            allow_variable_data_keys=args.allow_variable_data_keys, inference=True)
        start, count = time.perf_counter(), 0
        with DatadirWriter(output_dir) as writer:
            for keys, waves in _batches(loader, args.batch_size):
                _write(writer["prediction"], keys, classifier.batch_scores(waves, args.batch_size), classifier, args)
                count += len(keys)
        seconds = time.perf_counter() - start
        logging.info(f"{output_dir}: classified {count} clips in {seconds:.1f} s "
                     f"({count / max(seconds, 1e-9):.1f} clips/s, batches of {args.batch_size})")
    return 0


def _batches(loader, size: int) -> Iterator[Tuple[List[str], list]]:
    """(keys, waveforms) of ``size`` clips at a time (fewer at the end) from ESPnet's one-clip loader."""
    keys: List[str] = []
    waves: list = []
    for batch_keys, batch in loader:
        keys.append(batch_keys[0])
        waves.append(batch["speech"][0])
        if len(keys) == size:
            yield keys, waves
            keys, waves = [], []
    if keys:
        yield keys, waves


def _write(result_writer, keys: List[str], results: list, classifier: Classifier, args) -> None:
    """ESPnet's lines for each clip (``espnet2.bin.cls_inference``: text, score, token)."""
    for key, scores in zip(keys, results):
        if isinstance(scores, Exception):
            if not too_short(scores):
                raise scores
            logging.warning(f"Utterance ['{key}'] {scores}")
            predictions, values, text = [-1], [0], ""
        else:
            if classifier.multi_label:
                predictions = (scores > 0.5).nonzero().squeeze(-1).tolist()
            else:
                predictions = [int(scores.argmax())]
            values = scores.tolist() if args.output_all_probabilities else [scores[i].item() for i in predictions]
            text = " ".join(classifier.labels[i] for i in predictions)
        result_writer["score"][key] = " ".join(str(v) for v in values)
        result_writer["token"][key] = " ".join(str(p) for p in predictions)
        result_writer["text"][key] = text


if __name__ == "__main__":
    sys.exit(main())
