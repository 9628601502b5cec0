"""Hugging Face Hub: a packed model's folder with its model card, and the push."""

from pathlib import Path
from typing import List, Optional

from espnet_summarymixing.loading.archive import safe_extract
from espnet_summarymixing.loading.models import TASK_KEYS, packed_paths
from espnet_summarymixing.publish.model_card import model_card

__all__ = ["prepare_folder", "upload"]


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
        safe_extract(model_zip, folder)  # no member may land outside the folder
    except ValueError as err:
        raise ValueError(f"--model {model_zip}: {err}") from None
    meta = folder / "meta.yaml"
    if not meta.is_file():
        raise ValueError(f"--model {model_zip}: no meta.yaml inside; pack it with espnet_summarymixing.pack")
    configs, files = packed_paths(folder, f"--model {model_zip}")  # each inside the folder
    task = "cls" if TASK_KEYS["cls"][0] in configs else "asr"  # a classifier or an ASR model
    config, checkpoint = configs[TASK_KEYS[task][0]], files[TASK_KEYS[task][1]]
    results_text = Path(results).read_text(encoding="utf-8") if results else None
    if results_text is None:
        packed = sorted(folder.glob("**/RESULTS.md"))
        results_text = packed[0].read_text(encoding="utf-8") if packed else None
    card = model_card(config, checkpoint, repo_id=repo_id, results=results_text, training_data=training_data, task=task)
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


