"""``python -m pyapp``: the command line over the same LocalIndex core (sqlite-utils style: library + CLI).

Exit codes a script can rely on: 0 success, 1 a clinvec error (message on stderr, nothing changed),
2 bad usage, 3 the item or index asked for does not exist.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from .errors import ClinvecError, IndexNotFound, InvalidFilter, InvalidInput
from .index import LocalIndex
from .metadata import parse_json
from .progress import ProgressBar
from .transfer import export_items, import_into
from .transfer.importer import is_bundle

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_MISSING = 0, 1, 2, 3


def _print_json(value: Any) -> None:
    """One JSON line on stdout; text the terminal cannot encode is written as JSON escapes instead."""
    try:
        print(json.dumps(value, ensure_ascii=False))
    except UnicodeEncodeError:
        print(json.dumps(value, ensure_ascii=True))


def _not_found(what: str, id: str) -> int:
    """Say on stderr that the item or document asked for does not exist; return the exit code scripts test."""
    print(f"clinvec: no {what} with id {id!r}", file=sys.stderr)
    return EXIT_MISSING


def _runtime_missing() -> int | None:
    """For the commands that run a model graph: ``EXIT_ERROR`` after one line naming the missing ``server``
    extra (numpy, onnxruntime), or None when the runtime imports."""
    from .embed.onnx import require_runtime

    try:
        require_runtime()
    except ImportError as exc:
        print(f"clinvec: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return None


def _load_embedder(args: argparse.Namespace) -> Any:
    """The embedder named on the command line (``--model DIR``/``--hashing``), or None."""
    from .embed.resolve import resolve_embedder

    return resolve_embedder(getattr(args, "model", None), getattr(args, "hashing", None), quiet=args.quiet)


def _vector_arg(value: str | None) -> Any:
    """``--vector``: a JSON array, or the path of a file holding one."""
    if value is None:
        return None
    if os.path.isfile(value):
        try:
            with open(value, "rb") as handle:
                return parse_json(handle.read(), f"--vector file {value!r}")
        except OSError as exc:
            raise InvalidInput(f"--vector: cannot read {value!r}: {exc.strerror or exc}") from None
    return parse_json(value, "--vector (a JSON array or a file holding one)")


def _metadata_arg(value: str | None) -> dict[str, Any] | None:
    if value is None:
        return None
    parsed: dict[str, Any] = parse_json(value, "--metadata (a JSON object)")
    return parsed


def _filter_arg(value: str | None, option: str = "--filter") -> dict[str, Any] | None:
    if value is None:
        return None
    parsed: dict[str, Any] = parse_json(value, f"{option} (a JSON filter)", InvalidFilter)
    return parsed


def _result_json(result: Any, with_vector: bool = False) -> dict[str, Any]:
    item = result.item
    out = {
        "id": item.id,
        "score": result.score,
        "vector_score": result.vector_score,
        "keyword_score": result.keyword_score,
        "metadata": item.metadata,
        "text": item.text,
    }
    if with_vector:
        out["vector"] = item.vector
    return out


@asynccontextmanager
async def opened(args: argparse.Namespace, read_only: bool) -> AsyncIterator[LocalIndex]:
    """The index named by ``args.index``, open for the block and closed after it, whatever happens.

    When the command may embed text (``args.needs_embedder``), the embedder named on the command line,
    or else the one the index recorded, is attached."""
    index = await LocalIndex.open(args.index, read_only=read_only)
    try:
        if getattr(args, "needs_embedder", False):
            from .embed.resolve import embedder_from_identity

            embedder = _load_embedder(args) or embedder_from_identity(index.manifest.get("embedder"), args.quiet)
            index.use_embedder(embedder)
        yield index
    finally:
        await index.close()


async def _import_file(index: LocalIndex, args: argparse.Namespace, path: str) -> int:
    """The one path from a JSONL/CSV/vectra source into an open index (``add --file`` and ``import``)."""
    return await import_into(
        index,
        path,
        format=args.format,
        progress=ProgressBar("embed", force=args.progress),
        upsert=args.upsert,
        read_progress=ProgressBar("read", force=args.progress),
    )


async def cmd_create(args: argparse.Namespace) -> int:
    embedder = _load_embedder(args)
    index = await LocalIndex.create(args.index, dims=args.dims, indexed=args.indexed or (), embedder=embedder)
    try:
        _print_json(await index.stats())
    finally:
        await index.close()
    return EXIT_OK


async def cmd_add(args: argparse.Namespace) -> int:
    args.needs_embedder = args.file is not None or args.vector is None
    async with opened(args, read_only=False) as index:
        if args.file:
            _print_json({"added": await _import_file(index, args, args.file)})
            return EXIT_OK
        vector = _vector_arg(args.vector)
        metadata = _metadata_arg(args.metadata)
        if args.upsert:
            if not args.id:
                raise InvalidInput("--upsert needs --id")
            new_id = await index.upsert(args.id, vector, metadata=metadata, text=args.text)
        else:
            new_id = await index.insert(vector, metadata=metadata, text=args.text, id=args.id)
    _print_json({"id": new_id})
    return EXIT_OK


async def cmd_query(args: argparse.Namespace) -> int:
    args.needs_embedder = args.vector is None and args.mode != "keyword"
    async with opened(args, read_only=True) as index:
        results = await index.query(
            vector=_vector_arg(args.vector),
            text=args.text,
            top_k=args.top_k,
            filter=_filter_arg(args.filter),
            mode=args.mode,
            min_score=args.min_score,
        )
    for result in results:
        _print_json(_result_json(result, args.with_vector))
    return EXIT_OK


async def cmd_get(args: argparse.Namespace) -> int:
    async with opened(args, read_only=True) as index:
        item = await index.get(args.id)
    if item is None:
        return _not_found("item", args.id)
    _print_json(item.to_dict())
    return EXIT_OK


async def cmd_list(args: argparse.Namespace) -> int:
    async with opened(args, read_only=True) as index:
        items = await index.list(filter=_filter_arg(args.filter), limit=args.limit, offset=args.offset)
    for item in items:
        record = item.to_dict()
        if not args.with_vector:
            record.pop("vector")
        _print_json(record)
    return EXIT_OK


async def cmd_delete(args: argparse.Namespace) -> int:
    async with opened(args, read_only=False) as index:
        if args.where:
            count = await index.delete_where(_filter_arg(args.where, "--where") or {})
        else:
            count = await index.delete_many(args.ids)
    _print_json({"deleted": count})
    return EXIT_OK


async def cmd_stats(args: argparse.Namespace) -> int:
    async with opened(args, read_only=True) as index:
        _print_json(await index.stats())
    return EXIT_OK


async def cmd_export(args: argparse.Namespace) -> int:
    async with opened(args, read_only=True) as index:
        progress = ProgressBar("export", force=getattr(args, "progress", False))
        since, int8 = getattr(args, "since", None), getattr(args, "int8", False)
        position = index.position  # what the next `bundle export --since` starts from (read before writing)
        count = await export_items(index, args.path, format=args.format, progress=progress, since=since, int8=int8)
    extra = {"position": position} if args.command == "bundle" else {}
    _print_json({"exported": count, "path": args.path, **extra})
    return EXIT_OK


async def cmd_import(args: argparse.Namespace) -> int:
    if args.create:
        return await _import_new(args)
    args.needs_embedder = not is_bundle(args.path, args.format)  # a bundle carries its vectors
    async with opened(args, read_only=False) as index:
        count = await _import_file(index, args, args.path)
    _print_json({"imported": count})
    return EXIT_OK


async def _import_new(args: argparse.Namespace) -> int:
    """``import --create``: a new index whose dims and indexed fields come from the source."""
    from .transfer.create import create_from

    index = await create_from(
        args.index,
        args.path,
        format=args.format,
        embedder=_load_embedder(args),
        indexed=args.indexed,
        progress=ProgressBar("embed", force=args.progress),
        read_progress=ProgressBar("read", force=args.progress),
    )
    try:
        _print_json({"imported": await index.count(), "indexed": index.indexed})
    finally:
        await index.close()
    return EXIT_OK


async def cmd_compact(args: argparse.Namespace) -> int:
    async with opened(args, read_only=False) as index:
        await index.compact()
        _print_json(await index.stats())
    return EXIT_OK


async def cmd_ingest(args: argparse.Namespace) -> int:
    """``ingest INDEX PATH...``: files and folders into a document index; JSON lines per changed/failed file."""
    from .ingest import run_ingest

    def report(event: dict[str, Any]) -> None:
        _print_json(event)
        sys.stdout.flush()  # --watch runs for hours: each event is a line a reader sees now

    return await run_ingest(
        args.index,
        args.paths,
        embedder=_load_embedder(args),
        watch=args.watch,
        progress=args.progress,
        quiet=args.quiet,
        report=report,
    )


async def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return await run_demo(args.dir, args.text, quiet=args.quiet, model=args.model)


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="model bundle folder (from `python -m export`) used to embed text")
    parser.add_argument("--hashing", type=int, metavar="DIMS", help="use the dependency-free hashing embedder")


def _index_command(sub: Any, name: str, help: str, run: Any, *, takes_id: bool = False) -> argparse.ArgumentParser:
    """A subcommand ``NAME INDEX [ID]`` that runs ``run``: the shape most commands (and ``docs``'s) share."""
    p: argparse.ArgumentParser = sub.add_parser(name, help=help)
    p.add_argument("index")
    if takes_id:
        p.add_argument("id")
    p.set_defaults(run=run)
    return p


def _export_arguments(p: argparse.ArgumentParser, choices: list[str]) -> None:
    p.add_argument("index")
    p.add_argument("path")
    default = choices[0] if len(choices) == 1 else None
    p.add_argument("--format", default=default, choices=choices, help="default: from the extension (.clinvec, .csv)")
    p.add_argument("--progress", action="store_true", help="draw a progress bar even when not on a terminal")
    p.set_defaults(run=cmd_export)


def _import_arguments(p: argparse.ArgumentParser, choices: list[str]) -> None:
    p.add_argument("index")
    p.add_argument("path")
    p.add_argument("--format", default=choices[0] if len(choices) == 1 else None, choices=choices)
    p.add_argument("--upsert", action="store_true", help="replace items whose id exists (default: refuse them)")
    p.add_argument("--progress", action="store_true")
    p.add_argument("--create", action="store_true", help="create the index (dims and indexed fields from the source)")
    p.add_argument("--indexed", nargs="*", help="with --create: fields to keep columnar (default: the source's)")
    _add_model_options(p)
    p.set_defaults(run=cmd_import)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pyapp", description=__doc__.splitlines()[0])
    parser.add_argument("-q", "--quiet", action="store_true", help="no notices on stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    p = _index_command(sub, "create", "create an empty index", cmd_create)
    p.add_argument("--dims", type=int)
    p.add_argument("--indexed", nargs="*", help="metadata fields to keep columnar (fast filters)")
    _add_model_options(p)

    p = _index_command(sub, "add", "add one item (--vector/--text) or many (--file JSONL/CSV)", cmd_add)
    p.add_argument("--file")
    p.add_argument("--format", choices=["jsonl", "csv"])
    p.add_argument("--vector", help="JSON array or a file holding one")
    p.add_argument("--text")
    p.add_argument("--metadata", help="JSON object")
    p.add_argument("--id")
    p.add_argument("--upsert", action="store_true")
    p.add_argument("--progress", action="store_true", help="draw progress bars even when not on a terminal")
    _add_model_options(p)

    p = _index_command(sub, "query", "search by vector and/or text", cmd_query)
    p.add_argument("--vector", help="JSON array or a file holding one")
    p.add_argument("--text")
    p.add_argument("--top-k", type=int, default=10)
    p.add_argument("--filter", help='JSON filter, e.g. \'{"ward": "ICU"}\'')
    p.add_argument("--mode", default="auto", choices=["auto", "vector", "keyword", "hybrid"])
    p.add_argument("--min-score", type=float)
    p.add_argument("--with-vector", action="store_true")
    _add_model_options(p)

    _index_command(sub, "get", "print one item", cmd_get, takes_id=True)

    p = _index_command(sub, "list", "list items in insertion order", cmd_list)
    p.add_argument("--filter")
    p.add_argument("--limit", type=int)
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--with-vector", action="store_true")

    p = _index_command(sub, "delete", "delete items by id or by --where filter", cmd_delete)
    p.add_argument("ids", nargs="*")
    p.add_argument("--where", help="JSON filter")

    _index_command(sub, "stats", "counts and storage facts", cmd_stats)

    p = sub.add_parser("export", help="write every item to JSONL, CSV or a .clinvec bundle")
    _export_arguments(p, choices=["jsonl", "csv", "bundle"])

    p = sub.add_parser("import", help="load JSONL, CSV, a vectra index folder or a .clinvec bundle")
    _import_arguments(p, choices=["jsonl", "csv", "vectra", "bundle"])

    bundle = sub.add_parser("bundle", help="write or read a .clinvec bundle (docs/BUNDLE.md)")
    bundle_sub = bundle.add_subparsers(dest="bundle_command", required=True)
    p = bundle_sub.add_parser("export", help="write the index (or its commits after --since) as a bundle")
    _export_arguments(p, choices=["bundle"])
    p.add_argument("--since", type=int, metavar="SEQ", help="a delta: only the commits after SEQ (and deletes)")
    p.add_argument("--int8", action="store_true", help="int8 vectors with per-row scales (a quarter of the bytes)")
    _import_arguments(bundle_sub.add_parser("import", help="restore a bundle (all or nothing)"), choices=["bundle"])

    _index_command(sub, "compact", "fold the write-ahead log into a new snapshot", cmd_compact)

    p = sub.add_parser("ingest", help="index .txt/.md/.pdf/.jsonl/.csv files and folders as documents")
    p.add_argument("index", help="the index folder (created when missing)")
    p.add_argument("paths", nargs="+", metavar="PATH", help="files and folders (recursive)")
    p.add_argument("--watch", action="store_true", help="then keep the index in step with them until Ctrl-C/SIGTERM")
    p.add_argument("--progress", action="store_true", help="draw progress bars even when not on a terminal")
    _add_model_options(p)
    p.set_defaults(run=cmd_ingest)

    p = sub.add_parser("demo", help="build an index from the bundled clinical notes and search it")
    p.add_argument("--dir", help="where to keep the demo index (default: a temporary folder)")
    p.add_argument("--text", default="shortness of breath after surgery", help="the query")
    p.add_argument("--model", help="model bundle folder (default: the exported MiniLM if present)")
    p.set_defaults(run=cmd_demo)

    from .cli_docs import add_docs_commands  # here, not at the top: cli_docs imports this module

    add_docs_commands(sub)
    from .cli_fill_mask import add_fill_mask_command  # fill-mask (issue 10): self-contained module

    add_fill_mask_command(sub)
    from .cli_classify import add_classify_command  # classify (issue 10): fine-tuned classifier bundles

    add_classify_command(sub)
    from .cli_labels import add_label_commands  # the `label` group (pyapp.labels)

    add_label_commands(sub)
    from .cli_serve import add_serve_api_command  # serve-api (issue 11): the HTTP API server

    add_serve_api_command(sub)

    from .pg.cli import add_pg_commands  # `pg load|export|stats|drop` (PgIndex, issue 12)

    add_pg_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; every failure is one line on stderr and an exit code, never a traceback
    (set ``CLINVEC_DEBUG=1`` to see the traceback of an unexpected error)."""
    args = build_parser().parse_args(argv)
    try:
        return asyncio.run(args.run(args))
    except IndexNotFound as exc:
        return _fail(exc, EXIT_MISSING)
    except ClinvecError as exc:
        return _fail(exc, EXIT_ERROR)
    except OSError as exc:
        return _fail(exc, EXIT_ERROR)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if os.environ.get("CLINVEC_DEBUG"):
            raise
        name = type(exc).__name__
        print(f"clinvec: unexpected error (a bug; CLINVEC_DEBUG=1 shows where): {name}: {exc}", file=sys.stderr)
        return EXIT_ERROR


def _fail(exc: BaseException, code: int) -> int:
    print(f"clinvec: error: {exc}", file=sys.stderr)
    return code
