"""Fine-tuning (``python -m export finetune``), ``pyapp.embed.TextClassifier`` and ``python -m pyapp classify``.

Why a tiny random BERT fine-tuned for a few steps: the point here is the plumbing (training loop, optimum
export, bundle, runtime), not accuracy; the real MiniLM run is a benchmark (bench/finetune.py). The reference
is what a Hugging Face user runs: the ``transformers`` text-classification pipeline on the trained checkpoint
(kept with ``--keep-checkpoint``); our fp32 labels must be its labels and our probabilities within 1e-4.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
MINILM = REPO / "web" / "models" / "minilm"
CARDIO = "chest pain heart rate atrial fibrillation blood pressure hypertension infarct edema dyspnea".split()
INFECT = "fever cough pneumonia sepsis infection wound ceftriaxone penicillin rash".split()
RENAL = "renal kidney failure insulin diabetes mellitus anemia metformin".split()
TEXTS = [
    "the patient reports chest pain and atrial fibrillation",
    "fever with cough, started on ceftriaxone",
    "chronic kidney failure on insulin",
    "no history of hypertension",
    "Bilateral edema; denies FEVER.",
    "x",
]


def write_training_file(path: Path, n: int = 48) -> Path:
    """Three labels from disjoint clinical word lists (one of them an integer label, as JSON allows)."""
    rng = random.Random(7)
    kinds = [("cardio", CARDIO), ("infection", INFECT), (3, RENAL)]
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(n):
            label, words = kinds[i % 3]
            text = "the patient " + " ".join(rng.sample(words, 4))
            handle.write(json.dumps({"note": text, "kind": label, "id": i}) + "\n")
    return path


@pytest.fixture(scope="module")
def classifier(tiny_mlm_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(bundle, trained HF checkpoint) of the tiny BERT fine-tuned for three epochs of six steps (a high rate:
    the random tiny model must move within seconds).

    Built once per session in a fixed folder under the session's temp root, so the browser tests that import
    this fixture reuse it instead of training again.
    """
    pytest.importorskip("optimum.exporters.onnx")
    pytest.importorskip("onnxruntime")
    from export.cli import main

    work = tmp_path_factory.getbasetemp() / "tiny-classifier"
    out, checkpoint = work / "bundle", work / "checkpoint"
    if (out / "manifest.json").is_file() and (checkpoint / "config.json").is_file():
        return out, checkpoint
    work.mkdir(exist_ok=True)
    train = write_training_file(work / "train.jsonl")
    code = main(
        [
            "finetune",
            *("--train", str(train), "--text-field", "note", "--label-field", "kind"),
            *("--base", str(tiny_mlm_dir), "--out", str(out), "--keep-checkpoint", str(checkpoint)),
            *("--epochs", "3", "--batch-size", "8", "--learning-rate", "1e-2", "--threads", "1"),
            *("--model-id", "test/tiny-classifier"),
        ]
    )
    assert code == 0, "fine-tuning the tiny BERT failed"
    return out, checkpoint


def _manifest(bundle: Path) -> dict[str, Any]:
    return json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))


def test_bundle_declares_its_task_labels_and_validation(classifier: tuple[Path, Path]) -> None:
    bundle, _ = classifier
    m = _manifest(bundle)
    assert m["task"] == "text-classification" and m["model"] == "test/tiny-classifier"
    assert m["labels"] == [3, "cardio", "infection"]  # integers first, then strings, as LabelModel orders them
    assert m["dims"] == 3 and m["output"] == "logits" and m["default_variant"] == "fp32"
    assert m["training"]["examples"] == 48 and m["training"]["steps"] == 18 and m["training"]["epochs"] == 3
    assert m["training"]["label_counts"] == {"3": 16, "cardio": 16, "infection": 16}
    assert m["base"]["source"]["kind"] == "local"
    v = m["validation"]
    assert v["fp32_vs_torch"]["label_agreement"] == 1.0 and v["fp32_vs_torch"]["max_prob_diff"] <= 1e-4
    assert v["runtime_tokenizer_matches_reference"] is True and v["training_texts"] == 48
    assert set(m["files"]) == {"classifier.onnx", "vocab.txt"} | ({"classifier_int8.onnx"} if v["int8_kept"] else set())
    from pyapp.embed.bundle import sha256_file

    for name, entry in m["files"].items():
        assert entry["sha256"] == sha256_file(bundle / name)


def test_predictions_equal_the_transformers_pipeline(classifier: tuple[Path, Path]) -> None:
    transformers = pytest.importorskip("transformers")
    from pyapp.embed import TextClassifier

    bundle, checkpoint = classifier
    model = TextClassifier(bundle)
    pipe = transformers.pipeline("text-classification", model=str(checkpoint), tokenizer=str(checkpoint), top_k=None)
    ours = model.predict_proba(TEXTS)
    labels = set()
    for text, probs in zip(TEXTS, ours, strict=True):
        theirs = {row["label"]: row["score"] for row in pipe([text])[0]}
        assert sorted(theirs) == sorted(map(str, model.labels))
        for label, prob in zip(model.labels, probs, strict=True):
            assert prob == pytest.approx(theirs[str(label)], abs=1e-4), (text, label)
        label, prob = model.predict([text])[0]
        assert str(label) == max(theirs, key=theirs.get) and prob == max(probs)
        labels.add(label)
    assert len(labels) >= 2  # the trained head separates the texts; a constant answer would hide mistakes
    assert abs(sum(ours[0]) - 1.0) < 1e-12
    # Batching and padding change nothing: one batch of all texts equals each text alone.
    alone = [model.predict_proba([t])[0] for t in TEXTS]
    assert max(abs(a - b) for x, y in zip(alone, ours, strict=True) for a, b in zip(x, y, strict=True)) < 1e-6
    assert model.predict([]) == []


def test_learning_moved_the_training_texts_towards_their_labels(classifier: tuple[Path, Path], tmp_path: Path) -> None:
    from pyapp.embed import TextClassifier

    bundle, _ = classifier
    rows = [json.loads(line) for line in write_training_file(tmp_path / "t.jsonl").read_text().splitlines()]
    predicted = TextClassifier(bundle).predict([r["note"] for r in rows])
    accuracy = sum(label == r["kind"] for (label, _), r in zip(predicted, rows, strict=True)) / len(rows)
    assert accuracy > 0.5  # three balanced labels: a head that learned nothing scores about 1/3


def test_int8_is_shipped_only_when_it_validated(classifier: tuple[Path, Path], tmp_path: Path) -> None:
    from pyapp.embed import TextClassifier
    from pyapp.errors import ModelBundleError

    bundle, _ = classifier
    m = _manifest(bundle)
    fp32 = TextClassifier(bundle)
    if m["validation"]["int8_kept"]:
        int8 = TextClassifier(bundle, quantized=True)
        assert int8.identity["sha256"] == m["files"]["classifier_int8.onnx"]["sha256"] != fp32.identity["sha256"]
        for (a, pa), (b, pb) in zip(int8.predict(TEXTS), fp32.predict(TEXTS), strict=True):
            assert a == b and abs(pa - pb) <= m["validation"]["thresholds"]["int8_max_prob_diff"]
    copy = tmp_path / "fp32-only"
    shutil.copytree(bundle, copy)
    manifest = _manifest(copy)
    manifest["variants"].pop("int8", None)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelBundleError, match="no int8 classifier graph"):
        TextClassifier(copy, quantized=True)


def test_an_embedder_bundle_and_a_classifier_bundle_refuse_each_others_role(classifier: tuple[Path, Path]) -> None:
    from pyapp.embed import MaskedLM, OnnxEmbedder, TextClassifier
    from pyapp.errors import ModelBundleError

    bundle, _ = classifier
    with pytest.raises(ModelBundleError, match="text-classification bundle.*TextClassifier"):
        OnnxEmbedder(bundle)
    with pytest.raises(ModelBundleError, match="text-classification bundle"):
        MaskedLM(bundle)
    if MINILM.joinpath("manifest.json").is_file():
        with pytest.raises(ModelBundleError, match="feature-extraction bundle.*export finetune"):
            TextClassifier(MINILM)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"labels": ["a", "a", "b"]}, "distinct labels"),
        ({"labels": "abc"}, "distinct labels"),
        ({"dims": 2}, "number of labels"),
        ({"task": "token-classification"}, "token-classification bundle"),
        ({"format_version": 99}, "newer than"),
    ],
)
def test_a_damaged_manifest_is_a_clear_bundle_error(
    classifier: tuple[Path, Path], tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    from pyapp.embed import TextClassifier
    from pyapp.errors import ModelBundleError

    copy = tmp_path / "b"
    shutil.copytree(classifier[0], copy)
    manifest = {**_manifest(copy), **change}
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelBundleError, match=message):
        TextClassifier(copy)


def test_an_altered_graph_fails_its_sha256(classifier: tuple[Path, Path], tmp_path: Path) -> None:
    from pyapp.embed import TextClassifier
    from pyapp.errors import ModelBundleError

    copy = tmp_path / "b"
    shutil.copytree(classifier[0], copy)
    data = bytearray((copy / "classifier.onnx").read_bytes())
    data[-10] ^= 0xFF
    (copy / "classifier.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelBundleError, match="sha256"):
        TextClassifier(copy)


@pytest.mark.parametrize("texts", ["one string", [1, 2], ["ok", None], None, 5])
def test_bad_input_is_invalid_input(classifier: tuple[Path, Path], texts: Any) -> None:
    from pyapp.embed import TextClassifier
    from pyapp.errors import InvalidInput

    with pytest.raises(InvalidInput):
        TextClassifier(classifier[0]).predict(texts)


# -- python -m pyapp classify ----------------------------------------------------------------------------


def test_cli_prints_one_json_line_per_text(classifier: tuple[Path, Path], capsys: pytest.CaptureFixture) -> None:
    from pyapp.cli import main
    from pyapp.embed import TextClassifier

    bundle, _ = classifier
    assert main(["classify", "--model", str(bundle), "--all", *TEXTS[:3]]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    want = TextClassifier(bundle).predict(TEXTS[:3])
    assert [(x["text"], x["label"], x["probability"]) for x in lines] == [
        (t, label, p) for t, (label, p) in zip(TEXTS[:3], want, strict=True)
    ]
    assert all(x["variant"] == "fp32" and set(x["probabilities"]) == {"3", "cardio", "infection"} for x in lines)


def test_cli_errors_are_one_line_and_exit_1(classifier: tuple[Path, Path], capsys: pytest.CaptureFixture) -> None:
    from pyapp.cli import main

    assert main(["classify", "--model", str(classifier[0])]) == 1
    assert "give texts" in capsys.readouterr().err
    if MINILM.joinpath("manifest.json").is_file():
        assert main(["classify", "--model", str(MINILM), "chest pain"]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "feature-extraction bundle" in err


# -- python -m export finetune: argument and data errors (before torch loads) ---------------------------


def _finetune(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "export", "finetune", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("lines", "fields", "message"),
    [
        (['{"text": "a", "label": "x"}', "{not json"], (), "line 2: not JSON"),
        (['{"text": "a", "label": "x"}', '{"body": "b", "label": "y"}'], (), "line 2: no field 'text'"),
        (['{"text": "a", "label": "x"}', '{"text": "b", "label": true}'], (), "line 2: 'label' must be"),
        (['{"text": "", "label": "x"}'], (), "line 1: 'text' must be non-empty"),
        (['{"text": "a", "label": "x"}', "", '{"text": "b", "label": "x"}'], (), "only the label 'x'"),
        (['["a", "x"]'], (), "line 1: expected a JSON object"),
        (['{"t": "a", "l": "x"}'], ("--text-field", "t", "--label-field", "lab"), "no field 'lab' \\(--label-field\\)"),
    ],
)
def test_bad_training_data_is_one_line_exit_2_and_nothing_written(
    tmp_path: Path, lines: list[str], fields: tuple[str, ...], message: str, capsys: pytest.CaptureFixture
) -> None:
    import re

    from export.cli import main

    train = tmp_path / "train.jsonl"
    train.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code = main(["finetune", "--train", str(train), "--base", "minilm", "--out", str(tmp_path / "out"), *fields])
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and re.search(message, err), err
    assert not (tmp_path / "out").exists()


def test_bio_clinicalbert_without_the_hub_is_a_clear_exit_2(tmp_path: Path) -> None:
    train = write_training_file(tmp_path / "train.jsonl")
    fields = ("--text-field", "note", "--label-field", "kind")
    proc = _finetune(tmp_path, "--train", str(train), *fields, "--out", str(tmp_path / "o"))  # default base: hub
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr
    assert "cannot reach the Hugging Face hub" in lines[0] and "Bio_ClinicalBERT" in lines[0]
    assert "--base minilm" in lines[0]
    assert not (tmp_path / "o").exists()


def test_refuses_to_replace_a_folder_that_is_not_a_bundle(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from export.cli import main

    train = write_training_file(tmp_path / "train.jsonl")
    precious = tmp_path / "notes"
    precious.mkdir()
    (precious / "keep.txt").write_text("mine")
    fields = ("--text-field", "note", "--label-field", "kind")
    with pytest.raises(SystemExit) as usage:  # --base needs a value: argparse's usage error
        main(["finetune", "--train", str(train), *fields, "--base"])
    assert usage.value.code == 2
    assert main(["finetune", "--train", str(train), *fields, "--base", "minilm", "--out", str(precious)]) == 2
    assert "not empty and holds no bundle" in capsys.readouterr().err
    assert (precious / "keep.txt").read_text() == "mine"
