"""Sync over HTTP against a real ``serve-api`` (uvicorn in a subprocess): pull, push, conflicts, a broken
download resumed by Range, a refused model and an unreachable server."""

from __future__ import annotations

import asyncio
import io
import random
import struct
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pyapp import LocalIndex, RemoteIndex
from pyapp import bundle as bundles
from pyapp.embed.hashing import HashingEmbedder
from pyapp.errors import ClinvecError
from pyapp.sync import ServerUnreachable, SyncState, sync
from pyapp.sync.http import HttpPeer

DIMS = 8


def vec(seed: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.uniform(-1, 1) for _ in range(DIMS)]


def items(prefix: str, n: int) -> list[dict[str, Any]]:
    return [{"id": f"{prefix}{i}", "vector": vec(i * 7 + len(prefix)), "text": f"{prefix} note {i}"} for i in range(n)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from api_server import api_server

    with api_server(Path(tmp_path_factory.mktemp("sync-root"))) as url:
        yield url


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def content(index: LocalIndex) -> list[tuple[str, Any, Any, bytes]]:
    out = []
    async for batch in index.iter_items():
        out.extend((i.id, i.metadata, i.text, struct.pack(f"<{DIMS}f", *i.vector)) for i in batch)
    return sorted(out)


async def server_copy(url: str, name: str) -> LocalIndex:
    """What the server holds, item by item: its full bundle restored into a fresh memory index."""
    peer = HttpPeer(url, name)
    try:
        data = await peer.pull(None)
    finally:
        await peer.aclose()
    return await bundles.create_from_bundle(f"memory://copy-{uuid.uuid4().hex}", io.BytesIO(data))


class BreakOnce(httpx.AsyncBaseTransport):
    """The real transport, except that the first bundle download breaks off after ``cut`` bytes."""

    def __init__(self, cut: int) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.cut = cut
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = await self.inner.handle_async_request(request)
        if request.method != "GET" or len(self.requests) > 1:
            return answer
        cut = self.cut

        class Broken(httpx.AsyncByteStream):
            async def __aiter__(self):
                sent = 0
                async for chunk in answer.stream:
                    if sent + len(chunk) >= cut:
                        yield chunk[: cut - sent]
                        raise httpx.ReadError("connection reset (injected)")
                    sent += len(chunk)
                    yield chunk

            async def aclose(self) -> None:
                await answer.aclose()

        return httpx.Response(answer.status_code, headers=answer.headers, stream=Broken(), request=request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_pull_push_and_a_conflict_over_http(server: str) -> None:
    async def scenario() -> None:
        remote = await RemoteIndex.create(server, "ward", dims=DIMS)
        await remote.insert_many(items("s", 400))
        device = await LocalIndex.create(f"memory://device-{uuid.uuid4().hex}", dims=DIMS)
        peer = HttpPeer(server, "ward")
        report = await sync(device, peer)
        assert report.pulled.added == 400 and report.state.server_position == 1
        # offline on both sides: five new notes each, and one note edited on both (the server's edit is later)
        await device.insert_many(items("d", 5))
        await device.upsert("s7", vec(1), {"by": "device"}, "device edit")
        await remote.insert_many(items("n", 5))
        time.sleep(0.005)
        await remote.upsert("s7", vec(2), {"by": "server"}, "server edit")
        report = await sync(device, peer, report.state)
        assert report.pushed["added"] == 5 and report.pulled.added == 5
        assert await device.count() == await remote.count() == 410
        copy = await server_copy(server, "ward")
        assert await content(device) == await content(copy)
        assert (await device.get("s7")).text == "server edit"
        lost = [e for e in report.as_dict()["log"] if e["id"] == "s7"]
        assert lost and lost[0]["overwritten"]["text"] == "device edit" and lost[0]["conflict"]
        await peer.aclose()
        for index in (device, copy, remote):
            await index.close()

    run(scenario())


def test_a_broken_download_resumes_where_it_stopped(server: str) -> None:
    async def scenario() -> None:
        remote = await RemoteIndex.create(server, "resume", dims=DIMS)
        await remote.insert_many(items("s", 2000))
        transport = BreakOnce(cut=20_000)
        client = httpx.AsyncClient(transport=transport, timeout=60)
        peer = HttpPeer(server, "resume", client=client)
        device = await LocalIndex.create(f"memory://resume-{uuid.uuid4().hex}", dims=DIMS)
        progress: list[tuple[str, int, int]] = []
        report = await sync(device, peer, progress=lambda *p: progress.append(p))
        assert peer.resumed == 1 and report.pulled.added == 2000
        second = transport.requests[1]
        assert second.headers["range"] == "bytes=20000-" and second.headers["if-range"].startswith('"')
        assert any(p[0] == "pull" for p in progress) and progress[-1][0] == "apply"
        copy = await server_copy(server, "resume")
        assert await content(device) == await content(copy)
        await client.aclose()
        for index in (device, copy, remote):
            await index.close()

    run(scenario())


def test_another_model_is_refused_and_an_unreachable_server_changes_nothing(server: str) -> None:
    async def scenario() -> None:
        remote = await RemoteIndex.create(server, "plain", dims=DIMS)
        await remote.insert_many(items("s", 3))
        device = await LocalIndex.create(
            f"memory://model-{uuid.uuid4().hex}", dims=DIMS, embedder=HashingEmbedder(dims=DIMS, seed=1)
        )
        await device.insert_many(items("d", 2))
        peer = HttpPeer(server, "plain")
        with pytest.raises(ClinvecError, match="would not compare"):
            await sync(device, peer)  # the push is refused by the server: 422, nothing merged there
        assert await remote.count() == 3 and await device.count() == 2
        closed = HttpPeer("http://127.0.0.1:9", "plain", retries=1)
        state = SyncState(1, 1)
        with pytest.raises(ServerUnreachable, match="nothing was applied|could not be reached"):
            await sync(device, closed, state)
        assert state == SyncState(1, 1) and await device.count() == 2
        for p in (peer, closed):
            await p.aclose()
        await device.close()
        await remote.close()

    run(scenario())


def test_bad_requests_are_4xx_and_change_nothing(server: str) -> None:
    async def scenario() -> None:
        remote = await RemoteIndex.create(server, "bad", dims=DIMS)
        await remote.insert_many(items("s", 3))
        async with httpx.AsyncClient(base_url=server) as client:
            garbage = await client.post("/indexes/bad/bundle", content=b"not a bundle")
            assert garbage.status_code == 422 and "not a clinvec bundle" in garbage.json()["message"]
            negative = await client.get("/indexes/bad/bundle", params={"since": -1})
            assert negative.status_code == 422
            missing = await client.get("/indexes/nope/bundle")
            assert missing.status_code == 404
            small = await client.get("/indexes/bad/bundle", params={"int8": "true", "since": 0})
            summary = bundles.verify(io.BytesIO(small.content))
            assert summary.manifest["vectors"]["encoding"] == "int8" and summary.manifest["kind"] == "delta"
            assert summary.rows == 3 and small.headers["content-type"] == bundles.MEDIA_TYPE
            whole = await client.get("/indexes/bad/bundle")
            past = await client.get(
                "/indexes/bad/bundle",
                headers={"Range": f"bytes={len(whole.content)}-", "If-Range": whole.headers["etag"]},
            )
            assert past.status_code == 416
        assert await remote.count() == 3
        await remote.close()

    run(scenario())
