"""Pack a trained model into one zip (config, weights, the files they point to, model card).

    python -m espnet_summarymixing.pack --asr_train_config exp/asr/config.yaml \\
        --asr_model_file exp/asr/valid.acc.ave.pth --inference_config conf/decode_asr.yaml \\
        --results exp/asr/RESULTS.md --outpath exp/asr/model.zip

    python -m espnet_summarymixing.pack --classification_train_config exp/cls/config.yaml \\
        --classification_model_file exp/cls/valid.acc.best.pth --results exp/cls/RESULTS.md --outpath exp/cls/model.zip

An ASR zip loads with ``Speech2Text.from_pretrained("model.zip")``, a classifier's with
``Classification(**ModelDownloader().download_and_unpack("model.zip"))``; see
:mod:`espnet_summarymixing.publish.pack` for what goes in it.
"""

import argparse
import sys
from pathlib import Path

from espnet_summarymixing.publish.pack import pack_model

__all__ = ["main"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--asr_train_config", type=Path, help="an ASR model's config (or --classification_train_config)")
    p.add_argument("--asr_model_file", type=Path)
    p.add_argument("--classification_train_config", type=Path, help="a classifier's config (ESPnet's cls task)")
    p.add_argument("--classification_model_file", type=Path)
    p.add_argument("--inference_config", type=Path, help="decoding config to ship with the model")
    p.add_argument("--results", type=Path, help="RESULTS.md with the scoring tables, for the model card")
    p.add_argument("--training_data", help="one line describing the training data, for the model card")
    p.add_argument("--option", action="append", type=Path, default=[], help="any other file to pack")
    p.add_argument("--onnx_dir", type=Path, help="a folder written by python -m espnet_summarymixing.export, "
                                                 "packed and listed on the model card")
    p.add_argument("--outpath", required=True, type=Path)
    args = p.parse_args(argv)
    asr = args.asr_train_config is not None or args.asr_model_file is not None
    cls = args.classification_train_config is not None or args.classification_model_file is not None
    if asr == cls:
        p.error("give either --asr_train_config and --asr_model_file, or --classification_train_config "
                "and --classification_model_file")
    config, model = ((args.asr_train_config, args.asr_model_file) if asr
                     else (args.classification_train_config, args.classification_model_file))
    if config is None or model is None:
        p.error("the training config and the model file go together: give both")
    try:
        path = pack_model(config, model, args.outpath, args.inference_config, args.results, args.training_data,
                          args.option, args.onnx_dir, task="asr" if asr else "cls")
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"packed: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
