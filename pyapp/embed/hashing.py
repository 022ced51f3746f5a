"""A dependency-free, deterministic feature-hashing embedder: the model-free twin of the ONNX embedders.

Why it exists: unit tests and the offline demo need an embedder that needs no model file, gives the same
vector for the same text in every process, on every platform and in Pyodide, and still puts texts that share
words (or word pieces, through character trigrams) near each other. It is lexical, not semantic.

Each word adds +-1 to one bucket; its character trigrams ("<hy", "hyp", ..., "on>") add +-1/sqrt(k) each, so
morphological variants (hypertension / hypertensive) overlap. Buckets and signs come from keyed BLAKE2b
(never Python's salted ``hash()``); sums are in double precision in a fixed order, so the float32 result is
bit-identical everywhere. Pure Python on purpose: a numpy path would round differently.
"""

from __future__ import annotations

import asyncio
import math
import re
import sys
from array import array
from collections.abc import Sequence
from functools import lru_cache
from hashlib import blake2b
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput
from .base import Embedder, Progress

if TYPE_CHECKING:
    import numpy as np

ALGORITHM_VERSION = 1
_WORD = re.compile(r"[^\W_]+")
_EMPTY_FEATURE = "\x00empty"  # sentinel bucket for texts without a single word: never a zero vector
_YIELD_EVERY = 256  # texts between progress reports / event-loop yields


@lru_cache(maxsize=1 << 16)
def _slot(feature: str, dims: int, seed: int) -> tuple[int, float]:
    """(bucket, sign) of one feature; cached because clinical vocabularies repeat heavily."""
    digest = blake2b(feature.encode("utf-8"), digest_size=8, key=f"clinvec-hashing:{seed}".encode()).digest()
    value = int.from_bytes(digest, "little")
    return (value & 0xFFFFFFFF) % dims, (1.0 if (value >> 32) & 1 else -1.0)


def features(text: str) -> list[tuple[str, float]]:
    """Weighted features of ``text``: lower-cased words (weight 1) and their boundary-marked char trigrams."""
    out: list[tuple[str, float]] = []
    for word in _WORD.findall(text.lower()):
        out.append(("w:" + word, 1.0))
        marked = f"<{word}>"
        grams = [marked[i : i + 3] for i in range(len(marked) - 2)]
        weight = 1.0 / math.sqrt(len(grams))
        out.extend(("c:" + gram, weight) for gram in grams)
    return out


class HashingEmbedder(Embedder):
    """Bag of words + char trigrams hashed into ``dims`` signed buckets, L2-normalised, float32."""

    def __init__(self, dims: int = 256, seed: int = 0) -> None:
        if not isinstance(dims, int) or isinstance(dims, bool) or dims < 2:
            raise InvalidInput(f"dims must be an integer >= 2, got {dims!r}")
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise InvalidInput(f"seed must be a non-negative integer, got {seed!r}")
        self.dims = dims
        self.seed = seed

    @classmethod
    def from_identity(cls, identity: dict[str, Any]) -> HashingEmbedder:
        """Rebuild the embedder an index recorded, so its queries hash like its stored items."""
        if identity.get("model") != "hashing" or identity.get("revision") != str(ALGORITHM_VERSION):
            raise InvalidInput(f"not a hashing embedder identity this version can rebuild: {identity!r}")
        return cls(dims=int(identity["dims"]), seed=int(identity["seed"]))

    @property
    def identity(self) -> dict[str, Any]:
        return {
            "model": "hashing",
            "revision": str(ALGORITHM_VERSION),
            "variant": f"v{ALGORITHM_VERSION}-seed{self.seed}",
            "dims": self.dims,
            "seed": self.seed,
        }

    def embed_one(self, text: str) -> array:
        """The unit-length float32 vector of one text (an ``array('f')``; no numpy needed)."""
        if not isinstance(text, str):
            raise InvalidInput(f"texts must be strings, got {type(text).__name__}")
        acc = [0.0] * self.dims
        for feature, weight in features(text):
            bucket, sign = _slot(feature, self.dims, self.seed)
            acc[bucket] += sign * weight
        norm = math.sqrt(math.fsum(v * v for v in acc))
        if norm == 0.0:  # no words, or (very rarely) signs cancelling exactly
            acc = [0.0] * self.dims
            bucket, _ = _slot(_EMPTY_FEATURE, self.dims, self.seed)
            acc[bucket], norm = 1.0, 1.0
        return array("f", [v / norm for v in acc])

    def vectors(self, texts: Sequence[str], progress: Progress | None = None) -> list[array]:
        """One ``array('f')`` per text, in order."""
        out = []
        for i, text in enumerate(texts):
            out.append(self.embed_one(text))
            if progress is not None and ((i + 1) % _YIELD_EVERY == 0 or i + 1 == len(texts)):
                progress(i + 1, len(texts))
        return out

    def embed_bytes(self, texts: Sequence[str], progress: Progress | None = None) -> bytes:
        """``len(texts) * dims`` little-endian float32 values (what ``embed_raw`` returns), synchronously."""
        flat = array("f")
        for vec in self.vectors(texts, progress):
            flat.extend(vec)
        if sys.byteorder == "big":
            flat.byteswap()
        return flat.tobytes()

    def embed(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """``(n, dims)`` float32 matrix; needs numpy (imported here, not at module import)."""
        import numpy as np

        return np.frombuffer(self.embed_bytes(texts, progress), dtype="<f4").reshape(len(texts), self.dims).copy()

    async def embed_raw(self, texts: Sequence[str], progress: Progress | None = None) -> bytes:
        """Embed in slices, yielding to the event loop between them so a browser page stays responsive."""
        flat = array("f")
        total = len(texts)
        for start in range(0, total, _YIELD_EVERY):
            for text in texts[start : start + _YIELD_EVERY]:
                flat.extend(self.embed_one(text))
            done = min(start + _YIELD_EVERY, total)
            if progress is not None:
                progress(done, total)
            if done < total:
                await asyncio.sleep(0)
        if sys.byteorder == "big":
            flat.byteswap()
        return flat.tobytes()
