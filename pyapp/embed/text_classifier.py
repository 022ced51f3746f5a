"""Text classification with a fine-tuned bundle (``python -m export finetune``): ``(label, probability)`` per text.

Why two layers, as for fill-mask: ``Classify`` holds everything both builds must do identically (the bundle's
labels, input checks, tokenising with the pure-Python ``pyapp.tokenizer``, length batching, softmax, picking
the label) in pure Python so it runs in Pyodide without numpy; ``TextClassifier`` (here, onnxruntime) and
``pyapp.browser.web_text_classifier.WebTextClassifier`` (onnxruntime-web) only supply the float32 logits.

fp32 is the default: it is what the export validated against PyTorch to 1e-4; int8 ships only when it
passed its own (looser) check, and a bundle without it says so.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import InvalidInput, ModelBundleError
from . import bundle
from .base import TokenRow, check_texts, length_batches, token_rows

Label = str | int
Prediction = tuple[Label, float]  # (label, probability of that label)


class Classify:
    """The runtime-independent half of a text classifier; subclasses run the graph on rows of token ids."""

    manifest: dict[str, Any]
    tokenizer: Any
    variant: str
    labels: list[Label]

    def _setup(self, manifest: dict[str, Any], tokenizer: Any, variant: str, where: str) -> None:
        labels = manifest.get("labels")
        if (
            not isinstance(labels, list)
            or len(labels) < 2
            or any(isinstance(x, bool) or not isinstance(x, str | int) for x in labels)
            or len(set(labels)) != len(labels)
        ):
            raise ModelBundleError(f"{where}: 'labels' is not a list of two or more distinct labels: export it again")
        if manifest.get("dims") != len(labels):
            raise ModelBundleError(f"{where}: 'dims' {manifest.get('dims')!r} is not the number of labels")
        self.manifest = manifest
        self.tokenizer = tokenizer
        self.variant = variant
        self.labels = list(labels)
        self.max_seq_length = int(manifest["max_seq_length"])

    def rows(self, texts: Any) -> list[TokenRow]:
        """The model input rows of ``texts``; ``InvalidInput`` for anything but a sequence of strings."""
        if texts is None or not hasattr(texts, "__iter__"):
            raise InvalidInput(f"predict takes a list of texts, got {type(texts).__name__}")
        check_texts(texts, "predict")
        return token_rows(self.tokenizer, list(texts), self.max_seq_length)

    def probabilities(self, logits: Sequence[float]) -> list[float]:
        """Softmax of one row of logits, in float64 (the same arithmetic in both builds)."""
        values = [float(x) for x in logits]
        if len(values) != len(self.labels) or not all(math.isfinite(x) for x in values):
            raise ModelBundleError(f"the classifier returned {len(values)} unusable logits for one text")
        top = max(values)
        exps = [math.exp(x - top) for x in values]
        total = math.fsum(exps)
        return [e / total for e in exps]

    def best(self, probs: Sequence[float]) -> Prediction:
        """The most likely label and its probability (ties: the label listed first)."""
        i = max(range(len(probs)), key=probs.__getitem__)
        return self.labels[i], probs[i]


class TextClassifier(Classify):
    """A classifier bundle on onnxruntime (CPU): ``TextClassifier(bundle_dir).predict(["text", ...])``.

    In Pyodide use ``await pyapp.browser.web_text_classifier.WebTextClassifier.load(bundle_url)``: the same
    ``predict`` arguments and result, awaited.
    """

    def __init__(
        self,
        bundle_dir: str | Path,
        quantized: bool = False,
        batch_size: int = 32,
        threads: int | None = None,
        verify: bool = True,
    ) -> None:
        from .onnx import require_runtime

        require_runtime()
        if not isinstance(quantized, bool):
            raise InvalidInput(f"quantized must be True or False, got {quantized!r}")
        if type(batch_size) is not int or batch_size < 1:
            raise InvalidInput(f"batch_size must be a positive integer, got {batch_size!r}")
        self.bundle_dir = Path(bundle_dir).resolve()
        where = str(self.bundle_dir)
        manifest = bundle.load_manifest(self.bundle_dir, task=bundle.TASK_CLASSIFY)
        variant = "int8" if quantized else "fp32"
        if variant not in (manifest.get("variants") or {}):
            raise ModelBundleError(f"{where} has no {variant} classifier graph (its int8 graph did not validate)")
        model_file = bundle.variant_file(manifest, variant)
        model_path = bundle.checked_path(self.bundle_dir, manifest, model_file, verify)
        vocab_path = bundle.checked_path(self.bundle_dir, manifest, manifest["vocab_file"], verify)
        self._sha256 = bundle.file_entry(manifest, model_file, where)["sha256"]
        self.batch_size = batch_size

        from ..tokenizer import WordPieceTokenizer

        tokenizer = WordPieceTokenizer(
            str(vocab_path), do_lower_case=bool(manifest["do_lower_case"]), max_length=int(manifest["max_seq_length"])
        )
        self._setup(manifest, tokenizer, variant, where)
        from .masked_lm import _open_session

        self._session = _open_session(model_path, threads)
        if manifest["output"] not in [o.name for o in self._session.get_outputs()]:
            raise ModelBundleError(f"{model_file} has no output {manifest['output']!r}: export it again")
        self._inputs = {i.name for i in self._session.get_inputs()}

    @property
    def identity(self) -> dict[str, Any]:
        """Model, revision, variant and the graph's sha256 (equal to the browser's for the same file)."""
        return bundle.identity(self.manifest, self.variant, self._sha256, str(self.bundle_dir))

    def predict_proba(self, texts: Sequence[str]) -> list[list[float]]:
        """Each text's probability for every label, in the order of ``labels``."""
        import numpy as np

        rows = self.rows(texts)
        out: list[list[float]] = [[] for _ in rows]
        for chunk in length_batches(rows, self.batch_size):
            width = max(len(rows[i][0]) for i in chunk)
            ids = np.full((len(chunk), width), self.tokenizer.pad_id, dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.int64)
            types = np.zeros((len(chunk), width), dtype=np.int64)
            for r, i in enumerate(chunk):
                row_ids, row_types = rows[i]
                ids[r, : len(row_ids)] = row_ids
                mask[r, : len(row_ids)] = 1
                types[r, : len(row_types)] = row_types
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            logits = self._session.run([self.manifest["output"]], {k: v for k, v in feeds.items() if k in self._inputs})
            for r, i in enumerate(chunk):
                out[i] = self.probabilities(logits[0][r].tolist())
        return out

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """``(label, probability)`` of the most likely label of each text, in the order of ``texts``."""
        return [self.best(p) for p in self.predict_proba(texts)]

    async def predict_async(self, texts: Sequence[str]) -> list[Prediction]:
        """``predict`` on a worker thread (onnxruntime releases the GIL), so an event loop keeps running."""
        return await asyncio.to_thread(self.predict, list(texts))


__all__ = ["Classify", "Label", "Prediction", "TextClassifier"]
