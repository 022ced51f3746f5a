"""``python -m pyapp serve-api ROOT``: the HTTP API over every index under ``ROOT`` (uvicorn, one process).

One process on purpose: the server is the one writer of each index it holds (the file store's writer lock), so
uvicorn workers (processes) cannot share them. Imports of FastAPI/uvicorn happen only when the command runs.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from .errors import InvalidInput


def add_serve_api_command(sub: Any) -> None:
    from .cli import _add_model_options

    p = sub.add_parser("serve-api", help="serve the indexes under ROOT as a JSON HTTP API (OpenAPI at /openapi.json)")
    p.add_argument("root", metavar="ROOT", help="folder holding the indexes (created when missing)")
    p.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1; others need --token-file)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--token-file", help="file whose first line is the bearer token every request must carry")
    p.add_argument("--max-body-mb", type=float, default=64.0, help="largest request body (default 64 MiB)")
    p.add_argument("--max-batch", type=int, default=10_000, help="most items or ids in one request (default 10,000)")
    p.add_argument("--cors-origin", action="append", default=[], help="allow this origin cross-site (repeatable)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    _add_model_options(p)
    p.set_defaults(run=cmd_serve_api)


def server_config(args: argparse.Namespace) -> Any:
    """The uvicorn configuration for ``args`` (checked: token rules, limits), without starting anything."""
    import uvicorn

    from .cli import _load_embedder
    from .server import create_app
    from .server.security import check_bind, read_token

    if not 0 <= args.port <= 65535:
        raise InvalidInput(f"--port must be 0-65535, got {args.port}")
    if not args.max_body_mb > 0 or args.max_batch < 1:
        raise InvalidInput("--max-body-mb and --max-batch must be positive")
    token = read_token(args.token_file) if args.token_file else None
    check_bind(args.host, token)
    os.makedirs(args.root, exist_ok=True)
    app = create_app(
        args.root,
        token=token,
        embedder=_load_embedder(args),
        max_body=int(args.max_body_mb * (1 << 20)),
        max_batch=args.max_batch,
        cors_origins=args.cors_origin,
    )
    return uvicorn.Config(
        app, host=args.host, port=args.port, log_level=args.log_level, access_log=False, server_header=False
    )


async def cmd_serve_api(args: argparse.Namespace) -> int:
    import uvicorn

    server = uvicorn.Server(server_config(args))
    await server.serve()
    return 0
