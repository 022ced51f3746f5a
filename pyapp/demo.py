"""The offline demo: index the bundled (synthetic, PHI-free) clinical notes and run a hybrid search.

It embeds with the exported model bundle when one is present (``python -m export --model minilm``),
and otherwise with the dependency-free hashing embedder, saying so on stderr.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from importlib import resources
from typing import Any

from .embed.base import Embedder
from .index import LocalIndex
from .progress import ProgressBar


def sample_notes() -> list[dict[str, Any]]:
    """The bundled demo notes: ``{"id", "metadata": {"ward", "kind", "year"}, "text"}``."""
    raw = resources.files("pyapp").joinpath("data/sample_notes.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in raw.splitlines() if line.strip()]


def demo_embedder(model: str | None, quiet: bool) -> Embedder:
    """The exported model bundle when available, else the hashing embedder (with a visible notice)."""
    from .embed.resolve import find_bundle, resolve_embedder

    bundle = model or find_bundle()
    if bundle:
        try:
            embedder = resolve_embedder(bundle, None, quiet=quiet)
        except Exception as exc:  # an unusable bundle must not stop the demo
            if not quiet:
                print(f"clinvec: could not load the model bundle {bundle!r} ({exc})", file=sys.stderr)
        else:
            if embedder is not None:
                return embedder
    from .embed.hashing import HashingEmbedder

    if not quiet:
        print(
            "clinvec: notice: no model bundle found (run `python -m export --model minilm`); "
            "using the hashing embedder, so 'semantic' scores are lexical only",
            file=sys.stderr,
        )
    return HashingEmbedder(dims=256)


async def run_demo(folder: str | None, query: str, quiet: bool = False, model: str | None = None) -> int:
    """Create (or reuse) the demo index, then print the top hits for ``query``."""
    embedder = demo_embedder(model, quiet)
    if folder is None:
        folder = os.path.join(tempfile.mkdtemp(prefix="clinvec-demo-"), "index")
    if await LocalIndex.exists(folder):
        index = await LocalIndex.open(folder, embedder=embedder)
    else:
        index = await LocalIndex.create(folder, indexed=["ward", "year"], embedder=embedder)
        await index.insert_many(sample_notes(), progress=ProgressBar("embedding demo notes"))
    try:
        stats = await index.stats()
        print(f"index: {folder} ({stats['items']} notes, {stats['dims']}-d, embedder {stats['embedder']['model']})")
        for title, flt in (("all wards", None), ("ward = ICU", {"ward": "ICU"})):
            print(f"\nquery: {query!r} [{title}]")
            for rank, hit in enumerate(await index.query(text=query, top_k=3, filter=flt), 1):
                ward = hit.item.metadata.get("ward")
                print(f"  {rank}. {hit.score:.4f} [{ward}] {hit.item.text[:90]}")
    finally:
        await index.close()
    return 0
