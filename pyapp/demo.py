"""The offline demo: index the bundled (synthetic, PHI-free) clinical notes and run a hybrid search.

It embeds with the exported model bundle when one is present (``python -m export --model minilm``),
and otherwise with the dependency-free hashing embedder, saying so on stderr.
"""

from __future__ import annotations

import os
import sys
import tempfile

from .embed.base import Embedder
from .notes import NotesService, fallback_embedder, sample_notes
from .progress import ProgressBar

__all__ = ["demo_embedder", "run_demo", "sample_notes"]


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
    if not quiet:
        print(
            "clinvec: notice: no model bundle found (run `python -m export --model minilm`); "
            "using the hashing embedder, so 'semantic' scores are lexical only",
            file=sys.stderr,
        )
    return fallback_embedder()


async def run_demo(folder: str | None, query: str, quiet: bool = False, model: str | None = None) -> int:
    """Create (or reuse) the demo index through the notes app's service, then print the top hits for ``query``."""
    embedder = demo_embedder(model, quiet)
    if folder is None:
        folder = os.path.join(tempfile.mkdtemp(prefix="clinvec-demo-"), "index")
    notes = await NotesService.open(folder, embedder)
    try:
        if notes.notice and not quiet:
            print(f"clinvec: notice: {notes.notice}", file=sys.stderr)
        if not notes.index.read_only and await notes.index.count() == 0:
            await notes.load_demo(progress=ProgressBar("embedding demo notes"))
        stats = await notes.index.stats()
        print(f"index: {folder} ({stats['items']} notes, {stats['dims']}-d, embedder {stats['embedder']['model']})")
        for title, ward in (("all wards", None), ("ward = ICU", "ICU")):
            print(f"\nquery: {query!r} [{title}]")
            found = await notes.search({"text": query, "top_k": 3, "ward": ward})
            for rank, hit in enumerate(found["results"], 1):
                print(f"  {rank}. {hit['score']:.4f} [{hit['metadata'].get('ward')}] {hit['passage'][:90]}")
    finally:
        await notes.close()
    return 0
