"""Export a trained ASR model to ONNX files that recognise speech with onnxruntime alone.

    python -m espnet_summarymixing.export --model exp/asr_train/model.zip --output_dir onnx_model [--quantize int8]
    python -m espnet_summarymixing.onnx_transcribe --model onnx_model a.wav b.flac

The graph takes the waveform (the front end is in the graph) and returns CTC log-probabilities;
see :mod:`espnet_summarymixing.deploy.export` for the files written and the check every export
passes. The folder is written whole or not at all: built beside the target, then put in its place
(an earlier export there is replaced whole; a folder holding anything else is refused unless
``--force``). Exit status: 0 done, 2 the model cannot be
loaded or exported (the message says why; a classifier or an ONNX folder is refused in one line).
"""

import argparse
import logging
import sys
from typing import List, Optional

from espnet_summarymixing.cli.loop import CommandError, run
from espnet_summarymixing.cli.models import model_for
from espnet_summarymixing.cli.options import add_model, add_output_dir
from espnet_summarymixing.cli.outputs import check_folder
from espnet_summarymixing.cli.quiet import quiet_startup

__all__ = ["main"]

CALIBRATION_FILES = 100  # static quantisation: files of --calibration used (spread over the list)
ADVICE = {"classifier": "ONNX export is for ASR models; use python -m espnet_summarymixing.classify",
          "onnx": "already exported; use python -m espnet_summarymixing.onnx_transcribe"}


def parser() -> argparse.ArgumentParser:
    """The command's options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model(p, "model.zip, an unpacked model, a training folder or a hub id")
    p.add_argument("--asr_train_config", help="instead of --model: a training config.yaml (with --asr_model_file)")
    p.add_argument("--asr_model_file", help="the checkpoint to export with --asr_train_config")
    add_output_dir(p, "folder to write the ONNX model into")
    p.add_argument("--quantize", choices=["int8"], help="also write model.int8.onnx (8-bit weights)")
    p.add_argument("--calibration", metavar="LIST",
                   help="with --quantize int8: audio (a wav.scp or a list of files) to measure activation ranges "
                        "on, for static quantisation (int8 activations too: faster than float32 on a CPU); "
                        f"up to {CALIBRATION_FILES} files spread over the list are used")
    p.add_argument("--streaming", action="store_true", help="also export the chunk-by-chunk graph")
    p.add_argument("--chunk_size", type=int, help="streaming: frames after subsampling per chunk")
    p.add_argument("--tolerance", type=float, default=1e-3,
                   help="largest accepted |onnxruntime - PyTorch| of the log-probabilities in the check")
    p.add_argument("--force", action="store_true",
                   help="replace --output_dir even if it holds files that are not an earlier export")
    p.add_argument("--cachedir", help="where archives are unpacked")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command; return its exit status."""
    p = parser()
    args = p.parse_args(argv)
    if (args.model is None) == (args.asr_train_config is None):
        p.error("give --model, or --asr_train_config with --asr_model_file")
    if bool(args.asr_train_config) != bool(args.asr_model_file):
        p.error("--asr_train_config and --asr_model_file go together")
    if args.output_dir is None:
        p.error("the following arguments are required: --output_dir")
    if args.chunk_size is not None and not args.streaming:
        p.error(f"--chunk_size {args.chunk_size} is for the streaming graph: add --streaming")
    if args.calibration is not None and args.quantize != "int8":
        p.error(f"--calibration {args.calibration} is for static quantisation: add --quantize int8")
    if args.chunk_size is not None and args.chunk_size < 1:
        p.error(f"--chunk_size {args.chunk_size}: must be at least 1")
    if not 0 < args.tolerance < float("inf"):  # nan too: it would turn the check off
        p.error(f"--tolerance {args.tolerance}: must be a positive finite number")
    return run(lambda: _export(args))


def _export(args) -> int:
    from espnet_summarymixing.loading.kinds import inspect_files
    from espnet_summarymixing.loading.models import file_sha256

    from espnet_summarymixing.deploy.export import ExportError, check_target, missing_modules

    try:
        check_folder(args.output_dir, "--output_dir")
        check_target(args.output_dir, args.force)
    except (ValueError, ExportError) as err:
        raise CommandError(str(err)) from None
    missing = missing_modules(args.quantize)
    if missing:
        raise CommandError(f"the export needs {', '.join(missing)}: pip install 'espnet-summarymixing[onnx]'")
    calibration = None
    if args.calibration is not None:
        from espnet_summarymixing.cli.inputs import read_list

        try:
            entries, bad = read_list(args.calibration)
        except OSError as err:
            raise CommandError(f"--calibration {args.calibration}: {err.strerror or err}") from None
        if bad or not entries:
            raise CommandError(bad[0] if bad else f"--calibration {args.calibration}: no audio file listed")
        step = max(1, len(entries) // CALIBRATION_FILES)
        calibration = [entry.path for entry in entries[::step][:CALIBRATION_FILES]]
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # e.g. "torchvision is not installed" per op
    with quiet_startup(logging.INFO):
        model = args.model
        if model is None:
            try:
                model = inspect_files(args.asr_train_config, args.asr_model_file, "asr")
            except (OSError, ValueError) as err:
                raise CommandError(f"cannot load the model: {err}") from None
        loaded = model_for(model, ("asr", "streaming"), args.cachedir, advice=ADVICE)
        from espnet_summarymixing.deploy.export import export_model

        source = {"model": str(args.model or args.asr_model_file),
                  "weights_sha256": file_sha256(loaded.source.model_file)}
        try:
            manifest = export_model(loaded.model, loaded.train_args, args.output_dir, source, quantize=args.quantize,
                                    tolerance=args.tolerance, streaming=args.streaming, chunk_size=args.chunk_size,
                                    force=args.force, calibration=calibration)
        except (OSError, ExportError, ValueError) as err:
            raise CommandError(str(err)) from None
        except Exception as err:  # e.g. onnxruntime refusing the graph: one line, never a traceback
            first = (str(err).strip().splitlines() or [""])[0]
            raise CommandError(f"the export failed ({type(err).__name__}: {first}); nothing was written to "
                               f"{args.output_dir}: please report it") from None
    print(manifest.parent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
