"""The one synthetic workload of ``bench/browser_peers.py``: the same bytes for clinvec and every peer.

mulberry32 (seed 42, as the vectra peer's ``bench.mjs``) computed with numpy: its state only ever advances by a
constant, so draw ``i`` depends on ``i`` alone and all draws are one vectorised expression, bit-equal to the JS
generator (``test_browser_workload.py`` checks it against the JS function run in Node). Vectors are uniform in
[-1, 1) as float32, metadata ``{category: c0..c9}`` (``c{i % 10}``: exactly 10 % each), 8 words of text per item
from a fixed 200-word list, 2-word query texts. Files: ``vectors.f32``, ``queries.f32`` (raw little-endian
float32) and ``meta.json`` (categories, texts, query texts) in one folder per size.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

SEED = 42
_STEP = 0x6D2B79F5
_MASK = 0xFFFFFFFF
SYLLABLES = ("car", "dio", "pul", "mon", "neph", "ro", "gas", "tro", "hep", "at", "derm", "os", "te", "on", "ur")


def mulberry32(seed: int, start: int, count: int) -> np.ndarray:
    """Draws ``start .. start+count-1`` of mulberry32(seed) as float64 in [0, 1), exactly as the JS function."""
    s = (np.uint64(seed) + np.uint64(_STEP) * (np.arange(start + 1, start + count + 1, dtype=np.uint64))) & np.uint64(
        _MASK
    )
    t = s.astype(np.uint32)
    # t = Math.imul(t ^ (t >>> 15), t | 1)
    t = ((t ^ (t >> np.uint32(15))).astype(np.uint64) * (t | np.uint32(1)).astype(np.uint64) & _MASK).astype(np.uint32)
    # t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    m = ((t ^ (t >> np.uint32(7))).astype(np.uint64) * (t | np.uint32(61)).astype(np.uint64) & _MASK).astype(np.uint32)
    t = t ^ ((t.astype(np.uint64) + m.astype(np.uint64)) & _MASK).astype(np.uint32)
    return (t ^ (t >> np.uint32(14))).astype(np.float64) / 4294967296.0


def words() -> list[str]:
    """200 distinct pseudo-words (syllable pairs): fixed, no randomness."""
    return [a + b for a in SYLLABLES for b in SYLLABLES if a != b][:200]


def make(n: int, dims: int, queries: int = 120) -> dict[str, Any]:
    """The workload as arrays and lists (draw order: vectors, then 8 words per item, then queries)."""
    pos = 0

    def draw(count: int) -> np.ndarray:
        nonlocal pos
        out = mulberry32(SEED, pos, count)
        pos += count
        return out

    vocab = words()
    vectors = (draw(n * dims) * 2 - 1).astype(np.float32)
    picks = (draw(n * 8) * len(vocab)).astype(np.int64).reshape(n, 8)
    texts = [" ".join(vocab[j] for j in row) for row in picks.tolist()]
    qvec = (draw(queries * dims) * 2 - 1).astype(np.float32)
    qpicks = (draw(queries * 2) * len(vocab)).astype(np.int64).reshape(queries, 2)
    return {
        "n": n,
        "dims": dims,
        "vectors": vectors,
        "queries": qvec,
        "categories": [f"c{i % 10}" for i in range(n)],
        "texts": texts,
        "query_texts": [" ".join(vocab[j] for j in row) for row in qpicks.tolist()],
    }


def write(folder: Path, n: int, dims: int, queries: int = 120) -> Path:
    """Write the workload's files under ``folder`` (skipped when already there); returns ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / "meta.json").is_file():
        return folder
    w = make(n, dims, queries)
    (folder / "vectors.f32").write_bytes(w["vectors"].astype("<f4").tobytes())
    (folder / "queries.f32").write_bytes(w["queries"].astype("<f4").tobytes())
    meta = {k: w[k] for k in ("n", "dims", "categories", "texts", "query_texts")}
    meta["queries"] = queries
    (folder / "meta.json").write_text(json.dumps(meta))
    return folder
