"""Pack a trained model into one zip (config, weights, the files they point to, model card).

    python -m espnet_summarymixing.pack --asr_train_config exp/asr/config.yaml \\
        --asr_model_file exp/asr/valid.acc.ave.pth --inference_config conf/decode_asr.yaml \\
        --results exp/asr/RESULTS.md --outpath exp/asr/model.zip

The zip loads with ``Speech2Text.from_pretrained("model.zip")``; see
:mod:`espnet_summarymixing.publish.pack` for what goes in it.
"""

import argparse
import sys
from pathlib import Path

from espnet_summarymixing.publish.pack import pack_model

__all__ = ["main"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--asr_train_config", required=True, type=Path)
    p.add_argument("--asr_model_file", required=True, type=Path)
    p.add_argument("--inference_config", type=Path, help="decoding config to ship with the model")
    p.add_argument("--results", type=Path, help="RESULTS.md with the scoring tables, for the model card")
    p.add_argument("--training_data", help="one line describing the training data, for the model card")
    p.add_argument("--option", action="append", type=Path, default=[], help="any other file to pack")
    p.add_argument("--onnx_dir", type=Path, help="a folder written by python -m espnet_summarymixing.export, "
                                                 "packed and listed on the model card")
    p.add_argument("--outpath", required=True, type=Path)
    args = p.parse_args(argv)
    try:
        path = pack_model(args.asr_train_config, args.asr_model_file, args.outpath, args.inference_config,
                          args.results, args.training_data, args.option, args.onnx_dir)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"packed: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
