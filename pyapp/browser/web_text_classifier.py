"""``WebTextClassifier``: a fine-tuned classifier bundle in the page, the browser twin of
``pyapp.embed.text_classifier.TextClassifier``.

Why it reuses ``Classify`` and ``web_embedder``'s JS glue: the softmax and label choice are the server's code,
line for line, and the bundle files go through the same fetch, size and sha256 checks (WebCrypto) and the same
onnxruntime-web session machinery as the embedder's graph; only the logits come from another runtime.
``predict`` has the server's arguments and result, awaited: onnxruntime-web is asynchronous.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Sequence
from typing import Any

from pyodide.ffi import to_js  # type: ignore[import-not-found]

from ..embed import bundle
from ..embed.base import length_batches
from ..embed.text_classifier import Classify, Prediction
from ..errors import InvalidInput, ModelBundleError
from ..tokenizer import WordPieceTokenizer
from ._bridge import js_module
from .web_embedder import MODULE, BundleHTTPError, BundleNotFound, _fetch, _join, _verify, open_graph

LoadProgress = Callable[[str, int, int], None]  # (phase, done, total): manifest, vocab, download, verify, session


class WebTextClassifier(Classify):
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
        self.bundle_url = bundle_url
        self._setup(manifest, tokenizer, variant, bundle_url)
        self._session = session
        self._sha256 = sha256
        self.batch_size = batch_size
        self._mod: Any = js_module(MODULE)

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
        if not isinstance(quantized, bool):
            raise InvalidInput(f"quantized must be True or False, got {quantized!r}")
        mod = js_module(MODULE)
        report = progress or (lambda phase, done, total: None)
        if manifest is None:
            manifest = await fetch_manifest(bundle_url)
        variant = "int8" if quantized else "fp32"
        if variant not in (manifest.get("variants") or {}):
            raise ModelBundleError(f"{bundle_url} has no {variant} classifier graph (its int8 graph did not validate)")
        report("vocab", 0, 1)
        vocab = await _fetch(mod, _join(bundle_url, manifest["vocab_file"]), None)
        await _verify(mod, manifest, manifest["vocab_file"], vocab, bundle_url)
        tokenizer = WordPieceTokenizer.from_manifest(manifest, bytes(vocab.to_bytes()).decode("utf-8"))
        report("vocab", 1, 1)
        model_file = bundle.variant_file(manifest, variant)
        session, sha256 = await open_graph(mod, manifest, bundle_url, model_file, manifest["output"], report, ort_url)
        return cls(bundle_url, manifest, tokenizer, session, variant, sha256)

    @property
    def identity(self) -> dict[str, Any]:
        """Equal to ``TextClassifier.identity`` for the same bundle file, except ``bundle`` (a URL here)."""
        return bundle.identity(self.manifest, self.variant, self._sha256, self.bundle_url)

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

    async def close(self) -> None:
        """Free the session's wasm memory (unusable afterwards)."""
        session, self._session = self._session, None
        if session is not None:
            await self._mod.release(session)


async def fetch_manifest(bundle_url: str) -> dict[str, Any]:
    """The checked manifest of the classifier bundle at ``bundle_url``; ``BundleNotFound`` when none is served.

    Why separate from ``load``: the page asks first whether a classifier exists (to show its panel at all)
    and downloads the graph only when the user classifies something.
    """
    mod = js_module(MODULE)
    url = _join(bundle_url, "manifest.json")
    try:
        data = await _fetch(mod, url, None)
    except BundleHTTPError as exc:
        if exc.status == 404:
            raise BundleNotFound(f"no classifier bundle at {bundle_url} ({url} answered HTTP 404)") from None
        raise
    return bundle.parse_manifest(bytes(data.to_bytes()), url, task=bundle.TASK_CLASSIFY)


__all__ = ["WebTextClassifier", "fetch_manifest"]
