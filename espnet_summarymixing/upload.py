"""Upload a packed model (an ASR model or a classifier) to the Hugging Face Hub, with a generated model card.

    python -m espnet_summarymixing.upload --model exp/asr/model.zip --repo user/name
    python -m espnet_summarymixing.upload --model exp/asr/model.zip --repo user/name --dry_run out/

The pushed folder is the archive's content as ESPnet's own upload lays it out (``meta.yaml``,
``exp/...``) plus ``README.md``, so ``Speech2Text.from_pretrained("user/name")`` (a classifier:
ESPnet's ``Classification``) loads it. With ``--dry_run DIR`` the exact folder that would be pushed
is written to DIR and nothing is sent. Exit status: 0 done, 1 the push failed, 2 nothing was tried
(a bad option, a model that is not a packed zip).
"""

import argparse
import re
import sys
import tempfile
from pathlib import Path
from typing import List, Optional

from espnet_summarymixing.cli.loop import CommandError, run
from espnet_summarymixing.cli.models import model_for
from espnet_summarymixing.cli.options import add_model, require
from espnet_summarymixing.cli.outputs import check_folder

__all__ = ["main"]

# the Hub's rule for a repository id (huggingface_hub's validate_repo_id): two names of at most 96 characters
REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}")

ADVICE = {"onnx": "pack it with its model first: python -m espnet_summarymixing.pack --model <training folder> "
                  "--onnx_dir <this folder>"}


def parser() -> argparse.ArgumentParser:
    """The command's options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model(p, "the zip written by python -m espnet_summarymixing.pack", old=())
    p.add_argument("--repo", required=True, help="Hugging Face repository id, user/name")
    p.add_argument("--results", type=Path, help="RESULTS.md for the card (default: the packed one)")
    p.add_argument("--training_data", help="one line describing the training data, for the card")
    p.add_argument("--private", action="store_true")
    p.add_argument("--token", help="Hugging Face token (default: the one huggingface_hub finds)")
    p.add_argument("--dry_run", type=Path, metavar="DIR", help="write the folder to DIR and push nothing")
    p.add_argument("--cachedir", help="where the archive is unpacked to read its config")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command; return its exit status."""
    p = parser()
    args = p.parse_args(argv)
    require(p, args, "model")
    if not REPO_ID.fullmatch(args.repo) or ".." in args.repo or "--" in args.repo or args.repo.endswith("."):
        p.error(f"--repo {args.repo}: expected a Hugging Face id, user/name (letters, digits, '-', '_', '.'; "
                "no '..' or '--')")
    return run(lambda: _upload(args))


def _upload(args) -> int:
    from espnet_summarymixing.publish.hub import prepare_folder, upload

    source = model_for(args.model, ("asr", "streaming", "classifier"), args.cachedir, build=False,
                       advice=ADVICE).source
    if source.form != "archive":
        raise CommandError(f"{args.model} is {source.description} in a {source.form}, not a packed zip: pack it "
                           "first with python -m espnet_summarymixing.pack")
    try:
        if args.dry_run:
            check_folder(str(args.dry_run), "--dry_run")
            files = prepare_folder(Path(args.model), args.dry_run, args.repo, args.results, args.training_data)
        else:
            tmp = tempfile.TemporaryDirectory()
            files = prepare_folder(Path(args.model), Path(tmp.name) / "model", args.repo, args.results,
                                   args.training_data)
    except (OSError, ValueError) as err:
        raise CommandError(str(err)) from None
    if args.dry_run:
        print(f"dry run: {len(files)} files in {args.dry_run} would be pushed to {args.repo} ({source.description}):")
        for f in files:
            print(f"  {f}")
        return 0
    try:
        with tmp:
            print(f"pushed: {upload(Path(tmp.name) / 'model', args.repo, args.private, args.token)}")
    except Exception as err:  # the network, the token, the Hub: one line
        print(f"error: the push to {args.repo} failed: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
