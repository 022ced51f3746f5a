"""One writer at a time across processes: the loser fails at once, the lock dies with its holder, readers never wait."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import crash_child as cc

from pyapp import LocalIndex
from pyapp.errors import IndexLocked


def _make_index(folder: str) -> None:
    async def main() -> None:
        idx = await LocalIndex.create(folder, dims=4)
        await idx.close()

    asyncio.run(main())


def _count(folder: str, read_only: bool = True) -> int:
    async def main() -> int:
        idx = await LocalIndex.open(folder, read_only=read_only)
        try:
            return await idx.count()
        finally:
            await idx.close()

    return asyncio.run(main())


def _try_open(folder: str) -> str:
    """Run a second writer in its own process; returns its first message."""
    proc, conn = cc.start(cc.writer_worker, folder, 0, "exit")
    msgs = cc.messages(conn)
    proc.join(30)
    assert proc.exitcode == 0, msgs
    return msgs[0]


def test_second_writer_fails_at_once_and_the_lock_dies_with_a_killed_holder(tmp_path: Path) -> None:
    folder = str(tmp_path / "idx")
    _make_index(folder)
    holder, conn = cc.start(cc.writer_worker, folder, 5, "hold")
    msgs = cc.messages(conn, "holding")
    assert msgs[0] == "opened 0" and cc.acks(msgs) == [0, 1, 2, 3, 4]

    first = _try_open(folder)
    assert first.startswith("locked "), first
    assert float(first.split()[1]) < 0.5  # it did not wait for the lock
    # The test process itself is refused too, and a reader is not.
    try:
        _count(folder, read_only=False)
    except IndexLocked:
        pass
    else:
        raise AssertionError("a second writer in another process was let in")
    assert _count(folder) == 5

    holder.kill()
    holder.join(30)
    assert holder.exitcode == -signal.SIGKILL
    conn.close()
    assert _try_open(folder) == "opened 5"  # no stale lock, no lost write
    assert _count(folder, read_only=False) == 5


def test_lock_is_released_when_the_writer_closes(tmp_path: Path) -> None:
    folder = str(tmp_path / "idx")
    _make_index(folder)
    proc, conn = cc.start(cc.writer_worker, folder, 3, "exit")
    msgs = cc.messages(conn)
    proc.join(30)
    assert msgs[-1] == "closed" and cc.acks(msgs) == [0, 1, 2]
    assert _try_open(folder) == "opened 3"


def test_readers_run_beside_a_busy_writer_and_see_every_acknowledged_commit(tmp_path: Path) -> None:
    """A writer commits and compacts non-stop; readers (here and in other processes) open concurrently."""
    folder = str(tmp_path / "idx")
    _make_index(folder)
    writer, conn = cc.start(cc.writer_worker, folder, 0, "spin", 7)
    msgs = cc.messages(conn, "ack 20")
    opens = 0
    deadline = time.monotonic() + 4.0
    while time.monotonic() < deadline:
        while conn.poll(0):
            msgs.append(conn.recv_bytes().decode())
        acked = max(cc.acks(msgs)) + 1  # items 0..acked-1 are acknowledged
        seen = _count(folder)
        opens += 1
        assert seen >= acked, f"reader saw {seen} items after {acked} were acknowledged"
        if opens % 5 == 0:
            reader, rconn = cc.start(cc.reader_worker, folder)
            got = cc.messages(rconn)
            reader.join(30)
            assert reader.exitcode == 0, got
            assert int(got[0].split()[1]) >= acked
    writer.kill()
    writer.join(30)
    msgs += cc.messages(conn)
    conn.close()
    final = max(cc.acks(msgs)) + 1
    assert opens >= 10
    stored = _count(folder, read_only=False)
    assert stored in (final, final + 1)  # every acknowledged insert, at most one unacknowledged
