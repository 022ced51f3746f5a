"""Suggest a label (the note's type, metadata ``kind``) for a draft note from the labels users gave to others.

Why a cache: fitting is the costly step (tens of L-BFGS evaluations over every labelled note), while asking for
a suggestion happens per draft. The fitted model is kept with the training data it came from (note ids, labels
and mean vectors) and refitted only when that data differs: a note added, deleted, edited or relabelled, in this
tab or another. Only kinds with at least ``MIN_PER_KIND`` notes are learnt: one example says too little.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from ..errors import InvalidInput
from .model import LabelModel
from .notes import note_vectors, text_vector

FIELD = "kind"
MIN_KINDS = 2
MIN_PER_KIND = 2
TOP = 3


def needs_message(counts: dict[str, int]) -> str | None:
    """What is missing before a suggestion can be made (None: enough), said in the user's terms."""
    usable = [k for k, n in counts.items() if n >= MIN_PER_KIND]
    if len(usable) >= MIN_KINDS:
        return None
    return (
        f"To suggest a type, give at least {MIN_PER_KIND} notes each of at least {MIN_KINDS} types "
        f"(now: {len(usable)} type{'s' * (len(usable) != 1)} with {MIN_PER_KIND} or more notes)."
    )


class KindSuggester:
    """Fits a ``LabelModel`` on the notes' ``kind`` values of one index, and keeps it until the notes change."""

    def __init__(self, index: Any, field: str = FIELD) -> None:
        self.index = index
        self.field = field
        self.fits = 0  # how many times a model was fitted (tests check refits happen only on change)
        self._data: tuple[Any, ...] | None = None
        self._model: LabelModel | None = None

    async def _training(self) -> tuple[tuple[Any, ...], dict[str, int]]:
        data = (await note_vectors(self.index, self.field)).labelled()
        labels = [str(v) for v in data.labels]
        counts = dict(sorted(Counter(labels).items()))
        keep = [i for i, label in enumerate(labels) if counts[label] >= MIN_PER_KIND]
        key = (
            tuple(data.uris[i] for i in keep),
            tuple(labels[i] for i in keep),
            tuple(tuple(data.vectors[i]) for i in keep),
        )
        return key, counts

    async def model(self) -> tuple[LabelModel | None, dict[str, int], bool]:
        """The model for the notes as they are now (None when too few are labelled), the per-kind counts, and
        whether it was fitted by this call."""
        key, counts = await self._training()
        if needs_message(counts) is not None:
            return None, counts, False
        if self._model is not None and key == self._data:
            return self._model, counts, False
        uris, labels, vectors = key
        self._model = LabelModel.fit(list(vectors), list(labels), embedder=self.index.manifest.get("embedder"))
        self._data = key
        self.fits += 1
        return self._model, counts, True

    async def suggest(self, text: Any, top: int = TOP) -> dict[str, Any]:
        """``{"ready", "kinds", "needs"}``, and when ready ``{"label", "probability", "alternatives": [{"label",
        "probability"}] (best first, ``top`` of them), "examples", "backend", "refit", "ms"}`` for the draft."""
        if not isinstance(text, str) or not text.strip():
            raise InvalidInput("type the note's text first, then ask for a type")
        started = time.perf_counter()
        model, counts, refit = await self.model()
        out: dict[str, Any] = {"ready": model is not None, "kinds": counts, "needs": needs_message(counts)}
        if model is None:
            return out
        probs = model.predict_proba([await text_vector(self.index, text)])[0]
        order = sorted(zip(model.labels, probs, strict=True), key=lambda lp: -lp[1])
        alternatives = [{"label": label, "probability": p} for label, p in order[:top]]
        return {
            **out,
            **alternatives[0],
            "alternatives": alternatives,
            "examples": model.info["examples"],
            "backend": model.info["backend"],
            "refit": refit,
            "ms": (time.perf_counter() - started) * 1000,
        }
