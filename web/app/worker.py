"""The page's Python entry point, run by PyScript inside a Web Worker.

Why a worker: importing pyapp, reopening an index or embedding text takes hundreds of
milliseconds to seconds; on the main thread that would freeze the page. The main thread calls the
functions in ``__export__`` through PyScript's ``sync`` channel and gets JSON strings back.
"""

from __future__ import annotations

import ast
import inspect
import json
import os
import sys
import traceback
from typing import Any

if os.getcwd() not in sys.path:  # pyapp.zip is unpacked into the working directory by the config
    sys.path.insert(0, os.getcwd())

_BOOTED: dict[str, Any] = {}


def _build_info() -> dict[str, Any]:
    try:
        with open("clinvec_build.json") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {}


async def _load_numpy(build: dict[str, Any]) -> bool:
    """Load numpy only when the build vendored its wheel; otherwise the JS kernel runs."""
    if not build.get("numpy"):
        return False
    try:
        import pyodide_js  # type: ignore[import-not-found]

        await pyodide_js.loadPackage("numpy")
        import numpy  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - fall back to the JS kernel, but say why
        print(f"clinvec: numpy did not load ({exc}); using the JS kernel", file=sys.stderr)
        return False
    return True


async def boot() -> str:
    """Import pyapp and report the runtime (JSON): kernel, versions, or the error that stopped it."""
    if _BOOTED:
        return json.dumps(_BOOTED)
    try:
        import pyodide  # type: ignore[import-not-found]

        build = _build_info()
        await _load_numpy(build)
        import pyapp
        from pyapp.kernels import default_kernel

        kernel = type(default_kernel(4)).__name__
        _BOOTED.update({
            "kernel": "numpy" if kernel == "NumpyKernel" else "js",
            "kernel_class": kernel,
            "python": sys.version.split()[0],
            "pyodide": pyodide.__version__,
            "pyapp": pyapp.__version__,
            "build": {k: build.get(k) for k in ("versions", "numpy", "wheels")},
        })
    except Exception as exc:  # noqa: BLE001 - the page shows this message
        traceback.print_exc()
        return json.dumps({"error": f"{type(exc).__name__}: {exc}"})
    return json.dumps(_BOOTED)


async def run_python(code: str) -> str:
    """Test hook: run ``code`` (top-level ``await`` allowed); returns JSON of its ``result`` variable.

    The page exposes this only when opened with ``?test`` (tests/browser/ drive the worker with it).
    """
    namespace = {"__name__": "__clinvec_test__"}
    try:
        compiled = compile(code, "<test>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        outcome = eval(compiled, namespace)  # noqa: S307 - test hook, code comes from the test suite
        if inspect.iscoroutine(outcome):
            await outcome
        return json.dumps({"ok": True, "result": namespace.get("result")})
    except BaseException as exc:  # noqa: BLE001 - report everything to the test
        return json.dumps({
            "ok": False,
            "error": type(exc).__name__,
            "module": type(exc).__module__,
            "message": str(exc),
            "traceback": traceback.format_exc(),
        })




# ---------------------------------------------------------------------- the notes app (web/app/app.mjs)
# One open LocalIndex on IndexedDB per tab, embedded by the page's model bundle (WebEmbedder) or, when the
# page serves no bundle, by the hashing embedder (lexical "semantic" scores; the page says so). Every
# function returns JSON: a result object, or {"error": message, "kind": exception name} for the page.

_APP: dict[str, Any] = {}
_MODES = {"hybrid": "hybrid", "semantic": "vector", "keyword": "keyword"}
_MAX_TEXT = 20_000


def _fail(exc: BaseException) -> str:
    """A user-facing error (the page renders it as text); unexpected ones also go to the console."""
    from pyapp.errors import ClinvecError

    if not isinstance(exc, ClinvecError):
        traceback.print_exc()
    return json.dumps({"error": str(exc) or type(exc).__name__, "kind": type(exc).__name__})


class _Progress:
    """Posts progress to the page over a BroadcastChannel (the worker cannot call into the page:
    PyScript's worker-to-main calls need SharedArrayBuffer sync, which this config turns off)."""

    def __init__(self, channel: str | None) -> None:
        import js  # type: ignore[import-not-found]

        self._channel = js.BroadcastChannel.new(channel) if channel else None
        self._last: tuple[str, int] = ("", -1)

    def post(self, task: str, phase: str, done: int, total: int) -> None:
        if self._channel is None:
            return
        pct = int(100 * done / total) if total else -1
        if (phase, pct) == self._last and 0 < done < total:
            return  # nothing new to draw
        self._last = (phase, pct)
        self._channel.postMessage(json.dumps({"task": task, "phase": phase, "done": done, "total": total}))

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()


def _slug(path: str) -> str:
    name = [p for p in path.split("/") if p][-1] if path.strip("/") else "model"
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name.lower())


def _index_info(index: Any, embedder: Any) -> dict[str, Any]:
    return {
        "location": index.location,
        "read_only": index.read_only,
        "embedder": embedder.identity,
        "embedder_kind": "onnx" if hasattr(embedder, "bundle_url") else "hashing",
        "threads": getattr(embedder, "threads", None),
    }


async def app_open(options_json: str) -> str:
    """Load the model bundle (progress on ``channel``), then open or create the notes index.

    Options: ``root`` (the page's base URL), ``model`` (bundle folder under it, e.g. "models/minilm/"),
    ``variant`` ("int8" | "fp32"), ``index`` (IndexedDB name prefix), ``channel`` (BroadcastChannel name).
    A missing bundle (HTTP 404) falls back to the hashing embedder; a bundle that fails its checks is an error.
    """
    try:
        from pyapp import IndexLocked, LocalIndex
        from pyapp.browser.web_embedder import BundleNotFound, WebEmbedder
        from pyapp.embed.hashing import HashingEmbedder

        opts = json.loads(options_json)
        if _APP.get("index") is not None:
            return json.dumps({**_APP["info"], "reopened": True})
        progress = _Progress(opts.get("channel"))
        model = str(opts.get("model") or "models/minilm/")
        variant = str(opts.get("variant") or "int8")
        notice = None
        try:
            embedder: Any = await WebEmbedder.load(
                str(opts["root"]).rstrip("/") + "/" + model.lstrip("/"),
                variant=variant,
                progress=lambda phase, done, total: progress.post("model", phase, done, total),
            )
            base = str(opts.get("index") or f"notes-{_slug(model)}")
            location = f"{base}-{variant}"
        except BundleNotFound:
            embedder = HashingEmbedder(dims=256)
            location = str(opts.get("index") or "notes") + "-hashing"
            notice = (f"No model bundle at {model} (run `python -m export --model minilm`): semantic search "
                      "uses the hashing embedder, which matches words, not meaning.")
        finally:
            progress.close()
        try:
            index = await LocalIndex.create(location, indexed=["ward", "year"], embedder=embedder, exist_ok=True)
        except IndexLocked:
            index = await LocalIndex.open(location, read_only=True, embedder=embedder)
            notice = "This index is open for writing in another tab: this tab is read-only."
        _APP.update({"index": index, "embedder": embedder})
        _APP["info"] = {**_index_info(index, embedder), "notice": notice, "items": await index.count()}
        return json.dumps(_APP["info"])
    except Exception as exc:  # noqa: BLE001 - the page shows the message
        return _fail(exc)


def _index() -> Any:
    index = _APP.get("index")
    if index is None:
        raise RuntimeError("the notes index is not open yet")
    return index


def _clean_metadata(raw: Any) -> dict[str, Any]:
    """ward/author as trimmed strings, year as an integer; empty fields are left out."""
    from pyapp.errors import InvalidInput

    meta: dict[str, Any] = {}
    raw = raw if isinstance(raw, dict) else {}
    for key in ("ward", "author"):
        value = str(raw.get(key) or "").strip()
        if value:
            meta[key] = value[:200]
    year = str(raw.get("year") or "").strip()
    if year:
        if not year.lstrip("-").isdigit():
            raise InvalidInput(f"year must be a whole number, got {year!r}")
        meta["year"] = int(year)
    return meta


async def app_add(note_json: str) -> str:
    """Embed and store one note ``{"text", "metadata": {"ward", "year", "author"}}``; returns its id."""
    try:
        import js  # type: ignore[import-not-found]

        from pyapp.errors import InvalidInput

        note = json.loads(note_json)
        text = str(note.get("text") or "").strip()
        if not text:
            raise InvalidInput("a note needs some text")
        if len(text) > _MAX_TEXT:
            raise InvalidInput(f"a note may hold at most {_MAX_TEXT} characters")
        started = js.performance.now()
        metadata = _clean_metadata(note.get("metadata"))
        item_id = await _index().insert(None, metadata=metadata, text=text)
        if _APP.get("wards") is not None and metadata.get("ward"):
            _APP["wards"].add(metadata["ward"])
        return json.dumps({"id": item_id, "ms": round(js.performance.now() - started, 1),
                           "items": await _index().count()})
    except Exception as exc:  # noqa: BLE001
        return _fail(exc)


def _filter(ward: Any, filter_json: Any) -> dict[str, Any] | None:
    from pyapp.errors import InvalidFilter

    parts: list[dict[str, Any]] = []
    if ward:
        parts.append({"ward": str(ward)})
    text = str(filter_json or "").strip()
    if text:
        try:
            extra = json.loads(text)
        except ValueError as exc:
            raise InvalidFilter(f"the filter is not valid JSON: {exc}") from None
        if not isinstance(extra, dict):
            raise InvalidFilter('the filter must be a JSON object such as {"year": {"$gte": 2020}}')
        if extra:
            parts.append(extra)
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"$and": parts}


def _result(hit: Any) -> dict[str, Any]:
    return {
        "id": hit.id,
        "score": hit.score,
        "vector_score": hit.vector_score,
        "keyword_score": hit.keyword_score,
        "text": hit.item.text,
        "metadata": hit.item.metadata,
    }


async def app_search(query_json: str) -> str:
    """Search: ``{"text", "mode": "hybrid"|"semantic"|"keyword", "ward", "filter" (JSON text), "top_k"}``."""
    try:
        import js  # type: ignore[import-not-found]

        from pyapp.errors import InvalidInput

        q = json.loads(query_json)
        text = str(q.get("text") or "").strip()
        if not text:
            raise InvalidInput("type something to search for")
        mode = _MODES.get(str(q.get("mode") or "hybrid"))
        if mode is None:
            raise InvalidInput(f"unknown search mode {q.get('mode')!r}")
        top_k = max(1, min(100, int(q.get("top_k") or 10)))
        index = _index()
        started = js.performance.now()
        hits = await index.query(text=text, top_k=top_k, filter=_filter(q.get("ward"), q.get("filter")), mode=mode)
        return json.dumps({"results": [_result(h) for h in hits], "mode": q.get("mode") or "hybrid",
                           "ms": round(js.performance.now() - started, 1), "items": await index.count()})
    except Exception as exc:  # noqa: BLE001
        return _fail(exc)


async def app_delete(item_id: str) -> str:
    """Delete one note by id; ``{"deleted": bool}``."""
    try:
        index = _index()
        deleted = await index.delete(str(item_id))
        _APP["wards"] = None  # the ward may have gone with the note: rescan on the next list
        return json.dumps({"deleted": deleted, "items": await index.count()})
    except Exception as exc:  # noqa: BLE001
        return _fail(exc)


async def app_list(options_json: str) -> str:
    """The newest notes (``{"limit"}``), newest first, and the distinct wards for the filter select."""
    try:
        opts = json.loads(options_json or "{}")
        limit = max(1, min(200, int(opts.get("limit") or 10)))
        index = _index()
        total = await index.count()
        ids = await index.ids()
        newest = []
        for item_id in reversed(ids[-limit:]):
            item = await index.get(item_id)
            if item is not None:
                newest.append({"id": item.id, "text": item.text, "metadata": item.metadata})
        return json.dumps({"notes": newest, "items": total, "wards": await _wards(index, ids)})
    except Exception as exc:  # noqa: BLE001
        return _fail(exc)


async def _wards(index: Any, ids: list[str]) -> list[str]:
    """Distinct ward values for the filter select: scanned once (and after deletes), then kept up to date
    by ``app_add``; an index above 5,000 notes gets no list (the JSON filter still works)."""
    wards = _APP.get("wards")
    if wards is None:
        wards = set()
        if len(ids) <= 5_000:
            for item in await index.list():
                ward = item.metadata.get("ward")
                if isinstance(ward, str) and ward:
                    wards.add(ward)
        _APP["wards"] = wards
    return sorted(wards, key=str.lower)


async def app_stats() -> str:
    """What the stats panel shows: items, kernel, storage (persisted, usage), embedder."""
    try:
        index = _index()
        stats = await index.stats()
        embedder = _APP["embedder"]
        return json.dumps({
            "items": stats["items"],
            "kernel": stats["kernel"],
            "store": stats["store"],
            "database": stats.get("database"),
            "persisted": stats.get("persisted"),
            "usage_bytes": stats.get("usage_bytes"),
            "quota_bytes": stats.get("quota_bytes"),
            "read_only": stats["read_only"],
            "embedder": embedder.identity,
            "threads": getattr(embedder, "threads", None),
        })
    except Exception as exc:  # noqa: BLE001
        return _fail(exc)


async def app_load_demo(channel: str) -> str:
    """Embed and store the bundled demo notes (pyapp/data/sample_notes.jsonl), reporting progress."""
    progress = _Progress(channel or None)
    try:
        import js  # type: ignore[import-not-found]

        from pyapp.demo import sample_notes

        notes = sample_notes()
        index = _index()
        started = js.performance.now()
        progress.post("demo", "embed", 0, len(notes))
        ids = await index.upsert_many(
            [{"id": n["id"], "text": n["text"], "metadata": n.get("metadata", {})} for n in notes],
            progress=lambda done, total: progress.post("demo", "embed", done, total),
        )
        _APP["wards"] = None
        return json.dumps({"loaded": len(ids), "items": await index.count(),
                           "ms": round(js.performance.now() - started, 1)})
    except Exception as exc:  # noqa: BLE001
        return _fail(exc)
    finally:
        progress.close()


__export__ = ["boot", "run_python", "app_open", "app_add", "app_search", "app_delete", "app_list", "app_stats",
              "app_load_demo"]
