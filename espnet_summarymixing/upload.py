"""Upload a packed model to the Hugging Face Hub, with a generated model card.

    python -m espnet_summarymixing.upload --model exp/asr/model.zip --repo user/name
    python -m espnet_summarymixing.upload --model exp/asr/model.zip --repo user/name --dry_run out/

The pushed folder is the archive's content as ESPnet's own upload lays it out (``meta.yaml``,
``exp/...``) plus ``README.md``, so ``Speech2Text.from_pretrained("user/name")`` loads it. With
``--dry_run DIR`` the exact folder that would be pushed is written to DIR and nothing is sent.
"""

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import List, Optional

import yaml

from espnet_summarymixing.model_card import model_card

__all__ = ["prepare_folder", "upload", "main"]


def prepare_folder(model_zip: Path, folder: Path, repo_id: str, results: Optional[Path] = None,
                   training_data: Optional[str] = None) -> List[str]:
    """Unpack ``model_zip`` into ``folder`` and write its model card; return the files, sorted."""
    model_zip = Path(model_zip)
    if not model_zip.is_file():
        raise FileNotFoundError(f"--model {model_zip}: no such file")
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"{folder} is not empty: choose a new folder for the upload")
    folder.mkdir(parents=True, exist_ok=True)
    try:
        shutil.unpack_archive(str(model_zip), str(folder))
    except (shutil.ReadError, ValueError) as err:
        raise ValueError(f"--model {model_zip}: not a zip or tar archive ({err})") from None
    meta = folder / "meta.yaml"
    if not meta.is_file():
        raise ValueError(f"--model {model_zip}: no meta.yaml inside; pack it with espnet_summarymixing.pack")
    info = yaml.safe_load(meta.read_text(encoding="utf-8"))
    config = folder / info["yaml_files"]["asr_train_config"]
    checkpoint = folder / info["files"]["asr_model_file"]
    results_text = Path(results).read_text(encoding="utf-8") if results else None
    if results_text is None:
        packed = sorted(folder.glob("**/RESULTS.md"))
        results_text = packed[0].read_text(encoding="utf-8") if packed else None
    card = model_card(config, checkpoint, repo_id=repo_id, results=results_text, training_data=training_data)
    (folder / "README.md").write_text(card, encoding="utf-8")
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def upload(folder: Path, repo_id: str, private: bool = False, token: Optional[str] = None) -> str:
    """Create the model repository if needed and push ``folder``; return the commit URL."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model",
                             commit_message="Upload ESPnet model with a SummaryMixing encoder")
    return str(getattr(info, "commit_url", info))


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
