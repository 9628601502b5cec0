"""Pack a trained model into one zip (config, weights, the files they point to, model card).

    python -m espnet_summarymixing.pack --model exp/asr_train --inference_config conf/decode_asr.yaml \\
        --results exp/asr_train/RESULTS.md --output exp/asr_train/model.zip

    python -m espnet_summarymixing.pack --asr_train_config exp/asr/config.yaml \\
        --asr_model_file exp/asr/valid.acc.ave.pth --output exp/asr/model.zip
    python -m espnet_summarymixing.pack --classification_train_config exp/cls/config.yaml \\
        --classification_model_file exp/cls/valid.acc.best.pth --results exp/cls/RESULTS.md --output exp/cls/model.zip

``--model`` is a training folder (``config.yaml`` and a checkpoint); whether it is an ASR model or a
classifier is read from its config. An ASR zip loads with ``Speech2Text.from_pretrained("model.zip")``,
a classifier's with ``Classification(**ModelDownloader().download_and_unpack("model.zip"))``; see
:mod:`espnet_summarymixing.publish.pack` for what goes in it. Exit status: 0 packed, 2 not (the
message says why).
"""

import argparse
import sys
from pathlib import Path
from typing import List, Optional

from espnet_summarymixing.cli.loop import CommandError, run
from espnet_summarymixing.cli.models import model_for
from espnet_summarymixing.cli.options import add_model, add_output, require
from espnet_summarymixing.cli.outputs import check_file
from espnet_summarymixing.cli.quiet import quiet_startup

__all__ = ["main"]

ADVICE = {"onnx": "pack it with its model: python -m espnet_summarymixing.pack --model <training folder> "
                  "--onnx_dir <this folder>"}


def parser() -> argparse.ArgumentParser:
    """The command's options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model(p, "a training folder (config.yaml and a checkpoint): an ASR model or a classifier", old=())
    p.add_argument("--asr_train_config", type=Path, help="instead of --model: an ASR model's config")
    p.add_argument("--asr_model_file", type=Path)
    p.add_argument("--classification_train_config", type=Path, help="instead of --model: a classifier's config")
    p.add_argument("--classification_model_file", type=Path)
    p.add_argument("--inference_config", type=Path, help="decoding config to ship with the model")
    p.add_argument("--results", type=Path, help="RESULTS.md with the scoring tables, for the model card")
    p.add_argument("--training_data", help="one line describing the training data, for the model card")
    p.add_argument("--option", action="append", type=Path, default=[], help="any other file to pack")
    p.add_argument("--onnx_dir", type=Path, help="a folder written by python -m espnet_summarymixing.export, "
                                                 "packed and listed on the model card")
    add_output(p, "the zip to write", old=("--outpath",))
    return p


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command; return its exit status."""
    p = parser()
    args = p.parse_args(argv)
    require(p, args, "output")
    asr = args.asr_train_config is not None or args.asr_model_file is not None
    cls = args.classification_train_config is not None or args.classification_model_file is not None
    if (args.model is not None) + asr + cls != 1:
        p.error("give --model (a training folder), or --asr_train_config and --asr_model_file, or "
                "--classification_train_config and --classification_model_file")
    if asr and (args.asr_train_config is None or args.asr_model_file is None) or \
            cls and (args.classification_train_config is None or args.classification_model_file is None):
        p.error("the training config and the model file go together: give both")
    return run(lambda: _pack(args, "cls" if cls else "asr" if asr else None))


def _pack(args, task: Optional[str]) -> int:
    from espnet_summarymixing.loading.kinds import inspect_files
    from espnet_summarymixing.publish.pack import pack_model

    try:
        check_file(str(args.output), "--output")
    except ValueError as err:
        raise CommandError(str(err)) from None
    if args.model is not None:
        source = model_for(args.model, ("asr", "streaming", "classifier"), build=False, advice=ADVICE).source
        if source.form != "training folder":
            raise CommandError(f"{args.model} is already packed ({source.form}): use python -m "
                               "espnet_summarymixing.upload to publish it")
    else:
        config, model = ((args.asr_train_config, args.asr_model_file) if task == "asr"
                         else (args.classification_train_config, args.classification_model_file))
        try:
            source = inspect_files(str(config), str(model), task)
        except (OSError, ValueError) as err:
            raise CommandError(f"pack: {err}") from None
    if args.onnx_dir is not None and source.task != "asr":
        raise CommandError(f"--onnx_dir {args.onnx_dir}: ONNX files are packed with ASR models; "
                           f"{source.given} is {source.description}")
    try:
        with quiet_startup():
            path = pack_model(Path(source.train_config), Path(source.model_file), Path(args.output),
                              args.inference_config, args.results, args.training_data, args.option, args.onnx_dir,
                              task=source.task)
    except (OSError, ValueError) as err:
        raise CommandError(str(err)) from None
    print(f"packed: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
