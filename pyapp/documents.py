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
from .stores import Store

DOC_KEY = "_doc"
DOC_INDEXED = ("_doc.uri", "_doc.chunk")
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
    """A matching chunk of a document, with offsets for highlighting."""

    text: str
    start: int
    end: int
    score: float
    chunk: int


@dataclass(frozen=True)
class DocumentResult:
    """One document hit: its score (max or mean of its chunk scores) and best passages."""

    uri: str
    score: float
    metadata: dict[str, Any]
    passages: list[Passage] = field(default_factory=list)


@dataclass(frozen=True)
class DocumentInfo:
    uri: str
    metadata: dict[str, Any]
    chunks: int
    hash: str


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
        self, index: LocalIndex, tokenizer: OffsetTokenizer | None = None, chunk_tokens: int = 128, overlap: int = 32
    ) -> None:
        if index.embedder is None:
            raise InvalidInput("a DocumentIndex needs an index with an embedder (chunks are embedded from text)")
        self.index = index
        self.tokenizer: OffsetTokenizer = tokenizer or getattr(index.embedder, "tokenizer", None) or RegexTokenizer()
        if not hasattr(self.tokenizer, "tokenize_with_offsets"):
            self.tokenizer = RegexTokenizer()
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
        chunk_tokens: int = 128,
        overlap: int = 32,
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
        chunk_tokens: int = 128,
        overlap: int = 32,
    ) -> DocumentIndex:
        index = await LocalIndex.open(location, read_only=read_only, embedder=embedder)
        return cls(index, chunk_tokens=chunk_tokens, overlap=overlap)

    async def close(self) -> None:
        await self.index.close()

    async def _first_chunk(self, uri: str) -> Any:
        items = await self.index.list(filter={"_doc.uri": uri, "_doc.chunk": 0}, limit=1)
        return items[0] if items else None

    async def upsert_document(
        self, uri: str, text: str, metadata: dict[str, Any] | None = None, progress: Progress | None = None
    ) -> bool:
        """Add or replace a document in one commit; returns False when it was unchanged (nothing embedded)."""
        async with self.index.batch():
            return await self.stage_document(uri, text, metadata, progress)

    async def stage_document(
        self, uri: str, text: str, metadata: dict[str, Any] | None = None, progress: Progress | None = None
    ) -> bool:
        """``upsert_document`` into the batch the caller holds open (``async with index.batch():``), so several
        documents (one JSONL file's records) are one commit; False when unchanged."""
        if not isinstance(uri, str) or not uri:
            raise InvalidInput("a document uri must be a non-empty string")
        if not isinstance(text, str) or not text.strip():
            raise InvalidInput(f"document {uri!r} has no text")
        metadata = validate_metadata({} if metadata is None else metadata)  # before hashing: JSON errors first
        if DOC_KEY in metadata:
            raise InvalidMetadata(f"metadata key {DOC_KEY!r} is reserved for the document index")
        digest = _content_hash(text, metadata, (self.chunk_tokens, self.overlap))
        first = await self._first_chunk(uri)
        if first is not None and first.metadata[DOC_KEY]["hash"] == digest:
            return False
        chunks = chunk_text(text, self.tokenizer, self.chunk_tokens, self.overlap)
        spans = _doc_fields(text, chunks)
        items = [
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
        old = await self.index.list(filter={"_doc.uri": uri})
        await self.index.delete_many([item.id for item in old])
        await self.index.insert_many(items, progress=progress)
        return True

    async def delete_document(self, uri: str) -> bool:
        """Remove every chunk of a document in one commit; False when it was not there."""
        return await self.index.delete_where({"_doc.uri": uri}) > 0

    async def list_documents(self) -> list[DocumentInfo]:
        """Every document, in the order they were first added."""
        out = []
        for item in await self.index.list(filter={"_doc.chunk": 0}):
            doc = item.metadata[DOC_KEY]
            meta = {k: v for k, v in item.metadata.items() if k != DOC_KEY}
            out.append(DocumentInfo(doc["uri"], meta, doc["chunks"], doc["hash"]))
        return out

    async def get_document_text(self, uri: str) -> str | None:
        """The document's text exactly as it was stored, reassembled from its chunks, gaps and tail."""
        items = await self.index.list(filter={"_doc.uri": uri})
        if not items:
            return None
        items.sort(key=lambda item: item.metadata[DOC_KEY]["chunk"])
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

    async def query_documents(
        self,
        text: str,
        top_k: int = 5,
        filter: dict[str, Any] | None = None,
        mode: str = "auto",
        group: str = "max",
        passages: int = 3,
    ) -> list[DocumentResult]:
        """Search chunks, group hits per document (``max`` or ``mean`` of chunk scores), best passages first."""
        if group not in ("max", "mean"):
            raise InvalidInput("group must be 'max' or 'mean'")
        if not isinstance(top_k, int) or top_k < 1:
            raise InvalidInput("top_k must be a positive integer")
        hits = await self.index.query(text=text, top_k=max(top_k * 10, 50), filter=filter, mode=mode)
        grouped: dict[str, list[Any]] = {}
        for hit in hits:
            grouped.setdefault(hit.item.metadata[DOC_KEY]["uri"], []).append(hit)
        results = []
        for uri, doc_hits in grouped.items():
            scores = [h.score for h in doc_hits]
            score = max(scores) if group == "max" else sum(scores) / len(scores)
            meta = {k: v for k, v in doc_hits[0].item.metadata.items() if k != DOC_KEY}
            best = [
                Passage(
                    h.item.text or "",
                    h.item.metadata[DOC_KEY]["start"],
                    h.item.metadata[DOC_KEY]["end"],
                    h.score,
                    h.item.metadata[DOC_KEY]["chunk"],
                )
                for h in doc_hits[:passages]
            ]
            results.append(DocumentResult(uri, score, meta, best))
        results.sort(key=lambda r: -r.score)
        return results[:top_k]
