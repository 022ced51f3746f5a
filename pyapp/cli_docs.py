"""``python -m pyapp docs add|query|get|delete|list``: long notes as documents, from the command line.

The same path as the page: ``DocumentIndex`` chunks and stores, ``pyapp.highlight.passage_view`` shapes each
hit (one per document, best passage, highlight spans), and the mode names are the page's (hybrid, semantic,
keyword). Exit codes as the rest of the CLI: 0 done, 1 a clinvec error (nothing changed), 2 bad usage,
3 the index or document does not exist.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from .cli import (
    EXIT_OK,
    _add_model_options,
    _filter_arg,
    _index_command,
    _load_embedder,
    _metadata_arg,
    _not_found,
    _print_json,
)
from .cli import opened as opened_index
from .documents import DOC_INDEXED, DocumentIndex
from .errors import IndexNotFound, InvalidInput
from .highlight import passage_view
from .index import LocalIndex
from .notes import MODES
from .progress import ProgressBar


@asynccontextmanager
async def opened(
    args: argparse.Namespace, read_only: bool, create: bool = False, embed: bool = True
) -> AsyncIterator[DocumentIndex]:
    """The index as documents; with ``embed``, the embedder from ``--model``/``--hashing`` or the one it recorded
    (reading, listing and deleting need no model, so they do not load one).

    With ``create``, a missing index is created when an embedder is named (``_doc.uri``/``_doc.chunk`` kept
    columnar, as the page's notes index does)."""
    if create and not await LocalIndex.exists(args.index):
        embedder = _load_embedder(args)
        if embedder is None:
            raise IndexNotFound(f"no index at {args.index!r}; give --model DIR (or --hashing DIMS) to create it")
        index = await LocalIndex.create(args.index, embedder=embedder, indexed=list(DOC_INDEXED))
        try:
            yield DocumentIndex(index)
        finally:
            await index.close()
        return
    args.needs_embedder = embed
    async with opened_index(args, read_only=read_only) as index:
        yield DocumentIndex(index)


def _read_text(path: str) -> str:
    """A text file exactly as written (line endings kept), UTF-8 with an optional BOM."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise InvalidInput(f"--file: cannot read {path!r}: {exc.strerror or exc}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"--file {path!r} is not UTF-8 (byte {exc.start})") from None


async def cmd_add(args: argparse.Namespace) -> int:
    text = _read_text(args.file) if args.file is not None else args.text
    metadata = _metadata_arg(args.metadata)
    async with opened(args, read_only=False, create=True) as docs:
        changed = await docs.upsert_document(
            args.id, text, metadata, progress=ProgressBar("embed", force=args.progress)
        )
        chunks = await docs.index.count({"_doc.uri": args.id})
    _print_json({"id": args.id, "chunks": chunks, "changed": changed})
    return EXIT_OK


async def cmd_query(args: argparse.Namespace) -> int:
    mode = MODES[args.mode]
    async with opened(args, read_only=True, embed=mode != "keyword") as docs:
        hits = await docs.query_documents(args.text, top_k=args.top_k, filter=_filter_arg(args.filter), mode=mode)
    for hit in hits:
        _print_json(passage_view(hit, args.text, mode))
    return EXIT_OK


async def cmd_get(args: argparse.Namespace) -> int:
    async with opened(args, read_only=True, embed=False) as docs:
        document = await docs.get_document(args.id)
    if document is None:
        return _not_found("document", args.id)
    if args.json:
        _print_json({"id": document.uri, "text": document.text, "metadata": document.metadata})
    else:  # the text byte for byte: no newline added, none translated
        sys.stdout.flush()
        sys.stdout.buffer.write(document.text.encode("utf-8"))
        sys.stdout.buffer.flush()
    return EXIT_OK


async def cmd_delete(args: argparse.Namespace) -> int:
    async with opened(args, read_only=False, embed=False) as docs:
        deleted = await docs.delete_document(args.id)
    _print_json({"deleted": deleted})
    if not deleted:
        return _not_found("document", args.id)
    return EXIT_OK


async def cmd_list(args: argparse.Namespace) -> int:
    async with opened(args, read_only=True, embed=False) as docs:
        listed = await docs.list_documents()
    for doc in listed:
        _print_json({"id": doc.uri, "chunks": doc.chunks, "metadata": doc.metadata})
    return EXIT_OK


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return number


def add_docs_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``docs`` and its subcommands on the CLI's subparsers."""
    docs = sub.add_parser("docs", help="long notes as documents: chunked, searched per document, read back exactly")
    dsub = docs.add_subparsers(dest="docs_command", required=True)

    p = _index_command(
        dsub, "add", "add or replace a document (creates the index when --model/--hashing is given)", cmd_add
    )
    p.add_argument("--id", required=True, help="the document's id (replaces the document with this id)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--file", help="a UTF-8 text file, stored exactly as written")
    source.add_argument("--text")
    p.add_argument("--metadata", help="JSON object")
    p.add_argument("--progress", action="store_true", help="draw the progress bar even when not on a terminal")
    _add_model_options(p)

    p = _index_command(dsub, "query", "one JSON line per document: id, score, passage, span, highlights", cmd_query)
    p.add_argument("text")
    p.add_argument("--mode", default="hybrid", choices=list(MODES))
    p.add_argument("--top-k", type=_positive, default=10)
    p.add_argument("--filter", help='JSON filter on the documents\' metadata, e.g. \'{"ward": "ICU"}\'')
    _add_model_options(p)

    p = _index_command(dsub, "get", "print a document's full text, exactly as stored", cmd_get, takes_id=True)
    p.add_argument("--json", action="store_true", help="print {id, text, metadata} as one JSON line instead")

    _index_command(dsub, "delete", "delete a document (all its chunks, one commit)", cmd_delete, takes_id=True)
    _index_command(dsub, "list", "one JSON line per document: id, chunks, metadata", cmd_list)
