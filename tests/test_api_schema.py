"""schemathesis against the running server's ``/openapi.json``: a bounded property run over every operation.

Checks: never a 5xx (bad input is a 4xx), every status documented, every body of the declared content type and
matching its schema. An index ``notes`` (the path example) holds a few items, so operations reach real data
rather than only 404s.
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="pip install schemathesis (the dev extra)")
from hypothesis import HealthCheck, Phase, settings  # noqa: E402
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
def schema_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from api_server import api_server

    with api_server(Path(tmp_path_factory.mktemp("schema-root"))) as url:
        asyncio.run(_seed(url))
        # FastAPI builds the document on first request and caches it: build it here, without schemathesis's
        # 10 s loading timeout (a busy 2-core machine can take longer)
        urllib.request.urlopen(url + "/openapi.json", timeout=120).read()
        yield url + "/openapi.json"


@pytest.fixture(scope="module")
def api_schema(schema_url: str) -> Any:
    """Examples and generated cases only: schemathesis's coverage phase (hundreds of boundary cases and
    unexpected methods per operation) runs in the slow test."""
    schema = schemathesis.openapi.from_url(schema_url)
    schema.config.phases.update(phases=["examples", "fuzzing"])
    return schema


@pytest.fixture(scope="module")
def api_schema_deep(schema_url: str) -> Any:
    return schemathesis.openapi.from_url(schema_url)


schema = schemathesis.pytest.from_fixture("api_schema")
deep_schema = schemathesis.pytest.from_fixture("api_schema_deep")


@schema.parametrize()
@settings(
    max_examples=2,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
)
def test_every_operation_conforms_and_never_answers_5xx(case: Any) -> None:
    """The default suite's bounded run (examples plus 2 generated cases per operation, fixed seed)."""
    case.call_and_validate(checks=CHECKS)


@pytest.mark.slow
@deep_schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_conforms_deeply(case: Any) -> None:
    """With schemathesis's coverage phase and 60 random examples per operation (``-m slow``)."""
    case.call_and_validate(checks=CHECKS)
