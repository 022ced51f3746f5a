"""vectra 0.15 index folders (JSON codec): a plain ``LocalIndex`` or a ``LocalDocumentIndex``.

How a folder maps onto clinvec items:

* ``index.json`` holds ``{"version", "metadata_config": {"indexed": [...]}, "items": [...]}``; each item
  ``{"id", "vector", "norm", "metadata", "metadataFile"?}`` becomes an item with the same id, vector and
  metadata. With ``indexed`` fields vectra keeps only those in ``index.json`` and the full metadata in the
  side file ``metadataFile``, which is read instead. The ``indexed`` list itself is returned
  (``Source.indexed``), so an index created from the folder keeps those fields columnar.
* A document index adds ``catalog.json`` (``{"uriToId": {uri: documentId}, "idToUri": {...}, ...}``) and
  one ``<documentId>.txt`` body per document; its items are chunks whose metadata carries
  ``documentId``, ``startPos`` and ``endPos`` (inclusive, in UTF-16 code units, as JavaScript's
  ``substring(startPos, endPos + 1)`` reads them) plus the document's own metadata. Each chunk comes in
  with ``text`` = its slice of the body and metadata = vectra's chunk metadata (unchanged) plus
  ``"uri"``: the document's URI from the catalog. A chunk metadata that already holds a different
  ``uri`` is an error rather than silently overwritten.

Everything is read and checked before anything is written; a missing side file, body or catalog
entry rejects the whole folder (``InvalidInput``).
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import InvalidInput
from ..metadata import parse_json
from .items import Source, check_item, common_dims, open_source

INDEX_FILE = "index.json"
CATALOG_FILE = "catalog.json"


def _read_json(path: str) -> Any:
    with open_source(path) as handle:
        return parse_json(handle.read(), path)


def _read_text(path: str, where: str) -> str:
    if not os.path.exists(path):
        raise InvalidInput(f"{where}: its document body {os.path.basename(path)!r} is missing")
    with open_source(path) as handle:
        data = handle.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path}: not UTF-8 text (bad byte at offset {exc.start})") from None


def _indexed_fields(data: dict[str, Any], path: str) -> list[str]:
    config = data.get("metadata_config") or {}
    indexed = config.get("indexed", []) if isinstance(config, dict) else None
    if not isinstance(indexed, list) or not all(isinstance(f, str) and f for f in indexed):
        raise InvalidInput(f"{path}: metadata_config.indexed must be a list of field names")
    return list(indexed)


def _metadata(entry: dict[str, Any], folder: str, where: str) -> Any:
    side = entry.get("metadataFile")
    if not side:
        return entry.get("metadata") or {}
    side_path = os.path.join(folder, os.path.basename(str(side)))
    if not os.path.exists(side_path):
        raise InvalidInput(f"{where}: its metadata file {side!r} is missing")
    return _read_json(side_path)


class _Documents:
    """The catalog and document bodies of a vectra document index, read on demand and kept."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        path = os.path.join(folder, CATALOG_FILE)
        catalog = _read_json(path)
        id_to_uri = catalog.get("idToUri") if isinstance(catalog, dict) else None
        if not isinstance(id_to_uri, dict):
            raise InvalidInput(f"{path}: not a vectra document catalog (no 'idToUri' object)")
        self.id_to_uri: dict[str, Any] = id_to_uri
        self.bodies: dict[str, bytes] = {}

    def chunk(self, metadata: dict[str, Any], where: str) -> tuple[str, str]:
        """``(text, uri)`` of one chunk."""
        doc_id = metadata.get("documentId")
        uri = self.id_to_uri.get(doc_id) if isinstance(doc_id, str) else None
        if not isinstance(uri, str):
            raise InvalidInput(f"{where}: documentId {doc_id!r} is not in {CATALOG_FILE}")
        start, end = metadata.get("startPos"), metadata.get("endPos")
        if not (_is_int(start) and _is_int(end)) or not 0 <= start <= end + 1:
            raise InvalidInput(f"{where}: startPos/endPos must be integers with startPos <= endPos + 1")
        body = self.bodies.get(doc_id)
        if body is None:
            text = _read_text(os.path.join(self.folder, f"{os.path.basename(doc_id)}.txt"), where)
            body = self.bodies[doc_id] = text.encode("utf-16-le", "surrogatepass")
        if (end + 1) * 2 > len(body):
            raise InvalidInput(f"{where}: endPos {end} is past the end of document {uri!r}")
        piece = body[start * 2 : (end + 1) * 2].decode("utf-16-le", "surrogatepass")
        return piece, uri


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def read_vectra(folder: str, dims: int | None) -> Source:
    """Every item of a vectra index folder (plain or document index), checked."""
    path = os.path.join(folder, INDEX_FILE)
    if not os.path.exists(path):
        raise InvalidInput(f"{folder!r} has no {INDEX_FILE}: not a vectra index (only its JSON format is read)")
    data = _read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise InvalidInput(f"{path}: not a vectra index (no 'items' list)")
    indexed = _indexed_fields(data, path)
    documents = _Documents(folder) if os.path.exists(os.path.join(folder, CATALOG_FILE)) else None
    items = []
    for number, entry in enumerate(data["items"]):
        where = f"{path} item {number}"
        if not isinstance(entry, dict) or "id" not in entry:
            raise InvalidInput(f"{where}: expected an object with an id")
        metadata = _metadata(entry, folder, where)
        raw: dict[str, Any] = {"id": entry["id"], "vector": entry.get("vector"), "metadata": metadata}
        if documents is not None and isinstance(metadata, dict) and "documentId" in metadata:
            text, uri = documents.chunk(metadata, where)
            if metadata.get("uri", uri) != uri:
                raise InvalidInput(f"{where}: metadata 'uri' {metadata['uri']!r} differs from its document's {uri!r}")
            raw["metadata"] = {**metadata, "uri": uri}
            raw["text"] = text or None
        items.append(check_item(raw, where, dims))
    return Source(items, indexed=indexed, dims=common_dims(items, path) if dims is None else dims)
