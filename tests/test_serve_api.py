"""``serve.py --api ROOT``: the page and the HTTP API from one origin (the page's CSP stays connect-src 'self')."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx", reason="the server extra: pip install -e '.[server]'")
pytest.importorskip("uvicorn", reason="the server extra: pip install -e '.[server]'")

from api_server import ROOT, free_port, wait_until_up  # noqa: E402

import serve  # noqa: E402
from pyapp import RemoteIndex  # noqa: E402


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    root = tmp_path_factory.mktemp("serve-api")
    proc = subprocess.Popen(
        [sys.executable, "serve.py", "--no-build", "--quiet", "--port", str(port), "--api", str(root)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until_up(f"http://127.0.0.1:{port}/api", proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        assert proc.stderr is not None
        proc.stderr.close()


def test_page_and_api_share_one_origin_and_one_policy(origin: str) -> None:
    with httpx.Client(base_url=origin) as http:
        page, api, missing = http.get("/"), http.get("/api/indexes"), http.get("/api/indexes/none")
        escapes = [http.get(p).status_code for p in ("/..%2F..%2Fetc/passwd", "/node_modules/", "/.git/config")]
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-cache"  # serve.py's own rule for files
    assert api.json() == {"indexes": []} and api.headers["cache-control"] == "no-store"
    assert missing.status_code == 404 and missing.json()["error"] == "IndexNotFound"
    for answer in (page, api, missing):
        for name, value in serve.SECURITY_HEADERS.items():
            assert answer.headers[name] == value
    assert "connect-src 'self'" in page.headers["content-security-policy"]
    assert escapes == [404, 404, 404]


def test_remote_index_through_the_mounted_api(origin: str) -> None:
    async def scenario() -> list[str]:
        idx = await RemoteIndex.create(origin + "/api", "mounted", dims=2)
        await idx.insert_many([{"id": "a", "vector": [1, 0]}, {"id": "b", "vector": [0, 1]}])
        hits = await idx.query([1, 0.1], top_k=2)
        await idx.close()
        await RemoteIndex.drop(origin + "/api", "mounted")
        return [h.id for h in hits]

    assert asyncio.run(scenario()) == ["a", "b"]


def test_the_api_needs_a_token_beyond_loopback(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "serve.py", "--no-build", "--host", "0.0.0.0", "--port", "0", "--api", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "without a token" in done.stderr
