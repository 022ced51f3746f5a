"""The server's durable store: a folder holding a checksummed snapshot and an append-only log.

Layout of an index folder (only these names are ever touched, so foreign files may sit beside them)::

    manifest.json                 pointer: generation, the index manifest, file names + crc32 + sizes
    snapshot-000007.vectors       float32 matrix in row order, the bytes exactly as the kernel gave them
    snapshot-000007.rows          JSON rows (``codec.encode_rows``)
    log-000007.wal                commits since that snapshot, framed records
    lock                          flock target of the one writer

Why this shape: a commit appends one framed record and fsyncs once (no O(n) work); compaction
writes a whole new generation beside the old one and swaps it in by atomically renaming
``manifest.json``, so a kill at any moment leaves either the old or the new state.
Readers take no lock and retry when a compaction deletes the generation they were reading.

Log records and what counts as damage. A record is ``MAGIC`` (4 bytes), the payload length (8,
little-endian), a crc32 over those length bytes and the payload (4), then the payload: one
``codec.encode_commit``. A record is *complete* when its 16-byte header is present and the file holds
all ``length`` payload bytes it announces. The crash this log survives is an append cut short (the
process killed mid-write, a failed write whose truncation failed too), which leaves a *torn tail*: the
file ends inside the last record. The next writer cuts a torn tail away; readers leave it out. So:

* a complete record whose checksum fails is ``CorruptIndex``, the last record included: bytes that
  were fully written and later changed are damage, never silently dropped;
* the file ending inside a record is a torn tail, unless that record's payload is in fact whole by its
  own header (``codec.commit_size``), or an intact record follows: then its length field is damaged
  and the log is ``CorruptIndex``; a payload that cannot begin any commit is ``CorruptIndex`` too;
* bytes that cannot begin a record (no ``MAGIC``) are ``CorruptIndex``, so a log cut out of the middle
  of the file is caught at the first record boundary it breaks; except that zeros running to the end of
  the file count as torn (space a file system allocated for an append whose data never landed).

A whole record removed from the middle at its exact boundaries cannot be seen: records carry no
sequence number.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import io
import json
import mmap
import os
import re
import struct
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from ..errors import (
    CorruptIndex,
    IndexClosed,
    IndexExists,
    IndexLocked,
    IndexNotFound,
    ReadOnlyIndex,
    StorageError,
    StorageFull,
)
from .base import Op, Row, Snapshot, Store
from .codec import commit_size, decode_commit, decode_snapshot_rows, encode_commit, encode_rows

try:  # POSIX; Windows is not a target, but importing this module must still work there.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

POINTER = "manifest.json"
POINTER_TMP = "manifest.json.tmp"
LOCK = "lock"
KIND = "clinvec-index"
FORMAT = 1
# A log record: magic, payload length, crc32 over the length bytes and the payload; then the payload.
MAGIC = b"CVWL"
FRAME = struct.Struct("<4sQI")
_GENERATION_FILE = re.compile(r"^(?:snapshot-\d{6,}\.(?:vectors|rows)|log-\d{6,}\.wal)$")
_READ_RETRIES = 50
_FULL_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_BINARY = getattr(os, "O_BINARY", 0)
_EMPTY_ROWS = encode_rows([])  # the rows file of an index with no items


def generation_files(generation: int) -> tuple[str, str, str]:
    """The vectors, rows and log file names of one snapshot generation."""
    stem = f"{generation:06d}"
    return f"snapshot-{stem}.vectors", f"snapshot-{stem}.rows", f"log-{stem}.wal"


def frame(payload: bytes) -> bytes:
    """Wrap one encoded commit as a log record."""
    length = struct.pack("<Q", len(payload))
    return MAGIC + length + struct.pack("<I", zlib.crc32(payload, zlib.crc32(length))) + payload


def _frame_end(data: bytes, pos: int) -> int | None:
    """End offset of the intact record starting at ``pos``, or None when it is short or damaged."""
    if pos + FRAME.size > len(data):
        return None
    magic, length, crc = FRAME.unpack_from(data, pos)
    end = pos + FRAME.size + length
    if magic != MAGIC or end > len(data):
        return None
    view = memoryview(data)
    if zlib.crc32(view[pos + FRAME.size : end], zlib.crc32(view[pos + 4 : pos + 12])) != crc:
        return None
    return end


def _intact_record_after(data: bytes, pos: int) -> bool:
    """True when some intact record starts after ``pos``: then the damage is not a torn tail."""
    pos = data.find(MAGIC, pos)
    while pos != -1:
        if _frame_end(data, pos) is not None:
            return True
        pos = data.find(MAGIC, pos + 1)
    return False


def _zeros_from(data: bytes, pos: int) -> bool:
    """True when every byte from ``pos`` to the end is zero (space a file system allocated, never written)."""
    return data.count(0, pos) == len(data) - pos


def _torn_tail(data: bytes, pos: int, name: str) -> None:
    """Return when the bytes from ``pos`` are an unfinished append; raise ``CorruptIndex`` when they are damage.

    Called only where no complete record starts at ``pos`` (see the module docstring for the rule).
    """
    rest = len(data) - pos
    if _zeros_from(data, pos):
        return
    if rest < FRAME.size:
        if MAGIC.startswith(data[pos : pos + len(MAGIC)]):
            return  # a cut-short frame header
        raise CorruptIndex(f"{name}: the {rest} bytes at byte {pos} do not begin a record: the log is damaged")
    if data[pos : pos + len(MAGIC)] != MAGIC:
        raise CorruptIndex(f"{name}: no record begins at byte {pos}: the log is damaged")
    payload = memoryview(data)[pos + FRAME.size :]
    if _zeros_from(data, pos + FRAME.size):
        return
    try:
        size = commit_size(payload)
    except CorruptIndex as exc:
        raise CorruptIndex(f"{name}: the record at byte {pos} is damaged: {exc}") from exc
    if size is not None and size <= len(payload):
        raise CorruptIndex(
            f"{name}: the record at byte {pos} is whole but its length field points past the end "
            "of the file: the log is damaged"
        )
    if _intact_record_after(data, pos + 1):
        raise CorruptIndex(f"{name}: the record at byte {pos} is damaged but later records are intact")


def parse_log(data: bytes, name: str = "log") -> tuple[list[list[Op]], int]:
    """Decode every record; returns the commits and the length of the whole-record prefix.

    A torn tail (an append cut short) is left out and its length not counted; any damage to a
    complete record, the last one included, raises ``CorruptIndex`` (see the module docstring).
    """
    commits: list[list[Op]] = []
    pos = 0
    view = memoryview(data)
    while pos < len(data):
        if pos + FRAME.size > len(data):
            _torn_tail(data, pos, name)
            break
        magic, length, crc = FRAME.unpack_from(data, pos)
        end = pos + FRAME.size + length
        if magic != MAGIC or end > len(data):
            _torn_tail(data, pos, name)
            break
        if zlib.crc32(view[pos + FRAME.size : end], zlib.crc32(view[pos + 4 : pos + 12])) != crc:
            raise CorruptIndex(f"{name}: the record at byte {pos} fails its checksum: the log is damaged")
        try:
            commits.append(decode_commit(view[pos + FRAME.size : end]))
        except CorruptIndex as exc:
            raise CorruptIndex(f"{name}: record at byte {pos}: {exc}") from exc
        pos = end
    return commits, pos


def _storage_error(exc: OSError, where: str = "the index") -> StorageError:
    """Every OS error becomes a ``StorageError``: ENOSPC/EDQUOT ``StorageFull``, the rest (EROFS, EACCES, EIO...)
    plain ``StorageError``, so callers catch one ``ClinvecError`` family and never a raw ``OSError``."""
    if exc.errno in _FULL_ERRNOS:
        return StorageFull(f"disk full while writing {where}: {exc}")
    if exc.errno == errno.EROFS:
        return StorageError(f"{where} is on a read-only file system (open it with read_only=True to read it): {exc}")
    if isinstance(exc, PermissionError):
        return StorageError(f"no permission to use {where}: {exc}")
    return StorageError(f"I/O error on {where}: {exc}")


_F = TypeVar("_F", bound=Callable[..., Any])


def _os_errors(method: _F) -> _F:
    """Turn any ``OSError`` escaping a public ``FileStore`` method into a ``StorageError`` naming the folder."""

    @functools.wraps(method)
    def wrapper(self: FileStore, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except OSError as exc:
            raise _storage_error(exc, f"the index at {self.location!r}") from exc

    return wrapper  # type: ignore[return-value]


WRITE_PIECE = 1 << 18  # bytes per write(): one huge write() costs several times the kernel CPU of 256 KiB pieces


def _pieces(data: bytes | memoryview) -> Iterator[memoryview]:
    """``data`` in ``WRITE_PIECE`` slices (no copies), each small enough to stay in cache while hashed and written."""
    view = memoryview(data).cast("B")
    for start in range(0, len(view), WRITE_PIECE):
        yield view[start : start + WRITE_PIECE]


def _write_all(fd: int, data: bytes | memoryview) -> None:
    for view in _pieces(data):
        while view:
            view = view[os.write(fd, view) :]


def _fsync_dir(path: str) -> None:
    """Make creates, renames and deletes in ``path`` durable (no-op where directories can't be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_all(fd: int) -> bytes:
    """The whole file in one read (sized from fstat, so no growing buffer)."""
    with io.FileIO(fd, "rb", closefd=False) as f:
        return f.readall()


def _lock(fd: int) -> bool:
    """Try to take the exclusive writer lock without waiting; False when someone else holds it."""
    if fcntl is None:  # pragma: no cover - Windows: no cross-process lock
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


CHECKSUM = "crc32"  # of each generation file: markedly less CPU than sha256 over the vectors, and what
# storage formats use to catch torn or rotten bytes. Snapshots written with "sha256" still verify.


def _checksum(data: bytes | memoryview, algorithm: str) -> str:
    if algorithm == "crc32":
        return f"{zlib.crc32(data):08x}"
    return hashlib.sha256(data).hexdigest()


class _Digest:
    """Checksum of a buffer, on a worker thread when it is big (zlib and hashlib release the GIL)."""

    def __init__(self, data: bytes | memoryview, algorithm: str, threshold: int = 1 << 23) -> None:
        self._value = ""
        self._algorithm = algorithm
        self._thread: threading.Thread | None = None
        if len(data) < threshold:
            self._run(data)
        else:
            self._thread = threading.Thread(target=self._run, args=(data,), daemon=True)
            self._thread.start()

    def _run(self, data: bytes | memoryview) -> None:
        self._value = _checksum(data, self._algorithm)

    def result(self) -> str:
        if self._thread is not None:
            self._thread.join()
        return self._value


def _algorithm(info: dict[str, Any]) -> str:
    """Which checksum a file description carries (``crc32`` now, ``sha256`` in older snapshots)."""
    return "crc32" if "crc32" in info else "sha256"


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


class FileStore(Store):
    """An index in a folder on local disk.

    The async methods do their (blocking) I/O without awaiting, so each call runs to completion
    without interleaving with other calls on the same event loop. ``*_sync`` twins serve tests/tools.
    """

    def __init__(self, location: str | os.PathLike[str]) -> None:
        self.location = os.fspath(location)
        self._lock_fd: int | None = None
        self._log_fd: int | None = None
        self._read_only: bool | None = None  # None: not open
        self._pointer: dict[str, Any] | None = None
        self._log_size = 0
        self._log_dirty = False  # a failed commit's bytes may still sit past _log_size: cut them first

    # ----- paths and small helpers

    def _path(self, name: str) -> str:
        return os.path.join(self.location, name)

    def _acquire_lock(self) -> int:
        fd = os.open(self._path(LOCK), os.O_RDWR | os.O_CREAT | _BINARY, 0o644)
        try:
            locked = _lock(fd)
        except BaseException:
            os.close(fd)
            raise
        if not locked:
            os.close(fd)
            raise IndexLocked(f"index {self.location!r} is open for writing by another process or store")
        return fd

    def _release(self) -> None:
        """Close every handle, even when one close fails (raised after); closing the lock file's only
        descriptor drops the flock."""
        fds, failure = (self._log_fd, self._lock_fd), None
        self._log_fd = self._lock_fd = None
        self._read_only = None
        self._pointer = None
        self._log_size = 0
        self._log_dirty = False
        for fd in fds:
            if fd is not None:
                try:
                    os.close(fd)
                except OSError as exc:
                    failure = failure or exc
        if failure is not None:
            raise failure

    def _read_pointer(self) -> dict[str, Any]:
        try:
            with open(self._path(POINTER), "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            raise IndexNotFound(f"no index at {self.location!r}") from None
        except NotADirectoryError:
            raise IndexNotFound(f"no index at {self.location!r} (not a folder)") from None
        try:
            pointer = json.loads(raw)
            checksum = pointer.pop("checksum")
        except (ValueError, AttributeError, KeyError, TypeError) as exc:
            raise CorruptIndex(f"{self._path(POINTER)} is unreadable: {exc!r}") from exc
        if hashlib.sha256(_canonical(pointer)).hexdigest() != checksum:
            raise CorruptIndex(f"{self._path(POINTER)} fails its checksum")
        if pointer.get("kind") != KIND or pointer.get("format") != FORMAT:
            raise CorruptIndex(f"{self._path(POINTER)} is not a clinvec index of format {FORMAT}")
        try:
            names = generation_files(pointer["generation"])
            ok = (pointer["vectors"]["file"], pointer["rows"]["file"], pointer["log"]) == names
        except (KeyError, TypeError, ValueError):
            ok = False
        if not ok:  # also keeps a crafted manifest from naming files outside the folder
            raise CorruptIndex(f"{self._path(POINTER)} names unexpected files")
        return pointer

    def _write_file(self, name: str, chunks: Iterable[bytes | memoryview]) -> dict[str, Any]:
        """Write, fsync and describe (size + crc32) one new file."""
        crc = 0
        size = 0
        fd = os.open(self._path(name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _BINARY, 0o644)
        try:
            for chunk in chunks:
                for piece in _pieces(chunk):
                    crc = zlib.crc32(piece, crc)  # checksummed and written while the piece is in cache
                    _write_all(fd, piece)
                    size += len(piece)
            os.fsync(fd)
        finally:
            os.close(fd)
        return {"file": name, "bytes": size, CHECKSUM: f"{crc:08x}"}

    def _install(
        self,
        generation: int,
        manifest: dict[str, Any],
        rows: Sequence[Row],
        vectors: bytes | memoryview,
        ivf: dict[str, Any] | None = None,
    ) -> tuple[dict[str, Any], int]:
        """Write a full generation beside the current one and atomically point ``manifest.json`` at it.

        Returns the new pointer and an open descriptor of its (empty) log. On failure before the
        rename, the new files are removed and the previous generation is untouched.
        """
        vec_name, rows_name, log_name = generation_files(generation)
        log_fd: int | None = None
        renamed = False
        try:
            vec_info = self._write_file(vec_name, [vectors])
            rows_info = self._write_file(rows_name, [encode_rows(rows, ivf)])
            rows_info["count"] = len(rows)
            log_fd = os.open(self._path(log_name), os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND | _BINARY, 0o644)
            os.fsync(log_fd)
            pointer = {
                "kind": KIND,
                "format": FORMAT,
                "generation": generation,
                "manifest": manifest,
                "vectors": vec_info,
                "rows": rows_info,
                "log": log_name,
            }
            body = dict(pointer, checksum=hashlib.sha256(_canonical(pointer)).hexdigest())
            self._write_file(POINTER_TMP, [json.dumps(body, indent=1, ensure_ascii=True).encode("ascii")])
            _fsync_dir(self.location)  # the new files exist before anything names them
            os.replace(self._path(POINTER_TMP), self._path(POINTER))
            renamed = True
            _fsync_dir(self.location)
        except BaseException as exc:
            if not renamed:
                if log_fd is not None:
                    os.close(log_fd)
                for name in (vec_name, rows_name, log_name, POINTER_TMP):
                    try:
                        os.unlink(self._path(name))
                    except OSError:
                        pass
                if isinstance(exc, OSError):
                    raise _storage_error(exc) from exc
                raise
            if not isinstance(exc, OSError):
                raise
            # Renamed but the directory fsync failed: the new generation is current in this process.
        assert log_fd is not None
        return pointer, log_fd

    def _remove_stale(self, keep: Iterable[str]) -> None:
        """Delete generation files a crash left behind (an unfinished or a superseded compaction)."""
        keep = set(keep)
        removed = False
        for name in os.listdir(self.location):
            if (name == POINTER_TMP or _GENERATION_FILE.match(name)) and name not in keep:
                try:
                    os.unlink(self._path(name))
                    removed = True
                except FileNotFoundError:
                    pass
        if removed:
            _fsync_dir(self.location)

    def _load(self, pointer: dict[str, Any], writer: bool) -> tuple[Snapshot, int, int, int]:
        """Read one generation. Returns the snapshot, the log descriptor, intact and actual log length.

        All three files are opened before any is read, so a compaction deleting them afterwards
        cannot hurt; one deleted before raises FileNotFoundError and the caller retries.
        """
        vec_info, rows_info = pointer["vectors"], pointer["rows"]
        log_flags = (os.O_RDWR | os.O_APPEND) if writer else os.O_RDONLY
        fds: list[int] = []
        digest: _Digest | None = None
        try:
            for name, flags in (
                (vec_info["file"], os.O_RDONLY),
                (rows_info["file"], os.O_RDONLY),
                (pointer["log"], log_flags),
            ):
                fds.append(os.open(self._path(name), flags | _BINARY))
            vectors = self._map(fds[0], vec_info)
            digest = _Digest(vectors, _algorithm(vec_info))  # checksums on another core while the rows parse
            rows_data = _read_all(fds[1])
            self._verify(rows_data, _checksum(rows_data, _algorithm(rows_info)), rows_info)
            rows, ivf = decode_snapshot_rows(rows_data)
            log_data = _read_all(fds[2])
            commits, intact = parse_log(log_data, self._path(pointer["log"]))
            self._verify(vectors, digest.result(), vec_info)
        except BaseException:
            if digest is not None:
                digest.result()
            for fd in fds:
                os.close(fd)
            raise
        os.close(fds[0])
        os.close(fds[1])
        snapshot = Snapshot(manifest=pointer["manifest"], rows=rows, vectors=vectors, log=commits, ivf=ivf)
        return snapshot, fds[2], intact, len(log_data)

    def _map(self, fd: int, info: dict[str, Any]) -> bytes | memoryview:
        """The vector matrix as a private copy-on-write mapping: hashing it is then the only pass over it.

        A read() copy plus a hash is two passes over the bytes; hashing the mapping is one (figures in
        docs/BENCHMARKS.md). Generation files are never modified after install (only unlinked), so the mapping
        stays valid; writes to it stay private.
        """
        size = os.fstat(fd).st_size
        if size != info["bytes"]:
            raise CorruptIndex(f"{self._path(info['file'])} holds {size} bytes, the manifest says {info['bytes']}")
        if size == 0:
            return b""
        return memoryview(mmap.mmap(fd, size, access=mmap.ACCESS_COPY))

    def _verify(self, data: bytes | memoryview, checksum: str, info: dict[str, Any]) -> None:
        if len(data) != info["bytes"]:
            raise CorruptIndex(f"{self._path(info['file'])} holds {len(data)} bytes, the manifest says {info['bytes']}")
        algorithm = _algorithm(info)
        if checksum != info.get(algorithm):
            raise CorruptIndex(f"{self._path(info['file'])} fails its {algorithm} checksum: the snapshot is damaged")

    def _require_writer(self) -> None:
        if self._read_only is None:
            raise IndexClosed(f"store {self.location!r} is not open; open it for writing first")
        if self._read_only:
            raise ReadOnlyIndex(f"index {self.location!r} was opened read-only")

    # ----- synchronous implementation (the async API below wraps these)

    def exists_sync(self) -> bool:
        """True when the folder holds an index pointer."""
        return os.path.isfile(self._path(POINTER))

    def _leftovers_with_data(self) -> list[str]:
        """Index files (no ``manifest.json`` naming them) that hold items: a lost manifest, not a crashed create.

        A crash during ``create`` leaves only an empty generation (empty vectors and log, rows of no row,
        maybe ``manifest.json.tmp``); those may be removed. Anything more is someone's data.
        """
        found = []
        for name in sorted(os.listdir(self.location)):
            if not _GENERATION_FILE.match(name):
                continue
            with open(self._path(name), "rb") as f:
                head = f.read(len(_EMPTY_ROWS) + 1)
            if head and not (name.endswith(".rows") and _EMPTY_ROWS.startswith(head)):
                found.append(name)
        return found

    @_os_errors
    def create_sync(self, manifest: dict[str, Any]) -> None:
        """Create generation 1, empty. Makes the folder if missing; one holding no index is fine.

        Refuses (``CorruptIndex``, changing nothing) a folder holding index files with items but no
        ``manifest.json``: their manifest was lost, and creating would delete them.
        """
        if self.exists_sync():
            raise IndexExists(f"an index already exists at {self.location!r}")
        parent = os.path.dirname(os.path.abspath(self.location))
        os.makedirs(self.location, exist_ok=True)
        _fsync_dir(parent)
        held = self._lock_fd is not None
        lock_fd = self._lock_fd if held else self._acquire_lock()
        try:
            if self.exists_sync():  # a racing creator won
                raise IndexExists(f"an index already exists at {self.location!r}")
            data = self._leftovers_with_data()
            if data:
                raise CorruptIndex(
                    f"{self.location!r} holds index files but no {POINTER} ({', '.join(data)}): its manifest is "
                    f"lost; not creating an index over them (restore {POINTER}, or move these files away)"
                )
            self._remove_stale(())
            _, log_fd = self._install(1, manifest, [], b"")
            os.close(log_fd)
        finally:
            if not held:
                os.close(lock_fd)  # type: ignore[arg-type]

    @_os_errors
    def open_sync(self, read_only: bool = False) -> Snapshot:
        """Load snapshot + log; a writer takes the lock and cuts a torn tail off the log."""
        if self._read_only is not None:
            self._release()
        if not os.path.isdir(self.location):
            raise IndexNotFound(f"no index at {self.location!r} (no such folder)")
        if read_only:
            return self._open_reader()
        self._read_pointer()  # IndexNotFound/CorruptIndex before creating a lock file anywhere
        self._lock_fd = self._acquire_lock()
        try:
            pointer = self._read_pointer()
            try:
                snapshot, log_fd, intact, size = self._load(pointer, writer=True)
            except FileNotFoundError as exc:  # nobody else may change the folder while we hold the lock
                raise CorruptIndex(f"index {self.location!r} is missing {exc.filename}") from exc
            self._log_fd = log_fd
            if intact < size:
                os.ftruncate(log_fd, intact)
                os.fsync(log_fd)
            self._remove_stale(generation_files(pointer["generation"]))
        except BaseException:
            self._release()
            raise
        self._pointer, self._log_size, self._read_only = pointer, intact, False
        return snapshot

    def _open_reader(self) -> Snapshot:
        """Lock-free load. A failure is final only if ``manifest.json`` still names the same generation.

        A compaction that swaps generations mid-read shows up as a vanished file (or, very rarely,
        bytes of two generations); both are retried against the new pointer.
        """
        damaged = False
        for _ in range(_READ_RETRIES):
            pointer = self._read_pointer()
            try:
                snapshot, log_fd, intact, _ = self._load(pointer, writer=False)
            except FileNotFoundError as exc:
                if self._read_pointer() == pointer:
                    raise CorruptIndex(f"index {self.location!r} is missing {exc.filename}") from exc
                continue
            except CorruptIndex:
                if self._read_pointer() != pointer:
                    damaged = False
                    continue
                if damaged:
                    raise
                damaged = True  # a writer may have been cutting a torn tail as we read: one more look
                continue
            os.close(log_fd)
            self._pointer, self._log_size, self._read_only = pointer, intact, True
            return snapshot
        raise CorruptIndex(f"index {self.location!r} kept changing under a reader; try again")

    @_os_errors
    def commit_sync(self, ops: Sequence[Op]) -> None:
        """Append one record and fsync; on failure the log is cut back to where it was.

        When even that cut fails (the disk went read-only), the next commit makes it first: appending
        after the failed record's bytes would turn a torn tail into damage before an intact record.
        """
        self._require_writer()
        if not ops:
            return
        record = frame(encode_commit(ops))
        fd, start = self._log_fd, self._log_size
        assert fd is not None
        if self._log_dirty:
            os.ftruncate(fd, start)
            os.fsync(fd)
            self._log_dirty = False
        try:
            _write_all(fd, record)
            os.fsync(fd)
        except OSError as exc:
            try:
                os.ftruncate(fd, start)
                os.fsync(fd)
            except OSError:
                self._log_dirty = True
            raise _storage_error(exc, f"the index at {self.location!r}") from exc
        self._log_size = start + len(record)

    @_os_errors
    def write_snapshot_sync(
        self,
        manifest: dict[str, Any],
        rows: Sequence[Row],
        vectors: bytes | memoryview,
        ivf: dict[str, Any] | None = None,
    ) -> None:
        """Compaction: install the next generation, switch to its empty log, then delete the old one."""
        self._require_writer()
        old = self._pointer
        assert old is not None
        pointer, log_fd = self._install(old["generation"] + 1, manifest, rows, vectors, ivf)
        old_log, self._log_fd, self._pointer, self._log_size = self._log_fd, log_fd, pointer, 0
        self._log_dirty = False
        # The new generation is installed: from here on nothing may report failure. Old files that
        # cannot be removed now are removed by the next writer's open (``_remove_stale``).
        try:
            if old_log is not None:
                os.close(old_log)
            for name in generation_files(old["generation"]):
                try:
                    os.unlink(self._path(name))
                except FileNotFoundError:
                    pass
            _fsync_dir(self.location)
        except OSError:
            pass

    @_os_errors
    def close_sync(self) -> None:
        """Release the lock and handles; safe to call twice."""
        self._release()

    @_os_errors
    def drop_sync(self) -> None:
        """Delete this index's files (and the folder when nothing else is left in it)."""
        if not os.path.isdir(self.location):
            self._release()
            return
        held = self._lock_fd is not None
        lock_fd = self._lock_fd if held else self._acquire_lock()
        gone = False  # until manifest.json is removed a failure leaves the index, and this store, as they were
        try:
            try:
                os.unlink(self._path(POINTER))  # from here on there is no index
            except FileNotFoundError:
                pass
            gone = True
            _fsync_dir(self.location)
            self._remove_stale(())
            try:
                os.unlink(self._path(LOCK))
            except FileNotFoundError:
                pass
        finally:
            if not held:
                os.close(lock_fd)  # type: ignore[arg-type]
            if gone:
                self._release()
        try:
            os.rmdir(self.location)
        except OSError:
            pass  # foreign files remain
        _fsync_dir(os.path.dirname(os.path.abspath(self.location)))

    # ----- the Store API

    async def exists(self) -> bool:
        return self.exists_sync()

    async def create(self, manifest: dict[str, Any]) -> None:
        self.create_sync(manifest)

    async def open(self, read_only: bool = False) -> Snapshot:
        return self.open_sync(read_only)

    async def commit(self, ops: Sequence[Op]) -> None:
        self.commit_sync(ops)

    async def write_snapshot(
        self, manifest: dict[str, Any], rows: Sequence[Row], vectors: bytes, ivf: dict[str, Any] | None = None
    ) -> None:
        self.write_snapshot_sync(manifest, rows, vectors, ivf)

    async def close(self) -> None:
        self.close_sync()

    async def drop(self) -> None:
        self.drop_sync()

    @property
    def read_only(self) -> bool | None:
        """True/False while open (reader/writer), None when closed."""
        return self._read_only

    @property
    def log_bytes(self) -> int:
        return self._log_size

    @property
    def snapshot_bytes(self) -> int:
        pointer = self._pointer
        if pointer is None:
            return 0
        return int(pointer["vectors"]["bytes"]) + int(pointer["rows"]["bytes"])

    def info(self) -> dict[str, Any]:
        on_disk = 0
        try:
            for entry in os.scandir(self.location):
                if entry.name in (POINTER, LOCK) or _GENERATION_FILE.match(entry.name):
                    on_disk += entry.stat().st_size
        except OSError:
            pass
        pointer = self._pointer
        return {
            "log_bytes": self.log_bytes,
            "snapshot_bytes": self.snapshot_bytes,
            "bytes_on_disk": on_disk,
            "path": os.path.abspath(self.location),
            "generation": None if pointer is None else pointer["generation"],
            "read_only": self._read_only,
        }


__all__ = ["FileStore", "frame", "generation_files", "parse_log"]
