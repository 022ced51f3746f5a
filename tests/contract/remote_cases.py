"""``cases.py`` run unchanged against ``RemoteIndex``: a second copy of the module whose ``LocalIndex`` name is
bound to a stand-in that creates, opens, checks and drops indexes on a server (a location is an index name).

Why a copy and not a patch: the cases look ``LocalIndex`` up as a module global when they run, so one module
object per backend lets the file/memory and remote runs share the process without touching each other.
"""

from __future__ import annotations

import types
import uuid
from pathlib import Path
from typing import Any

import cases

from pyapp import RemoteIndex

# Cases that cannot hold for a remote index by their nature, with why.
REMOTE_SKIPS = {
    name: "injects faults into the index's own Store object (FaultyStore), which lives in the server's process"
    for name in (
        "failed_batch_commit_ends_the_update",
        "failed_compaction_keeps_the_acknowledged_write",
        "failed_bulk_snapshot_leaves_the_index_empty",
        "failed_bulk_load_in_memory_writes_nothing",
    )
}


class RemoteAsLocal:
    """``LocalIndex``'s class-level API (create/open/exists/drop by location) over ``RemoteIndex`` on ``url``."""

    def __init__(self, url: str, token: str | None = None) -> None:
        self.url, self.token = url, token

    async def create(self, location: str, **config: Any) -> RemoteIndex:
        return await RemoteIndex.create(self.url, location, token=self.token, **config)

    async def open(self, location: str, read_only: bool = False) -> RemoteIndex:
        return await RemoteIndex.open(self.url, location, read_only=read_only, token=self.token)

    async def exists(self, location: str) -> bool:
        return await RemoteIndex.exists(self.url, location, token=self.token)

    async def drop(self, location: str) -> None:
        await RemoteIndex.drop(self.url, location, token=self.token)


SOURCE = Path(cases.__file__).read_text()


def remote_module(url: str, token: str | None = None) -> types.ModuleType:
    module = types.ModuleType("clinvec_remote_cases")
    exec(compile(SOURCE, cases.__file__, "exec"), module.__dict__)
    module.LocalIndex = RemoteAsLocal(url, token)  # type: ignore[attr-defined]
    return module


async def run_case(name: str, url: str, token: str | None = None) -> Any:
    """Run ``case_<name>`` on the server at ``url``; each location is a fresh index name."""
    prefix = f"c-{uuid.uuid4().hex[:10]}"
    counter = iter(range(1_000_000))
    return await remote_module(url, token).run_case(name, lambda: f"{prefix}-{next(counter)}")
