"""``WebTextClassifier``: a fine-tuned classifier bundle in the page, the browser twin of
``pyapp.embed.text_classifier.TextClassifier``.

Why it reuses ``Classify`` and ``web_embedder``'s JS glue: the softmax and label choice are the server's code,
line for line, and the bundle files go through the same fetch, size and sha256 checks (WebCrypto) and the same
onnxruntime-web session machinery as the embedder's graph; only the logits come from another runtime.
``predict`` has the server's arguments and result, awaited: onnxruntime-web is asynchronous.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from typing import Any

from pyodide.ffi import to_js  # type: ignore[import-not-found]

from ..embed import bundle
from ..embed.base import length_batches
from ..embed.text_classifier import Classify, Prediction
from ..errors import InvalidInput, ModelBundleError
from . import web_embedder
from ._bridge import js_module
from .web_embedder import MODULE, LoadProgress, fetch_tokenizer, open_graph
from .web_graph import WebGraph, variant_for


class WebTextClassifier(WebGraph, Classify):
    """Text classification on onnxruntime-web: ``await (await WebTextClassifier.load(url)).predict([...])``."""

    def __init__(
        self,
        bundle_url: str,
        manifest: dict[str, Any],
        tokenizer: Any,
        session: Any,
        variant: str,
        sha256: str,
        batch_size: int = 8,
    ) -> None:
        """Use ``await WebTextClassifier.load(...)``; this only stores what ``load`` fetched and checked."""
        self._attach(bundle_url, session, sha256)
        self._setup(manifest, tokenizer, variant, bundle_url)
        self.batch_size = batch_size

    @classmethod
    async def load(
        cls,
        bundle_url: str,
        quantized: bool = False,
        progress: LoadProgress | None = None,
        ort_url: str | None = None,
        manifest: dict[str, Any] | None = None,
    ) -> WebTextClassifier:
        """Fetch and verify the bundle's classifier graph and vocabulary; open its session.

        ``manifest``: one already fetched and checked from the same URL (``fetch_manifest``), else fetched here.
        ``BundleNotFound`` when nothing is served there; ``ModelBundleError`` for a bundle of another task
        (an embedder), a missing variant, or a file that fails its checks.
        """
        variant = variant_for(quantized)
        mod = js_module(MODULE)
        report = progress or (lambda phase, done, total: None)
        if manifest is None:
            manifest = await fetch_manifest(bundle_url)
        if variant not in (manifest.get("variants") or {}):
            raise ModelBundleError(f"{bundle_url} has no {variant} classifier graph (its int8 graph did not validate)")
        report("vocab", 0, 1)
        tokenizer = await fetch_tokenizer(mod, manifest, bundle_url)
        report("vocab", 1, 1)
        model_file = bundle.variant_file(manifest, variant)
        session, sha256 = await open_graph(mod, manifest, bundle_url, model_file, manifest["output"], report, ort_url)
        return cls(bundle_url, manifest, tokenizer, session, variant, sha256)

    async def predict_proba(self, texts: Sequence[str]) -> list[list[float]]:
        """Each text's probability for every label, in the order of ``labels``."""
        rows = self.rows(texts)
        if self._session is None:
            raise InvalidInput("this WebTextClassifier was closed")
        width = len(self.labels)
        out: list[list[float]] = [[] for _ in rows]
        for chunk in length_batches(rows, self.batch_size):
            seq = max(len(rows[i][0]) for i in chunk)
            ids, mask, types = array("q"), array("q"), array("q")
            for i in chunk:
                row_ids, row_types = rows[i]
                pad = seq - len(row_ids)
                ids.extend(row_ids)
                ids.extend([self.tokenizer.pad_id] * pad)
                mask.extend([1] * len(row_ids) + [0] * pad)
                types.extend(row_types)
                types.extend([0] * (seq - len(row_types)))
            result = await self._mod.run(
                self._session, to_js(ids), to_js(mask), to_js(types), len(chunk), seq, self.manifest["output"]
            )
            logits = array("f", bytes(result.to_bytes()))  # wasm is little-endian, as are Pyodide's hosts
            if len(logits) != len(chunk) * width:
                raise ModelBundleError(f"the classifier returned {len(logits)} values for {len(chunk)} texts")
            for r, i in enumerate(chunk):
                out[i] = self.probabilities(logits[r * width : (r + 1) * width])
        return out

    async def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """``(label, probability)`` of the most likely label of each text, in the order of ``texts``."""
        return [self.best(p) for p in await self.predict_proba(texts)]

    predict_async = predict  # the server's awaitable name, for code written against both


async def fetch_manifest(bundle_url: str) -> dict[str, Any]:
    """The checked manifest of the classifier bundle at ``bundle_url``; ``BundleNotFound`` when none is served.

    Why separate from ``load``: the page asks first whether a classifier exists (to show its panel at all)
    and downloads the graph only when the user classifies something.
    """
    return await web_embedder.fetch_manifest(js_module(MODULE), bundle_url, "classifier", bundle.TASK_CLASSIFY)


__all__ = ["WebTextClassifier", "fetch_manifest"]
