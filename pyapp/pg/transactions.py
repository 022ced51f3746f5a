"""Write transactions of one PgIndex: every write call one transaction, a batch or update one for all.

Why a module of its own: PostgreSQL gives the atomicity (no clinvec lock between processes or machines);
what is left is LocalIndex's per-object rules. A batch belongs to its asyncio task (and the tasks it
starts), found through a context variable; other tasks' writes wait for it on the write lock. Each write
inside an open batch/update is a savepoint, so a rejected call changes nothing and the batch goes on.
``begin_update`` is synchronous, so its transaction starts with its first write.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from ..errors import NoUpdateInProgress, UpdateInProgress
from .connect import load_psycopg, storage_error
from .session import Session

_OWNER: contextvars.ContextVar[object | None] = contextvars.ContextVar("clinvec_pg_batch_owner", default=None)
Work = Callable[[Any], Awaitable[Any]]


class _Update:
    """An open batch (``owner``: its task's marker) or index-wide update (``owner`` None)."""

    def __init__(self, owner: object | None) -> None:
        self.owner = owner
        self.begun = False
        self.step = asyncio.Lock()  # one write at a time inside the transaction (tasks started in a batch)


async def rollback(conn: Any) -> None:
    """ROLLBACK, quietly when the connection is gone (the server rolled back already)."""
    try:
        await conn.execute("ROLLBACK")
    except Exception:  # noqa: BLE001 - the connection is gone; the server rolled back already
        pass


class Transactions:
    """Who writes in which transaction on the session's writer connection."""

    def __init__(self, session: Session, ensure_writable: Callable[[], None], closed: Callable[[], bool]) -> None:
        self._session = session
        self._ensure_writable = ensure_writable
        self._closed = closed
        self._lock = asyncio.Lock()
        self.update: _Update | None = None
        self._cancelling: asyncio.Task[None] | None = None  # a cancel_update's rollback (kept: tasks are weak)

    def joined(self) -> _Update | None:
        """The open batch/update the calling task's writes belong to, if any."""
        update = self.update
        if update is not None and (update.owner is None or update.owner is _OWNER.get()):
            return update
        return None

    async def write(self, work: Work) -> Any:
        """Run ``work(conn)`` as one transaction, or as a savepoint of the update this call belongs to."""
        psycopg = load_psycopg()

        self._ensure_writable()
        update = self.joined()
        if update is None:
            async with self._lock:
                self._ensure_writable()
                conn = await self._session.writer_conn()  # a lost connection: a plain write reconnects
                try:
                    await conn.execute("BEGIN")
                    result = await work(conn)
                    await conn.execute("COMMIT")
                    return result
                except BaseException as exc:
                    await rollback(conn)
                    if isinstance(exc, psycopg.Error):
                        raise storage_error(exc) from None
                    raise
        async with update.step:
            if not update.begun:  # begin_update is synchronous: its transaction starts with its first write
                await self._lock.acquire()
                if self.update is not update:
                    self._lock.release()
                    raise NoUpdateInProgress("the update this write was started in has already ended")
                await (await self._session.writer_conn()).execute("BEGIN")
                update.begun = True
            conn = self._session.writer
            try:
                await conn.execute("SAVEPOINT clinvec_call")
                result = await work(conn)
                await conn.execute("RELEASE SAVEPOINT clinvec_call")
                return result
            except BaseException as exc:
                await conn.execute("ROLLBACK TO SAVEPOINT clinvec_call")
                if isinstance(exc, psycopg.Error):
                    raise storage_error(exc) from None
                raise

    def begin_update(self) -> None:
        self._ensure_writable()
        if self.update is not None:
            raise UpdateInProgress("an update is already in progress; end or cancel it first")
        self.update = _Update(None)

    async def end_update(self) -> None:
        psycopg = load_psycopg()

        self._ensure_writable()
        update = self.update
        if update is None or update.owner is not None:
            raise NoUpdateInProgress("end_update called without begin_update")
        async with update.step:
            self.update = None
            if not update.begun:
                return
            try:
                await self._session.writer.execute("COMMIT")
            except psycopg.Error as exc:
                await rollback(self._session.writer)
                raise storage_error(exc) from None
            finally:
                self._lock.release()

    def cancel_update(self) -> None:
        update = self.update
        if update is None or update.owner is not None:
            raise NoUpdateInProgress("cancel_update called without begin_update")
        self.update = None
        if update.begun:
            self._cancelling = asyncio.get_running_loop().create_task(self._finish_cancel(update))

    async def _finish_cancel(self, update: _Update) -> None:
        async with update.step:
            try:
                if not self._closed():
                    await rollback(self._session.writer)
            finally:
                self._lock.release()

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[None]:
        """One transaction committed at exit; an exception rolls it all back."""
        psycopg = load_psycopg()

        self._ensure_writable()
        if self.joined() is not None:
            if self.update is not None and self.update.owner is None:
                raise UpdateInProgress("an update (begin_update) is open; end or cancel it first")
            raise UpdateInProgress("this task already has a batch open")
        await self._lock.acquire()
        marker = object()
        token = _OWNER.set(marker)
        update = _Update(marker)
        update.begun = True
        self.update = update
        committed = False
        try:
            conn = await self._session.writer_conn()
            await conn.execute("BEGIN")
            try:
                yield
            finally:
                async with update.step:  # let a straggling write of the batch finish first
                    self.update = None
            await conn.execute("COMMIT")
            committed = True
        except psycopg.Error as exc:
            raise storage_error(exc) from None
        finally:
            if not committed and not self._closed():
                await rollback(self._session.writer)
            _OWNER.reset(token)
            self._lock.release()
