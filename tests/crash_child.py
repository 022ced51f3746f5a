"""Child processes for the crash and lock tests, started through a multiprocessing forkserver.

Each worker is a real separate process that the test kills with SIGKILL. Workers report over a
one-way pipe: ``ack K`` is sent only after commit K returned, so everything the parent has read
is acknowledged. The forkserver has ``pyapp`` preloaded, which makes a start cost ~10 ms instead
of a fresh interpreter's ~0.5 s: that is what lets the crash test afford 50+ kills.

Commit K writes ``ITEMS`` items tagged with K and deletes every item of commit ``K - LAG``, so the
live state after commits 1..K is exactly the items of commits K-LAG+1..K plus a fixed ballast.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import struct
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

ITEMS = 4  # items per commit
LAG = 5  # commit K deletes commit K - LAG
BALLAST = "ballast-"


def start(target: Callable[..., None], *args: Any) -> tuple[BaseProcess, Connection]:
    """Start ``target(*args[:1], conn, *args[1:])`` in a fresh process; returns it and the read end of its pipe."""
    ctx = multiprocessing.get_context("forkserver")
    # numpy and the kernel are imported lazily by pyapp: preload them too (a missing one is skipped)
    ctx.set_forkserver_preload(["pyapp", "pyapp.stores.file", "numpy", "pyapp.kernels.numpy_kernel", "crash_child"])
    reader, writer = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=target, args=(args[0], writer, *args[1:]), daemon=True)
    proc.start()
    writer.close()  # the child holds the only write end: EOF once it dies
    return proc, reader


def messages(conn: Connection, until: str | None = None, timeout: float = 60.0) -> list[str]:
    """Read messages until one starts with ``until`` (or, when None, until EOF) or ``timeout`` passes."""
    out: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not conn.poll(left):
            raise TimeoutError(f"no {until or 'EOF'} within {timeout} s; got {out[-5:]}")
        try:
            msg = conn.recv_bytes().decode()
        except EOFError:
            if until is None:
                return out
            raise EOFError(f"child exited before {until!r}; got {out[-5:]}") from None
        out.append(msg)
        if until is not None and msg.startswith(until):
            return out


def acks(msgs: list[str]) -> list[int]:
    return [int(m.split()[1]) for m in msgs if m.startswith("ack ")]


def item_id(k: int, j: int) -> str:
    return f"c{k}-{j}"


def metadata_for(k: int, j: int) -> dict[str, Any]:
    return {"commit": k, "j": j, "ward": ["icu", "ed", "onc"][(k + j) % 3], "note": "naïve café ✓", "x": [k, None]}


def text_for(k: int, j: int) -> str | None:
    return None if j == 1 else f"commit {k} item {j}: résumé 病人"


def vector_for(k: int, j: int, dims: int) -> list[float]:
    """Deterministic, never all-zero, and different for every (k, j)."""
    return [float(((k * 31 + j * 7 + d * 13) % 97) + 1) for d in range(dims)]


def vector_bytes(k: int, j: int, dims: int) -> bytes:
    return struct.pack(f"<{dims}f", *vector_for(k, j, dims))


def ids_of_commit(k: int) -> list[str]:
    return [item_id(k, j) for j in range(ITEMS)]


def expected_ids(k_last: int, ballast: int) -> set[str]:
    """Live ids after commits 1..k_last."""
    live = {f"{BALLAST}{i}" for i in range(ballast)}
    for k in range(max(1, k_last - LAG + 1), k_last + 1):
        live.update(ids_of_commit(k))
    return live


def next_commit(commits_present: list[int]) -> int:
    return max(commits_present, default=0) + 1


# ----- crash test workers


def store_worker(folder: str, conn: Connection, dims: int, compact_every: int) -> None:
    """Drive ``FileStore`` directly: fold the state in memory, commit in a loop, compact now and then."""
    from pyapp.stores.base import Delete, Put, Row
    from pyapp.stores.file import FileStore

    async def main() -> None:
        store = FileStore(folder)
        snap = await store.open()
        state: dict[str, tuple[Row, bytes]] = {}
        width = dims * 4
        for i, row in enumerate(snap.rows):
            state[row.id] = (row, bytes(snap.vectors[i * width : (i + 1) * width]))
        for logged in snap.log:
            for op in logged:
                if isinstance(op, Put):
                    state[op.row.id] = (op.row, op.vector)
                else:
                    state.pop(op.id, None)
        k = next_commit([r.metadata["commit"] for r, _ in state.values() if "commit" in r.metadata])
        conn.send_bytes(f"ready {k}".encode())
        for made in itertools.count():
            if compact_every and made and made % compact_every == 0:
                conn.send_bytes(f"compact-begin {k}".encode())
                rows = sorted((r for r, _ in state.values()), key=lambda r: r.seq)
                await store.write_snapshot(snap.manifest, rows, b"".join(state[r.id][1] for r in rows))
                conn.send_bytes(b"compact-end")
            ops: list[Any] = []
            for j in range(ITEMS):
                row = Row(item_id(k, j), metadata_for(k, j), text_for(k, j), 1_000_000 + k * ITEMS + j)
                ops.append(Put(row, vector_bytes(k, j, dims)))
            if k > LAG:
                ops.extend(Delete(i) for i in ids_of_commit(k - LAG))
            await store.commit(ops)
            conn.send_bytes(f"ack {k}".encode())
            for op in ops:
                if isinstance(op, Put):
                    state[op.row.id] = (op.row, op.vector)
                else:
                    state.pop(op.id, None)
            k += 1

    asyncio.run(main())


def index_worker(folder: str, conn: Connection, dims: int, compact_every: int) -> None:
    """Drive the whole stack: ``LocalIndex`` batches (one commit each) and explicit compactions."""
    from pyapp import LocalIndex

    async def main() -> None:
        idx = await LocalIndex.open(folder)
        k = next_commit([int(i[1:].split("-")[0]) for i in await idx.ids() if not i.startswith(BALLAST)])
        conn.send_bytes(f"ready {k}".encode())
        for made in itertools.count():
            if compact_every and made and made % compact_every == 0:
                conn.send_bytes(f"compact-begin {k}".encode())
                await idx.compact()
                conn.send_bytes(b"compact-end")
            async with idx.batch():
                for j in range(ITEMS):
                    await idx.insert(
                        vector_for(k, j, dims), metadata=metadata_for(k, j), text=text_for(k, j), id=item_id(k, j)
                    )
                if k > LAG:
                    await idx.delete_many(ids_of_commit(k - LAG))
            conn.send_bytes(f"ack {k}".encode())
            k += 1

    asyncio.run(main())


# ----- lock test workers


def writer_worker(folder: str, conn: Connection, commits: int, then: str, compact_every: int = 0) -> None:
    """Open for writing, insert ``commits`` items (one commit each, acked), then ``hold``, ``exit`` or ``spin``.

    ``spin`` keeps committing (and compacting every ``compact_every`` commits) until killed.
    """
    from pyapp import LocalIndex
    from pyapp.errors import IndexLocked

    async def main() -> None:
        start = time.perf_counter()
        try:
            idx = await LocalIndex.open(folder)
        except IndexLocked:
            conn.send_bytes(f"locked {time.perf_counter() - start:.6f}".encode())
            return
        n = await idx.count()
        conn.send_bytes(f"opened {n}".encode())
        target = n + commits
        while then == "spin" or n < target:
            await idx.insert([1.0, float(n + 1), 2.0, 3.0], metadata={"n": n}, id=f"w{n}")
            conn.send_bytes(f"ack {n}".encode())
            n += 1
            if compact_every and n % compact_every == 0:
                await idx.compact()
        if then == "hold":
            conn.send_bytes(b"holding")
            while True:
                time.sleep(1)
        await idx.close()
        conn.send_bytes(b"closed")

    asyncio.run(main())


def reader_worker(folder: str, conn: Connection) -> None:
    """Open read-only and report the count (works while a writer holds the lock)."""
    from pyapp import LocalIndex

    async def main() -> None:
        idx = await LocalIndex.open(folder, read_only=True)
        conn.send_bytes(f"count {await idx.count()}".encode())
        await idx.close()

    asyncio.run(main())


# ----- cutting a store operation short at every step


_CUT_CALLS = ("open", "write", "fsync", "ftruncate", "replace", "unlink", "rmdir", "makedirs", "mkdir")


def cut_worker(folder: str, conn: Connection, action: str, cut_at: int, payload: Any) -> None:
    """Run one store operation, dying (``os._exit``, as abrupt as SIGKILL) just before OS call ``cut_at``.

    ``action`` is ``create`` (payload: manifest), ``commit`` (payload: ops) or ``compact`` (payload:
    manifest, rows, vectors). Sends ``done N`` when the operation finished within N calls.
    """
    import os

    from pyapp.stores.file import FileStore

    store = FileStore(folder)
    if action != "create":
        store.open_sync()
    calls = 0
    originals = {name: getattr(os, name) for name in _CUT_CALLS}

    def counted(name: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            nonlocal calls
            calls += 1
            if calls == cut_at:
                os._exit(0)
            return originals[name](*args, **kwargs)

        return call

    for name in _CUT_CALLS:
        setattr(os, name, counted(name))
    if action == "create":
        store.create_sync(payload)
    elif action == "commit":
        store.commit_sync(payload)
    else:
        store.write_snapshot_sync(*payload)
    for name, fn in originals.items():
        setattr(os, name, fn)
    conn.send_bytes(f"done {calls}".encode())
