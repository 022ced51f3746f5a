"""One vector and one label per note, read from an index (the training set of ``LabelModel.fit_index``).

A note stored as a document has one vector per chunk. Its vector here is the mean of its chunk vectors (the
model then L2-normalises it): a label such as the note's type belongs to the whole note, and the first chunk
alone is often just a header (date, ward, author). A plain item (no ``_doc``) is a one-chunk note.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..documents import DOC_KEY, doc_fields, document_uri
from ..errors import InvalidInput, describe
from ..metadata import get_path


@dataclass
class NoteVectors:
    """Notes in insertion order: uri, mean chunk vector, and the label (None when the note has none)."""

    uris: list[str] = field(default_factory=list)
    vectors: list[list[float]] = field(default_factory=list)
    labels: list[Any] = field(default_factory=list)

    def labelled(self) -> NoteVectors:
        keep = [i for i, label in enumerate(self.labels) if label is not None]
        return NoteVectors(
            [self.uris[i] for i in keep], [self.vectors[i] for i in keep], [self.labels[i] for i in keep]
        )


def _label_of(metadata: dict[str, Any], field_path: str, uri: str) -> Any:
    user = {k: v for k, v in (metadata or {}).items() if k != DOC_KEY}
    found, value = get_path(user, field_path)
    if not found or value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidInput(f"note {uri!r}: {field_path!r} is {describe(value)}; labels must be strings or integers")
    return value


async def note_vectors(index: Any, field_path: str, uris: Iterable[str] | None = None) -> NoteVectors:
    """Every note of ``index`` (or only ``uris``) as one mean vector with its ``field_path`` label."""
    if not isinstance(field_path, str) or not field_path or field_path.split(".")[0] == DOC_KEY:
        raise InvalidInput(f"field must be a metadata field name, got {describe(field_path)}")
    wanted = None if uris is None else set(uris)
    sums: dict[str, list[float]] = {}
    counts: dict[str, int] = {}
    labels: dict[str, Any] = {}
    async for batch in index.iter_items():
        for item in batch:
            uri = document_uri(item)
            if wanted is not None and uri not in wanted:
                continue
            doc = doc_fields(item)
            if doc is None or doc.get("chunk") == 0:
                labels[uri] = _label_of(item.metadata, field_path, uri)
            acc = sums.get(uri)
            if acc is None:
                sums[uri], counts[uri] = [float(v) for v in item.vector], 1
            else:
                sums[uri] = [a + float(v) for a, v in zip(acc, item.vector, strict=True)]
                counts[uri] += 1
    if wanted is not None and (missing := sorted(wanted - sums.keys())):
        raise InvalidInput(
            f"no note {missing[0]!r} in the index" + (f" (and {len(missing) - 1} more)" * (len(missing) > 1))
        )
    out = NoteVectors()
    for uri, acc in sums.items():
        n = counts[uri]
        out.uris.append(uri)
        out.vectors.append([v / n for v in acc])
        out.labels.append(labels.get(uri))
    return out


async def text_vector(index: Any, text: str) -> list[float]:
    """The vector a note with ``text`` would get here: chunked as ``DocumentIndex`` would store it, each chunk
    embedded by the index's embedder, then the mean (so a new note is compared like the stored ones)."""
    from array import array

    from ..documents import DocumentIndex, chunk_text
    from ..errors import NoEmbedder

    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("text must be a non-empty string")
    if index.embedder is None:
        raise NoEmbedder("this index has no embedder to embed the text with")
    docs = DocumentIndex(index)
    chunks = chunk_text(text, docs.tokenizer, docs.chunk_tokens, docs.overlap)
    raw = array("f")
    raw.frombytes(await index.embedder.embed_raw([c.text for c in chunks]))
    dims = index.dims
    n = len(chunks)
    return [sum(raw[c * dims + j] for c in range(n)) / n for j in range(dims)]
