"""``manifest.json``: everything a runtime needs to load a bundle and prove it is the bundle it expects."""

from __future__ import annotations

import json
import platform
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from pyapp.embed.bundle import FORMAT, FORMAT_VERSION, MANIFEST, load_manifest, sha256_file

_TOOLS = ("torch", "transformers", "optimum", "optimum-onnx", "onnx", "onnxruntime", "numpy")


def file_entry(path: Path) -> dict[str, Any]:
    """sha256 and size of one bundle file, checked by the embedders on load."""
    return {"sha256": sha256_file(path), "bytes": path.stat().st_size}


def tool_versions() -> dict[str, str]:
    """Versions of the export toolchain; a changed version can change the bytes of the graph."""
    versions = {"python": platform.python_version()}
    for name in _TOOLS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def graph_opset(graph: Any) -> int:
    """The default-domain opset of an ``onnx.ModelProto``, recorded so a runtime can say what it needs."""
    return int(next(op.version for op in graph.opset_import if op.domain in ("", "ai.onnx")))


def write_manifest(bundle_dir: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Add file hashes, tool versions and the time, then write ``manifest.json`` last (its presence = complete)."""
    files = sorted(p.name for p in bundle_dir.iterdir() if p.is_file() and p.name != MANIFEST)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        **manifest,
        "files": {name: file_entry(bundle_dir / name) for name in files},
        "tools": tool_versions(),
        "created": datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
    }
    (bundle_dir / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest


def read_manifest(bundle_dir: Path) -> dict[str, Any]:
    """The manifest of an existing bundle, checked as the embedders check it (``ModelBundleError`` otherwise)."""
    return load_manifest(bundle_dir)


def is_bundle(folder: Path) -> bool:
    """Whether ``folder`` holds a clinvec bundle of any version (so an export may replace it)."""
    try:
        manifest = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(manifest, dict) and manifest.get("format") == FORMAT
