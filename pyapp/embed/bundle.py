"""The model bundle (``python -m export``'s output): manifest, file checks, bundle errors, model identity.

Why one module: the exporter writes bundles, the server embedder reads them from a folder and the browser
embedder fetches them over HTTP; all three must agree on the manifest's format, on which file a variant uses
and on what "intact" means, or a bundle one of them accepts is one another rejects. Pure Python (hashlib and
json only) so it loads in Pyodide without numpy or onnxruntime. The browser hashes with WebCrypto and hands
the digest to ``check_sha256``; the server streams the file through ``sha256_file``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..errors import ModelBundleError

MANIFEST = "manifest.json"
FORMAT = "clinvec-model-bundle"
FORMAT_VERSION = 1  # the newest manifest layout this code reads; bump it when readers must change
VARIANT_FILES = {"int8": "model_int8.onnx", "fp32": "model.onnx"}
MLM_VARIANT_FILES = {"fp32": "model_mlm.onnx", "int8": "model_mlm_int8.onnx"}  # the optional fill-mask graphs
MLM_OUTPUT = "logits"
# What a bundle's graph computes. Bundles without a ``task`` field are embedders (every bundle written before
# ``python -m export finetune`` existed); a reader names the task it serves, so a classifier bundle is never
# opened as an embedder (its logits would silently become "vectors") nor an embedder as a classifier.
TASK_EMBED = "feature-extraction"
TASK_CLASSIFY = "text-classification"
REQUIRED = ("model", "dims", "max_seq_length", "do_lower_case", "vocab_file", "files", "output")
_EXPORT_HINT = "export it again with `python -m export`"


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Streamed sha256 of a file (hashlib releases the GIL, so this does not stall other threads)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def check_format(manifest: dict[str, Any], where: str) -> None:
    """``ModelBundleError`` unless the manifest declares this format at a version this code can read.

    A newer version may change what fields mean, so it is refused rather than half-understood.
    """
    found = manifest.get("format")
    if found != FORMAT:
        shown = "no format field" if found is None else f"format {found!r}"
        raise ModelBundleError(f"{where} has {shown}; expected format {FORMAT!r}: not a clinvec model bundle")
    version = manifest.get("format_version")
    if type(version) is not int or version < 1:
        raise ModelBundleError(
            f"{where} has format_version {version!r}; expected an integer from 1 to {FORMAT_VERSION}: {_EXPORT_HINT}"
        )
    if version > FORMAT_VERSION:
        raise ModelBundleError(
            f"{where} has format_version {version}, newer than {FORMAT_VERSION}, the newest this clinvec reads: "
            "upgrade clinvec or export the bundle with this version"
        )


def parse_manifest(data: bytes | str, where: str, task: str | None = TASK_EMBED) -> dict[str, Any]:
    """A manifest from its raw bytes, with the format and the keys every reader relies on checked.

    ``where`` names the manifest (a path or URL) in error messages; ``task``: the task the reader serves
    (``ModelBundleError`` for a bundle of another task; None accepts any).
    """
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        manifest = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ModelBundleError(f"{where} is not JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise ModelBundleError(f"{where} is not a JSON object")
    check_format(manifest, where)
    missing = [key for key in REQUIRED if key not in manifest]
    if missing:
        raise ModelBundleError(f"{where} lacks {missing}: {_EXPORT_HINT}")
    if not isinstance(manifest["files"], dict):
        raise ModelBundleError(f"{where}: 'files' is not an object: {_EXPORT_HINT}")
    if task is not None:
        check_task(manifest, task, where)
    return manifest


def task_of(manifest: dict[str, Any]) -> str:
    """The bundle's task: its ``task`` field, or ``TASK_EMBED`` for bundles that predate the field."""
    task = manifest.get("task", TASK_EMBED)
    return task if isinstance(task, str) else repr(task)


def check_task(manifest: dict[str, Any], task: str, where: str) -> None:
    """``ModelBundleError`` unless the bundle's graph serves ``task``, saying what the bundle is instead."""
    found = task_of(manifest)
    if found == task:
        return
    if found == TASK_CLASSIFY:
        hint = "it is a text classifier (open it with pyapp.embed.TextClassifier or `python -m pyapp classify`)"
    elif found == TASK_EMBED:
        hint = "it is an embedding model; fine-tune a classifier with `python -m export finetune`"
    else:
        hint = "this clinvec does not know that task"
    raise ModelBundleError(f"{where} is a {found} bundle, not a {task} bundle: {hint}")


def load_manifest(bundle_dir: str | Path, task: str | None = TASK_EMBED) -> dict[str, Any]:
    """The checked manifest of a bundle folder on disk (of ``task``: see ``parse_manifest``)."""
    path = Path(bundle_dir) / MANIFEST
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelBundleError(f"{bundle_dir} is not a model bundle (no {MANIFEST}); run `python -m export`") from None
    except OSError as exc:
        raise ModelBundleError(f"cannot read {path}: {exc}") from None
    return parse_manifest(data, str(path), task)


def variant_file(manifest: dict[str, Any], variant: str) -> str:
    """The graph file of ``variant`` ("int8" or "fp32"): as the manifest names it, else the exporter's default."""
    if variant not in VARIANT_FILES:
        raise ModelBundleError(f"unknown model variant {variant!r}; expected one of {sorted(VARIANT_FILES)}")
    entry = manifest.get("variants", {}).get(variant)
    name = entry.get("file") if isinstance(entry, dict) else None
    return name if isinstance(name, str) and name else VARIANT_FILES[variant]


def has_mlm(manifest: dict[str, Any]) -> bool:
    """Whether the bundle carries a masked-LM (fill-mask) graph (``python -m export --with-mlm``)."""
    return isinstance(manifest.get("mlm"), dict)


def mlm_file(manifest: dict[str, Any], variant: str, where: str) -> str:
    """The fill-mask graph of ``variant`` ("fp32" or "int8"); ``ModelBundleError`` when the bundle has none.

    Bundles exported before the int8 fill-mask graph existed record only ``mlm.file`` (fp32): they still
    serve fp32, and int8 asks for a new export rather than silently running fp32.
    """
    if variant not in MLM_VARIANT_FILES:
        raise ModelBundleError(f"unknown fill-mask variant {variant!r}; expected one of {sorted(MLM_VARIANT_FILES)}")
    mlm = manifest.get("mlm")
    if not isinstance(mlm, dict):
        raise ModelBundleError(
            f"{where} ({manifest.get('model')}) has no masked-LM graph, so it cannot fill in [MASK]: "
            "export a model that has an MLM head with `python -m export --with-mlm`"
        )
    entry = (mlm.get("variants") or {}).get(variant)
    name = entry.get("file") if isinstance(entry, dict) else (mlm.get("file") if variant == "fp32" else None)
    if not isinstance(name, str) or not name:
        raise ModelBundleError(f"{where} has no {variant} masked-LM graph: {_EXPORT_HINT} --with-mlm")
    return name


def mlm_output(manifest: dict[str, Any]) -> str:
    """The name of the fill-mask graph's logits output."""
    output = (manifest.get("mlm") or {}).get("output")
    return output if isinstance(output, str) and output else MLM_OUTPUT


def file_entry(manifest: dict[str, Any], name: str, where: str) -> dict[str, Any]:
    """The manifest's record (sha256, bytes) of one bundle file; a file it does not list cannot be trusted."""
    entry = manifest["files"].get(name)
    if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str) or "bytes" not in entry:
        raise ModelBundleError(f"the manifest of {where} lists no sha256 and size for {name}: {_EXPORT_HINT}")
    return entry


def check_size(manifest: dict[str, Any], name: str, size: int, where: str) -> None:
    """``ModelBundleError`` unless ``size`` is the byte count the manifest records for ``name``."""
    expected = file_entry(manifest, name, where)["bytes"]
    if size != expected:
        raise ModelBundleError(
            f"{name} has {size} bytes, the manifest says {expected}: the bundle at {where} is corrupt or was altered"
        )


def check_sha256(manifest: dict[str, Any], name: str, digest: str, where: str) -> str:
    """``ModelBundleError`` unless ``digest`` is the sha256 the manifest records for ``name``; returns it."""
    expected = file_entry(manifest, name, where)["sha256"]
    if digest != expected:
        raise ModelBundleError(
            f"{name} fails its sha256 check (got {digest[:12]}…, the manifest says {expected[:12]}…): "
            f"the bundle at {where} is corrupt or was altered; it was not loaded"
        )
    return digest


def checked_path(bundle_dir: str | Path, manifest: dict[str, Any], name: str, verify: bool = True) -> Path:
    """Path of a bundle file on disk once it is present, listed, of the recorded size and (unless ``verify``
    is False) of the recorded sha256. The size check is never skipped: it is free and catches truncation."""
    where = str(bundle_dir)
    path = Path(bundle_dir) / name
    file_entry(manifest, name, where)
    if not path.is_file():
        raise ModelBundleError(f"{path} is missing from the bundle: {_EXPORT_HINT}")
    check_size(manifest, name, path.stat().st_size, where)
    if verify:
        check_sha256(manifest, name, sha256_file(path), where)
    return path


def identity(manifest: dict[str, Any], variant: str, sha256: str, bundle: str) -> dict[str, Any]:
    """The identity of a model-bundle embedder, the same on the server and in the browser (``bundle`` is where
    it was loaded from: a folder or a URL, and is not compared)."""
    return {
        "model": manifest["model"],
        "revision": manifest.get("revision"),
        "variant": variant,
        "sha256": sha256,
        "bundle": bundle,
    }


__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST",
    "MLM_OUTPUT",
    "MLM_VARIANT_FILES",
    "TASK_CLASSIFY",
    "TASK_EMBED",
    "VARIANT_FILES",
    "ModelBundleError",
    "check_format",
    "check_sha256",
    "check_size",
    "check_task",
    "checked_path",
    "file_entry",
    "has_mlm",
    "identity",
    "load_manifest",
    "mlm_file",
    "mlm_output",
    "parse_manifest",
    "sha256_file",
    "task_of",
    "variant_file",
]
