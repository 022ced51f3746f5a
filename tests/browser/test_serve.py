"""serve.py: security headers, MIME types, and no way out of the served folder (no browser needed)."""

from __future__ import annotations

import http.client
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
    yield from _serving(serve.make_server("127.0.0.1", 0, root=root, quiet=True))


def _serving(server: Any, poll_interval: float = 0.5) -> Iterator[tuple[str, int]]:
    """Run ``server`` on a daemon thread for a fixture; yield its (host, port); shut it down afterwards."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": poll_interval}, daemon=True)
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


@pytest.mark.parametrize(
    ("path", "mime"),
    [
        ("/m.wasm", "application/wasm"),
        ("/app.mjs", "text/javascript"),
        ("/index.html", "text/html"),
    ],
)
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


@pytest.mark.parametrize(
    "path",
    [
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
    ],
)
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


# ---------------------------------------------------------------------- defect 17: connections and bad requests
# Raw sockets against a real server on 127.0.0.1: http.client would hide what is (or is not) on the wire.
IDLE_TIMEOUT = 0.5
BIG = 8 << 20  # larger than the socket buffers, so a client that hangs up leaves the server mid-write


@pytest.fixture(scope="module")
def raw_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """A quiet server with a short idle timeout and one large file."""
    root = tmp_path_factory.mktemp("raw") / "web"
    root.mkdir()
    (root / "index.html").write_text("<!doctype html><title>t</title>")
    (root / "big.bin").write_bytes(os.urandom(1024) * (BIG // 1024))
    yield from _serving(serve.make_server("127.0.0.1", 0, root=root, quiet=True, timeout=IDLE_TIMEOUT), 0.05)


def _connect(site: tuple[str, int]) -> socket.socket:
    return socket.create_connection(site, timeout=10)


def _read_response(sock: socket.socket) -> tuple[bytes, dict[str, str], bytes]:
    """One response: (status line, headers, body) read by Content-Length; the connection stays usable."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    headers = {
        k.strip().lower(): v.strip()
        for k, v in (line.decode("latin-1").split(":", 1) for line in lines if b":" in line)
    }
    size = int(headers.get("content-length", "0"))
    while len(body) < size:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, headers, body


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """True when the server closes the connection (recv gives b"") within ``seconds``."""
    sock.settimeout(seconds)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_an_idle_connection_is_closed_after_the_timeout(raw_site: tuple[str, int]) -> None:
    with _connect(raw_site) as sock:
        started = time.monotonic()
        assert _closed_within(sock, 10)
        assert time.monotonic() - started < 5


def test_a_half_sent_request_is_closed_after_the_timeout(raw_site: tuple[str, int]) -> None:
    """A client that starts a request line and stalls (slowloris) does not hold a thread forever."""
    with _connect(raw_site) as sock:
        sock.sendall(b"GET /index.ht")
        assert _closed_within(sock, 10)


def test_keep_alive_serves_several_requests_then_closes_when_idle(raw_site: tuple[str, int]) -> None:
    with _connect(raw_site) as sock:
        for _ in range(3):
            sock.sendall(b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n")
            status, headers, body = _read_response(sock)
            assert status.startswith(b"HTTP/1.1 200") and body.startswith(b"<!doctype html>")
            assert headers["cross-origin-opener-policy"] == "same-origin"
        assert _closed_within(sock, 10)


def test_default_idle_timeout_is_set() -> None:
    """The command-line server closes idle connections too (not only servers built by tests)."""
    assert serve.Handler.timeout == serve.IDLE_TIMEOUT and 0 < serve.IDLE_TIMEOUT <= 60
    server = serve.make_server("127.0.0.1", 0, root=ROOT / "web", quiet=True)
    try:
        assert server.RequestHandlerClass.timeout == serve.IDLE_TIMEOUT
    finally:
        server.server_close()


@pytest.mark.parametrize(
    "path",
    [
        "/" + "a" * 256,
        "/" + "a" * 4000,
        "/sub/" + "b" * 300 + "/x",
        "/" + "%61" * 300,
        "/" + "\u00e9" * 200,  # 400 bytes in UTF-8
    ],
    ids=["256", "4000", "nested", "percent-encoded", "utf8"],
)
def test_an_overlong_path_segment_gets_a_404(raw_site: tuple[str, int], path: str) -> None:
    """A name longer than the file system allows (ENAMETOOLONG) used to drop the connection unanswered."""
    with _connect(raw_site) as sock:
        target = urllib.parse.quote(path, safe="/%")
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        status, headers, body = _read_response(sock)
        assert status.startswith(b"HTTP/1.1 404"), status
        assert headers["cross-origin-embedder-policy"] == "require-corp"
        assert body == b"404 Not Found\n"
        # The connection survives: the next request on it is answered.
        sock.sendall(b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _read_response(sock)[0].startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize(
    ("line", "code"),
    [
        (b"GARBAGE", 400),
        (b"GET", 400),
        (b"GET / HTTP/1.1 extra", 400),
        (b"GET /index.html HTTP/abc", 400),
        (b"GET /index.html HTTP/1", 400),
        (b"GET /index.html", 400),  # an HTTP/0.9 request: answered as a bad HTTP/1.x request, not with a bare body
        (b"GET /index.html HTTP/0.9", 400),
        (b"GET / x HTTP/0.9", 400),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400),  # a TLS ClientHello sent to the plain-HTTP port
        (b"GET / HTTP/2.0", 505),
    ],
)
def test_a_malformed_request_line_gets_a_status_line(raw_site: tuple[str, int], line: bytes, code: int) -> None:
    with _connect(raw_site) as sock:
        sock.sendall(line + b"\r\nHost: x\r\n\r\n")
        status, headers, body = _read_response(sock)
        assert re.match(rb"HTTP/1\.[01] %d " % code, status), status
        assert headers["cross-origin-opener-policy"] == "same-origin"
        assert headers["content-type"].startswith("text/plain")
        assert body.startswith(str(code).encode())
        assert b"<!doctype" not in body
        assert _closed_within(sock, 10)  # after a request it could not read, the server hangs up


def _handler_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if "process_request_thread" in t.name]


def _wait_for_handlers(seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while _handler_threads() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _handler_threads(), "a request handler never finished"


def test_a_client_hanging_up_mid_download_prints_nothing(
    raw_site: tuple[str, int], capfd: pytest.CaptureFixture[str]
) -> None:
    """BrokenPipe/ConnectionReset are a client's choice, not a server error: no traceback, even quiet."""
    for _ in range(3):
        sock = _connect(raw_site)
        sock.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
        sock.close()
    _wait_for_handlers()
    err = capfd.readouterr().err
    assert "Traceback" not in err and "BrokenPipe" not in err and "ConnectionReset" not in err, err
    # The server still answers.
    assert fetch(raw_site, "/index.html")[0] == 200


def test_the_command_line_server_stays_silent_with_quiet(tmp_path: Path) -> None:
    """``serve.py --quiet`` prints its address and nothing else: not for bad requests, long names, resets."""
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "serve.py"), "--no-build", "--quiet", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        host, port = line.strip().rsplit("http://", 1)[1].strip("/").rsplit(":", 1)
        site = (host, int(port))
        for raw in (b"GARBAGE\r\n\r\n", b"GET /" + b"a" * 300 + b" HTTP/1.1\r\nHost: x\r\n\r\n"):
            with _connect(site) as sock:
                sock.sendall(raw)
                assert _read_response(sock)[0].startswith(b"HTTP/1.")
        with _connect(site) as sock:  # a reset before any byte of the request
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    # (serve.py warns once when web/vendor/ is not built; that is its only allowed line)
    assert [line for line in err.splitlines() if not line.startswith("warning: web/vendor/")] == [], err
