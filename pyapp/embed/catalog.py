"""The list of model bundles a build serves (``web/models/index.json``), and which one the page opens.

Why a list: the page cannot list a folder over HTTP, and asking for a fixed bundle made it ask for MiniLM
even when the build had exported Bio_ClinicalBERT. The build (``web_build.py``), ``python -m export`` (when
it writes under ``web/models/``) and ``scripts/model.sh`` rewrite the list from what is on disk; the page
(``web/app/models.mjs``) opens its ``default``. Pure stdlib, so it runs in any build step.

A folder is listed when its manifest parses and every graph it names is present at its recorded size
(sha256 is checked by whoever loads it); other folders are recorded under ``skipped`` with the reason, so
the page can say why a bundle it expected is not there.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from ..errors import ModelBundleError
from . import bundle

LIST_FORMAT = "clinvec-model-list"
LIST_VERSION = 1
LIST_NAME = "index.json"
# The page's order of preference: Bio_ClinicalBERT (the product's model) over the packaged MiniLM over the rest.
PREFERRED = (
    ("bio-clinicalbert", "emilyalsentzer/Bio_ClinicalBERT"),
    ("minilm", "sentence-transformers/all-MiniLM-L6-v2"),
)


def _rank(entry: dict[str, Any]) -> tuple[int, str]:
    for rank, (folder, model) in enumerate(PREFERRED):
        if entry["name"] == folder or entry["model"] == model:
            return rank, entry["name"]
    return len(PREFERRED), entry["name"]


def describe(folder: Path) -> dict[str, Any]:
    """The list entry of one bundle folder; ``ModelBundleError`` when it is not a usable bundle."""
    raw = (folder / bundle.MANIFEST).read_bytes() if (folder / bundle.MANIFEST).is_file() else None
    if raw is None:
        raise ModelBundleError(f"no {bundle.MANIFEST}")
    manifest = bundle.parse_manifest(raw, str(folder / bundle.MANIFEST))
    variants: dict[str, int] = {}
    for variant in sorted(bundle.VARIANT_FILES):
        name = bundle.variant_file(manifest, variant)
        if name not in manifest["files"]:
            continue
        path = folder / name
        if not path.is_file():
            raise ModelBundleError(f"{name} is missing")
        bundle.check_size(manifest, name, path.stat().st_size, str(folder))
        variants[variant] = path.stat().st_size
    if not variants:
        raise ModelBundleError("no model graph listed")
    return {
        "name": folder.name,
        "dir": f"models/{folder.name}/",
        "model": manifest["model"],
        "revision": manifest.get("revision"),
        "dims": int(manifest["dims"]),
        "max_seq_length": int(manifest["max_seq_length"]),
        "variants": variants,
        "has_mlm": bundle.has_mlm(manifest),
        "manifest_sha256": hashlib.sha256(raw).hexdigest(),
    }


def scan(models_dir: str | Path) -> dict[str, Any]:
    """The list for the bundle folders under ``models_dir`` (hidden folders ignored), best first."""
    root = Path(models_dir)
    bundles, skipped = [], []
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) if root.is_dir() else []
    for folder in folders:
        try:
            bundles.append(describe(folder))
        except (ModelBundleError, OSError) as exc:
            skipped.append({"name": folder.name, "reason": str(exc)})
    bundles.sort(key=_rank)
    return {
        "format": LIST_FORMAT,
        "format_version": LIST_VERSION,
        "default": bundles[0]["name"] if bundles else None,
        "bundles": bundles,
        "skipped": skipped,
    }


def write_list(models_dir: str | Path) -> dict[str, Any]:
    """Rewrite ``models_dir/index.json`` from the folders present (atomic rename; unchanged bytes untouched)."""
    root = Path(models_dir)
    listing = scan(root)
    text = json.dumps(listing, indent=1, sort_keys=True) + "\n"
    path = root / LIST_NAME
    if path.is_file() and path.read_text() == text:
        return listing
    root.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{LIST_NAME}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return listing


__all__ = ["LIST_FORMAT", "LIST_NAME", "PREFERRED", "describe", "scan", "write_list"]


def main(argv: list[str] | None = None) -> int:
    """``python -m pyapp.embed.catalog [MODELS_DIR]``: rewrite the list and print what the page will open."""
    args = sys.argv[1:] if argv is None else argv
    listing = write_list(args[0] if args else "web/models")
    print(f"clinvec: model list: {[b['name'] for b in listing['bundles']]}, page opens {listing['default']}")
    for skip in listing["skipped"]:
        print(f"clinvec: notice: {skip['name']} not listed: {skip['reason']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
