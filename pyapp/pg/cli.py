"""``python -m pyapp pg ...``: move bundles into and out of PostgreSQL, look at and drop a PgIndex.

The DSN is a libpq connection string or URI; a password is better kept out of it (and out of the shell
history) in ``PGPASSWORD``, ``~/.pgpass`` or a ``PGSERVICE`` entry, which psycopg reads as libpq does.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from typing import Any

from ..errors import InvalidInput
from ..progress import ProgressBar


def _filter(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"--filter is not JSON: {exc}") from None


async def cmd_load(args: argparse.Namespace) -> int:
    from .transfer import load_bundle

    progress = ProgressBar("load", force=args.progress, unit="items")
    with open(args.bundle, "rb") as fileobj:
        counts = await load_bundle(
            args.dsn, args.name, fileobj, args.mode, args.indexed, progress, args.maintenance_work_mem
        )
    made = "created and loaded" if counts["created"] else "loaded"
    print(f"{made} {args.name}: {counts['restored']} items ({counts['removed']} removed first)")
    return 0


async def cmd_export(args: argparse.Namespace) -> int:
    """Written beside the target and renamed into place: a failed export leaves no half file."""
    from .index import PgIndex
    from .transfer import export_bundle

    flt = _filter(args.filter)
    folder = os.path.dirname(os.path.abspath(args.path))
    index = await PgIndex.open(args.dsn, args.name, read_only=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(args.path)}.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "wb") as out:
                count = await export_bundle(index, out, flt, ProgressBar("export", force=args.progress, unit="items"))
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, args.path)
        except BaseException:
            os.unlink(tmp)
            raise
    finally:
        await index.close()
    print(f"wrote {count} items to {args.path}")
    return 0


async def cmd_stats(args: argparse.Namespace) -> int:
    from .index import PgIndex

    index = await PgIndex.open(args.dsn, args.name, read_only=True)
    try:
        print(json.dumps(await index.stats(), indent=2))
    finally:
        await index.close()
    return 0


async def cmd_drop(args: argparse.Namespace) -> int:
    from .index import PgIndex

    await PgIndex.drop(args.dsn, args.name)
    print(f"dropped {args.name}")
    return 0


def add_pg_commands(sub: Any) -> None:
    """The ``pg`` command group (needs the ``pg`` extra only when run)."""
    pg = sub.add_parser("pg", help="PostgreSQL + pgvector: load a bundle, export a filtered bundle, stats, drop")
    commands = pg.add_subparsers(dest="pg_command", required=True)

    p = commands.add_parser("load", help="load a .clinvec bundle into a PgIndex (created when absent), one transaction")
    p.add_argument("dsn", help="PostgreSQL connection string, e.g. postgresql://clinvec@db.example/notes")
    p.add_argument("name", help="index name (a-z, 0-9, _)")
    p.add_argument("bundle", help="a .clinvec file (python -m pyapp bundle export INDEX FILE)")
    p.add_argument("--mode", choices=["insert", "upsert", "replace"], default="insert")
    p.add_argument("--indexed", nargs="*", help="indexed fields for a new index (default: the bundle's)")
    p.add_argument("--maintenance-work-mem", default="1GB", help="for a new index's HNSW build (fit the graph)")
    p.add_argument("--progress", action="store_true", help="draw a progress bar even when not on a terminal")
    p.set_defaults(run=cmd_load)

    p = commands.add_parser("export", help="write a PgIndex (or its items matching --filter) as a .clinvec bundle")
    p.add_argument("dsn")
    p.add_argument("name")
    p.add_argument("path", help="the bundle to write")
    p.add_argument("--filter", help='JSON filter, e.g. {"ward": "ICU"}')
    p.add_argument("--progress", action="store_true")
    p.set_defaults(run=cmd_export)

    p = commands.add_parser("stats", help="counts, configuration, server and pgvector versions")
    p.add_argument("dsn")
    p.add_argument("name")
    p.set_defaults(run=cmd_stats)

    p = commands.add_parser("drop", help="delete a PgIndex and its rows")
    p.add_argument("dsn")
    p.add_argument("name")
    p.set_defaults(run=cmd_drop)


__all__ = ["add_pg_commands"]
