"""RemoteIndex.query takes LocalIndex's arguments and passes ``exact``/``nprobe`` to a real server.

The index is partitioned (IVF) on disk first, so a one-list probe answers differently from the exact scan:
the remote answers must equal what the same index answers locally for each argument (through the fast path
and the documented FastAPI route), and a bad argument fails with LocalIndex's class before any request.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("httpx", reason="the server extra: pip install -e '.[server]'")
pytest.importorskip("fastapi", reason="the server extra: pip install -e '.[server]'")

from api_server import api_server  # noqa: E402

from pyapp import InvalidInput, LocalIndex, RemoteIndex  # noqa: E402
from pyapp.index_api import IndexAPI  # noqa: E402

DIMS = 16


def clustered(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((20, DIMS)).astype(np.float32)
    x = centres[rng.integers(0, 20, n)] + np.float32(0.35) * rng.standard_normal((n, DIMS)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


async def answers(idx: Any, queries: np.ndarray, **kwargs: Any) -> list[list[str]]:
    return [[r.id for r in await idx.query(q, top_k=10, mode="vector", **kwargs)] for q in queries]


def test_exact_and_nprobe_reach_the_servers_index(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    x, queries = clustered(3000, 1), clustered(20, 2)
    variants: list[dict[str, Any]] = [{}, {"exact": True}, {"nprobe": 1}, {"nprobe": 3}, {"exact": True, "nprobe": 1}]

    async def local() -> list[list[list[str]]]:
        idx = await LocalIndex.create(str(root / "ivf"), dims=DIMS, ivf_threshold=500)
        await idx.insert_many([{"id": f"r{i}", "vector": v} for i, v in enumerate(x)])
        assert (await idx.stats())["ivf"]["active"]
        got = [await answers(idx, queries, **kw) for kw in variants]
        await idx.close()
        return got

    expected = asyncio.run(local())
    # a one-list probe differs from the default and from the exact answer, and exact=True overrides it: so
    # neither argument can be lost on the way without a variant below getting another answer
    assert expected[2] != expected[0] and expected[2] != expected[1] and expected[4] == expected[1]

    async def remote(url: str) -> None:
        idx = await RemoteIndex.open(url, "ivf")
        try:
            for kw, want in zip(variants, expected):
                assert await answers(idx, queries, **kw) == want, kw
            for bad in ({"nprobe": 0}, {"nprobe": True}, {"exact": "yes"}, {"exact": None}, {"top_k": 0}):
                with pytest.raises(InvalidInput):
                    await idx.query(queries[0], **bad)
        finally:
            await idx.close()

    with api_server(root) as url:
        asyncio.run(remote(url))

    async def documented_route() -> list[list[str]]:
        """The FastAPI route itself (the fast path answers plain bodies first, so it is called directly)."""
        import httpx

        from pyapp.server.app import build_api

        api = build_api(root)
        got = []
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://t") as http:
            for q in queries:
                body = {"vector": q.tolist(), "top_k": 10, "mode": "vector", "nprobe": 1}
                answer = await http.post("/indexes/ivf/query", json=body)
                assert answer.status_code == 200, answer.text
                got.append([r["item"]["id"] for r in answer.json()["results"]])
            answer = await http.post("/indexes/ivf/query", json={"vector": q.tolist(), "exact": 1})
            assert answer.status_code == 422 and answer.json()["error"] == "InvalidInput"
        await api.state.registry.close()
        return got

    assert asyncio.run(documented_route()) == expected[2]


def test_one_query_signature_for_every_engine() -> None:
    """LocalIndex, RemoteIndex and PgIndex inherit the one ``query`` (no engine redefines it)."""
    from pyapp import PgIndex

    for cls in (LocalIndex, RemoteIndex, PgIndex):
        assert issubclass(cls, IndexAPI) and "query" not in vars(cls) and cls.query is IndexAPI.query
