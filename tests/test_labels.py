"""LabelModel: fitting, the numpy/pure-Python parity, files, bad input, and training from an index's notes."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

import pyapp
from pyapp import DimensionMismatch, DocumentIndex, InvalidInput, InvalidVector, LabelModel, LabelModelError
from pyapp.embed.hashing import HashingEmbedder
from pyapp.labels.notes import note_vectors, text_vector


def clusters(k: int, per: int, dims: int, spread: float, seed: int) -> tuple[list[list[float]], list[str]]:
    """Gaussian clusters around random centres: overlapping when ``spread`` is large (a real optimisation)."""
    rng = random.Random(seed)
    centres = [[rng.gauss(0, 1) for _ in range(dims)] for _ in range(k)]
    vectors, labels = [], []
    for i in range(k * per):
        c = i % k
        vectors.append([m + spread * rng.gauss(0, 1) for m in centres[c]])
        labels.append(f"class-{c}")
    return vectors, labels


def max_diff(a: list[list[float]], b: list[list[float]]) -> float:
    return max(abs(x - y) for ra, rb in zip(a, b, strict=True) for x, y in zip(ra, rb, strict=True))


def test_fit_predict_learns_clusters_and_probabilities_sum_to_one() -> None:
    train, labels = clusters(3, 20, 16, 1.5, seed=1)
    test, truth = clusters(3, 20, 16, 1.5, seed=1)  # same centres (same seed), new draws below
    rng = random.Random(9)
    test = [[v + 0.3 * rng.gauss(0, 1) for v in row] for row in test]
    model = LabelModel.fit(train, labels)
    assert model.labels == ["class-0", "class-1", "class-2"]
    assert model.info["converged"] and model.info["examples"] == 60
    assert model.info["per_label"] == {"class-0": 20, "class-1": 20, "class-2": 20}
    probs = model.predict_proba(test)
    assert all(abs(sum(p) - 1.0) < 1e-12 for p in probs)
    predicted = model.predict(test)
    accuracy = sum(label == t for (label, _), t in zip(predicted, truth, strict=True)) / len(truth)
    assert accuracy >= 0.9
    for (label, prob), row in zip(predicted, probs, strict=True):
        assert prob == max(row) and label == model.labels[row.index(max(row))]


def test_the_optimum_is_reached_the_gradient_vanishes() -> None:
    from pyapp.labels.linalg import NumpyOps

    vectors, labels = clusters(4, 15, 12, 3.0, seed=2)  # overlapping: no separating plane, a real optimum
    model = LabelModel.fit(vectors, labels, l2=1e-2, backend="numpy")
    rows = [[v / math.sqrt(sum(x * x for x in r)) for v in r] for r in vectors]
    ops = NumpyOps(rows, [model.labels.index(y) for y in labels], 4, 1e-2)
    import numpy as np

    theta = np.concatenate([np.ravel(model._weights), model._bias])
    loss, grad = ops.loss_grad(theta)
    assert float(np.max(np.abs(grad))) <= 1e-7
    nudged, _ = ops.loss_grad(theta + 1e-3 * np.sin(np.arange(theta.size)))
    assert nudged > loss


@pytest.mark.parametrize("spread,l2", [(1.0, 1e-3), (4.0, 1e-2), (2.0, 1e-4)])
def test_numpy_and_pure_python_fits_agree(spread: float, l2: float) -> None:
    pytest.importorskip("numpy")
    vectors, labels = clusters(4, 25, 24, spread, seed=3)
    a = LabelModel.fit(vectors, labels, l2=l2, backend="numpy")
    b = LabelModel.fit(vectors, labels, l2=l2, backend="python")
    assert a.info["backend"] == "numpy" and b.info["backend"] == "python"
    assert a.info["iterations"] == b.info["iterations"]
    probe, _ = clusters(4, 10, 24, spread * 1.5, seed=4)
    assert max_diff(a.predict_proba(probe), b.predict_proba(probe)) <= 1e-6
    assert [label for label, _ in a.predict(probe)] == [label for label, _ in b.predict(probe)]


def test_fitting_is_deterministic_and_rows_are_normalised() -> None:
    vectors, labels = clusters(3, 10, 8, 2.0, seed=5)
    a = LabelModel.fit(vectors, labels)
    b = LabelModel.fit(vectors, labels)
    assert a.to_dict() == b.to_dict()
    scaled = [[7.5 * v for v in row] for row in vectors]  # the same directions: the same model
    assert max_diff(LabelModel.fit(scaled, labels).predict_proba(vectors), a.predict_proba(vectors)) < 1e-9
    assert a.predict_proba(vectors[:1]) == a.predict_proba([[3.0 * v for v in vectors[0]]])


def test_integer_labels_and_numpy_input() -> None:
    np = pytest.importorskip("numpy")
    vectors, labels = clusters(2, 10, 6, 1.0, seed=6)
    model = LabelModel.fit(np.asarray(vectors, dtype=np.float32), [int(s[-1]) + 10 for s in labels])
    assert model.labels == [10, 11]
    assert model.predict(np.asarray(vectors[:2]))[0][0] in (10, 11)


def test_save_and_load_round_trip_exactly(tmp_path: Path) -> None:
    vectors, labels = clusters(3, 10, 8, 2.0, seed=7)
    model = LabelModel.fit(vectors, labels, embedder={"model": "m", "revision": "r", "variant": "fp32", "bundle": "/x"})
    path = tmp_path / "m.json"
    model.save(path)
    data = json.loads(path.read_text())
    assert data["format"] == "clinvec-label-model" and data["format_version"] == 1
    assert data["embedder"] == {"model": "m", "revision": "r", "variant": "fp32"}  # where it was loaded: not kept
    again = LabelModel.load(path)
    assert again.predict_proba(vectors) == model.predict_proba(vectors)
    assert again.labels == model.labels and again.info == model.info
    assert not list(tmp_path.glob("*.tmp-*"))


def test_bad_files_are_refused(tmp_path: Path) -> None:
    vectors, labels = clusters(2, 5, 4, 1.0, seed=8)
    good = LabelModel.fit(vectors, labels).to_dict()
    cases = {
        "version": {**good, "format_version": 2},
        "format": {**good, "format": "something-else"},
        "shape": {**good, "bias": [0.0]},
        "dims": {**good, "dims": 5},
        "labels": {**good, "labels": ["a", "a"]},
        "missing": {k: v for k, v in good.items() if k != "weights"},
    }
    for name, data in cases.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(data))
        with pytest.raises(LabelModelError):
            LabelModel.load(path)
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(LabelModelError, match="not JSON"):
        LabelModel.load(tmp_path / "junk.json")
    with pytest.raises(InvalidInput, match="cannot read"):
        LabelModel.load(tmp_path / "absent.json")
    assert issubclass(LabelModelError, pyapp.ClinvecError)


def test_bad_input_is_a_clear_error() -> None:
    vectors, labels = clusters(2, 5, 4, 1.0, seed=10)
    with pytest.raises(InvalidInput, match="at least 2 distinct"):
        LabelModel.fit(vectors, ["same"] * len(vectors))
    with pytest.raises(InvalidInput, match="10 vectors but 9 labels"):
        LabelModel.fit(vectors, labels[:-1])
    with pytest.raises(InvalidVector, match="NaN"):
        LabelModel.fit([*vectors[:-1], [math.nan, 1, 1, 1]], labels)
    with pytest.raises(InvalidVector, match="all zeros"):
        LabelModel.fit([*vectors[:-1], [0, 0, 0, 0]], labels)
    with pytest.raises(DimensionMismatch):
        LabelModel.fit([*vectors[:-1], [1, 2, 3]], labels)
    with pytest.raises(InvalidInput, match="strings or integers"):
        LabelModel.fit(vectors, [True, False] * 5)
    with pytest.raises(InvalidVector):
        LabelModel.fit([*vectors[:-1], ["a", "b", "c", "d"]], labels)
    for bad in ({"l2": 0}, {"l2": math.inf}, {"max_iter": 0}, {"backend": "torch"}, {"tol": -1}):
        with pytest.raises(InvalidInput):
            LabelModel.fit(vectors, labels, **bad)
    model = LabelModel.fit(vectors, labels)
    with pytest.raises(DimensionMismatch, match="expected 4"):
        model.predict([[1.0, 2.0]])
    with pytest.raises(InvalidVector):
        model.predict_proba([[math.inf, 0, 0, 0]])
    with pytest.raises(InvalidInput):
        model.predict("not vectors")


def test_another_embedder_is_refused() -> None:
    vectors, labels = clusters(2, 5, 4, 1.0, seed=11)
    model = LabelModel.fit(vectors, labels, embedder={"model": "minilm", "revision": "1", "variant": "fp32"})
    model.check_embedder({"model": "minilm", "revision": "1", "variant": "fp32", "bundle": "elsewhere"}, 4)
    with pytest.raises(InvalidInput, match="trained on vectors from 'minilm'"):
        model.check_embedder({"model": "minilm", "revision": "1", "variant": "int8"}, 4)
    with pytest.raises(DimensionMismatch):
        model.check_embedder({"model": "minilm", "revision": "1", "variant": "fp32"}, 8)


# ---------------------------------------------------------------------- from an index's notes
KIND_WORDS = {
    "radiology": "chest x-ray shows opacity in the right lower lobe impression consolidation no effusion",
    "discharge": "discharged home on oral antibiotics follow up with primary care in two weeks medication list",
    "nursing": "patient resting comfortably vital signs stable pain controlled turned every two hours",
}


def note(kind: str, i: int, long: bool = False) -> str:
    words = KIND_WORDS[kind].split()
    rng = random.Random(f"{kind}-{i}")
    body = " ".join(rng.choice(words) for _ in range(400 if long else 25))
    return f"Note {i}. {body}."


async def notes_index(path: Path) -> DocumentIndex:
    docs = await DocumentIndex.create(str(path), embedder=HashingEmbedder(dims=64, seed=3))
    batch = []
    for i in range(24):
        kind = list(KIND_WORDS)[i % 3]
        metadata = {"kind": kind} if i < 18 else {"ward": "ICU"}  # the last six unlabelled
        batch.append((f"note-{i}", note(kind, i, long=i in (0, 19)), metadata))
    await docs.upsert_documents(batch)
    return docs


async def test_fit_index_learns_the_kind_of_a_note(tmp_path: Path) -> None:
    docs = await notes_index(tmp_path / "idx")
    try:
        model = await LabelModel.fit_index(docs.index, field="kind")
        assert model.labels == ["discharge", "nursing", "radiology"]
        assert model.info["examples"] == 18 and model.info["field"] == "kind"
        assert model.embedder == {k: v for k, v in docs.index.manifest["embedder"].items() if k != "bundle"}
        rows = await model.predict_index(docs.index)
        assert len(rows) == 24
        unlabelled = [r for r in rows if r["given"] is None]
        assert [r["uri"] for r in unlabelled] == [f"note-{i}" for i in range(18, 24)]
        for r in unlabelled:
            truth = list(KIND_WORDS)[int(r["uri"].split("-")[1]) % 3]
            assert r["label"] == truth and 0.34 < r["probability"] <= 1.0
        ((label, _),) = model.predict([await text_vector(docs.index, note("radiology", 99))])
        assert label == "radiology"
    finally:
        await docs.close()


async def test_a_long_note_is_the_mean_of_its_chunks(tmp_path: Path) -> None:
    docs = await notes_index(tmp_path / "idx")
    try:
        data = await note_vectors(docs.index, "kind", uris=["note-0"])
        chunks = await docs.index.list(filter={"_doc.uri": "note-0"})
        assert len(chunks) > 1
        mean = [sum(c.vector[j] for c in chunks) / len(chunks) for j in range(64)]
        assert data.uris == ["note-0"] and data.labels == ["radiology"]
        assert max(abs(a - b) for a, b in zip(data.vectors[0], mean, strict=True)) < 1e-12
        with pytest.raises(InvalidInput, match="no note 'absent'"):
            await note_vectors(docs.index, "kind", uris=["absent"])
        with pytest.raises(InvalidInput):
            await note_vectors(docs.index, "_doc.uri")
    finally:
        await docs.close()


async def test_fit_index_refuses_what_it_cannot_learn_from(tmp_path: Path) -> None:
    docs = await notes_index(tmp_path / "idx")
    try:
        with pytest.raises(InvalidInput, match="no note in the index has a value for 'specialty'"):
            await LabelModel.fit_index(docs.index, field="specialty")
        with pytest.raises(InvalidInput, match="at least 2 distinct"):
            await LabelModel.fit_index(docs.index, field="ward")
        await docs.upsert_document("odd", "a note with a list as its kind", {"kind": ["a", "b"]})
        with pytest.raises(InvalidInput, match="note 'odd'"):
            await LabelModel.fit_index(docs.index, field="kind")
    finally:
        await docs.close()


async def test_an_index_of_another_embedder_is_refused(tmp_path: Path) -> None:
    docs = await notes_index(tmp_path / "idx")
    other = await DocumentIndex.create(str(tmp_path / "other"), embedder=HashingEmbedder(dims=64, seed=4))
    try:
        model = await LabelModel.fit_index(docs.index)
        await other.upsert_document("x", note("nursing", 1), {"kind": "nursing"})
        with pytest.raises(InvalidInput, match="meaningless"):
            await model.predict_index(other.index)
    finally:
        await docs.close()
        await other.close()
