"""schemathesis against the running server's ``/openapi.json``: a bounded property run over every operation.

Checks: never a 5xx (bad input is a 4xx), every status documented, every body of the declared content type and
matching its schema. An index ``notes`` (the path example) holds a few items, so operations reach real data
rather than only 404s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="pip install schemathesis (the dev extra)")
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from pyapp import RemoteIndex  # noqa: E402

CHECKS = (not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance)


async def _seed(url: str) -> None:
    idx = await RemoteIndex.create(url, "notes", dims=3, indexed=["ward"])
    await idx.insert_many(
        [
            {"id": f"n{i}", "vector": [1.0, i, 0.5], "metadata": {"ward": ["ED", "ICU"][i % 2]}, "text": f"note {i}"}
            for i in range(5)
        ]
    )
    await idx.close()


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from api_server import api_server

    with api_server(Path(tmp_path_factory.mktemp("schema-root"))) as url:
        asyncio.run(_seed(url))
        yield schemathesis.openapi.from_url(url + "/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=2, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_every_operation_conforms_and_never_answers_5xx(case: Any) -> None:
    """The default suite's bounded run (2 examples per operation, fixed seed: ~60 requests)."""
    case.call_and_validate(checks=CHECKS)


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_conforms_deeply(case: Any) -> None:
    """The same with 60 random examples per operation (``-m slow``)."""
    case.call_and_validate(checks=CHECKS)
