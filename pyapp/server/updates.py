"""Server-side updates: one ``LocalIndex.batch()`` held open by a task of its own, fed calls over HTTP.

Why a task: a batch belongs to the asyncio task that opened it (other tasks' writes wait for it and never join
it), while every HTTP request runs in a task of its own. So ``POST /indexes/{name}/updates`` starts a task that
enters ``batch()`` and runs the calls that requests tagged ``?update=ID`` hand it, one at a time, inside the
batch: each call sees the batch's own staged writes and raises as it would locally (``DuplicateId`` for an id
staged earlier), and nothing is visible or durable before the commit. Plain writes meanwhile wait for the
batch, as they do locally. A batch left alone for ``idle_timeout`` seconds (a client that went away) is rolled
back, so an abandoned update cannot block the index's writers for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from ..errors import ClinvecError, NoUpdateInProgress
from ..index import LocalIndex

Call = Callable[[LocalIndex], Awaitable[Any]]
DEFAULT_IDLE_TIMEOUT = 60.0


class _Rollback(Exception):
    """Raised inside the batch to discard it."""


class Update:
    """One open batch on one index, driven by ``call``, ``commit`` and ``rollback``."""

    def __init__(self, index: LocalIndex, idle_timeout: float) -> None:
        self.index = index
        self.idle_timeout = idle_timeout
        self._queue: asyncio.Queue[tuple[str, Call | None, asyncio.Future[Any]]] = asyncio.Queue()
        self._entered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.done = False
        self._task = asyncio.create_task(self._run())

    async def started(self) -> None:
        """Wait until the batch is open (another task's batch on this index may hold it first)."""
        await asyncio.shield(self._entered)

    async def _run(self) -> None:
        pending: asyncio.Future[Any] | None = None
        try:
            async with self.index.batch():
                self._entered.set_result(None)
                while True:
                    try:
                        kind, call, pending = await asyncio.wait_for(self._queue.get(), self.idle_timeout)
                    except TimeoutError:
                        raise _Rollback from None
                    if kind == "commit":
                        break  # leaving the block commits; its outcome goes to ``pending`` below
                    if kind == "rollback":
                        raise _Rollback
                    assert call is not None
                    try:
                        pending.set_result(await call(self.index))
                    except ClinvecError as exc:
                        pending.set_exception(exc)
                    pending = None
        except _Rollback:
            if pending is not None:
                pending.set_result(None)
        except BaseException as exc:  # the commit failed (StorageError...) or the batch could not open
            if not self._entered.done():
                self._entered.set_exception(exc)
            elif pending is not None and not pending.done():
                pending.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        else:
            if pending is not None:
                pending.set_result(None)
        finally:
            self.done = True
            self._drain()

    def _drain(self) -> None:
        while not self._queue.empty():
            _, _, fut = self._queue.get_nowait()
            if not fut.done():
                fut.set_exception(NoUpdateInProgress("the update has ended"))

    async def _send(self, kind: str, call: Call | None = None) -> Any:
        if self.done:
            raise NoUpdateInProgress("the update has ended (committed, rolled back or idle too long)")
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        await self._queue.put((kind, call, fut))
        return await fut

    async def call(self, call: Call) -> Any:
        return await self._send("call", call)

    async def commit(self) -> None:
        await self._send("commit")

    async def rollback(self) -> None:
        await self._send("rollback")

    async def abort(self) -> None:
        """Roll back at shutdown, whatever state the task is in."""
        self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task


class Updates:
    """The open updates of a server, by id (random, unguessable: an id is the capability to write into it)."""

    def __init__(self, idle_timeout: float = DEFAULT_IDLE_TIMEOUT) -> None:
        self.idle_timeout = idle_timeout
        self._open: dict[str, tuple[str, Update]] = {}

    async def begin(self, name: str, index: LocalIndex) -> str:
        update = Update(index, self.idle_timeout)
        try:
            await update.started()
        except BaseException:
            await update.abort()
            raise
        self._prune()
        update_id = secrets.token_urlsafe(18)
        self._open[update_id] = (name, update)
        return update_id

    def _prune(self) -> None:
        for key in [k for k, (_, u) in self._open.items() if u.done]:
            del self._open[key]

    def get(self, name: str, update_id: str) -> Update:
        found = self._open.get(update_id)
        if found is None or found[0] != name or found[1].done:
            raise NoUpdateInProgress(f"no open update {update_id!r} on index {name!r}")
        return found[1]

    def pop(self, name: str, update_id: str) -> Update:
        update = self.get(name, update_id)
        del self._open[update_id]
        return update

    async def close(self) -> None:
        opened, self._open = [u for _, u in self._open.values()], {}
        for update in opened:
            await update.abort()
