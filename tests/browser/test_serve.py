"""serve.py: security headers, MIME types, and no way out of the served folder (no browser needed)."""

from __future__ import annotations

import http.client
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import serve  # noqa: E402


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """A throwaway web root with a secret beside it and a symlink inside it pointing at the secret."""
    base = tmp_path_factory.mktemp("site")
    root = base / "web"
    (root / "sub").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><title>t</title>")
    (root / "app.mjs").write_text("export const x = 1;")
    (root / "m.wasm").write_bytes(b"\0asm\1\0\0\0")
    (root / "sub" / "page.txt").write_text("inside")
    (root / "emptydir").mkdir()
    (root / ".hidden").write_text("dotfile")
    (root / "node_modules").mkdir()
    (root / "node_modules" / "x.js").write_text("npm tree")
    (base / "secret.txt").write_text("SECRET")
    (root / "escape.txt").symlink_to(base / "secret.txt")
    (root / "escape-dir").symlink_to(base)
    (root / "inner-link.txt").symlink_to(root / "sub" / "page.txt")
    server = serve.make_server("127.0.0.1", 0, root=root, quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[0], server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def fetch(site: tuple[str, int], raw_path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """Send ``raw_path`` exactly as given (http.client does not normalise ``..`` or escapes)."""
    conn = http.client.HTTPConnection(*site, timeout=10)
    try:
        conn.putrequest(method, raw_path, skip_accept_encoding=True)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


REQUIRED = {
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-embedder-policy": "require-corp",
    "cross-origin-resource-policy": "same-origin",
}


@pytest.mark.parametrize("path", ["/", "/index.html", "/app.mjs", "/does-not-exist", "/../secret.txt"])
def test_security_headers_on_every_response(site: tuple[str, int], path: str) -> None:
    _, headers, _ = fetch(site, path)
    for name, value in REQUIRED.items():
        assert headers.get(name) == value, name
    csp = headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self' 'wasm-unsafe-eval'"  # no unsafe-eval, no inline, no hosts
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp and "http" not in csp
    assert directives["object-src"] == "'none'"
    assert headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(("path", "mime"), [
    ("/m.wasm", "application/wasm"),
    ("/app.mjs", "text/javascript"),
    ("/index.html", "text/html"),
])
def test_mime_types(site: tuple[str, int], path: str, mime: str) -> None:
    status, headers, _ = fetch(site, path)
    assert status == 200
    assert headers["content-type"].split(";")[0] == mime


def test_serves_files_and_index(site: tuple[str, int]) -> None:
    assert fetch(site, "/sub/page.txt")[2] == b"inside"
    assert fetch(site, "/")[2].startswith(b"<!doctype html>")
    assert fetch(site, "/inner-link.txt")[2] == b"inside"  # a symlink that stays inside is fine
    status, headers, body = fetch(site, "/app.mjs", method="HEAD")
    assert status == 200 and body == b"" and headers["content-length"] == str(len("export const x = 1;"))


@pytest.mark.parametrize("path", [
    "/../secret.txt",
    "/sub/../../secret.txt",
    "/%2e%2e/secret.txt",
    "/%2E%2E/secret.txt",
    "/..%2fsecret.txt",
    "/%2e%2e%2fsecret.txt",
    "/sub/%2e%2e/%2e%2e/secret.txt",
    "/sub/..%2F..%2Fsecret.txt",
    "/..\\secret.txt",
    "/%5c..%5csecret.txt",
    "/sub%2f..%2f..%2fsecret.txt",
    "/escape.txt",
    "/escape-dir/secret.txt",
    "/%00",
    "/index.html%00.txt",
    "/%ff%fe",
    "/.hidden",
    "/node_modules/x.js",
    "/emptydir/",
    "/./index.html",
])
def test_traversal_and_hidden_paths_are_404(site: tuple[str, int], path: str) -> None:
    status, _, body = fetch(site, path)
    assert status == 404
    assert b"SECRET" not in body


def test_double_encoding_is_decoded_once(site: tuple[str, int]) -> None:
    """``%252e%252e`` means the literal name ``%2e%2e``, which does not exist: still 404, never the secret."""
    status, _, body = fetch(site, "/%252e%252e/secret.txt")
    assert status == 404 and b"SECRET" not in body


def test_resolve_rejects_escapes_without_a_server(tmp_path: Path) -> None:
    root = tmp_path / "web"
    root.mkdir()
    (root / "a.txt").write_text("a")
    (tmp_path / "outside.txt").write_text("o")
    os.symlink(tmp_path / "outside.txt", root / "link.txt")
    assert serve.resolve(root, "/a.txt") == (root / "a.txt").resolve()
    assert serve.resolve(root, "/link.txt") is None
    assert serve.resolve(root, "/%2e%2e/outside.txt") is None
    assert serve.resolve(root, "/missing") is None
