"""The HTTP API's promises on a real ``serve-api`` server: bearer token, limits, names, headers, CORS, error
mapping (status and class), documents and text embedded by the server's model. The catch-all and the idle
update run in-process (an injected fault; a short timeout)."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

httpx = pytest.importorskip("httpx", reason="the server extra: pip install -e '.[server]'")
pytest.importorskip("fastapi", reason="the server extra: pip install -e '.[server]'")

from api_server import ROOT, api_server  # noqa: E402

import serve  # noqa: E402
from pyapp import (  # noqa: E402
    DimensionMismatch,
    DuplicateId,
    IndexExists,
    IndexLocked,
    IndexNotFound,
    InvalidInput,
    InvalidVector,
    LocalIndex,
    RemoteIndex,
    Unauthorized,
)
from pyapp.server import create_app  # noqa: E402
from pyapp.server.security import SECURITY_HEADERS, check_bind, is_loopback, read_token  # noqa: E402

TOKEN = "s3cret-token-for-tests-0123456789"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A server with a token, small limits (50 KiB bodies, 20 items a batch) and the hashing embedder."""
    folder = tmp_path_factory.mktemp("api")
    token_file = folder / "token"
    token_file.write_text(TOKEN + "\n")
    root = folder / "root"
    args = ["--token-file", str(token_file), "--max-body-mb", "0.05", "--max-batch", "20", "--hashing", "16"]
    with api_server(root, *args) as url:
        yield url, root


def _token_file(folder: Path) -> Path:
    path = folder / "token"
    path.write_text(TOKEN + "\n")
    return path


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def client(url: str, token: str | None = TOKEN) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=url, headers=headers, timeout=30)


def test_the_token_is_required_and_compared(server: tuple[str, Path]) -> None:
    url, _ = server
    with client(url, None) as anonymous, client(url, "wrong-token-wrong-token") as wrong, client(url) as right:
        for answer in (anonymous.get("/indexes"), wrong.get("/indexes"), anonymous.post("/indexes", json={})):
            assert answer.status_code == 401 and answer.json()["error"] == "Unauthorized"
            assert answer.headers["www-authenticate"] == "Bearer"
        assert right.get("/indexes").status_code == 200
        assert anonymous.get("/openapi.json").status_code == 200  # the schema holds no data
        assert anonymous.get("/health").json() == {"ok": True}
    with pytest.raises(Unauthorized):
        run(RemoteIndex.create(url, "x", dims=2, token="wrong-token-wrong-token"))
    with pytest.raises(Unauthorized):
        run(RemoteIndex.open(url, "x"))
    assert not (server[1] / "x").exists()


def test_a_non_loopback_address_needs_a_token(tmp_path: Path) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3") and not is_loopback("example.org")
    with pytest.raises(InvalidInput, match="without a token"):
        check_bind("0.0.0.0", None)
    check_bind("0.0.0.0", TOKEN)
    done = subprocess.run(
        [sys.executable, "-m", "pyapp", "serve-api", str(tmp_path / "r"), "--host", "0.0.0.0", "--port", "0"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "without a token" in done.stderr and "Traceback" not in done.stderr
    short = tmp_path / "short"
    short.write_text("abc\n")
    with pytest.raises(InvalidInput, match="at least 16 characters"):
        read_token(str(short))
    assert read_token(str(_token_file(tmp_path))) == TOKEN


def test_body_and_batch_limits_answer_413_and_change_nothing(server: tuple[str, Path]) -> None:
    url, _ = server

    async def scenario() -> tuple[int, list[str]]:
        idx = await RemoteIndex.create(url, "limits", dims=16, token=TOKEN)
        errors = []
        too_many = [{"id": f"i{n}", "vector": [1.0] * 16} for n in range(21)]
        too_big = [{"id": f"b{n}", "vector": [1.0] * 16, "text": "x" * 5000} for n in range(12)]  # ~60 KB
        for items in (too_many, too_big):
            try:
                await idx.insert_many(items)
            except InvalidInput as exc:
                errors.append(str(exc))
        count = await idx.count()
        await idx.close()
        return count, errors

    count, errors = run(scenario())
    assert count == 0 and len(errors) == 2
    assert "20 at most" in errors[0] and "limit of 52428 bytes" in errors[1]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is counted as the body streams in
        yield b'{"items": ['
        for n in range(200):
            yield b'{"id": "c%d", "vector": [%s]},' % (n, b",".join([b"1.0"] * 16))
        yield b'{"id": "last", "vector": [%s]}]}' % b",".join([b"1.0"] * 16)

    with client(url) as http:
        answer = http.post(
            "/indexes/limits/insert_many", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert answer.status_code == 413 and answer.json()["error"] == "InvalidInput"
        assert http.post("/indexes/limits/count", json={}).json() == {"count": 0}


def test_index_names_cannot_leave_the_root(server: tuple[str, Path]) -> None:
    url, root = server
    with client(url) as http:
        for name in ("../escape", "..", ".hidden", "a/b", "a\\b", "", "x" * 101, "C:", "%2e%2e"):
            answer = http.post("/indexes", json={"name": name, "dims": 2})
            assert answer.status_code == 422 and answer.json()["error"] == "InvalidInput", name
        for path in ("/indexes/..%2F..%2Fetc", "/indexes/%2e%2e", "/indexes/.hidden/stats", "/indexes/a%5Cb"):
            assert http.get(path).status_code in (404, 422), path
    assert not (root.parent / "escape").exists() and not (root / "escape").exists()
    assert not any(p.name.startswith(".") for p in root.iterdir())


def test_every_answer_carries_the_page_security_headers_and_no_cors(server: tuple[str, Path]) -> None:
    url, _ = server
    assert SECURITY_HEADERS == serve.SECURITY_HEADERS  # one origin, one policy
    with client(url) as http, client(url, None) as anonymous:
        answers = [
            http.get("/indexes"),
            anonymous.get("/indexes"),  # 401
            http.get("/indexes/nothing-here"),  # 404
            http.post("/indexes", json={"name": 5}),  # 422
            http.get("/no/such/route"),
            http.get("/indexes", headers={"Origin": "http://elsewhere.example"}),
            http.options("/indexes", headers={"Origin": "http://x.example", "Access-Control-Request-Method": "GET"}),
        ]
    for answer in answers:
        for name, value in SECURITY_HEADERS.items():
            assert answer.headers.get(name) == value, (answer.request.url, name)
        assert answer.headers["cache-control"] == "no-store"
        assert "access-control-allow-origin" not in answer.headers
        assert answer.headers["content-type"].startswith("application/json")
        assert "Traceback" not in answer.text


def test_errors_map_to_status_and_class(server: tuple[str, Path]) -> None:
    url, root = server
    with client(url) as http:
        assert http.post("/indexes", json={"name": "errs", "dims": 3}).status_code == 201
        cases = [
            (http.get("/indexes/missing-index"), 404, "IndexNotFound"),
            (http.post("/indexes", json={"name": "errs", "dims": 3}), 409, "IndexExists"),
            (http.post("/indexes/errs/items", json={"vector": [1, 2, 3], "id": "a"}), 201, None),
            (http.post("/indexes/errs/items", json={"vector": [1, 2, 3], "id": "a"}), 409, "DuplicateId"),
            (http.post("/indexes/errs/items", json={"vector": [0, 0, 0]}), 422, "InvalidVector"),
            (http.post("/indexes/errs/items", json={"vector": [1, 2]}), 422, "DimensionMismatch"),
            (http.post("/indexes/errs/count", json={"filter": {"a": {"$regex": "x"}}}), 422, "InvalidFilter"),
            (http.post("/indexes/errs/items", json={"vector": [1, 2, 3], "metadata": [1]}), 422, "InvalidMetadata"),
            (http.get("/indexes/errs/items/nope"), 404, "ItemNotFound"),
            (http.post("/indexes/errs/query", json={"text": "x", "mode": "vector"}), 422, "NoEmbedder"),
            (
                http.post("/indexes/errs/query", content=b"{not json", headers={"Content-Type": "application/json"}),
                422,
                "InvalidInput",
            ),
            (
                http.post("/indexes/errs/query", content=b"\xff\xfe", headers={"Content-Type": "application/json"}),
                422,
                "InvalidInput",
            ),
            (http.post("/indexes/errs/updates/AAAA/commit"), 409, "NoUpdateInProgress"),
            (http.put("/indexes/errs/items"), 405, "MethodNotAllowed"),
        ]
        for answer, status, name in cases:
            assert answer.status_code == status, (answer.request.url, answer.text)
            if name:
                assert answer.json()["error"] == name and answer.json()["message"]
    with pytest.raises(IndexNotFound):
        run(RemoteIndex.open(url, "missing-index", token=TOKEN))
    with pytest.raises(IndexExists):
        run(RemoteIndex.create(url, "errs", dims=3, token=TOKEN))

    async def remote_errors() -> list[str]:
        idx = await RemoteIndex.open(url, "errs", token=TOKEN)
        names = []
        for call, error in ((idx.insert([1, 2, 3], id="a"), DuplicateId), (idx.insert([1, 2]), DimensionMismatch)):
            try:
                await call
            except error as exc:
                names.append(type(exc).__name__)
        try:
            await idx.insert([float("nan")] * 3)
        except InvalidVector as exc:
            names.append(type(exc).__name__)
        await idx.close()
        return names

    assert run(remote_errors()) == ["DuplicateId", "DimensionMismatch", "InvalidVector"]


def test_an_index_held_by_another_process_is_409_index_locked(server: tuple[str, Path]) -> None:
    url, root = server

    async def scenario() -> str:
        local = await LocalIndex.create(str(root / "held"), dims=2)  # this process holds the writer lock
        try:
            await RemoteIndex.open(url, "held", token=TOKEN)
        except IndexLocked as exc:
            return str(exc)
        finally:
            await local.close()
        return "opened"

    assert run(scenario()) != "opened"
    with client(url) as http:
        assert http.get("/indexes/held").status_code == 200  # released: the server opens it now


def test_documents_and_text_embedded_by_the_server_model(server: tuple[str, Path]) -> None:
    url, _ = server
    note = "Patient admitted with chest pain.\r\nTroponin negative.  \n\nDischarged home.  "
    with client(url) as http:
        assert (
            http.post(
                "/indexes", json={"name": "docs", "embed": True, "indexed": ["_doc.uri", "_doc.chunk"]}
            ).status_code
            == 201
        )
        assert http.post(
            "/indexes/docs/documents", json={"uri": "a/b.txt", "text": note, "metadata": {"w": 1}}
        ).json() == {"changed": True}
        assert http.post(
            "/indexes/docs/documents", json={"uri": "a/b.txt", "text": note, "metadata": {"w": 1}}
        ).json() == {"changed": False}
        got = http.get("/indexes/docs/documents/a/b.txt").json()
        assert got["text"] == note and got["metadata"] == {"w": 1}  # byte-exact, CRLF and trailing spaces kept
        listed = http.get("/indexes/docs/documents").json()["documents"]
        assert [d["uri"] for d in listed] == ["a/b.txt"]
        hits = http.post("/indexes/docs/documents_query", json={"text": "troponin", "top_k": 3}).json()["results"]
        assert hits[0]["uri"] == "a/b.txt" and hits[0]["passages"]
        assert http.get("/indexes/docs/documents/none").status_code == 404
        assert http.delete("/indexes/docs/documents/a/b.txt").json() == {"deleted": True}
        assert http.post("/indexes/docs/count", json={}).json() == {"count": 0}

    async def text_only() -> list[str]:
        idx = await RemoteIndex.create(url, "embedded", embed=True, token=TOKEN)
        assert idx.dims == 16 and idx.manifest["embedder"]["model"]
        stats = await idx.stats()
        assert "path" not in stats and "bundle" not in idx.manifest["embedder"]  # no server paths leave it
        await idx.insert(text="shortness of breath", id="sob")
        await idx.insert(text="fracture of the femur", id="fx")
        hits = await idx.query(text="femur fracture", mode="vector", top_k=1)
        await idx.close()
        return [h.id for h in hits]

    assert run(text_only()) == ["fx"]


# ----------------------------------------------------------------------------- in-process (ASGI)


def test_an_unexpected_error_is_a_generic_500_and_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from pyapp.server.registry import Registry

    app = create_app(tmp_path)

    async def broken(self: Registry, name: str) -> Any:
        raise RuntimeError("secret detail /etc/passwd")

    async def call() -> Any:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            return await http.get("/indexes/x/stats")

    original = Registry.get
    Registry.get = broken  # type: ignore[method-assign]
    try:
        with caplog.at_level(logging.ERROR, logger="pyapp.server"):
            answer = asyncio.run(call())
    finally:
        Registry.get = original  # type: ignore[method-assign]
    assert answer.status_code == 500
    assert answer.json() == {"error": "InternalError", "message": "internal server error (logged on the server)"}
    assert "secret" not in answer.text and "Traceback" not in answer.text
    assert "secret detail" in caplog.text


def test_an_abandoned_update_is_rolled_back_and_frees_the_writers(tmp_path: Path) -> None:
    app = create_app(tmp_path, idle_timeout=0.5)

    async def scenario() -> tuple[int, int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            await http.post("/indexes", json={"name": "u", "dims": 2})
            update = (await http.post("/indexes/u/updates")).json()["update"]
            staged = await http.post(f"/indexes/u/items?update={update}", json={"vector": [1, 0], "id": "staged"})
            assert staged.status_code == 201
            # a plain write waits for the batch; the client holding it went away: rolled back after 0.5 s
            plain = await asyncio.wait_for(http.post("/indexes/u/items", json={"vector": [0, 1], "id": "p"}), 10)
            late = await http.post(f"/indexes/u/updates/{update}/commit")
            count = (await http.post("/indexes/u/count", json={})).json()["count"]
            return plain.status_code, late.status_code, count

    assert asyncio.run(scenario()) == (201, 409, 1)


def test_the_query_fast_path_answers_as_the_documented_route(tmp_path: Path) -> None:
    """``fastpath.py`` answers plain query bodies; FastAPI's route the rest. Same results, same error bodies;
    ``vector_f32`` is exact (the float32 bytes the index compares)."""
    import base64
    from array import array

    app = create_app(tmp_path)
    vectors = [[1.0, 0.5, 0.25], [0.0, 1.0, 0.0], [0.3, 0.3, 0.9]]

    async def scenario() -> list[Any]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            await http.post("/indexes", json={"name": "f", "dims": 3})
            items = [{"id": f"v{i}", "vector": v} for i, v in enumerate(vectors)]
            await http.post("/indexes/f/insert_many", json={"items": items})
            f32 = base64.b64encode(array("f", [0.9, 0.4, 0.3]).tobytes()).decode()
            bodies = [
                {"vector": [0.9, 0.4, 0.3], "top_k": 2},
                {"vector_f32": f32, "top_k": 2},
                {"vector": [0.9, 0.4, 0.3], "top_k": 2, "unknown": 1},  # FastAPI's route: 422 naming the field
                {"vector": [0.9, 0.4, 0.3], "vector_f32": f32},
                {"vector_f32": "not base64!"},
                {"vector_f32": base64.b64encode(b"12345").decode()},
                {"vector": [1, 2], "top_k": 2},
                [1, 2, 3],
            ]
            out = []
            for body in bodies:
                answer = await http.post("/indexes/f/query", json=body)
                out.append((answer.status_code, answer.json()))
            return out

    answers = asyncio.run(scenario())
    assert answers[0][0] == 200 and answers[0] == answers[1]
    assert [r["item"]["id"] for r in answers[0][1]["results"]] == ["v0", "v2"]
    assert answers[2][0] == 422 and "unknown" in answers[2][1]["message"]
    assert [(s, b["error"]) for s, b in answers[3:]] == [
        (422, "InvalidInput"),
        (422, "InvalidVector"),
        (422, "InvalidVector"),
        (422, "DimensionMismatch"),
        (422, "InvalidInput"),
    ]


def test_cors_only_for_the_origins_configured(tmp_path: Path) -> None:
    app = create_app(tmp_path, cors_origins=["https://ward.example"])
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}

    async def scenario() -> list[Any]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            ok = await http.options("/indexes", headers={"Origin": "https://ward.example", **preflight})
            other = await http.options("/indexes", headers={"Origin": "https://evil.example", **preflight})
            plain = await http.get("/indexes", headers={"Origin": "https://evil.example"})
            return [ok.headers.get("access-control-allow-origin"), other.status_code, other.headers, plain.headers]

    allowed, other_status, other_headers, plain_headers = asyncio.run(scenario())
    assert allowed == "https://ward.example"
    assert other_status == 400 and "access-control-allow-origin" not in other_headers
    assert "access-control-allow-origin" not in plain_headers
