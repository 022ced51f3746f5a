"""The one model-bundle module: what the exporter writes, every reader accepts; every fault, every reader rejects.

The faults (a tampered file, a missing file, a foreign format, a future format version) are injected into real
bundles on disk: a small one written by the exporter's own ``write_manifest`` (no torch needed), and a copy of
the tiny exported BERT for ``OnnxEmbedder``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pyapp.embed import bundle
from pyapp.errors import ClinvecError, ModelBundleError

Fault = Callable[[Path], None]


def _rewrite_manifest(folder: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = folder / bundle.MANIFEST
    manifest = json.loads(path.read_text(encoding="utf-8"))
    change(manifest)
    path.write_text(json.dumps(manifest), encoding="utf-8")


def _tamper(folder: Path) -> None:
    """Same size, one byte changed: only the sha256 check can see it."""
    path = folder / "model_int8.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _remove(folder: Path) -> None:
    (folder / "model_int8.onnx").unlink()


def _foreign_format(folder: Path) -> None:
    _rewrite_manifest(folder, lambda m: m.update(format="someone-elses-bundle"))


def _future_version(folder: Path) -> None:
    _rewrite_manifest(folder, lambda m: m.update(format_version=bundle.FORMAT_VERSION + 1))


FAULTS: dict[str, tuple[Fault, str]] = {
    "tampered": (_tamper, r"model_int8\.onnx fails its sha256 check .*not loaded"),
    "missing": (_remove, r"model_int8\.onnx is missing"),
    "foreign format": (_foreign_format, r"format 'someone-elses-bundle'; expected format 'clinvec-model-bundle'"),
    "future version": (_future_version, rf"format_version {bundle.FORMAT_VERSION + 1}, newer than "),
}


@pytest.fixture()
def small_bundle(tmp_path: Path) -> Path:
    """A bundle folder whose manifest the exporter's own writer produced (files need not be real graphs here)."""
    from export.manifest import write_manifest

    folder = tmp_path / "bundle"
    folder.mkdir()
    (folder / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nchest\npain\n", encoding="utf-8")
    (folder / "model.onnx").write_bytes(bytes(range(256)) * 40)
    (folder / "model_int8.onnx").write_bytes(bytes(range(255, -1, -1)) * 10)
    write_manifest(
        folder,
        {
            "model": "test/small",
            "revision": "r1",
            "dims": 8,
            "max_seq_length": 16,
            "do_lower_case": True,
            "vocab_file": "vocab.txt",
            "output": "sentence_embedding",
            "variants": {"fp32": {"file": "model.onnx"}, "int8": {"file": "model_int8.onnx"}},
        },
    )
    return folder


def _read_like_the_server(folder: Path, verify: bool = True) -> None:
    """Every step a server reader runs through the shared module (manifest, then each file it loads)."""
    manifest = bundle.load_manifest(folder)
    for name in (manifest["vocab_file"], bundle.variant_file(manifest, "int8")):
        bundle.checked_path(folder, manifest, name, verify)


def test_what_the_exporter_writes_the_readers_accept(small_bundle: Path) -> None:
    manifest = bundle.load_manifest(small_bundle)
    assert manifest["format"] == bundle.FORMAT and manifest["format_version"] == bundle.FORMAT_VERSION
    _read_like_the_server(small_bundle)
    sha = manifest["files"]["model_int8.onnx"]["sha256"]
    assert bundle.sha256_file(small_bundle / "model_int8.onnx") == sha
    assert bundle.identity(manifest, "int8", sha, "x") == {
        "model": "test/small",
        "revision": "r1",
        "variant": "int8",
        "sha256": sha,
        "bundle": "x",
    }


@pytest.mark.parametrize("fault", FAULTS)
def test_the_shared_module_rejects_each_fault(small_bundle: Path, fault: str) -> None:
    inject, message = FAULTS[fault]
    inject(small_bundle)
    with pytest.raises(ModelBundleError, match=message):
        _read_like_the_server(small_bundle)
    assert issubclass(ModelBundleError, ClinvecError)


def test_the_browser_path_parses_bytes_and_checks_digests(small_bundle: Path) -> None:
    """What WebEmbedder runs on fetched bytes (its digest comes from WebCrypto; hashlib stands in here)."""
    raw = (small_bundle / bundle.MANIFEST).read_bytes()
    manifest = bundle.parse_manifest(raw, "http://x/manifest.json")
    data = (small_bundle / "model.onnx").read_bytes()
    bundle.check_size(manifest, "model.onnx", len(data), "http://x/")
    with pytest.raises(ModelBundleError, match="has 10 bytes, the manifest says"):
        bundle.check_size(manifest, "model.onnx", 10, "http://x/")
    with pytest.raises(ModelBundleError, match="fails its sha256 check"):
        bundle.check_sha256(manifest, "model.onnx", "0" * 64, "http://x/")
    with pytest.raises(ModelBundleError, match="lists no sha256"):
        bundle.check_sha256(manifest, "not-listed.onnx", "0" * 64, "http://x/")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.pop("format"), "no format field"),
        (lambda m: m.pop("format_version"), "format_version None"),
        (lambda m: m.update(format_version="1"), "format_version '1'"),
        (lambda m: m.update(format_version=True), "format_version True"),
        (lambda m: m.update(format_version=0), "format_version 0"),
        (lambda m: m.pop("dims"), r"lacks \['dims'\]"),
        (lambda m: m.update(files=[]), "'files' is not an object"),
    ],
)
def test_malformed_manifests_are_rejected_with_what_was_found(
    small_bundle: Path, change: Callable[[dict[str, Any]], None], message: str
) -> None:
    _rewrite_manifest(small_bundle, change)
    with pytest.raises(ModelBundleError, match=message):
        bundle.load_manifest(small_bundle)


@pytest.mark.parametrize("raw", [b"\xff\xfe", b"not json", b"[1, 2]", b"[" * 100_000])
def test_unparseable_manifests_are_bundle_errors(raw: bytes) -> None:
    with pytest.raises(ModelBundleError):
        bundle.parse_manifest(raw, "m.json")


def test_a_folder_without_manifest_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ModelBundleError, match="python -m export"):
        bundle.load_manifest(tmp_path)


def test_an_unknown_variant_is_a_bundle_error(small_bundle: Path) -> None:
    manifest = bundle.load_manifest(small_bundle)
    assert bundle.variant_file(manifest, "fp32") == "model.onnx"
    with pytest.raises(ModelBundleError, match="fp16"):
        bundle.variant_file(manifest, "fp16")


# -- the server embedder, on a real exported bundle ------------------------------------------------------


@pytest.mark.parametrize("fault", FAULTS)
def test_the_server_embedder_rejects_each_fault(tiny_bert_bundle: Path, tmp_path: Path, fault: str) -> None:
    from pyapp.embed.onnx import OnnxEmbedder

    folder = tmp_path / "bundle"
    shutil.copytree(tiny_bert_bundle, folder)
    OnnxEmbedder(folder)  # intact: loads
    inject, message = FAULTS[fault]
    inject(folder)
    with pytest.raises(ModelBundleError, match=message):
        OnnxEmbedder(folder)


def test_the_exported_bundle_passes_the_shared_checks(tiny_bert_bundle: Path) -> None:
    from export.manifest import read_manifest

    manifest = read_manifest(tiny_bert_bundle)
    for name in manifest["files"]:
        bundle.checked_path(tiny_bert_bundle, manifest, name)
