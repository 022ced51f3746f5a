"""Fill-mask: the most likely tokens for each ``[MASK]`` of a sentence, from a bundle's masked-LM graph.

Why two layers: ``FillMask`` holds everything both builds must do identically (input checks, tokenising with
the pure-Python ``pyapp.tokenizer``, finding the masks, softmax, ranking, display), in pure Python so it runs in
Pyodide without numpy; ``MaskedLM`` (here, onnxruntime) and ``pyapp.browser.web_masked_lm.WebMaskedLM``
(onnxruntime-web) only supply the logits. The same code ranking the same float32 logits is what makes the
server's and the browser's top-k identical.

fp32 is the default: a 30k-way softmax is where int8 weights hurt most (the export records how much).
"""

from __future__ import annotations

import asyncio
import heapq
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import InvalidInput
from . import bundle
from .base import TokenRow, token_rows

MASK = "[MASK]"
MAX_TOP_K = 100  # a page or script asking for more is a slip, and 30k rows of JSON would be the result

Prediction = tuple[str, float]  # (token as displayed, probability)


class FillMask:
    """The runtime-independent half of fill-mask; subclasses provide the logits at the mask positions."""

    manifest: dict[str, Any]
    tokenizer: Any
    variant: str

    def _setup(self, manifest: dict[str, Any], tokenizer: Any, variant: str) -> None:
        self.manifest = manifest
        self.tokenizer = tokenizer
        self.variant = variant
        self.max_seq_length = int(manifest["max_seq_length"])
        self.mask_id = int(manifest["special_tokens"]["mask"]["id"])
        self._special_ids = {int(entry["id"]) for entry in manifest["special_tokens"].values()}

    def prepare(self, text: Any, top_k: Any) -> tuple[TokenRow, list[int]]:
        """The model input row and the positions of its masks; ``InvalidInput`` for unusable arguments."""
        if not isinstance(text, str):
            raise InvalidInput(f"fill-mask takes one text (a string), got {type(text).__name__}")
        if type(top_k) is not int or not 1 <= top_k <= MAX_TOP_K:
            raise InvalidInput(f"top_k must be an integer from 1 to {MAX_TOP_K}, got {top_k!r}")
        if MASK not in text:
            raise InvalidInput(f"the text has no {MASK}: write {MASK} where a word should be suggested")
        row = token_rows(self.tokenizer, [text], self.max_seq_length)[0]
        positions = [i for i, token in enumerate(row[0]) if token == self.mask_id]
        if not positions:
            raise InvalidInput(
                f"every {MASK} is beyond the model's {self.max_seq_length} tokens; put the [MASK] earlier"
            )
        return row, positions

    def rank(
        self, ids: Sequence[int], positions: Sequence[int], rows: Sequence[Sequence[float]], top_k: int
    ) -> list[list[Prediction]]:
        """Softmax of each mask's logit row (float64), the ``top_k`` most likely tokens, best first (ties: lower id)."""
        out = []
        for pos, logits in zip(positions, rows, strict=True):
            values = [float(x) for x in logits]
            if not all(math.isfinite(x) for x in values):
                raise InvalidInput("the model returned non-finite logits for this text")
            top = max(values)
            total = math.fsum(math.exp(x - top) for x in values)
            best = heapq.nlargest(top_k, range(len(values)), key=values.__getitem__)
            out.append([(self.display(ids, pos, i), math.exp(values[i] - top) / total) for i in best])
        return out

    def display(self, ids: Sequence[int], pos: int, token_id: int) -> str:
        """The token as a reader wants it: a WordPiece continuation (``##es`` after ``diabet``) is joined to the
        word before the mask (``diabetes``); with no word before it, it is shown as the piece itself."""
        piece = self.tokenizer.id_to_token(int(token_id)) or f"[{token_id}]"
        if not piece.startswith("##") or pos < 1 or int(ids[pos - 1]) in self._special_ids:
            return piece
        start = pos - 1
        while start > 0 and int(ids[start - 1]) not in self._special_ids and self._piece(ids[start]).startswith("##"):
            start -= 1
        word = self._piece(ids[start]) + "".join(self._piece(t)[2:] for t in ids[start + 1 : pos])
        return word + piece[2:]

    def _piece(self, token_id: int) -> str:
        return self.tokenizer.id_to_token(int(token_id)) or ""


class MaskedLM(FillMask):
    """Fill-mask on onnxruntime (CPU): ``MaskedLM(bundle_dir).predict("... [MASK] ...", top_k=5)``.

    In Pyodide use ``await pyapp.browser.web_masked_lm.WebMaskedLM.load(bundle_url)``: same ``predict``
    arguments and result, awaited (onnxruntime-web is asynchronous).
    """

    def __init__(
        self, bundle_dir: str | Path, quantized: bool = False, threads: int | None = None, verify: bool = True
    ) -> None:
        from .onnx import require_runtime

        require_runtime()
        self.bundle_dir = Path(bundle_dir).resolve()
        manifest = bundle.load_manifest(self.bundle_dir)
        variant = "int8" if quantized else "fp32"
        where = str(self.bundle_dir)
        model_file = bundle.mlm_file(manifest, variant, where)
        model_path = bundle.checked_path(self.bundle_dir, manifest, model_file, verify)
        vocab_path = bundle.checked_path(self.bundle_dir, manifest, manifest["vocab_file"], verify)
        self._sha256 = bundle.file_entry(manifest, model_file, where)["sha256"]
        self._output = bundle.mlm_output(manifest)

        from ..tokenizer import WordPieceTokenizer

        tokenizer = WordPieceTokenizer(
            str(vocab_path), do_lower_case=bool(manifest["do_lower_case"]), max_length=int(manifest["max_seq_length"])
        )
        self._setup(manifest, tokenizer, variant)
        self._session = _open_session(model_path, threads)
        if self._output not in [o.name for o in self._session.get_outputs()]:
            raise bundle.ModelBundleError(f"{model_file} has no output {self._output!r}: export it again")

    @property
    def identity(self) -> dict[str, Any]:
        """Model, revision, variant and the fill-mask graph's sha256 (equal to the browser's for the same file)."""
        return bundle.identity(self.manifest, self.variant, self._sha256, str(self.bundle_dir))

    def predict(self, text: str, top_k: int = 5) -> list[list[Prediction]]:
        """One list per ``[MASK]`` (left to right) of ``(token, probability)``, most likely first."""
        import numpy as np

        (ids, types), positions = self.prepare(text, top_k)
        feeds = {
            "input_ids": np.array([ids], dtype=np.int64),
            "attention_mask": np.ones((1, len(ids)), dtype=np.int64),
            "token_type_ids": np.array([types], dtype=np.int64),
        }
        wanted = {i.name for i in self._session.get_inputs()}
        logits = self._session.run([self._output], {k: v for k, v in feeds.items() if k in wanted})[0][0]
        return self.rank(ids, positions, [logits[p].tolist() for p in positions], top_k)

    async def predict_async(self, text: str, top_k: int = 5) -> list[list[Prediction]]:
        """``predict`` on a worker thread (onnxruntime releases the GIL), so an event loop keeps running."""
        return await asyncio.to_thread(self.predict, text, top_k)


def _open_session(path: Path, threads: int | None) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


__all__ = ["MASK", "MAX_TOP_K", "FillMask", "MaskedLM", "Prediction"]
