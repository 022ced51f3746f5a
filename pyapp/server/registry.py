"""One open ``LocalIndex`` per index name, held for the server's lifetime.

Why hold them open: opening reads a snapshot and replays the log (seconds for a large index), and the file
store's writer lock (``flock``) belongs to the open index, so the server is the one writer of every index it
serves; another process (the CLI) holding an index makes ``get`` raise ``IndexLocked`` (HTTP 409).

Other server modules (routes, sync) reach the running server's registry through the module-level ``get``.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from ..embed.base import Embedder
from ..errors import IndexNotFound, InvalidInput
from ..index import LocalIndex

# A name is one folder under the root: letters, digits, '.', '_', '-', starting with a letter or digit, so
# '..', hidden names, separators and drive letters can never be formed.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
_NAME = re.compile(NAME_PATTERN)


def check_name(name: Any) -> str:
    """``name`` if it is a valid index name, else ``InvalidInput`` (no path can escape the root)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput("an index name is 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit")
    return name


class Registry:
    """The indexes under ``root``, opened on first use and kept open; create and drop go through it too."""

    def __init__(self, root: str | Path, embedder: Embedder | None = None) -> None:
        self.root = Path(root)
        self.embedder = embedder
        self._open: dict[str, LocalIndex] = {}
        self._lock = asyncio.Lock()  # open, create and drop one at a time: never two LocalIndexes for one name

    def location(self, name: str) -> str:
        return str(self.root / check_name(name))

    def _embedder_for(self, manifest: dict[str, Any]) -> Embedder | None:
        """The server's model when it made this index's vectors (same model and variant), else none."""
        recorded, mine = manifest.get("embedder"), self.embedder
        if not recorded or mine is None:
            return None
        same = all(recorded.get(k) == mine.identity.get(k) for k in ("model", "variant"))
        return mine if same and manifest.get("dims") == mine.dims else None

    async def get(self, name: str) -> LocalIndex:
        """The open index ``name`` (``IndexNotFound`` when there is none, ``IndexLocked`` when another process
        writes it)."""
        index = self._open.get(name)
        if index is not None:
            return index
        location = self.location(name)
        async with self._lock:
            index = self._open.get(name)
            if index is None:
                index = await LocalIndex.open(location)
                embedder = self._embedder_for(index.manifest)
                if embedder is not None:
                    index.use_embedder(embedder)
                self._open[name] = index
        return index

    async def create(self, name: str, embed: bool = False, **config: Any) -> LocalIndex:
        """Create ``name`` (``embed``: with the server's model, which sets ``dims``) and keep it open."""
        location = self.location(name)
        if embed and self.embedder is None:
            raise InvalidInput("this server has no model (start it with --model DIR) to embed with")
        async with self._lock:
            if config.get("exist_ok") and name in self._open:
                return self._open[name]
            index = await LocalIndex.create(location, embedder=self.embedder if embed else None, **config)
            self._open[name] = index
        return index

    async def drop(self, name: str) -> bool:
        """Close and delete ``name``; False when it did not exist."""
        location = self.location(name)
        async with self._lock:
            index = self._open.pop(name, None)
            if index is not None:
                await index.close()
            elif not await LocalIndex.exists(location):
                return False
            await LocalIndex.drop(location)
        return True

    async def names(self) -> list[str]:
        """Every index under the root, sorted."""
        if not self.root.is_dir():
            return []
        found = []
        for path in sorted(self.root.iterdir()):
            if _NAME.fullmatch(path.name) and path.is_dir() and await LocalIndex.exists(str(path)):
                found.append(path.name)
        return found

    async def close(self) -> None:
        async with self._lock:
            opened, self._open = list(self._open.values()), {}
        for index in opened:
            await index.close()


_current: Registry | None = None


def install(registry: Registry | None) -> None:
    """Make ``registry`` the one the module-level ``get`` answers from (the app does this at start-up)."""
    global _current
    _current = registry


def current() -> Registry:
    if _current is None:
        raise IndexNotFound("no index registry is running (start the server with `python -m pyapp serve-api ROOT`)")
    return _current


async def get(name: str) -> LocalIndex:
    """The running server's open index ``name``: the hook other server modules (sync, bundles) build on."""
    return await current().get(name)
