"""The notes app's logic (web page and offline demo), kept out of the browser worker so CPython tests reach it.

Why a service: the page's worker (``web/app/worker.py``) can only be exercised through Chromium, so every
rule that decides what the app stores and shows (metadata cleaning, filter building, the ward list, the
read-only and embedder fallbacks, input checks) lives here, on plain dicts and lists, and runs unchanged on
CPython with a ``memory://`` location and ``HashingEmbedder``. The worker only converts JSON and talks to
``js``; the demo (``pyapp/demo.py``) reuses the same calls.

Every note is a document (``pyapp.documents.DocumentIndex``): a discharge summary of thousands of words is cut
into chunks that fit the model, so a fact at its end is embedded and found; search answers one result per note
(its best chunk decides), with the passage and the spans to highlight (``pyapp.highlight``). Indexes written
before notes were documents hold plain items: they are read as one-chunk documents (same id, same text), found,
opened and deleted like the others, and saving such a note again turns it into a chunked document in one
commit. Nothing is migrated in bulk at open, so opening never re-embeds and never loses a note.

Every method raises only ``ClinvecError`` subclasses for bad input, and a failed call changes nothing.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from .documents import DOC_INDEXED, DocumentIndex
from .embed.base import Embedder, Progress
from .embed.hashing import HashingEmbedder
from .errors import IndexLocked, InvalidFilter, InvalidInput
from .highlight import passage_view
from .index import LocalIndex
from .staging import check_id
from .stores.base import Store

INDEXED = ("ward", "year")  # the columns the page filters on: dictionary-encoded, so distinct() is cheap
HASHING_DIMS = 256
MAX_TEXT = 400_000  # ~60,000 words: a very long discharge summary; embedding it in the page takes minutes
MAX_FIELD = 200
MAX_TOP_K = 100
MAX_LIMIT = 200
MODES = {"hybrid": "hybrid", "semantic": "vector", "keyword": "keyword"}  # UI name -> LocalIndex mode
READ_ONLY_NOTICE = "This index is open for writing in another tab: this tab is read-only."


def sample_notes() -> list[dict[str, Any]]:
    """The bundled demo notes (synthetic, PHI-free): ``{"id", "metadata": {"ward", "kind", "year"}, "text"}``."""
    raw = resources.files("pyapp").joinpath("data/sample_notes.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in raw.splitlines() if line.strip()]


def fallback_embedder() -> HashingEmbedder:
    """The embedder used when no model bundle is available: lexical scores, but always works offline."""
    return HashingEmbedder(dims=HASHING_DIMS)


def slug(path: str) -> str:
    """A model folder ("models/minilm/") as a name fit for an index location ("minilm")."""
    parts = [p for p in path.split("/") if p]
    name = parts[-1] if parts else "model"
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name.lower())


# ---------------------------------------------------------------------- pure input rules
def clean_metadata(raw: Any) -> dict[str, Any]:
    """What the add form sends, made storable: ward/author/kind (the note's type) as trimmed strings (at most 200
    characters), year as an integer; empty or absent fields are left out, unknown fields are dropped."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InvalidInput(f"note metadata must be an object, got {type(raw).__name__}")
    meta: dict[str, Any] = {}
    for key in ("ward", "author", "kind"):
        value = _as_text(raw.get(key), key, numbers=True).strip()
        if value:
            meta[key] = value[:MAX_FIELD]
    year = _as_text(raw.get("year"), "year", numbers=True).strip()
    if year:
        digits = year[1:] if year.startswith("-") else year
        if not (digits.isascii() and digits.isdigit()) or len(digits) > 6:
            raise InvalidInput(f"year must be a whole number, got {year[:20]!r}")
        meta["year"] = int(year)
    return meta


def _as_text(value: Any, field: str, numbers: bool = False) -> str:
    """A form field as a string (None -> ""); form fields that may be typed as numbers (ward, year, author)
    also take integers. Anything else is a caller bug, said clearly rather than stringified."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if numbers and isinstance(value, int) and not isinstance(value, bool):
        if abs(value) >= 10**12:  # also keeps str() clear of the 4,300-digit conversion limit
            raise InvalidInput(f"{field} is out of range")
        return str(value)
    raise InvalidInput(f"{field} must be a string, got {type(value).__name__}")


def build_filter(ward: Any = None, filter_text: Any = None) -> dict[str, Any] | None:
    """The query filter from the ward select and the JSON filter box (either, both via ``$and``, or none)."""
    parts: list[dict[str, Any]] = []
    if ward:
        parts.append({"ward": _as_text(ward, "ward", numbers=True)})
    if isinstance(filter_text, dict):
        extra: Any = filter_text
    else:
        text = _as_text(filter_text, "filter").strip()
        extra = {}
        if text:
            try:
                extra = json.loads(text)
            except (ValueError, RecursionError) as exc:
                raise InvalidFilter(f"the filter is not valid JSON: {exc}") from None
    if not isinstance(extra, dict):
        raise InvalidFilter('the filter must be a JSON object such as {"year": {"$gte": 2020}}')
    if extra:
        parts.append(extra)
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"$and": parts}


def bounded_int(value: Any, name: str, default: int, high: int) -> int:
    """A count from the page (number or numeric string), clamped to ``1..high``; junk is ``InvalidInput``."""
    if value is None or value == "":
        return default
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidInput(f"{name} must be a whole number, got {type(value).__name__}")
    if isinstance(value, int):
        return max(1, min(high, value))
    text = value.strip()
    digits = text[1:] if text.startswith("-") else text
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 9:
        raise InvalidInput(f"{name} must be a whole number, got {text[:20]!r}")
    return max(1, min(high, int(text)))


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


# ---------------------------------------------------------------------- embedder choice
@dataclass(frozen=True)
class EmbedderChoice:
    """Which embedder the app runs with, the index location that goes with it, and what to tell the user."""

    embedder: Embedder
    location: str
    notice: str | None = None


async def choose_embedder(
    load: Callable[[], Awaitable[Embedder]],
    missing: tuple[type[BaseException], ...],
    model: str,
    variant: str,
    index: str | None = None,
) -> EmbedderChoice:
    """Load the model bundle; only a *missing* bundle (``missing``) falls back to the hashing embedder.

    A bundle that is present but fails its checks still raises: running on an altered model is worse than
    not running. Each embedder gets its own index location (vectors of different models never compare):
    ``{index or notes-<model>}-{variant}``, or ``{index or notes}-hashing``.
    """
    try:
        embedder = await load()
    except missing:
        notice = (
            f"No model bundle at {model} (run `python -m export --model minilm`): semantic search "
            "uses the hashing embedder, which matches words, not meaning."
        )
        return EmbedderChoice(fallback_embedder(), f"{index or 'notes'}-hashing", notice)
    return EmbedderChoice(embedder, f"{index or 'notes-' + slug(model)}-{variant}")


# ---------------------------------------------------------------------- the service
class NotesService:
    """One open notes index plus its embedder; every method takes and returns plain Python values."""

    def __init__(self, index: LocalIndex, embedder: Embedder, notice: str | None = None) -> None:
        self.index = index
        self.embedder = embedder
        self.notice = notice
        self.docs = DocumentIndex(index)
        self._kinds: Any = None  # KindSuggester, made on the first suggest_kind

    @classmethod
    async def open(cls, location: str | Store, embedder: Embedder, notice: str | None = None) -> NotesService:
        """Open (or create) the notes index; when another tab or process holds the writer lock, open it
        read-only and say so in ``notice`` (searching still works, writes raise ``ReadOnlyIndex``)."""
        try:
            index = await LocalIndex.create(
                location, indexed=[*INDEXED, *DOC_INDEXED], embedder=embedder, exist_ok=True
            )
        except IndexLocked:
            index = await LocalIndex.open(location, read_only=True, embedder=embedder)
            notice = " ".join(n for n in (READ_ONLY_NOTICE, notice) if n)
        return cls(index, embedder, notice)

    async def close(self) -> None:
        """Release the index (and its writer lock, so another tab can take it)."""
        await self.index.close()

    @property
    def embedder_kind(self) -> str:
        """ "hashing" (lexical fallback) or "onnx" (a real model: server or onnxruntime-web)."""
        return "hashing" if isinstance(self.embedder, HashingEmbedder) else "onnx"

    async def counts(self) -> dict[str, int]:
        """``note_count`` (documents: what the user counts) and ``items`` (stored chunks and plain items)."""
        return {"note_count": await self.docs.count_documents(), "items": await self.index.count()}

    async def info(self) -> dict[str, Any]:
        """What the page needs once opened: location, access, embedder, notice, note and item counts."""
        return {
            "location": self.index.location,
            "read_only": self.index.read_only,
            "embedder": self.embedder.identity,
            "embedder_kind": self.embedder_kind,
            "threads": getattr(self.embedder, "threads", None),
            "notice": self.notice,
            **await self.counts(),
        }

    async def add(self, note: Any, progress: Progress | None = None) -> dict[str, Any]:
        """Chunk, embed and store ``{"text", "metadata": {"ward", "year", "author"}, "id"?}`` as one document.

        The text is stored exactly as given (it only has to hold something besides whitespace), so opening the
        note shows it byte for byte. Without ``id`` the note gets a new one (uuid4); with an ``id`` that exists,
        the note replaces that one in one commit (unchanged text and metadata: nothing is re-embedded).
        ``progress(done, total)`` counts embedded chunks. Returns the id, the chunk count and the new counts."""
        if not isinstance(note, dict):
            raise InvalidInput(f"a note must be an object, got {type(note).__name__}")
        text = _as_text(note.get("text"), "text")
        if not text.strip():
            raise InvalidInput("a note needs some text")
        if len(text) > MAX_TEXT:
            raise InvalidInput(f"a note may hold at most {MAX_TEXT:,} characters (this one has {len(text):,})")
        note_id = note.get("id")
        note_id = str(uuid.uuid4()) if note_id is None or note_id == "" else check_id(note_id)
        metadata = clean_metadata(note.get("metadata"))
        started = time.perf_counter()
        changed = await self.docs.upsert_document(note_id, text, metadata, progress=progress)
        chunks = await self.index.count({"_doc.uri": note_id})
        return {"id": note_id, "chunks": chunks, "changed": changed, "ms": _ms(started), **await self.counts()}

    async def get(self, note_id: Any) -> dict[str, Any] | None:
        """The whole note ``{"id", "text" (exactly as stored), "metadata", "chunks"}``, or None if absent."""
        if not isinstance(note_id, str) or not note_id:
            raise InvalidInput("a note id must be a non-empty string")
        doc = await self.docs.get_document(note_id)
        if doc is None:
            return None
        return {"id": doc.uri, "text": doc.text, "metadata": doc.metadata, "chunks": doc.chunks}

    async def search(self, query: Any) -> dict[str, Any]:
        """``{"text", "mode": "hybrid"|"semantic"|"keyword", "ward", "filter" (JSON text), "top_k"}``.

        One result per note, ranked by its best chunk: ``{"id", "score", "vector_score", "keyword_score",
        "metadata", "passage", "span", "highlights", "chunk", "chunks"}`` (see ``pyapp.highlight.passage_view``)."""
        if not isinstance(query, dict):
            raise InvalidInput(f"a search must be an object, got {type(query).__name__}")
        text = _as_text(query.get("text"), "text").strip()
        if not text:
            raise InvalidInput("type something to search for")
        mode_name = query.get("mode") or "hybrid"
        mode = MODES.get(mode_name) if isinstance(mode_name, str) else None
        if mode is None:
            raise InvalidInput(f"unknown search mode {mode_name!r}; use one of {', '.join(MODES)}")
        top_k = bounded_int(query.get("top_k"), "top_k", 10, MAX_TOP_K)
        flt = build_filter(query.get("ward"), query.get("filter"))
        started = time.perf_counter()
        hits = await self.docs.query_documents(text, top_k=top_k, filter=flt, mode=mode, passages=1)
        return {
            "results": [passage_view(h, text, mode) for h in hits],
            "mode": mode_name,
            "ms": _ms(started),
            **await self.counts(),
        }

    async def delete(self, note_id: Any) -> dict[str, Any]:
        """Delete one note (all its chunks, in one commit) by id; ``{"deleted": bool}`` (False: no such note)."""
        if not isinstance(note_id, str) or not note_id:
            raise InvalidInput("a note id must be a non-empty string")
        deleted = await self.docs.delete_document(note_id)
        return {"deleted": deleted, **await self.counts()}

    async def newest(self, limit: Any = 10) -> list[dict[str, Any]]:
        """The ``limit`` most recently added notes, newest first: id, metadata, ``text`` (the first chunk, a
        preview: a long note's whole text is fetched only when it is opened) and ``chunks``."""
        limit = bounded_int(limit, "limit", 10, MAX_LIMIT)
        docs = await self.docs.list_documents(limit, newest_first=True)
        return [{"id": d.uri, "text": d.preview, "metadata": d.metadata, "chunks": d.chunks} for d in docs]

    async def suggest_kind(self, text: Any) -> dict[str, Any]:
        """A type (metadata ``kind``) for a draft note, learnt from the types given to the stored notes
        (``pyapp.labels.suggest``: the fitted model is kept until the notes change)."""
        from .labels.suggest import KindSuggester

        if self._kinds is None:
            self._kinds = KindSuggester(self.index)
        await self.index.refresh()
        return await self._kinds.suggest(text)

    async def kinds(self) -> list[str]:
        """The distinct note types given so far (the add form's Type suggestions), sorted case-insensitively."""
        return sorted((str(v) for v in await self.index.distinct("kind") if v != ""), key=str.casefold)

    async def wards(self) -> list[str]:
        """The distinct non-empty ward names for the filter select, sorted case-insensitively.

        Read from the ``ward`` column's dictionary: cost grows with the number of wards, not of notes."""
        values = await self.index.distinct("ward")
        return sorted((v for v in values if isinstance(v, str) and v), key=lambda w: (w.lower(), w))

    async def overview(self, limit: Any = 10) -> dict[str, Any]:
        """The side panel in one call: newest notes, item count, ward list."""
        return {"notes": await self.newest(limit), **await self.counts(), "wards": await self.wards()}

    async def stats(self) -> dict[str, Any]:
        """What the stats panel shows: notes, items, kernel, storage (persisted, usage), access, embedder."""
        stats = await self.index.stats()
        return {
            "note_count": await self.docs.count_documents(),
            "items": stats["items"],
            "kernel": stats["kernel"],
            "store": stats["store"],
            "database": stats.get("database"),
            "persisted": stats.get("persisted"),
            "usage_bytes": stats.get("usage_bytes"),
            "quota_bytes": stats.get("quota_bytes"),
            "read_only": stats["read_only"],
            "embedder": self.embedder.identity,
            "threads": getattr(self.embedder, "threads", None),
        }

    async def load_demo(self, progress: Progress | None = None) -> dict[str, Any]:
        """Embed and store the bundled demo notes as documents, in one commit (loading twice keeps one copy of
        each and re-embeds nothing)."""
        notes = sample_notes()
        started = time.perf_counter()
        if progress is not None:
            progress(0, len(notes))
        await self.docs.upsert_documents(
            [(n["id"], n["text"], n.get("metadata", {})) for n in notes],
            progress=progress,
        )
        return {"loaded": len(notes), **await self.counts(), "ms": _ms(started)}
