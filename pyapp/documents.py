"""DocumentIndex: long clinical notes over a LocalIndex, chunked by WordPiece tokens.

vectra's LocalDocumentIndex, done right: chunks are cut by the embedding model's own tokens (default 128,
its pre-training length) with an overlap that is really embedded; each chunk keeps its character span so
hits can be highlighted; a document whose text and metadata are unchanged is not re-embedded (content
hash); replacing a document is one commit, so a crash never leaves half of an old and half of a new one.

Each chunk is an ordinary item whose metadata is the document's metadata plus a reserved ``_doc`` object
``{uri, chunk, chunks, start, end, hash}``; ``_doc.uri`` and ``_doc.chunk`` are indexed for fast filters.
Chunks hold only token spans, so the text between them is kept too: ``gap`` (the text between the previous
chunk's end, or the document's start, and this chunk's start) when it is not empty, and ``tail`` (the text
after the last chunk) on the last chunk. The stored document thus comes back byte-exact: leading and trailing
whitespace, CRLF, and NFC/NFD forms untouched (documents stored before ``gap``/``tail`` existed come back
with single spaces in their gaps and without trailing whitespace).

Plain items (no ``_doc``: written by ``LocalIndex`` directly, imported from JSONL/CSV, or stored by the notes app
before it kept notes as documents) are read as one-chunk documents whose uri is their id: they are found, grouped,
read back and deleted like any document, and ``upsert_document`` with their id replaces them in the same commit
that writes the chunks. So no index needs a migration step and no note is ever hidden or lost.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .embed.base import Embedder, Progress
from .errors import InvalidInput, InvalidMetadata
from .index import LocalIndex
from .metadata import validate_metadata
from .staging import check_id, check_text
from .stores import Store

DOC_KEY = "_doc"
DOC_INDEXED = ("_doc.uri", "_doc.chunk")
DEFAULT_CHUNK_TOKENS = 128
DEFAULT_OVERLAP = 32
SPECIAL_TOKENS = 2  # [CLS] and [SEP]: a chunk plus these must fit the model's max_seq_length
# A document's first chunk, or a plain item (a one-chunk document): one row per document. Both conditions are
# on the ``_doc.chunk`` column, so counting documents stays vectorised on indexes that keep it columnar.
HEADS: dict[str, Any] = {"$or": [{"_doc.chunk": 0}, {"_doc.chunk": {"$exists": False}}]}
_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)


class OffsetTokenizer(Protocol):
    def tokenize_with_offsets(self, text: str) -> list[tuple[str, int, int]]: ...


class RegexTokenizer:
    """Words and punctuation with offsets: the chunker's fallback when the embedder has no WordPiece tokenizer."""

    def tokenize_with_offsets(self, text: str) -> list[tuple[str, int, int]]:
        return [(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]


@dataclass(frozen=True)
class Chunk:
    """One window of a document: its text and where it sits in the original."""

    index: int
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Passage:
    """A matching chunk of a document, with offsets for highlighting and the chunk's per-leg scores."""

    text: str
    start: int
    end: int
    score: float
    chunk: int
    vector_score: float | None = None
    keyword_score: float | None = None


@dataclass(frozen=True)
class DocumentResult:
    """One document hit: its score (max or mean of its chunk scores) and best passages."""

    uri: str
    score: float
    metadata: dict[str, Any]
    passages: list[Passage] = field(default_factory=list)
    chunks: int = 1


@dataclass(frozen=True)
class DocumentInfo:
    """A document as listed: ``preview`` is its first chunk's text (a plain item's whole text)."""

    uri: str
    metadata: dict[str, Any]
    chunks: int
    hash: str
    preview: str = ""


@dataclass(frozen=True)
class Document:
    """One whole document: its exact text and its metadata."""

    uri: str
    text: str
    metadata: dict[str, Any]
    chunks: int


def doc_fields(item: Any) -> dict[str, Any] | None:
    """An item's ``_doc`` object, or None for a plain item (read as a one-chunk document)."""
    doc = item.metadata.get(DOC_KEY) if isinstance(item.metadata, dict) else None
    if isinstance(doc, dict) and isinstance(doc.get("uri"), str) and "chunk" in doc:
        return doc
    return None


def document_uri(item: Any) -> str:
    """The document an item belongs to: its ``_doc.uri``, or its own id for a plain item."""
    doc = doc_fields(item)
    return item.id if doc is None else doc["uri"]


def _user_metadata(item: Any) -> dict[str, Any]:
    return {k: v for k, v in (item.metadata or {}).items() if k != DOC_KEY}


def _passage(hit: Any) -> Passage:
    doc = doc_fields(hit.item)
    text = hit.item.text or ""
    start, chunk = (0, 0) if doc is None else (doc["start"], doc["chunk"])
    end = start + len(text) if doc is None else doc["end"]
    return Passage(text, start, end, hit.score, chunk, hit.vector_score, hit.keyword_score)


def chunk_limit(embedder: Any) -> int | None:
    """The most WordPiece tokens a chunk may hold for this embedder (None: it has no token limit)."""
    limit = getattr(embedder, "max_seq_length", None)
    return int(limit) - SPECIAL_TOKENS if isinstance(limit, int) and not isinstance(limit, bool) else None


def chunk_text(text: str, tokenizer: OffsetTokenizer, chunk_tokens: int = 128, overlap: int = 32) -> list[Chunk]:
    """Cut ``text`` into windows of ``chunk_tokens`` tokens; consecutive windows share ``overlap`` tokens."""
    if chunk_tokens < 1 or not 0 <= overlap < chunk_tokens:
        raise InvalidInput("chunk_tokens must be >= 1 and 0 <= overlap < chunk_tokens")
    tokens = tokenizer.tokenize_with_offsets(text)
    if not tokens:
        stripped = text.strip()
        if not stripped:
            return []
        start = text.index(stripped)
        return [Chunk(0, stripped, start, start + len(stripped))]
    chunks: list[Chunk] = []
    step = chunk_tokens - overlap
    first = 0
    while True:
        window = tokens[first : first + chunk_tokens]
        start, end = window[0][1], window[-1][2]
        chunks.append(Chunk(len(chunks), text[start:end], start, end))
        if first + chunk_tokens >= len(tokens):
            return chunks
        first += step


def _content_hash(text: str, metadata: dict[str, Any], settings: tuple[int, int]) -> str:
    """sha256 of what a document's chunks depend on; ``metadata`` must already be validated JSON."""
    try:
        payload = json.dumps([text, metadata, settings], sort_keys=True, ensure_ascii=False)
    except (ValueError, RecursionError) as exc:  # e.g. an integer beyond the interpreter's digit limit
        raise InvalidMetadata(f"metadata cannot be written as JSON: {exc}") from None
    return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()


def _doc_fields(text: str, chunks: Sequence[Chunk]) -> list[dict[str, Any]]:
    """Per chunk: its span plus the uncovered text before it (``gap``) and, for the last, after it (``tail``)."""
    fields: list[dict[str, Any]] = []
    covered = 0
    for c in chunks:
        entry: dict[str, Any] = {"start": c.start, "end": c.end}
        if c.start > covered:
            entry["gap"] = text[covered : c.start]
        covered = max(covered, c.end)
        fields.append(entry)
    if fields and covered < len(text):
        fields[-1]["tail"] = text[covered:]
    return fields


def _chunk_id(uri: str, n: int) -> str:
    return f"doc:{hashlib.sha1(uri.encode('utf-8')).hexdigest()[:20]}:{n}"


class DocumentIndex:
    """Documents (uri -> text + metadata) stored as embedded chunks in a LocalIndex."""

    def __init__(
        self,
        index: LocalIndex,
        tokenizer: OffsetTokenizer | None = None,
        chunk_tokens: int | None = None,
        overlap: int = DEFAULT_OVERLAP,
    ) -> None:
        """``chunk_tokens`` defaults to 128 (the model's pre-training length), less when the embedder's
        ``max_seq_length`` minus [CLS]/[SEP] is smaller: a chunk is never truncated by the model, so every
        token of a document is embedded. A larger explicit value is refused for the same reason.

        An index opened without an embedder still reads, lists, deletes and answers keyword queries; writing
        or a semantic query raises ``NoEmbedder`` (chunks are embedded from their text)."""
        self.index = index
        self.tokenizer: OffsetTokenizer = tokenizer or getattr(index.embedder, "tokenizer", None) or RegexTokenizer()
        if not hasattr(self.tokenizer, "tokenize_with_offsets"):
            self.tokenizer = RegexTokenizer()
        limit = chunk_limit(index.embedder) if self.tokenizer is getattr(index.embedder, "tokenizer", None) else None
        if chunk_tokens is None:
            chunk_tokens = DEFAULT_CHUNK_TOKENS if limit is None else max(1, min(DEFAULT_CHUNK_TOKENS, limit))
            overlap = min(overlap, chunk_tokens // 4)
        elif limit is not None and chunk_tokens > limit:
            raise InvalidInput(f"chunk_tokens={chunk_tokens} exceeds the model's limit of {limit} tokens per chunk")
        self.chunk_tokens = chunk_tokens
        self.overlap = overlap
        chunk_text("", self.tokenizer, chunk_tokens, overlap)  # validates the settings early

    @classmethod
    async def create(
        cls,
        location: str | Store,
        embedder: Embedder,
        indexed: Sequence[str] = (),
        exist_ok: bool = False,
        chunk_tokens: int | None = None,
        overlap: int = DEFAULT_OVERLAP,
    ) -> DocumentIndex:
        index = await LocalIndex.create(
            location, embedder=embedder, indexed=[*DOC_INDEXED, *indexed], exist_ok=exist_ok
        )
        return cls(index, chunk_tokens=chunk_tokens, overlap=overlap)

    @classmethod
    async def open(
        cls,
        location: str | Store,
        embedder: Embedder,
        read_only: bool = False,
        chunk_tokens: int | None = None,
        overlap: int = DEFAULT_OVERLAP,
    ) -> DocumentIndex:
        index = await LocalIndex.open(location, read_only=read_only, embedder=embedder)
        return cls(index, chunk_tokens=chunk_tokens, overlap=overlap)

    async def close(self) -> None:
        await self.index.close()

    async def _first_chunk(self, uri: str) -> Any:
        items = await self.index.list(filter={"_doc.uri": uri, "_doc.chunk": 0}, limit=1)
        return items[0] if items else None

    async def _plain_item(self, uri: str) -> Any:
        """The plain item whose id is ``uri`` (a one-chunk document), or None."""
        try:
            item = await self.index.get(uri)
        except InvalidInput:  # not even a valid item id: no plain item can have it
            return None
        return item if item is not None and doc_fields(item) is None else None

    async def upsert_document(
        self, uri: str, text: str, metadata: dict[str, Any] | None = None, progress: Progress | None = None
    ) -> bool:
        """Add or replace a document in one commit; returns False when it was unchanged (nothing embedded)."""
        return (await self.upsert_documents([(uri, text, metadata)], progress))[0]

    async def upsert_documents(
        self, documents: Sequence[tuple[str, str, dict[str, Any] | None]], progress: Progress | None = None
    ) -> list[bool]:
        """Add or replace many ``(uri, text, metadata)`` documents in one commit (one embedding pass, one
        progress bar); unchanged documents are skipped. Every document is checked before anything is written,
        so one bad document stores none of them. Returns, per document, whether it was (re)written."""
        checked = self._check_documents(documents)
        async with self.index.batch():  # the lookups below run under the write lock: no other write interleaves
            return await self._stage(checked, progress)

    async def stage_document(
        self, uri: str, text: str, metadata: dict[str, Any] | None = None, progress: Progress | None = None
    ) -> bool:
        """``upsert_document`` into the batch the caller holds open (``async with index.batch():``), so several
        documents (one JSONL file's records) are one commit; False when unchanged."""
        return (await self.stage_documents([(uri, text, metadata)], progress))[0]

    async def stage_documents(
        self, documents: Sequence[tuple[str, str, dict[str, Any] | None]], progress: Progress | None = None
    ) -> list[bool]:
        """``upsert_documents`` into the batch the caller holds open."""
        return await self._stage(self._check_documents(documents), progress)

    def _check_documents(
        self, documents: Sequence[tuple[str, str, dict[str, Any] | None]]
    ) -> list[tuple[str, str, dict[str, Any], str]]:
        """Validate every document (uri, text, JSON metadata) before anything is looked up or written."""
        checked: list[tuple[str, str, dict[str, Any], str]] = []
        seen: set[str] = set()
        for uri, text, metadata in documents:
            if not isinstance(uri, str) or not uri:
                raise InvalidInput("a document uri must be a non-empty string")
            check_id(uri)  # the same rules as item ids: a plain item with this id may be the old version
            if uri in seen:
                raise InvalidInput(f"document {uri!r} is given twice")
            seen.add(uri)
            if not isinstance(text, str) or not text.strip():
                raise InvalidInput(f"document {uri!r} has no text")
            check_text(text)
            meta = validate_metadata({} if metadata is None else metadata)  # before hashing: JSON errors first
            if DOC_KEY in meta:
                raise InvalidMetadata(f"metadata key {DOC_KEY!r} is reserved for the document index")
            checked.append((uri, text, meta, _content_hash(text, meta, (self.chunk_tokens, self.overlap))))
        return checked

    async def _stage(
        self, checked: Sequence[tuple[str, str, dict[str, Any], str]], progress: Progress | None
    ) -> list[bool]:
        """Stage the changed documents: their old chunks (or plain item) deleted, their new chunks embedded."""
        changed: list[bool] = []
        items: list[dict[str, Any]] = []
        old: list[str] = []
        for uri, text, meta, digest in checked:
            first = await self._first_chunk(uri)
            if first is not None and first.metadata[DOC_KEY].get("hash") == digest:
                changed.append(False)
                continue
            changed.append(True)
            items.extend(self._chunk_items(uri, text, meta, digest))
            old.extend(item.id for item in await self.index.list(filter={"_doc.uri": uri}))
            if await self._plain_item(uri) is not None:
                old.append(uri)
        if items:
            await self.index.delete_many(old)
            await self.index.insert_many(items, progress=progress)
        return changed

    def _chunk_items(self, uri: str, text: str, metadata: dict[str, Any], digest: str) -> list[dict[str, Any]]:
        chunks = chunk_text(text, self.tokenizer, self.chunk_tokens, self.overlap)
        spans = _doc_fields(text, chunks)
        return [
            {
                "id": _chunk_id(uri, c.index),
                "text": c.text,
                "metadata": {
                    **metadata,
                    DOC_KEY: {"uri": uri, "chunk": c.index, "chunks": len(chunks), **span, "hash": digest},
                },
            }
            for c, span in zip(chunks, spans, strict=True)
        ]

    async def delete_document(self, uri: str) -> bool:
        """Remove every chunk of a document (or the plain item of that id) in one commit; False when absent."""
        ids = [item.id for item in await self.index.list(filter={"_doc.uri": uri})]
        if await self._plain_item(uri) is not None:
            ids.append(uri)
        return await self.index.delete_many(ids) > 0 if ids else False

    async def count_documents(self, filter: dict[str, Any] | None = None) -> int:
        """How many documents (plain items included) match ``filter``."""
        return await self.index.count(HEADS if filter is None else {"$and": [HEADS, filter]})

    async def list_documents(self, limit: int | None = None, newest_first: bool = False) -> list[DocumentInfo]:
        """Documents in the order they were first added (or newest first), plain items included."""
        if newest_first and limit is not None:
            total = await self.count_documents()
            heads = await self.index.list(filter=HEADS, offset=max(0, total - limit))
        else:
            heads = await self.index.list(filter=HEADS, limit=limit)
        if newest_first:
            heads.reverse()
        out = []
        for item in heads:
            doc = doc_fields(item) or {"uri": item.id, "chunks": 1, "hash": ""}
            out.append(DocumentInfo(doc["uri"], _user_metadata(item), doc["chunks"], doc["hash"], item.text or ""))
        return out[:limit] if limit is not None else out

    async def get_document(self, uri: str) -> Document | None:
        """The whole document (exact text, metadata, chunk count), or None when there is none with this uri."""
        items = await self.index.list(filter={"_doc.uri": uri})
        if not items:
            plain = await self._plain_item(uri)
            if plain is None:
                return None
            return Document(uri, plain.text or "", _user_metadata(plain), 1)
        items.sort(key=lambda item: item.metadata[DOC_KEY]["chunk"])
        return Document(uri, _reassemble(items), _user_metadata(items[0]), len(items))

    async def get_document_text(self, uri: str) -> str | None:
        """The document's text exactly as it was stored, reassembled from its chunks, gaps and tail."""
        document = await self.get_document(uri)
        return None if document is None else document.text

    async def query_documents(
        self,
        text: str,
        top_k: int = 5,
        filter: dict[str, Any] | None = None,
        mode: str = "auto",
        group: str = "max",
        passages: int = 3,
    ) -> list[DocumentResult]:
        """Search chunks, group hits per document (``max`` or ``mean`` of chunk scores), best passages first.

        Chunk hits are fetched in widening rounds until ``top_k`` documents are found or every match was seen,
        so one long document's many chunks never crowd the others out of the answer."""
        if group not in ("max", "mean"):
            raise InvalidInput("group must be 'max' or 'mean'")
        if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
            raise InvalidInput("top_k must be a positive integer")
        depth = max(top_k * 10, 50)
        while True:
            hits = await self.index.query(text=text, top_k=depth, filter=filter, mode=mode)
            grouped: dict[str, list[Any]] = {}
            for hit in hits:
                grouped.setdefault(document_uri(hit.item), []).append(hit)
            if len(grouped) >= top_k or len(hits) < depth:
                break
            depth *= 4
        results = []
        for uri, doc_hits in grouped.items():
            scores = [h.score for h in doc_hits]
            score = max(scores) if group == "max" else sum(scores) / len(scores)
            doc = doc_fields(doc_hits[0].item)
            chunks = 1 if doc is None else doc["chunks"]
            best = [_passage(h) for h in doc_hits[:passages]]
            results.append(DocumentResult(uri, score, _user_metadata(doc_hits[0].item), best, chunks))
        results.sort(key=lambda r: -r.score)  # stable: equal scores keep the index's tie order
        return results[:top_k]


def _reassemble(items: Sequence[Any]) -> str:
    """A document's text from its chunks in order: each chunk's gap, the part not already covered, the tail."""
    parts: list[str] = []
    covered = 0
    for item in items:
        doc = item.metadata[DOC_KEY]
        start = doc["start"]
        piece = item.text or ""
        if start + len(piece) > covered:
            parts.append(doc.get("gap", " " * max(0, start - covered)))  # spaces: stored before gaps were kept
            parts.append(piece[max(0, covered - start) :])
            covered = start + len(piece)
    parts.append(items[-1].metadata[DOC_KEY].get("tail", ""))
    return "".join(parts)
