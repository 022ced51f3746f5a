"""One sync between this index and a peer (the server): push local commits, pull the peer's, report.

Why this order: the push carries this side's edits made since the last sync, and the peer merges them by the
rule (``merge.py``); the pull then brings everything the peer has after the position this side last saw,
with the result of that merge, so both sides end holding the same versions. Positions move only after a
step has fully succeeded: an unreachable peer or a broken transfer leaves the index and the state as they
were, and the next sync repeats the step (merging the same versions twice changes nothing).

The peer is anything with ``pull``/``push`` on bundle bytes: ``LocalPeer`` (another open index, for tests and
tools), ``pyapp.sync.http.HttpPeer`` on CPython, and the page, whose worker gets the bytes that
``web/app/sync.mjs`` fetched (``pyapp.sync.page``).
"""

from __future__ import annotations

import io
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ..bundle.writer import write
from ..errors import ClinvecError
from .merge import Merged, merge

if TYPE_CHECKING:
    from ..index import LocalIndex

SyncProgress = Callable[[str, int, int], None]  # (phase, done, total): "push", "pull", "apply"


class SyncError(ClinvecError):
    """A sync could not finish; the index and the sync state are as they were before it."""


class ServerUnreachable(SyncError):
    """The peer could not be reached or the transfer broke off; nothing was applied, retry later."""


@dataclass
class SyncState:
    """Where this side stands with one peer; saved by the caller after every sync (JSON-ready).

    ``server_position``: the peer's newest commit this side has pulled (None: never pulled, so the next pull
    is a full bundle). ``local_position``: this index's newest commit the peer has (None: never pushed)."""

    server_position: int | None = None
    local_position: int | None = None
    last_sync: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> SyncState:
        data = data or {}

        def position(key: str) -> int | None:
            value = data.get(key)
            if value is None:
                return None
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise SyncError(f"sync state: {key} must be a non-negative integer or null, got {value!r}")
            return value

        return cls(position("server_position"), position("local_position"), data.get("last_sync"))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SyncReport:
    """What one sync moved: the peer's merge of the push, this side's merge of the pull, and one log."""

    pushed: dict[str, Any] | None = None  # the peer's Merged.as_dict(), None when there was nothing to push
    pulled: Merged = field(default_factory=Merged)
    state: SyncState = field(default_factory=SyncState)
    timings: dict[str, float] = field(default_factory=dict)  # push_s, pull_s, merge_s (wall), pull_bytes

    def as_dict(self) -> dict[str, Any]:
        log = _one_entry_per_loss(list((self.pushed or {}).get("log", [])) + self.pulled.log)
        return {
            "pushed": self.pushed,
            "pulled": self.pulled.as_dict(),
            "log": log,
            "conflicts": sum(1 for entry in log if entry.get("conflict")),
            "state": self.state.as_dict(),
            "timings": self.timings,
        }


def _one_entry_per_loss(log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A version that lost on the server (push) and again here (pull) is one loss: list it once."""
    seen: set[tuple[Any, ...]] = set()
    out = []
    for entry in log:
        lost = entry["overwritten"]
        key = (entry["id"], lost.get("side"), lost.get("time"), lost.get("deleted"))
        if key not in seen:
            seen.add(key)
            out.append(entry)
    return out


class Peer(ABC):
    """The other side of a sync, on bundle bytes."""

    @abstractmethod
    async def pull(self, since: int | None, progress: SyncProgress | None = None) -> bytes:
        """The peer's bundle: full when ``since`` is None, else its commits after ``since``."""

    @abstractmethod
    async def push(self, data: bytes, since: int | None) -> dict[str, Any]:
        """Have the peer merge this side's bundle; ``since`` is the peer position this side last pulled (the
        peer's versions written later are news to this side, so losing them is a conflict). Returns the peer's
        ``Merged.as_dict()``."""


class LocalPeer(Peer):
    """Another open ``LocalIndex`` as the peer: what the server does, in process."""

    def __init__(self, index: LocalIndex) -> None:
        self.index = index

    async def pull(self, since: int | None, progress: SyncProgress | None = None) -> bytes:
        return await bundle_bytes(self.index, since)

    async def push(self, data: bytes, since: int | None) -> dict[str, Any]:
        merged = await merge(self.index, io.BytesIO(data), since, here="server", there="device")
        return merged.as_dict()


async def bundle_bytes(index: LocalIndex, since: int | None, int8: bool = False) -> bytes:
    """The index's bundle (full, or its commits after ``since``) as bytes."""
    buf = io.BytesIO()
    await write(index, buf, since=since, int8=int8)
    return buf.getvalue()


async def sync(
    index: LocalIndex, peer: Peer, state: SyncState | None = None, progress: SyncProgress | None = None
) -> SyncReport:
    """Push this index's commits after ``state.local_position``, pull the peer's after ``state.server_position``
    and merge them; returns the report with the new state (the caller saves ``report.state``).

    ``ServerUnreachable`` (from the peer) or any ``ClinvecError``: nothing of the failed step was applied and
    ``state`` is unchanged; a push that succeeded before a failed pull is merged again, harmlessly, next time."""
    state = SyncState(**(state or SyncState()).as_dict())
    report = SyncReport(state=state)
    clock = time.perf_counter()
    start = index.position
    if start != (state.local_position or 0):
        data = await bundle_bytes(index, state.local_position)
        if progress is not None:
            progress("push", 0, len(data))
        report.pushed = await peer.push(data, state.server_position)
        if progress is not None:
            progress("push", len(data), len(data))
    report.timings["push_s"] = time.perf_counter() - clock
    data = await peer.pull(state.server_position, progress)
    report.timings["pull_s"] = time.perf_counter() - clock - report.timings["push_s"]
    report.timings["pull_bytes"] = len(data)
    apply = None if progress is None else (lambda done, total: progress("apply", done, total))
    pulled = await merge(index, io.BytesIO(data), state.local_position, "device", "server", apply)
    report.timings["merge_s"] = time.perf_counter() - clock - report.timings["push_s"] - report.timings["pull_s"]
    report.pulled = pulled
    state.server_position = pulled.source_position
    # the merge's own commit holds only the peer's versions: skip it when pushing next time, unless another
    # local commit came in between (then push from `start`; the peer finds the merged versions unchanged)
    state.local_position = pulled.position if pulled.committed and pulled.position == start + 1 else start
    state.last_sync = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return report
