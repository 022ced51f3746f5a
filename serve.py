"""Serve the browser build of clinvec from ``web/`` (stdlib only).

    python serve.py [--host 127.0.0.1] [--port 8000] [--timeout 30] [--build] [--no-build] [--build-only] [--quiet]

Why a custom server: the page needs cross-origin isolation (COOP/COEP/CORP on every response, for
threads and SharedArrayBuffer), the right MIME types for ``.wasm``/``.mjs``, a strict
Content-Security-Policy, and no way out of ``web/`` (``..`` raw or percent-encoded, symlinks).
``--build`` (also run when ``web/vendor/`` is missing) fetches and copies the runtime assets; see
``web_build.py``.

Connections: HTTP/1.1 keep-alive (the page loads ~40 files), but a connection that sends nothing for
``--timeout`` seconds (default 30: idle keep-alive, a stalled request line, a client that stops reading)
is closed, so idle clients cannot hold threads forever. Every answer, errors included, is a full HTTP/1.x
response with a status line and the security headers (never the stdlib's bare HTTP/0.9 body). A client
that hangs up mid-response (broken pipe, connection reset) is normal, not an error: nothing is printed.
"""

from __future__ import annotations

import argparse
import email.utils
import http.server
import mimetypes
import os
import re
import sys
import urllib.parse
from pathlib import Path

from pyapp.security_headers import SECURITY_HEADERS

WEB = Path(__file__).resolve().parent / "web"
IDLE_TIMEOUT = 30.0  # seconds a connection may stay silent (or stall a write) before it is closed

MIME = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".wasm": "application/wasm",
    ".zip": "application/zip",
    ".snapshot": "application/octet-stream",
    ".whl": "application/zip",
    ".py": "text/plain; charset=utf-8",
    ".onnx": "application/octet-stream",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".png": "image/png",
    ".webmanifest": "application/manifest+json",
}

# vendor/<package>-<version>/ never changes under the same URL (web_build.py versions the folder), so
# browsers may keep it without revalidating. That matters: Chromium reuses its compiled-wasm cache only
# for responses it did not revalidate, which cuts a warm boot from ~12 s to ~4 s on the 2-core VM.
IMMUTABLE = re.compile(r"^/vendor/[A-Za-z0-9_.@]+(?:-[A-Za-z0-9_.@]+)*-\d+(?:\.\d+)+/")


def cache_control(path: str) -> str:
    """``immutable`` for versioned vendor folders; everything else is revalidated (cheap 304s, never stale)."""
    return "public, max-age=31536000, immutable" if IMMUTABLE.match(path) else "no-cache"


# Never served even though they sit under web/: npm's install tree and build inputs.
HIDDEN_TOP = {"node_modules", "package.json", "package-lock.json"}


def resolve(root: Path, raw_path: str) -> Path | None:
    """Map a request path to a file under ``root``, or None (-> 404) for anything that could escape.

    Rejects ``..`` segments before and after percent-decoding, backslashes, NUL, hidden names,
    and any path whose real location (symlinks followed) is outside ``root``.
    """
    path = raw_path.split("?", 1)[0].split("#", 1)[0]
    decoded = urllib.parse.unquote(path, errors="strict") if "%" in path else path
    for candidate in (path, decoded):
        if "\\" in candidate or "\x00" in candidate:
            return None
        if any(seg in ("..", ".") for seg in candidate.split("/")):
            return None
    parts = [seg for seg in decoded.split("/") if seg]
    if any(seg.startswith(".") for seg in parts) or (parts and parts[0] in HIDDEN_TOP):
        return None
    real_root = root.resolve()
    target = real_root.joinpath(*parts) if parts else real_root
    try:
        if target.is_dir():
            target = target / "index.html"
        real = target.resolve(strict=True)
    except (OSError, RuntimeError, ValueError):  # e.g. a segment over NAME_MAX (ENAMETOOLONG): no such file
        return None
    if real != real_root and real_root not in real.parents:
        return None
    return real if real.is_file() else None


# The client went away (closed, reset, stopped reading): nothing to answer and nothing to report.
_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)


class Handler(http.server.BaseHTTPRequestHandler):
    """GET/HEAD of static files with the security headers on every response (errors included)."""

    server_version = "clinvec-serve"
    protocol_version = "HTTP/1.1"  # keep-alive: the page loads ~40 files
    # Until a request line is parsed, answer as HTTP/1.0: the stdlib's default (HTTP/0.9) writes error
    # bodies without a status line or headers.
    default_request_version = "HTTP/1.0"
    timeout = IDLE_TIMEOUT  # socket timeout: StreamRequestHandler applies it to every read and write

    root: Path = WEB
    quiet = False

    def version_string(self) -> str:
        return self.server_version

    def end_headers(self) -> None:
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
        super().end_headers()

    def handle(self) -> None:
        """Serve the connection; a client hanging up mid-request or mid-response ends it silently."""
        try:
            super().handle()
        except _GONE:
            self.close_connection = True

    def parse_request(self) -> bool:
        """Only ``METHOD PATH HTTP/1.x`` request lines are served; others get a 400 with a status line.

        The stdlib serves a two-word line (``GET /x``) or ``HTTP/0.9`` as HTTP/0.9: a bare body with no
        status line and none of the security headers."""
        if not super().parse_request():
            return False
        if self.request_version == "HTTP/0.9" or len(self.requestline.split()) != 3:
            self.close_connection = True
            self.send_error(400, "Bad request syntax")
            return False
        return True

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        if not self.quiet:
            super().log_message(format, *args)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Plain-text errors (the stdlib's HTML error page is not worth a CSP exception)."""
        body = f"{code} {message or self.responses.get(code, ('',))[0]}\n".encode()
        if self.request_version == "HTTP/0.9":  # HTTP/0.9 answers have no status line and no headers
            self.request_version = "HTTP/1.0"
        if code >= 400 and self.command is None:  # the request could not be read: do not read another
            self.close_connection = True
        self.send_response(code, message)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._serve(head=False)

    def do_HEAD(self) -> None:  # noqa: N802 - stdlib naming
        self._serve(head=True)

    def _serve(self, head: bool) -> None:
        try:
            target = resolve(self.root, urllib.parse.urlsplit(self.path).path)
        except UnicodeDecodeError:
            target = None
        if target is None:
            self.send_error(404, "Not Found")
            return
        try:
            stat = target.stat()
        except OSError:  # removed since resolve()
            self.send_error(404, "Not Found")
            return
        last_modified = email.utils.formatdate(stat.st_mtime, usegmt=True)
        etag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            return
        ctype = MIME.get(target.suffix.lower()) or mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(stat.st_size))
        self.send_header("Last-Modified", last_modified)
        self.send_header("ETag", etag)
        self.send_header("Cache-Control", cache_control(self.path))
        self.end_headers()
        if head:
            return
        try:
            fh = target.open("rb")
        except OSError:  # removed or made unreadable since stat(): the headers are out, so just hang up
            self.close_connection = True
            return
        with fh:
            # 256 KiB per write: the socket timeout bounds each write, so it then means "no progress for
            # that long" (a stalled reader) rather than "a whole large block too slowly".
            while block := fh.read(1 << 18):
                self.wfile.write(block)


# ---------------------------------------------------------------------------------------------------------------
# --api ROOT: the page and the HTTP API (pyapp.server) from one origin, so the page's CSP stays connect-src 'self'.
# Served by uvicorn (the API is ASGI); the static half answers as Handler does: same resolve(), MIME types,
# cache rules and security headers.


def static_asgi(root: Path) -> object:
    """An ASGI app serving ``root`` by ``resolve()`` (GET/HEAD only; anything that could escape is a 404)."""
    from starlette.responses import FileResponse, PlainTextResponse

    async def app(scope: dict, receive: object, send: object) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            response = PlainTextResponse("405 Method Not Allowed\n", 405, headers={"Allow": "GET, HEAD"})
            await response(scope, receive, send)
            return
        raw = scope.get("raw_path") or scope["path"].encode()
        try:
            target = resolve(root, raw.decode("latin-1"))
        except UnicodeDecodeError:
            target = None
        if target is None:
            await PlainTextResponse("404 Not Found\n", 404, headers={"Cache-Control": "no-store"})(scope, receive, send)
            return
        ctype = MIME.get(target.suffix.lower()) or mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        headers = {"Cache-Control": cache_control(scope["path"])}
        await FileResponse(target, media_type=ctype, headers=headers)(scope, receive, send)

    return app


def make_api_app(api_root: str, web_root: Path = WEB, token: str | None = None) -> object:
    """The page under ``/`` and ``pyapp.server``'s API under ``/api``, behind the API's guards and headers."""
    from contextlib import asynccontextmanager

    from starlette.applications import Starlette
    from starlette.routing import Mount

    from pyapp.server import build_api, guard

    api = build_api(api_root)

    @asynccontextmanager
    async def lifespan(app: object):  # type: ignore[no-untyped-def]
        async with api.router.lifespan_context(api):  # a mounted app's lifespan does not run by itself
            yield

    routes = [Mount("/api", app=guard(api, token)), Mount("/", app=static_asgi(Path(web_root)))]
    return guard(Starlette(routes=routes, lifespan=lifespan))


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def make_server(
    host: str = "127.0.0.1",
    port: int = 8000,
    root: Path = WEB,
    quiet: bool = False,
    timeout: float = IDLE_TIMEOUT,
) -> Server:
    """A ready-to-run server bound to ``host:port`` (port 0 picks a free one) serving ``root``; a connection
    silent for ``timeout`` seconds is closed."""
    if not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    handler = type("BoundHandler", (Handler,), {"root": Path(root), "quiet": quiet, "timeout": float(timeout)})
    return Server((host, port), handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the clinvec browser build from web/.")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--build", action="store_true", help="(re)build web/vendor/ before serving")
    group.add_argument("--no-build", action="store_true", help="never build, even when assets are missing")
    parser.add_argument("--build-only", action="store_true", help="build web/vendor/ and exit")
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    parser.add_argument("--api", metavar="ROOT", help="also serve the HTTP API over the indexes in ROOT under /api")
    parser.add_argument("--api-token-file", help="with --api: bearer token file the API requires")
    parser.add_argument(
        "--timeout",
        type=float,
        default=IDLE_TIMEOUT,
        help=f"close a connection silent for this many seconds (default {IDLE_TIMEOUT:g})",
    )
    args = parser.parse_args(argv)

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import web_build

    if args.build or args.build_only or (not args.no_build and web_build.needs_build()):
        web_build.build(log=lambda line: print(line, flush=True))
        if args.build_only:
            return 0
    elif not args.no_build:
        web_build.refresh_app()  # pick up edits to pyapp/ without a full build
    elif web_build.needs_build():
        print("warning: web/vendor/ is incomplete; run `python serve.py --build`", file=sys.stderr)

    if not args.timeout > 0:
        parser.error("--timeout must be a positive number of seconds")
    if args.api:
        return serve_api(args)
    server = make_server(args.host, args.port, quiet=args.quiet, timeout=args.timeout)
    host, port = server.server_address[:2]
    print(f"serving {WEB} at http://{host}:{port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def serve_api(args: argparse.Namespace) -> int:
    """``--api``: uvicorn serving ``make_api_app``; the same loopback/token rule as ``serve-api``."""
    import socket

    import uvicorn

    from pyapp.errors import ClinvecError
    from pyapp.server.security import check_bind, read_token

    try:
        token = read_token(args.api_token_file) if args.api_token_file else None
        check_bind(args.host, token)
    except ClinvecError as exc:
        print(f"serve.py: error: {exc}", file=sys.stderr)
        return 1
    os.makedirs(args.api, exist_ok=True)
    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))  # bound here so that port 0 can be announced before serving
    host, port = sock.getsockname()[:2]
    print(f"serving {WEB} and the API over {args.api} at http://{host}:{port}/ (API under /api/)", flush=True)
    config = uvicorn.Config(
        make_api_app(args.api, WEB, token),
        log_level="warning" if args.quiet else "info",
        timeout_keep_alive=int(args.timeout),
        server_header=False,
    )
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    os.chdir(Path(__file__).resolve().parent)
    sys.exit(main())
