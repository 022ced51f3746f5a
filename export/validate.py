"""Self-validation of an export: ONNX fp32 against PyTorch, int8 against fp32, on fixed clinical sentences.

PyTorch embeds each sentence alone (no padding) while ONNX gets one padded batch, so a pass also shows that
padding, dynamic shapes and the in-graph pooling are right. The thresholds live in ``thresholds``; the values
measured on real models are in docs/BENCHMARKS.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ValidationFailed
from .pooling import EMBEDDING_OUTPUT
from .tokenizer_settings import TokenizerSettings

_LONG_NOTE = (
    "HPI: 67 y/o M with PMH of CAD s/p CABG x3 (2015), HFrEF (EF 30%), T2DM on insulin, CKD stage 3b, "
    "presents with 3 days of progressive dyspnea on exertion, orthopnea, PND and bilateral LE edema. "
    "Denies chest pain, fever or cough. Vitals: T 37.1, HR 104, BP 148/92, RR 22, SpO2 89% on RA. "
)

SENTENCES: tuple[str, ...] = (
    "Patient is a 67-year-old male admitted with community-acquired pneumonia.",
    "No acute intracranial hemorrhage.",
    "Denies chest pain, shortness of breath, nausea or vomiting.",
    "Started on IV ceftriaxone 1 g daily and azithromycin 500 mg PO.",
    "Hemoglobin A1c 9.2%, creatinine 1.8 mg/dL (baseline 1.3).",
    "Chest X-ray shows bilateral lower lobe infiltrates consistent with aspiration.",
    "History of atrial fibrillation on apixaban; CHA2DS2-VASc score 4.",
    "Temp 38.5°C, HR 112 bpm, BP 92/58 mmHg, SpO2 91% on 2L NC.",
    "Discharged home in stable condition with follow-up in cardiology clinic in 2 weeks.",
    "MRI brain: acute infarct in the left MCA territory.",
    "The patient's wife reports new confusion since yesterday evening.",
    "Type 2 diabetes mellitus with diabetic nephropathy and peripheral neuropathy.",
    "Allergies: penicillin (rash), sulfa drugs (anaphylaxis).",
    "Post-operative day 2 s/p laparoscopic cholecystectomy, tolerating diet.",
    "Metoprolol tartrate 25 mg BID was held for bradycardia.",
    "Family history significant for breast cancer in mother and colon cancer in father.",
    "Na+ 131 mEq/L, K+ 5.6 mEq/L; repeat BMP ordered.",
    "Ö. Müller, naïve to anticoagulation, café-au-lait spots noted.",
    "sepsis",  # one-word query; non-clinical one-token texts ("ok", "no") fall below the int8 threshold
    _LONG_NOTE * 12,  # beyond 512 tokens: exercises truncation at the last position embedding
)

MASKED_SENTENCES: tuple[str, ...] = (
    "The patient was admitted with chest [MASK] and shortness of breath.",
    "She has a history of type 2 [MASK] mellitus.",
    "Blood [MASK] was 150/90 mmHg on arrival.",
)


@dataclass
class Stats:
    """Agreement of two sets of row vectors."""

    min_cosine: float
    mean_cosine: float
    max_abs_diff: float

    def as_dict(self) -> dict[str, float]:
        return {"min_cosine": self.min_cosine, "mean_cosine": self.mean_cosine, "max_abs_diff": self.max_abs_diff}


@dataclass
class Batch:
    """Tokenised validation inputs: one padded batch plus the unpadded rows."""

    input_ids: np.ndarray
    attention_mask: np.ndarray
    token_type_ids: np.ndarray
    lengths: list[int]
    truncated: int
    rows: list[list[int]] = field(default_factory=list)

    def feeds(self) -> dict[str, np.ndarray]:
        return {
            "input_ids": self.input_ids,
            "attention_mask": self.attention_mask,
            "token_type_ids": self.token_type_ids,
        }


def compare(a: np.ndarray, b: np.ndarray) -> Stats:
    """Cosine per row and the largest absolute difference."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    cos = (a64 * b64).sum(1) / (np.linalg.norm(a64, axis=1) * np.linalg.norm(b64, axis=1))
    return Stats(float(cos.min()), float(cos.mean()), float(np.abs(a64 - b64).max()))


def reference_tokenizer(vocab_path: Path, settings: TokenizerSettings) -> Any:
    """The Rust BERT tokenizer with the bundle's settings: the reference the runtime port must match."""
    from transformers import BertTokenizerFast

    return BertTokenizerFast(
        vocab_file=str(vocab_path),
        do_lower_case=settings.do_lower_case,
        model_max_length=settings.max_seq_length,
    )


def tokenize(tokenizer: Any, texts: Sequence[str], max_length: int) -> Batch:
    """Pad to the longest row, truncate at ``max_length`` (specials included)."""
    full = tokenizer(list(texts), truncation=False)["input_ids"]
    enc = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="np")
    mask = enc["attention_mask"].astype(np.int64)
    lengths = [int(n) for n in mask.sum(1)]
    rows = [[int(t) for t in row[:n]] for row, n in zip(enc["input_ids"], lengths, strict=True)]
    return Batch(
        enc["input_ids"].astype(np.int64),
        mask,
        enc["token_type_ids"].astype(np.int64),
        lengths,
        sum(1 for ids in full if len(ids) > max_length),
        rows,
    )


def torch_embeddings(folder: Path, batch: Batch) -> np.ndarray:
    """PyTorch mean-pooled, L2-normalised vectors, each sentence run alone (the unpadded reference)."""
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(folder), dtype=torch.float32).eval()
    out = []
    with torch.no_grad():
        for row in batch.rows:
            ids = torch.tensor([row], dtype=torch.long)
            hidden = model(
                input_ids=ids, attention_mask=torch.ones_like(ids), token_type_ids=torch.zeros_like(ids)
            ).last_hidden_state
            mean = hidden.mean(dim=1)
            out.append(torch.nn.functional.normalize(mean, p=2, dim=1)[0].numpy())
    return np.stack(out).astype(np.float32)


def onnx_run(path: Path, feeds: dict[str, np.ndarray], output: str = EMBEDDING_OUTPUT) -> np.ndarray:
    """Run one output of an ONNX file on CPU."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run([output], feeds)[0]


def check(name: str, stats: Stats, threshold: float) -> None:
    """Raise ValidationFailed when the minimum cosine is below ``threshold``."""
    if not stats.min_cosine >= threshold:  # also catches NaN
        raise ValidationFailed(
            f"validation failed: {name} min cosine {stats.min_cosine:.6f} < {threshold} "
            f"(mean {stats.mean_cosine:.6f}, max |diff| {stats.max_abs_diff:.3g}); nothing was written"
        )


def runtime_tokenizer_parity(bundle_dir: Path, settings: TokenizerSettings, batch: Batch) -> bool | None:
    """Whether pyapp.tokenizer (the runtime port) yields the reference ids; None when it is not importable."""
    try:
        from pyapp.tokenizer import WordPieceTokenizer
    except ImportError:
        return None
    tok = WordPieceTokenizer(
        str(bundle_dir / "vocab.txt"),
        do_lower_case=settings.do_lower_case,
        max_length=settings.max_seq_length,
    )
    return all(list(tok.encode(text).input_ids) == row for text, row in zip(SENTENCES, batch.rows, strict=True))


def mlm_top_k(logits: np.ndarray, ids: np.ndarray, mask_id: int, k: int = 5) -> list[list[int]]:
    """Top-k token ids at each [MASK] position, in sentence order."""
    tops = []
    for row_logits, row_ids in zip(logits, ids, strict=True):
        for pos in np.flatnonzero(row_ids == mask_id):
            tops.append([int(t) for t in np.argsort(-row_logits[pos], kind="stable")[:k]])
    return tops
