"""``FaultyStore``: a public test double that makes any store fail on chosen calls.

Why it exists: the index promises that a failed store call leaves it exactly as it was, and that an
acknowledged write is never reported as failed. Those paths (a commit refused by a full disk, a
compaction that cannot write its snapshot) are hard to reach with a real disk; this wrapper reaches
them deterministically, in the spirit of httpx's ``MockTransport``::

    store = FaultyStore(MemoryStore("t"), fail={"commit": 2})   # the 2nd commit raises StorageError
    store = FaultyStore(inner, fail={"write_snapshot": {1, 3}}, error=StorageFull)

Calls are counted per method from 1 (``store.calls["commit"]``). A failing call raises *before* it
reaches the inner store, so the stored index is unchanged, which is what callers rely on. With
``after=True`` the inner call runs first and succeeds, and only then is the error raised: the
"durable but reported as failed" case (e.g. an fsync that succeeded but whose caller was interrupted).
With an empty ``fail`` it is a plain pass-through and behaves exactly like the store it wraps.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from ..errors import StorageError
from .base import Changes, Op, Row, Snapshot, Store

METHODS = ("exists", "create", "open", "commit", "write_snapshot", "meanwhile", "close", "drop")

FailSpec = Mapping[str, int | Collection[int]]
ErrorSpec = type[BaseException] | BaseException


def _normalise(fail: FailSpec | None) -> dict[str, frozenset[int]]:
    """``{"commit": 1}`` / ``{"commit": [1, 3]}`` -> ``{"commit": frozenset({1, 3})}``; unknown names are refused."""
    out: dict[str, frozenset[int]] = {}
    for method, which in (fail or {}).items():
        if method not in METHODS:
            raise ValueError(f"FaultyStore cannot fail {method!r}; choose from {', '.join(METHODS)}")
        numbers = [which] if isinstance(which, int) else list(which)
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in numbers):
            raise ValueError(f"calls to fail are counted from 1; got {which!r} for {method!r}")
        out[method] = frozenset(numbers)
    return out


class FaultyStore(Store):
    """Wraps ``inner`` and raises ``error`` on the n-th call of each method named in ``fail``."""

    def __init__(
        self, inner: Store, fail: FailSpec | None = None, *, error: ErrorSpec = StorageError, after: bool = False
    ) -> None:
        if not (isinstance(error, BaseException) or (isinstance(error, type) and issubclass(error, BaseException))):
            raise TypeError(f"error must be an exception class or instance, got {error!r}")
        self.inner = inner
        self.location = inner.location
        self.error = error
        self.after = after
        self.calls: dict[str, int] = dict.fromkeys(METHODS, 0)
        self._fail = _normalise(fail)

    @property
    def fail(self) -> dict[str, frozenset[int]]:
        """Which calls fail, per method (may be reassigned between calls, e.g. to arm a later failure)."""
        return dict(self._fail)

    @fail.setter
    def fail(self, fail: FailSpec | None) -> None:
        self._fail = _normalise(fail)

    def _error(self, method: str, n: int) -> BaseException:
        if isinstance(self.error, BaseException):
            return self.error
        return self.error(f"injected failure: {method} call {n} on {self.location!r}")

    async def _call(self, method: str, *args: Any, inner: str | None = None) -> Any:
        """Count ``method``, fail it as armed, else run the inner store's ``inner`` (default: the same name)."""
        self.calls[method] += 1
        n = self.calls[method]
        failing = n in self._fail.get(method, ())
        if failing and not self.after:
            raise self._error(method, n)
        result = await getattr(self.inner, inner or method)(*args)
        if failing:
            raise self._error(method, n)
        return result

    async def exists(self) -> bool:
        return bool(await self._call("exists"))

    async def create(self, manifest: dict[str, Any]) -> None:
        await self._call("create", manifest)

    async def open(self, read_only: bool = False) -> Snapshot:
        snapshot: Snapshot = await self._call("open", read_only)
        return snapshot

    async def commit(self, ops: Sequence[Op]) -> None:
        await self._call("commit", ops)

    async def write_snapshot(
        self, manifest: dict[str, Any], rows: Sequence[Row], vectors: bytes, ivf: dict[str, Any] | None = None
    ) -> None:
        if ivf is None:  # the plain call, as before: wrapped stores without partitioning support still work
            await self._call("write_snapshot", manifest, rows, vectors)
        else:
            await self._call("write_snapshot", manifest, rows, vectors, ivf)

    async def write_snapshot_while(
        self, manifest: dict[str, Any], rows: Sequence[Row], vectors: bytes, meanwhile: Callable[[], None]
    ) -> None:
        """Counted and failed as a ``write_snapshot`` call; passed through, the inner store's own overlap runs.
        ``fail={"meanwhile": n}``: the caller's in-memory work runs, then raises, inside the inner store's
        window (what running out of memory there looks like), so the store must write nothing."""

        def failing_meanwhile() -> None:
            self.calls["meanwhile"] += 1
            n = self.calls["meanwhile"]
            meanwhile()
            if n in self._fail.get("meanwhile", ()):
                raise self._error("meanwhile", n)

        await self._call("write_snapshot", manifest, rows, vectors, failing_meanwhile, inner="write_snapshot_while")

    async def close(self) -> None:
        await self._call("close")

    async def drop(self) -> None:
        await self._call("drop")

    # Shared writers: passed through untouched (no failures injected), so a wrapped store keeps its capability.
    @property
    def shared_writers(self) -> bool:  # type: ignore[override]
        return self.inner.shared_writers

    def commit_lock(self) -> Any:
        return self.inner.commit_lock()

    async def catch_up(self) -> Changes:
        return await self.inner.catch_up()

    @property
    def position(self) -> Any:
        return self.inner.position

    @property
    def log_bytes(self) -> int:
        return self.inner.log_bytes

    @property
    def snapshot_bytes(self) -> int:
        return self.inner.snapshot_bytes

    def info(self) -> dict[str, Any]:
        return self.inner.info()


__all__ = ["FaultyStore"]
