"""``ingest --watch``: keep an index in step with folders until Ctrl-C or SIGTERM (server only, ``watchfiles``).

vectra's FolderWatcher, done properly:

- the watcher starts *before* the first full pass, so a file written during that pass is not missed;
- events are debounced (watchfiles groups a burst of writes) and each file is read only once its size and
  mtime have stayed still for ``settle`` seconds, so a file still being copied is not read half-written;
- an event's kind is not trusted: the path's state when it is handled decides (there: ingest; gone: remove),
  so create-then-delete, editor save-by-rename and moves all end in the right state;
- each changed file is its own commit (``Ingester.ingest``), a deleted file's documents go in one commit;
- a single file given on the command line is watched through its folder (an editor that saves by rename
  replaces the inode a direct watch would follow).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Awaitable, Callable

from .errors import InvalidInput
from .ingest import Ingester, Roots, Summary, Target

SETTLE_S = 0.3
SETTLE_LIMIT_S = 30.0


async def settled(path: str, interval: float = SETTLE_S, limit: float = SETTLE_LIMIT_S) -> bool:
    """Wait until ``path``'s size and mtime are unchanged for ``interval`` s (at most ``limit`` s, then go on:
    a later event re-reads it); False when the file is gone."""
    deadline = time.monotonic() + limit
    try:
        before = os.stat(path)
        while True:
            await asyncio.sleep(interval)
            now = os.stat(path)
            if (now.st_size, now.st_mtime_ns) == (before.st_size, before.st_mtime_ns):
                return True
            if time.monotonic() > deadline:
                return True
            before = now
    except FileNotFoundError:
        return False


def _watch_dirs(roots: Roots) -> list[str]:
    dirs = {root if os.path.isdir(root) else os.path.dirname(root) for root in roots.paths}
    existing = sorted(d for d in dirs if os.path.isdir(d))
    if not existing:
        raise InvalidInput("--watch: none of the paths given is an existing file or folder")
    return existing


async def _handle(ingester: Ingester, roots: Roots, path: str, summary: Summary, settle: float) -> None:
    """Bring the index in step with ``path`` as it is now."""
    if os.path.isdir(path):  # a folder moved or copied in: each file in it
        targets, _ = Roots([path]).collect()
        for target in targets:
            name = roots.name_of(target.path)
            if name is not None and await settled(target.path, settle):
                await ingester.ingest(Target(target.path, name), summary)
        return
    name = roots.name_of(path)
    if os.path.isfile(path):
        if name is not None and await settled(path, settle):
            await ingester.ingest(Target(path, name), summary)
        return
    await ingester.remove(path, name, summary)  # gone: a file, or a folder with the files in it


async def watch(
    ingester: Ingester,
    roots: Roots,
    initial: Callable[[], Awaitable[Summary]],
    stop: asyncio.Event | None = None,
    settle: float = SETTLE_S,
    debounce_ms: int = 1600,
    step_ms: int = 200,
) -> Summary:
    """Start watching, run ``initial()`` (the full pass), then handle changes until ``stop`` is set (SIGINT and
    SIGTERM set it). Returns the counts of the changes handled after the first pass."""
    try:
        from watchfiles import awatch
    except ImportError:
        raise InvalidInput("--watch needs watchfiles: pip install 'clinvec[files]'") from None
    stop = stop or asyncio.Event()
    ingester.stop = stop.is_set  # a SIGTERM during the first pass stops it between files
    dirs = _watch_dirs(roots)
    loop = asyncio.get_running_loop()
    handled: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on this platform / not main thread
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
    queue: asyncio.Queue[set[tuple[object, str]]] = asyncio.Queue()
    ready = asyncio.Event()

    async def produce() -> None:
        try:
            async for changes in awatch(
                *dirs, debounce=debounce_ms, step=step_ms, stop_event=stop, rust_timeout=200, yield_on_timeout=True
            ):
                ready.set()  # the first (possibly empty) yield: the watcher is running
                if changes:
                    queue.put_nowait(changes)
        except Exception as exc:  # e.g. the inotify watch limit: one clear line, not a traceback
            raise InvalidInput(
                f"--watch cannot watch {', '.join(dirs)}: {exc} (WATCHFILES_FORCE_POLLING=1 polls instead)"
            ) from None

    producer = asyncio.create_task(produce())
    summary = Summary()
    try:
        await _first(ready.wait(), stop.wait(), producer)
        if producer.done():
            producer.result()  # the watcher failed to start: raise its error
        if not stop.is_set():
            await initial()
        while not stop.is_set():
            get = asyncio.ensure_future(queue.get())
            await _first(get, stop.wait(), producer)
            if not get.done():
                get.cancel()
                if producer.done() and not stop.is_set():
                    producer.result()
                continue
            for path in sorted({p for _change, p in get.result()}):
                if stop.is_set():
                    break
                await _handle(ingester, roots, path, summary, settle)
            ingester.ledger.save()
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(producer, timeout=2)
        for sig in handled:
            loop.remove_signal_handler(sig)
        ingester.ledger.save()
    return summary


async def _first(*waits: Awaitable[object]) -> None:
    """Wait until the first of ``waits`` is done; the others that this call started are cancelled."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    _done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        if not isinstance(waits[tasks.index(task)], asyncio.Future):  # leave the caller's own futures alone
            task.cancel()
