"""Session fixtures for model tests: a tiny random BERT (HF folder) and its exported ONNX bundle.

Why one shared export: importing torch/transformers/optimum costs 10-20 s on a small VM, the export of a
32-wide, 2-layer BERT about 3 s; building it once per session keeps the model tests fast. The bundle goes
through ``python -m export``'s own entry point (``export.cli.main``), so the tests cover the real CLI path.
Heavy imports happen inside the fixtures: collecting other test files stays cheap, and without torch or
optimum-onnx the model tests are skipped, not failed.

Register in ``tests/conftest.py`` with ``pytest_plugins = ["conftest_models"]``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

TINY_MAX_POSITIONS = 64
TINY_HIDDEN = 32

_WORDS = (
    "the patient was is with and of to in on for no not a an history denies reports presents admitted "
    "discharged chest pain shortness breath fever cough nausea vomiting blood pressure heart rate daily "
    "mg ml dl bid tid prn po iv left right acute chronic severe mild bilateral diabetes mellitus type "
    "hypertension pneumonia sepsis infarct stroke renal kidney failure heart atrial fibrillation insulin "
    "metformin aspirin ceftriaxone mother father cancer breast colon x ray ct mri scan normal stable "
    "edema dyspnea orthopnea anemia confusion lung liver brain hemorrhage fracture femur wound infection "
    "surgery post operative day clinic follow up weeks home condition allergies rash penicillin"
).split()
_PIECES = ("##s", "##ed", "##ing", "##itis", "##emia", "##osis", "##ectomy", "##ology", "##al", "##ic", "##ia")
_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"
_PUNCT = ".,;:/+-()%'"


def tiny_vocab() -> list[str]:
    """An uncased WordPiece vocab (~200 tokens): specials, characters, continuations, clinical words."""
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab += list(_CHARS) + list(_PUNCT) + ["##" + c for c in _CHARS]
    for token in (*_WORDS, *_PIECES):
        if token not in vocab:
            vocab.append(token)
    return vocab


def _tiny_bert(folder: Path, seed: int) -> tuple[Any, list[str]]:
    """A random 2-layer BertForMaskedLM over ``tiny_vocab()`` (written to ``folder``), seeded; not yet saved."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    vocab = tiny_vocab()
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    config = transformers.BertConfig(
        vocab_size=len(vocab),
        hidden_size=TINY_HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=TINY_MAX_POSITIONS,
    )
    torch.manual_seed(seed)
    return transformers.BertForMaskedLM(config), vocab


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random BERT with an MLM head saved like a hub folder: config.json, model.safetensors, vocab.txt."""
    folder = tmp_path_factory.mktemp("tiny-bert")
    model, _ = _tiny_bert(folder, seed=1234)
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_bert_bundle(tiny_bert_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The exported bundle (fp32 + int8 + MLM) of ``tiny_bert_dir``, made by the CLI entry point."""
    pytest.importorskip("optimum.exporters.onnx")
    pytest.importorskip("onnxruntime")
    from export.cli import main

    out = tmp_path_factory.mktemp("bundles") / "tiny"
    code = main(["--model", str(tiny_bert_dir), "--out", str(out), "--model-id", "test/tiny-bert", "--with-mlm"])
    assert code == 0, "exporting the tiny BERT failed"
    return out


@pytest.fixture(scope="session")
def torch_pooled(tiny_bert_dir: Path) -> Callable[[Sequence[Sequence[int]]], object]:
    """PyTorch reference: mean-pooled, L2-normalised vectors for rows of token ids, each run unpadded."""
    torch = pytest.importorskip("torch")
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(tiny_bert_dir)).eval()

    def pooled(rows: Sequence[Sequence[int]]):  # noqa: ANN202 - returns a numpy array
        out = []
        with torch.no_grad():
            for row in rows:
                ids = torch.tensor([list(row)], dtype=torch.long)
                hidden = model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state[0]
                mean = hidden.sum(0) / hidden.shape[0]
                out.append((mean / mean.norm()).numpy())
        import numpy as np

        return np.stack(out)

    return pooled


@pytest.fixture(scope="session")
def tiny_mlm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BERT whose MLM head looks trained: spread-out, context-dependent logits.

    Why not ``tiny_bert_dir``: its freshly initialised head gives all ~200 tokens nearly the same probability,
    so rank comparisons between runtimes would hinge on 1e-7 differences. Scaling the (tied) word embeddings
    and drawing an output bias gives peaked distributions with clear gaps, as a trained head has; one
    continuation piece (``##itis``) is pushed up so display joining is exercised.
    """
    torch = pytest.importorskip("torch")
    folder = tmp_path_factory.mktemp("tiny-mlm")
    model, vocab = _tiny_bert(folder, seed=4321)
    with torch.no_grad():
        model.bert.embeddings.word_embeddings.weight.mul_(30.0)
        model.cls.predictions.bias.normal_(0.0, 0.5)
        model.cls.predictions.bias[vocab.index("##itis")] = 5.0  # a WordPiece continuation near the top
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_mlm_bundle(tiny_mlm_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The exported bundle (encoder + fill-mask graphs, fp32 and int8) of ``tiny_mlm_dir``."""
    pytest.importorskip("optimum.exporters.onnx")
    pytest.importorskip("onnxruntime")
    from export.cli import main

    out = tmp_path_factory.mktemp("mlm-bundles") / "tiny-mlm"
    code = main(["--model", str(tiny_mlm_dir), "--out", str(out), "--model-id", "test/tiny-mlm", "--with-mlm"])
    assert code == 0, "exporting the tiny masked-LM BERT failed"
    return out
