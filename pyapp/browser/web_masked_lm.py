"""``WebMaskedLM``: fill-mask in the page, the browser twin of ``pyapp.embed.masked_lm.MaskedLM``.

Why it reuses ``FillMask`` and ``web_embedder``'s JS glue: the ranking code is the server's, line for line,
and the bundle files go through the same fetch, size and sha256 checks (WebCrypto) and the same
onnxruntime-web session machinery as the embedder's graph. Only the logits come from a different runtime.
``predict`` has the server's arguments and result, awaited: onnxruntime-web is asynchronous.
"""

from __future__ import annotations

from array import array
from typing import Any

from pyodide.ffi import to_js  # type: ignore[import-not-found]

from ..embed import bundle
from ..embed.masked_lm import FillMask, Prediction
from ..errors import InvalidInput, ModelBundleError
from ..tokenizer import WordPieceTokenizer
from ._bridge import js_module
from .web_embedder import MODULE, LoadProgress, _fetch, _join, fetch_tokenizer, open_graph
from .web_graph import WebGraph, variant_for

DEFAULT_VARIANT = "fp32"  # as the server and the CLI: a 30k-way softmax is where int8 hurts most


class WebMaskedLM(WebGraph, FillMask):
    """Fill-mask on onnxruntime-web: ``await (await WebMaskedLM.load(url)).predict("... [MASK] ...")``."""

    def __init__(
        self, bundle_url: str, manifest: dict[str, Any], tokenizer: Any, session: Any, variant: str, sha256: str
    ) -> None:
        """Use ``await WebMaskedLM.load(...)``; this only stores what ``load`` fetched and checked."""
        self._attach(bundle_url, session, sha256)
        self._setup(manifest, tokenizer, variant)
        self._output = bundle.mlm_output(manifest)
        self._vocab_size = int(manifest.get("vocab_size") or 0)

    @classmethod
    async def load(
        cls,
        bundle_url: str,
        quantized: bool = False,
        progress: LoadProgress | None = None,
        manifest: dict[str, Any] | None = None,
        tokenizer: WordPieceTokenizer | None = None,
        ort_url: str | None = None,
    ) -> WebMaskedLM:
        """Fetch and verify the bundle's fill-mask graph and open its session.

        ``manifest`` and ``tokenizer``: those of an embedder already loaded from the same bundle (saves two
        downloads); else they are fetched and checked here. ``ModelBundleError`` when the bundle has no
        fill-mask graph or a file fails its checks.
        """
        variant = variant_for(quantized)
        mod = js_module(MODULE)
        report = progress or (lambda phase, done, total: None)
        if manifest is None or tokenizer is None:
            report("manifest", 0, 1)
            manifest_url = _join(bundle_url, "manifest.json")
            manifest = bundle.parse_manifest(bytes((await _fetch(mod, manifest_url, None)).to_bytes()), manifest_url)
            report("vocab", 0, 1)
            tokenizer = await fetch_tokenizer(mod, manifest, bundle_url)
        model_file = bundle.mlm_file(manifest, variant, bundle_url)
        session, sha256 = await open_graph(
            mod, manifest, bundle_url, model_file, bundle.mlm_output(manifest), report, ort_url
        )
        return cls(bundle_url, manifest, tokenizer, session, variant, sha256)

    async def predict(self, text: str, top_k: int = 5) -> list[list[Prediction]]:
        """One list per ``[MASK]`` (left to right) of ``(token, probability)``, most likely first."""
        (ids, types), positions = self.prepare(text, top_k)
        if self._session is None:
            raise InvalidInput("this WebMaskedLM was closed")
        seq = len(ids)
        result = await self._mod.run(
            self._session,
            to_js(array("q", ids)),
            to_js(array("q", [1] * seq)),
            to_js(array("q", types)),
            1,
            seq,
            self._output,
        )
        logits = array("f", bytes(result.to_bytes()))  # wasm is little-endian, as are the hosts Pyodide runs on
        vocab = len(logits) // seq
        if vocab * seq != len(logits) or (self._vocab_size and vocab != self._vocab_size):
            raise ModelBundleError(f"the fill-mask graph returned {len(logits)} values for {seq} tokens")
        return self.rank(ids, positions, [logits[p * vocab : (p + 1) * vocab] for p in positions], top_k)

    predict_async = predict  # the server's awaitable name, for code written against both


__all__ = ["DEFAULT_VARIANT", "WebMaskedLM"]
