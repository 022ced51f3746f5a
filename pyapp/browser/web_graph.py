"""What the page's task graphs (``WebMaskedLM``, ``WebTextClassifier``) share once loaded: the variant choice,
their onnxruntime-web session, the identity they report, and freeing the session's wasm memory.

Why a mixin beside ``FillMask``/``Classify``: those hold the runtime-independent logic shared with the server;
this holds the page-side session that both browser twins held and released with the same code.
"""

from __future__ import annotations

from typing import Any

from ..embed import bundle
from ..errors import InvalidInput
from ._bridge import js_module
from .web_embedder import MODULE


def variant_for(quantized: bool) -> str:
    """``"int8"`` for ``quantized=True``, ``"fp32"`` for False; anything else is refused, not guessed."""
    if not isinstance(quantized, bool):
        raise InvalidInput(f"quantized must be True or False, got {quantized!r}")
    return "int8" if quantized else "fp32"


class WebGraph:
    """A loaded graph's session in the page; ``manifest`` and ``variant`` come from the task class's setup."""

    bundle_url: str
    manifest: dict[str, Any]
    variant: str

    def _attach(self, bundle_url: str, session: Any, sha256: str) -> None:
        """Keep what ``load`` fetched and checked: the session and the graph file's sha256."""
        self.bundle_url = bundle_url
        self._session = session
        self._sha256 = sha256
        self._mod: Any = js_module(MODULE)

    @property
    def identity(self) -> dict[str, Any]:
        """Equal to the server twin's ``identity`` for the same bundle file, except ``bundle`` (a URL here)."""
        return bundle.identity(self.manifest, self.variant, self._sha256, self.bundle_url)

    async def close(self) -> None:
        """Free the session's wasm memory (unusable afterwards)."""
        session, self._session = self._session, None
        if session is not None:
            await self._mod.release(session)
