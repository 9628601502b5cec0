"""Upload a packed model to the Hugging Face Hub, with a generated model card.

    python -m espnet_summarymixing.upload --model exp/asr/model.zip --repo user/name
    python -m espnet_summarymixing.upload --model exp/asr/model.zip --repo user/name --dry_run out/

The pushed folder is the archive's content as ESPnet's own upload lays it out (``meta.yaml``,
``exp/...``) plus ``README.md``, so ``Speech2Text.from_pretrained("user/name")`` loads it. With
``--dry_run DIR`` the exact folder that would be pushed is written to DIR and nothing is sent.
"""

import argparse
import sys
import tempfile
from pathlib import Path

from espnet_summarymixing.publish.hub import prepare_folder, upload

__all__ = ["main"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, type=Path, help="the zip written by espnet_summarymixing.pack")
    p.add_argument("--repo", required=True, help="Hugging Face repository id, user/name")
    p.add_argument("--results", type=Path, help="RESULTS.md for the card (default: the packed one)")
    p.add_argument("--training_data", help="one line describing the training data, for the card")
    p.add_argument("--private", action="store_true")
    p.add_argument("--token", help="Hugging Face token (default: the one huggingface_hub finds)")
    p.add_argument("--dry_run", type=Path, metavar="DIR", help="write the folder to DIR and push nothing")
    args = p.parse_args(argv)
    if args.repo.count("/") != 1 or args.repo.startswith("/") or args.repo.endswith("/"):
        p.error(f"--repo {args.repo}: expected user/name")
    try:
        if args.dry_run:
            files = prepare_folder(args.model, args.dry_run, args.repo, args.results, args.training_data)
            print(f"dry run: {len(files)} files in {args.dry_run} would be pushed to {args.repo}:")
            for f in files:
                print(f"  {f}")
            return 0
        with tempfile.TemporaryDirectory() as tmp:
            prepare_folder(args.model, Path(tmp) / "model", args.repo, args.results, args.training_data)
            print(f"pushed: {upload(Path(tmp) / 'model', args.repo, args.private, args.token)}")
    except (FileNotFoundError, FileExistsError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
