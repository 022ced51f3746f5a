"""Embedders: the dependency-free HashingEmbedder and the onnxruntime OnnxEmbedder over an exported bundle."""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from conftest_models import TINY_HIDDEN, TINY_MAX_POSITIONS
from hypothesis import given, settings
from hypothesis import strategies as st

from pyapp.embed.hashing import HashingEmbedder
from pyapp.errors import ClinvecError, InvalidInput

REPO = Path(__file__).resolve().parent.parent
GOLDEN_TEXTS = [
    "Patient admitted with community-acquired pneumonia.",
    "Na+ 131 mEq/L, K+ 5.6 mEq/L",
    "",
    "Ö. Müller, naïve to anticoagulation; 38.5°C",
    "HYPERTENSION hypertensive heart disease",
]
# sha256 of HashingEmbedder(256, seed=0).embed_bytes(GOLDEN_TEXTS): pins the algorithm across versions/platforms.
GOLDEN_SHA256 = "29fcad763853b30ac6cf2c8d77a80760525e312fdb56befbb9a8d1c9cf687dce"


def _dot(a, b) -> float:  # noqa: ANN001
    return math.fsum(x * y for x, y in zip(a, b, strict=True))


# -- HashingEmbedder -------------------------------------------------------------------------------------


def test_hashing_vectors_are_pinned_bit_for_bit() -> None:
    raw = HashingEmbedder(256, seed=0).embed_bytes(GOLDEN_TEXTS)
    assert len(raw) == len(GOLDEN_TEXTS) * 256 * 4
    assert hashlib.sha256(raw).hexdigest() == GOLDEN_SHA256


def test_hashing_is_identical_in_a_fresh_process_with_another_hash_seed() -> None:
    code = (
        "import hashlib, sys, json; from pyapp.embed.hashing import HashingEmbedder;"
        "texts = json.loads(sys.stdin.read());"
        "print(hashlib.sha256(HashingEmbedder(64, seed=3).embed_bytes(texts)).hexdigest())"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(GOLDEN_TEXTS),
        capture_output=True,
        text=True,
        cwd=REPO,
        env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"},
        check=True,
    )
    assert proc.stdout.strip() == hashlib.sha256(HashingEmbedder(64, seed=3).embed_bytes(GOLDEN_TEXTS)).hexdigest()


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300), st.integers(min_value=2, max_value=300), st.integers(min_value=0, max_value=2**32))
def test_hashing_always_gives_a_finite_unit_vector(text: str, dims: int, seed: int) -> None:
    vec = HashingEmbedder(dims, seed).embed_one(text)
    assert len(vec) == dims and vec.typecode == "f"
    assert all(math.isfinite(x) for x in vec)
    assert abs(math.sqrt(_dot(vec, vec)) - 1.0) < 1e-5
    assert vec == HashingEmbedder(dims, seed).embed_one(text)


@pytest.mark.parametrize("text", ["", "   \n\t", "...!?", "___", "—–"])
def test_text_without_words_gets_the_fixed_sentinel_vector(text: str) -> None:
    vec = HashingEmbedder(128).embed_one(text)
    assert sorted(vec)[-1] == 1.0 and sum(1 for x in vec if x != 0.0) == 1
    assert vec == HashingEmbedder(128).embed_one("")


def test_shared_words_and_word_pieces_bring_texts_closer() -> None:
    emb = HashingEmbedder(512)
    q = emb.embed_one("hypertension")
    assert _dot(q, emb.embed_one("Hypertensive heart disease")) > _dot(q, emb.embed_one("fracture of the femur"))
    a = emb.embed_one("acute kidney injury")
    assert _dot(a, emb.embed_one("Acute KIDNEY injury!")) == pytest.approx(1.0, abs=1e-6)  # case and punctuation
    assert _dot(a, emb.embed_one("chronic kidney disease")) > _dot(a, emb.embed_one("atrial fibrillation"))


def test_seed_and_dims_change_the_vectors_and_the_identity() -> None:
    a, b = HashingEmbedder(256, 0), HashingEmbedder(256, 1)
    assert a.embed_one("sepsis") != b.embed_one("sepsis")
    assert a.identity != b.identity and a.identity["model"] == "hashing"
    again = HashingEmbedder.from_identity(b.identity)
    assert (again.dims, again.seed) == (256, 1) and again.embed_one("sepsis") == b.embed_one("sepsis")
    with pytest.raises(InvalidInput):
        HashingEmbedder.from_identity({"model": "other"})


@pytest.mark.parametrize("dims", [0, 1, -5, 2.5, True, "256"])
def test_hashing_rejects_bad_dims(dims) -> None:  # noqa: ANN001
    with pytest.raises(InvalidInput):
        HashingEmbedder(dims)


def test_hashing_embed_raw_is_little_endian_float32_with_progress() -> None:
    emb = HashingEmbedder(32)
    texts = [f"note {i} chest pain" for i in range(600)]
    calls: list[tuple[int, int]] = []
    raw = asyncio.run(emb.embed_raw(texts, lambda done, total: calls.append((done, total))))
    assert raw == emb.embed_bytes(texts)
    first = struct.unpack("<32f", raw[: 32 * 4])
    assert list(first) == pytest.approx(list(emb.embed_one(texts[0])))
    assert calls[-1] == (600, 600) and [d for d, _ in calls] == sorted(d for d, _ in calls)
    np = pytest.importorskip("numpy")
    matrix = emb.embed(texts[:5])
    assert matrix.shape == (5, 32) and matrix.dtype == np.float32
    assert matrix.tobytes() == emb.embed_bytes(texts[:5])
    assert asyncio.run(emb.embed_raw([])) == b""


def test_hashing_rejects_non_text() -> None:
    with pytest.raises(InvalidInput):
        HashingEmbedder(16).embed_bytes(["ok", 3])  # type: ignore[list-item]


# -- OnnxEmbedder ----------------------------------------------------------------------------------------

CLINICAL = [
    "Patient admitted with chest pain and shortness of breath.",
    "History of type 2 diabetes mellitus on metformin 500 mg bid.",
    "No fever.",
    "Bilateral lower extremity edema, orthopnea; CT chest shows pneumonia.",
    "",
    "mother had breast cancer, father colon cancer",
    "Acute renal failure with anemia and sepsis, started on IV ceftriaxone daily.",
]


@pytest.fixture(scope="module")
def fp32(tiny_bert_bundle: Path):  # noqa: ANN201
    from pyapp.embed.onnx import OnnxEmbedder

    return OnnxEmbedder(tiny_bert_bundle, quantized=False, batch_size=3)


def test_onnx_fp32_matches_pytorch_pooled_output(fp32, torch_pooled) -> None:  # noqa: ANN001
    np = pytest.importorskip("numpy")
    got = fp32.embed(CLINICAL)
    assert got.shape == (len(CLINICAL), TINY_HIDDEN) and got.dtype == np.float32
    want = torch_pooled([fp32.tokenizer.encode(t).input_ids for t in CLINICAL])
    cos = (got.astype(np.float64) * want).sum(1) / np.linalg.norm(want, axis=1) / np.linalg.norm(got, axis=1)
    assert cos.min() >= 0.9999


def test_onnx_int8_is_close_to_fp32(tiny_bert_bundle: Path, fp32) -> None:  # noqa: ANN001
    from pyapp.embed.onnx import OnnxEmbedder

    int8 = OnnxEmbedder(tiny_bert_bundle)  # quantized by default
    assert int8.identity["variant"] == "int8" and int8.model_path.name == "model_int8.onnx"
    cos = (int8.embed(CLINICAL) * fp32.embed(CLINICAL)).sum(1)
    assert cos.min() >= 0.98


def test_tokenizer_agrees_with_the_reference_bert_tokenizer(fp32, tiny_bert_bundle: Path) -> None:  # noqa: ANN001
    transformers = pytest.importorskip("transformers")
    ref = transformers.BertTokenizerFast(vocab_file=str(tiny_bert_bundle / "vocab.txt"), do_lower_case=True)
    for text in CLINICAL:
        assert fp32.tokenizer.encode(text).input_ids == ref(text)["input_ids"]


def test_onnx_results_come_back_in_input_order(fp32) -> None:  # noqa: ANN001
    np = pytest.importorskip("numpy")
    texts = CLINICAL[::-1] + CLINICAL  # lengths deliberately unsorted, duplicates across batches
    together = fp32.embed(texts)
    alone = np.stack([fp32.embed([t])[0] for t in texts])
    np.testing.assert_allclose(together, alone, atol=2e-6)
    np.testing.assert_allclose(together[: len(CLINICAL)], together[len(CLINICAL) :][::-1], atol=2e-6)
    assert fp32.embed([]).shape == (0, TINY_HIDDEN)


def test_onnx_truncates_at_max_seq_length(fp32) -> None:  # noqa: ANN001
    np = pytest.importorskip("numpy")
    head = "chest pain and fever " * 40  # far beyond 64 tokens
    a, b = fp32.embed([head + "sepsis", head + "fracture of the femur"])
    np.testing.assert_allclose(a, b, atol=1e-6)  # the differing tail was cut off
    assert len(fp32.tokenizer.encode(head).input_ids) == TINY_MAX_POSITIONS
    assert not np.allclose(fp32.embed(["sepsis"])[0], fp32.embed(["fracture"])[0])


def test_onnx_progress_embed_raw_and_identity(fp32, tiny_bert_bundle: Path) -> None:  # noqa: ANN001
    np = pytest.importorskip("numpy")
    calls: list[tuple[int, int]] = []
    raw = asyncio.run(fp32.embed_raw(CLINICAL, lambda d, t: calls.append((d, t))))
    assert calls == [(3, 7), (6, 7), (7, 7)]
    np.testing.assert_array_equal(np.frombuffer(raw, dtype="<f4").reshape(len(CLINICAL), -1), fp32.embed(CLINICAL))
    manifest = json.loads((tiny_bert_bundle / "manifest.json").read_text())
    ident = fp32.identity
    assert ident["model"] == "test/tiny-bert" and ident["revision"] == manifest["revision"]
    assert ident["variant"] == "fp32" and ident["sha256"] == manifest["files"]["model.onnx"]["sha256"]
    assert fp32.dims == TINY_HIDDEN


def test_onnx_rejects_a_single_string_and_non_strings(fp32) -> None:  # noqa: ANN001
    with pytest.raises(InvalidInput):
        fp32.embed("chest pain")
    with pytest.raises(InvalidInput):
        fp32.embed(["ok", None])


def test_onnx_checks_the_model_sha256_on_load(tiny_bert_bundle: Path, tmp_path: Path) -> None:
    from pyapp.embed.onnx import ModelBundleError, OnnxEmbedder

    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bert_bundle, bundle)
    path = bundle / "model_int8.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # same size, one bit flipped inside the weights
    path.write_bytes(bytes(data))
    with pytest.raises(ModelBundleError, match="sha256"):
        OnnxEmbedder(bundle)
    assert issubclass(ModelBundleError, ClinvecError)
    OnnxEmbedder(bundle, quantized=False)  # the untouched fp32 file still loads
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"]["model.onnx"]["sha256"] = "0" * 64  # an intact file whose recorded digest disagrees
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelBundleError, match="sha256"):
        OnnxEmbedder(bundle, quantized=False)
    assert OnnxEmbedder(bundle, quantized=False, verify=False).embed(["ok"]).shape == (1, TINY_HIDDEN)  # skippable
    path.write_bytes(bytes(data[:-10]))
    with pytest.raises(ModelBundleError, match="bytes"):
        OnnxEmbedder(bundle, verify=False)  # the size check is never skipped


def test_onnx_rejects_a_folder_without_manifest(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from pyapp.embed.onnx import ModelBundleError, OnnxEmbedder

    with pytest.raises(ModelBundleError, match="python -m export"):
        OnnxEmbedder(tmp_path)


def test_predict_masked_returns_top_tokens_per_mask(fp32, tiny_bert_dir: Path) -> None:  # noqa: ANN001
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    text = "patient admitted with chest [MASK] and [MASK] of breath"
    got = fp32.predict_masked(text, top_k=3)
    assert len(got) == 2 and all(len(row) == 3 for row in got)
    assert all(0.0 < row[0]["score"] <= 1.0 and row[0]["score"] >= row[-1]["score"] for row in got)
    model = transformers.BertForMaskedLM.from_pretrained(str(tiny_bert_dir)).eval()
    ids = fp32.tokenizer.encode(text).input_ids
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0]
    positions = [i for i, t in enumerate(ids) if t == 4]
    for row, pos in zip(got, positions, strict=True):
        want = torch.topk(logits[pos], 3).indices.tolist()
        assert [e["token_id"] for e in row] == want
        assert [e["token"] for e in row] == [fp32.tokenizer.id_to_token(i) for i in want]
    assert fp32.predict_masked("no mask here") == []


def test_predict_masked_needs_an_mlm_bundle(tiny_bert_bundle: Path, tmp_path: Path) -> None:
    from pyapp.embed.onnx import ModelBundleError, OnnxEmbedder

    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bert_bundle, bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    del manifest["mlm"]
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelBundleError, match="--with-mlm"):
        OnnxEmbedder(bundle).predict_masked("chest [MASK]")
