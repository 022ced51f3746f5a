"""The bundle list the page chooses from (web/models/index.json, pyapp/embed/catalog.py) and who writes it.

Real files: small bundle folders whose manifests follow the real format (the list checks presence and sizes;
the loaders check sha256), plus the packaged MiniLM bundle's own manifest when present.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from pyapp.embed import catalog

ROOT = Path(__file__).resolve().parents[1]
MINILM = ROOT / "web" / "models" / "minilm"


def _bundle(folder: Path, model: str, graphs: dict[str, bytes] | None = None, mlm: bool = False) -> Path:
    """A bundle folder: manifest + graph files (contents are not ONNX: only presence and size are listed)."""
    graphs = {"model.onnx": b"fp32-graph", "model_int8.onnx": b"int8"} if graphs is None else graphs
    folder.mkdir(parents=True)
    files = {}
    for name, data in {**graphs, "vocab.txt": b"[PAD]\n"}.items():
        (folder / name).write_bytes(data)
        files[name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    manifest = {
        "format": "clinvec-model-bundle",
        "format_version": 1,
        "model": model,
        "revision": "r1",
        "dims": 768,
        "max_seq_length": 128,
        "do_lower_case": False,
        "vocab_file": "vocab.txt",
        "output": "sentence_embedding",
        "files": files,
        "variants": {"fp32": {"file": "model.onnx"}, "int8": {"file": "model_int8.onnx"}},
    }
    if mlm:
        manifest["mlm"] = {"file": "model_mlm.onnx"}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_bio_clinicalbert_is_preferred_then_minilm_then_the_rest(tmp_path: Path) -> None:
    _bundle(tmp_path / "aaa-custom", "someone/custom-bert")
    _bundle(tmp_path / "minilm", "sentence-transformers/all-MiniLM-L6-v2")
    _bundle(tmp_path / "clinical", "emilyalsentzer/Bio_ClinicalBERT", mlm=True)  # recognised by its model id too
    listing = catalog.scan(tmp_path)
    assert [b["name"] for b in listing["bundles"]] == ["clinical", "minilm", "aaa-custom"]
    assert listing["default"] == "clinical" and listing["skipped"] == []
    first = listing["bundles"][0]
    assert first["dir"] == "models/clinical/" and first["dims"] == 768 and first["has_mlm"] is True
    assert first["variants"] == {"fp32": 10, "int8": 4}
    raw = (tmp_path / "clinical" / "manifest.json").read_bytes()
    assert first["manifest_sha256"] == hashlib.sha256(raw).hexdigest()
    assert listing["bundles"][1]["has_mlm"] is False


def test_broken_folders_are_skipped_with_the_reason(tmp_path: Path) -> None:
    _bundle(tmp_path / "minilm", "sentence-transformers/all-MiniLM-L6-v2")
    truncated = _bundle(tmp_path / "bio-clinicalbert", "emilyalsentzer/Bio_ClinicalBERT")
    (truncated / "model_int8.onnx").write_bytes(b"in")  # an interrupted copy
    gone = _bundle(tmp_path / "gone", "x/y")
    (gone / "model.onnx").unlink()
    (tmp_path / "empty").mkdir()
    (tmp_path / "notjson").mkdir()
    (tmp_path / "notjson" / "manifest.json").write_text("{")
    (tmp_path / ".bio-clinicalbert.partial-1").mkdir()  # an export in progress: ignored, not even skipped
    listing = catalog.scan(tmp_path)
    assert listing["default"] == "minilm" and [b["name"] for b in listing["bundles"]] == ["minilm"]
    reasons = {s["name"]: s["reason"] for s in listing["skipped"]}
    assert set(reasons) == {"bio-clinicalbert", "gone", "empty", "notjson"}
    assert "model_int8.onnx" in reasons["bio-clinicalbert"] and "bytes" in reasons["bio-clinicalbert"]
    assert "model.onnx is missing" in reasons["gone"] and "no manifest.json" in reasons["empty"]
    assert "not JSON" in reasons["notjson"]


def test_no_bundle_lists_nothing_and_no_folder_is_an_empty_list(tmp_path: Path) -> None:
    assert catalog.scan(tmp_path / "absent") == {
        "format": "clinvec-model-list",
        "format_version": 1,
        "default": None,
        "bundles": [],
        "skipped": [],
    }


def test_write_list_follows_a_renamed_bundle_and_leaves_an_unchanged_list_alone(tmp_path: Path) -> None:
    _bundle(tmp_path / "minilm", "sentence-transformers/all-MiniLM-L6-v2")
    _bundle(tmp_path / "bio-clinicalbert", "emilyalsentzer/Bio_ClinicalBERT")
    path = tmp_path / "index.json"
    assert catalog.write_list(tmp_path)["default"] == "bio-clinicalbert"
    os.utime(path, ns=(1, 1))
    catalog.write_list(tmp_path)
    assert path.stat().st_mtime_ns == 1  # same bytes: not rewritten (the service worker's revision holds)
    (tmp_path / "bio-clinicalbert").rename(tmp_path / ".bio-clinicalbert.off")
    assert catalog.write_list(tmp_path)["default"] == "minilm"
    assert json.loads(path.read_text())["default"] == "minilm"
    assert not list(tmp_path.glob(".index.json.tmp"))


def test_command_line_rewrites_the_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _bundle(tmp_path / "minilm", "sentence-transformers/all-MiniLM-L6-v2")
    (tmp_path / "broken").mkdir()
    assert catalog.main([str(tmp_path)]) == 0
    out = capsys.readouterr()
    assert "page opens minilm" in out.out and "broken not listed: no manifest.json" in out.err
    assert json.loads((tmp_path / "index.json").read_text())["default"] == "minilm"


@pytest.mark.skipif(not (MINILM / "manifest.json").is_file(), reason="no packaged MiniLM bundle")
def test_the_packaged_minilm_bundle_is_listed(tmp_path: Path) -> None:
    entry = catalog.describe(MINILM)
    assert entry["model"] == "sentence-transformers/all-MiniLM-L6-v2" and entry["dims"] == 384
    assert set(entry["variants"]) == {"fp32", "int8"} and entry["dir"] == "models/minilm/"


def test_an_export_into_the_page_folder_updates_the_list_and_elsewhere_does_not(tmp_path: Path) -> None:
    from export.listing import update_model_list

    models = tmp_path / "models"
    out = _bundle(models / "bio-clinicalbert", "emilyalsentzer/Bio_ClinicalBERT")
    assert update_model_list(out, models) is True
    assert json.loads((models / "index.json").read_text())["default"] == "bio-clinicalbert"
    elsewhere = _bundle(tmp_path / "other" / "x", "x/y")
    assert update_model_list(elsewhere, models) is False
    assert not (tmp_path / "other" / "index.json").exists()
