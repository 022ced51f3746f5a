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
        _BOOTED.update(
            {
                "kernel": "numpy" if kernel == "NumpyKernel" else "js",
                "kernel_class": kernel,
                "python": sys.version.split()[0],
                "pyodide": pyodide.__version__,
                "pyapp": pyapp.__version__,
                "build": {k: build.get(k) for k in ("versions", "numpy", "wheels")},
            }
        )
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
        return json.dumps(
            {
                "ok": False,
                "error": type(exc).__name__,
                "module": type(exc).__module__,
                "message": str(exc),
                "traceback": traceback.format_exc(),
            }
        )


# ---------------------------------------------------------------------- the notes app (web/app/app.mjs)
# The app's rules live in pyapp.notes.NotesService (tested on CPython); this part only turns the page's JSON
# into Python values and back, loads the browser's embedder, and posts progress. Every function returns
# JSON: a result object, or {"error": message, "kind": exception name} for the page.

# The open service, and its index and embedder (tests reach them through __main__._APP).
_APP: dict[str, Any] = {}


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


def _now_ms() -> float:
    import js  # type: ignore[import-not-found]

    return float(js.performance.now())


def _service() -> Any:
    service = _APP.get("service")
    if service is None:
        raise RuntimeError("the notes index is not open yet")
    return service


async def app_open(options_json: str) -> str:
    """Load the model bundle (progress on ``channel``), then open or create the notes index.

    Options: ``root`` (the page's base URL), ``model`` (bundle folder under it, e.g. "models/minilm/"),
    ``variant`` ("int8" | "fp32"), ``backend`` ("wasm" | "webgpu"), ``index`` (IndexedDB name prefix),
    ``channel`` (BroadcastChannel name). ``model`` null means the build lists no bundle (web/app/models.mjs).
    A missing bundle (HTTP 404) falls back to the hashing embedder; a bundle that fails its checks is an error.
    """
    try:
        from pyapp.browser.web_embedder import BundleNotFound
        from pyapp.notes import NotesService, choose_embedder

        if _APP.get("service") is not None:
            return json.dumps({**await _service().info(), "reopened": True})
        opts = json.loads(options_json)
        progress = _Progress(opts.get("channel"))
        started = _now_ms()
        listed_none = "model" in opts and opts["model"] is None
        model = "models/" if listed_none else str(opts.get("model") or "models/minilm/")
        variant = str(opts.get("variant") or "int8")
        try:
            choice = await choose_embedder(
                _model_loader(opts, model, variant, progress, listed_none),
                missing=(BundleNotFound,),
                model=model,
                variant=variant,
                index=opts.get("index") or None,
            )
        finally:
            progress.close()
        loaded = _now_ms()
        service = await NotesService.open(choice.location, choice.embedder, notice=choice.notice)
        _APP.update({"service": service, "index": service.index, "embedder": service.embedder})
        # Boot phase timings for bench/browser_bench.py (the page turns them into performance marks).
        timings = {"model_ms": loaded - started, "index_ms": _now_ms() - loaded}
        runtime = getattr(service.embedder, "runtime", None)  # backend and why (models.mjs shows it)
        return json.dumps({**await service.info(), "timings": timings, "runtime": runtime})
    except Exception as exc:  # noqa: BLE001 - the page shows the message
        return _fail(exc)


def _model_loader(opts: dict[str, Any], model: str, variant: str, progress: Any, listed_none: bool) -> Any:
    """The bundle load for ``choose_embedder``: onnxruntime-web on the chosen backend, or (no bundle listed)
    an immediate ``BundleNotFound``, so the hashing fallback is taken, and said, without a request."""
    from pyapp.browser.web_embedder import BundleNotFound, WebEmbedder

    async def nothing_listed() -> Any:
        raise BundleNotFound("models/index.json lists no model bundle")

    if listed_none:
        return nothing_listed
    return lambda: WebEmbedder.load(
        str(opts["root"]).rstrip("/") + "/" + model.lstrip("/"),
        variant=variant,
        progress=lambda phase, done, total: progress.post("model", phase, done, total),
        backend=str(opts.get("backend") or "wasm"),
    )


async def app_add(note_json: str, channel: str = "") -> str:
    """Chunk, embed and store one note ``{"text", "metadata": {"ward", "year", "author"}, "id"?}`` as a
    document; progress (chunks embedded) goes to ``channel``. Returns its id and chunk count."""
    progress = _Progress(channel or None)
    try:
        note = json.loads(note_json)
        return json.dumps(
            await _service().add(note, progress=lambda done, total: progress.post("add", "embed", done, total))
        )
    except Exception as exc:  # noqa: BLE001
        return _fail(exc)
    finally:
        progress.close()


async def app_get(note_id: str) -> str:
    """The whole note ``{"id", "text", "metadata", "chunks"}`` (text exactly as stored), for "Open note"."""
    try:
        note = await _service().get(str(note_id))
        if note is None:
            return json.dumps({"error": f"Note {note_id} no longer exists.", "kind": "NotFound"})
        return json.dumps(note)
    except Exception as exc:  # noqa: BLE001
        return _fail(exc)


async def app_search(query_json: str) -> str:
    """Search: ``{"text", "mode": "hybrid"|"semantic"|"keyword", "ward", "filter" (JSON text), "top_k"}``."""
    try:
        return json.dumps(await _service().search(json.loads(query_json)))
    except Exception as exc:  # noqa: BLE001
        return _fail(exc)


async def app_delete(item_id: str) -> str:
    """Delete one note by id; ``{"deleted": bool}``."""
    try:
        return json.dumps(await _service().delete(str(item_id)))
    except Exception as exc:  # noqa: BLE001
        return _fail(exc)


async def app_list(options_json: str) -> str:
    """The newest notes (``{"limit"}``), newest first, and the distinct wards for the filter select."""
    try:
        opts = json.loads(options_json or "{}")
        return json.dumps(await _service().overview(opts.get("limit") if isinstance(opts, dict) else None))
    except Exception as exc:  # noqa: BLE001
        return _fail(exc)


async def app_suggest_kind(request_json: str) -> str:
    """``{"text"}`` -> a type for the draft (``NotesService.suggest_kind``), or what it still needs."""
    try:
        return json.dumps(await _service().suggest_kind(json.loads(request_json).get("text")))
    except Exception as exc:  # noqa: BLE001
        return _fail(exc)


async def app_kinds() -> str:
    """``{"kinds": [...]}``: the note types given so far, for the add form's Type list."""
    try:
        return json.dumps({"kinds": await _service().kinds()})
    except Exception as exc:  # noqa: BLE001
        return _fail(exc)


async def app_stats() -> str:
    """What the stats panel shows: items, kernel, storage (persisted, usage), embedder."""
    try:
        return json.dumps(await _service().stats())
    except Exception as exc:  # noqa: BLE001
        return _fail(exc)


async def app_load_demo(channel: str) -> str:
    """Embed and store the bundled demo notes (pyapp/data/sample_notes.jsonl), reporting progress."""
    progress = _Progress(channel or None)
    try:
        return json.dumps(await _service().load_demo(lambda done, total: progress.post("demo", "embed", done, total)))
    except Exception as exc:  # noqa: BLE001
        return _fail(exc)
    finally:
        progress.close()


# ---------------------------------------------------------------------- backup and restore (web/app/backup.mjs)
# The rules (file name, plan, merge restore) live in pyapp.bundle.backup; this part moves bytes across the bridge.


async def _page_bytes(data: Any) -> bytes:
    """A bundle the page sent: a ``Uint8Array``/``ArrayBuffer`` or a ``Blob``/``File``, as Python bytes."""
    import js  # type: ignore[import-not-found]

    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    if hasattr(data, "arrayBuffer"):
        data = await data.arrayBuffer()
    return bytes(js.Uint8Array.new(data).to_bytes())


async def app_backup(channel: str) -> str:
    """Write the whole index as a bundle, post it as a Blob on ``channel`` (progress before it), and return
    ``{"name", "items", "bytes"}``; the page saves the Blob under that name."""
    import js  # type: ignore[import-not-found]
    from pyodide.ffi import to_js  # type: ignore[import-not-found]

    progress = _Progress(channel or None)
    try:
        from pyapp.browser._bridge import to_u8
        from pyapp.bundle import MEDIA_TYPE
        from pyapp.bundle.backup import backup_bytes

        data, info = await backup_bytes(_service().index, lambda d, t: progress.post("backup", "write", d, t))
        blob = js.Blob.new(js.Array.of(to_u8(data)), to_js({"type": MEDIA_TYPE}))
        out = js.BroadcastChannel.new(channel)
        out.postMessage(blob)
        out.close()
        return json.dumps(info)
    except Exception as exc:  # noqa: BLE001
        return _fail(exc)
    finally:
        progress.close()


async def app_restore_plan(data: Any) -> str:
    """Verify a bundle and say what restoring it would do (``message``, ``confirm``, counts); changes nothing."""
    try:
        from pyapp.bundle.backup import restore_plan

        return json.dumps(await restore_plan(_service().index, await _page_bytes(data)))
    except Exception as exc:  # noqa: BLE001
        return _fail(exc)


async def app_restore(data: Any, channel: str) -> str:
    """Merge a bundle into the index, all or nothing, posting progress on ``channel``."""
    progress = _Progress(channel or None)
    try:
        from pyapp.bundle.backup import restore_bytes

        raw = await _page_bytes(data)
        outcome = await restore_bytes(_service().index, raw, lambda d, t: progress.post("restore", "write", d, t))
        return json.dumps(outcome)
    except Exception as exc:  # noqa: BLE001
        return _fail(exc)
    finally:
        progress.close()


# ---------------------------------------------------------------------- every tab is a full app (web/app/tabs.mjs)
async def app_refresh() -> str:
    """Apply the commits other tabs made (the page calls this when one announces a change):
    ``{"applied": commits applied (0: nothing new), "items": count}``."""
    try:
        index = _service().index
        return json.dumps({"applied": await index.refresh(), "items": await index.count()})
    except Exception as exc:  # noqa: BLE001
        return _fail(exc)


async def app_tabs() -> str:
    """What the tab-status line needs: whether this tab writes (and why not), and the names to follow:
    ``channel`` (BroadcastChannel of change announcements), ``writer_lock`` (Web Lock held by each writing tab)
    and ``writer_id`` (this tab's own announcements, to ignore)."""
    try:
        service = _service()
        stats = await service.index.stats()
        return json.dumps(
            {
                "read_only": stats["read_only"],
                "shared_writers": bool(stats.get("shared_writers")),
                "channel": stats.get("channel"),
                "writer_lock": stats.get("writer_lock"),
                "writer_id": stats.get("writer_id"),
                "notice": service.notice,
            }
        )
    except Exception as exc:  # noqa: BLE001
        return _fail(exc)


# ---------------------------------------------------------------------- files in (web/app/import.mjs)
# The rules live in pyapp.notes_import.NotesImport (tested on CPython); the page drives the loop one file at a
# time (stage -> optional CSV mapping -> commit), so its Cancel stops between files.


def _importer() -> Any:
    from pyapp.notes_import import NotesImport

    importer = _APP.get("importer")
    if importer is None or importer.service is not _service():
        importer = _APP["importer"] = NotesImport(_service())
    return importer


def _file_fail(exc: BaseException) -> str:
    """``_fail`` plus the file and line a ``FileError`` names (the page lists bad files by name and line)."""
    out = json.loads(_fail(exc))
    for key in ("file", "line"):
        if getattr(exc, key, None) is not None:
            out[key] = getattr(exc, key)
    return json.dumps(out)


async def app_import_stage(data: Any, name: str, pages_json: str = "") -> str:
    """Hand one file to the worker (its bytes cross once, or a PDF's page texts as a JSON list); returns
    ``{"name", "kind", "bytes", "preview"}`` (``preview``: a CSV's columns, first rows and suggested mapping)."""
    try:
        pages = json.loads(pages_json) if pages_json else None
        raw = b"" if pages is not None else await _page_bytes(data)
        return json.dumps(_importer().stage(raw, str(name), pages))
    except Exception as exc:  # noqa: BLE001
        return _file_fail(exc)


async def app_import_commit(options_json: str, channel: str = "") -> str:
    """Write the staged file in one commit (``{"mapping"}``: a CSV's confirmed columns). Progress goes to
    ``channel`` in hundredths of a note (``done``/``total`` integers: a group of notes embeds in steps)."""
    progress = _Progress(channel or None)
    try:
        opts = json.loads(options_json or "{}")
        importer = _importer()
        name = importer.staged.name if importer.staged is not None else ""
        return json.dumps(
            await importer.commit(
                opts.get("mapping") if isinstance(opts, dict) else None,
                lambda done, total: progress.post(name, "import", int(done * 100), total * 100),
            )
        )
    except Exception as exc:  # noqa: BLE001
        return _file_fail(exc)
    finally:
        progress.close()


async def app_import_drop() -> str:
    """Forget the staged file (the user skipped its CSV mapping, or cancelled)."""
    try:
        _importer().drop()
        return json.dumps({"dropped": True})
    except Exception as exc:  # noqa: BLE001
        return _fail(exc)


# ---------------------------------------------------------------------- fill-mask (web/app/fillmask.mjs)
# The rules live in pyapp.embed.masked_lm (the server's code); this part finds the fill-mask graph of the bundle
# the page loaded, opens it on first use (fp32, the server's default; progress on a channel) and converts JSON.


def _fill_mask_source() -> tuple[Any, str]:
    """The page's embedder when its bundle has a fill-mask graph, else None and why not (for the panel)."""
    from pyapp.embed.bundle import has_mlm

    embedder = _service().embedder
    manifest = getattr(embedder, "manifest", None)
    if not isinstance(manifest, dict) or not hasattr(embedder, "bundle_url"):
        return None, "No model bundle is loaded (the hashing embedder has no language model)."
    if not has_mlm(manifest):
        return None, f"The loaded model ({manifest.get('model')}) has no masked-LM head."
    return embedder, ""


async def app_fill_mask_info() -> str:
    """``{"available", "model", "reason"}``: whether the "Suggest a word" panel can work with this bundle."""
    try:
        embedder, reason = _fill_mask_source()
        model = embedder.manifest.get("model") if embedder is not None else None
        return json.dumps({"available": embedder is not None, "model": model, "reason": reason})
    except Exception as exc:  # noqa: BLE001
        return _fail(exc)


async def app_fill_mask(request_json: str, channel: str = "") -> str:
    """``{"text", "top_k"}`` -> ``{"masks": [[{"token", "probability"}, ...] per [MASK]], "variant", "ms"}``;
    the first call downloads, verifies and opens the fill-mask graph (progress on ``channel``)."""
    progress = _Progress(channel or None)
    try:
        from pyapp.browser.web_masked_lm import WebMaskedLM
        from pyapp.errors import InvalidInput

        request = json.loads(request_json)
        if not isinstance(request, dict):
            raise InvalidInput("the request must be a JSON object")
        embedder, reason = _fill_mask_source()
        if embedder is None:
            raise InvalidInput(reason)
        model = _APP.get("mlm")
        if model is None:
            model = await WebMaskedLM.load(
                embedder.bundle_url,
                manifest=embedder.manifest,
                tokenizer=embedder.tokenizer,
                progress=lambda phase, done, total: progress.post("fill-mask", phase, done, total),
            )
            _APP["mlm"] = model
        started = _now_ms()
        masks = await model.predict(request.get("text"), top_k=request.get("top_k", 5))
        return json.dumps(
            {
                "masks": [[{"token": token, "probability": prob} for token, prob in row] for row in masks],
                "variant": model.variant,
                "ms": _now_ms() - started,
            }
        )
    except Exception as exc:  # noqa: BLE001
        return _fail(exc)
    finally:
        progress.close()


# ---------------------------------------------------------------------- sync with the server (web/app/sync.mjs)
# The engine and the page's rules live in pyapp.sync (tested on CPython); the bundles travel by fetch from here.


async def app_sync(options_json: str, channel: str = "") -> str:
    """Sync the notes index with the server index ``name`` at ``api`` (same origin) from the saved ``state``
    (JSON, "" the first time); progress ("push", "pull", "apply") goes to ``channel``. Returns the summary,
    the new state (the page saves it), counts and the log of overwritten versions."""
    progress = _Progress(channel or None)
    try:
        from pyapp.browser.fetch_peer import FetchPeer
        from pyapp.sync.page import page_sync

        opts = json.loads(options_json)
        peer = FetchPeer(str(opts["api"]), str(opts["name"]))
        outcome = await page_sync(
            _service().index,
            peer,
            opts.get("state") or "",
            lambda phase, done, total: progress.post("sync", phase, done, total),
        )
        return json.dumps(outcome)
    except Exception as exc:  # noqa: BLE001 - the page shows the message
        return _fail(exc)
    finally:
        progress.close()


# ---------------------------------------------------------------------- classify (web/app/classify.mjs)
# The rules live in pyapp.embed.text_classifier (the server's code). The classifier bundle is found without a
# failing request: ``?classifier=models/x/`` names it, else the build's precache list says whether
# ``models/classifier/`` holds one. Its graph is downloaded and verified on first use (progress on a channel).
_CLASSIFIER_DEFAULT = "models/classifier/"


async def _classifier_listed(root: str, folder: str) -> bool:
    """Whether the build's precache list (vendor/precache.json) holds ``folder``'s manifest."""
    from pyapp.browser._bridge import js_module
    from pyapp.browser.web_embedder import MODULE

    try:  # offline, the list may be unreachable: no classifier then, never a failed boot
        res = await js_module(MODULE).fetchBytes(root + "vendor/precache.json", None)
    except Exception:
        return False
    if not res.ok:
        return False
    files = json.loads(bytes(res.bytes.to_bytes()).decode("utf-8")).get("files", {})
    return folder + "manifest.json" in files


async def app_classify_info(options_json: str) -> str:
    """``{"root", "classifier"}`` -> ``{"available", "model", "labels", "variants", "url", "reason"}``."""
    try:
        import re

        from pyapp.browser.web_embedder import BundleNotFound
        from pyapp.browser.web_text_classifier import fetch_manifest
        from pyapp.errors import InvalidInput, ModelBundleError

        opts = json.loads(options_json)
        root = str(opts.get("root") or "")
        root = root if root.endswith("/") else root + "/"
        folder = str(opts.get("classifier") or "")
        if folder and not re.fullmatch(r"models/[A-Za-z0-9._-]+/?", folder):
            raise InvalidInput(f"?classifier= must look like models/name/, got {folder!r}")
        if not folder:
            folder = _CLASSIFIER_DEFAULT
            if not await _classifier_listed(root, folder):
                return json.dumps({"available": False, "reason": "No classifier bundle in this build."})
        folder = folder if folder.endswith("/") else folder + "/"
        url = root + folder
        try:
            manifest = await fetch_manifest(url)
        except (BundleNotFound, ModelBundleError) as exc:
            return json.dumps({"available": False, "reason": str(exc)})
        _APP["classifier_source"] = (url, manifest)
        _APP.pop("classifier", None)
        return json.dumps(
            {
                "available": True,
                "model": manifest.get("model"),
                "labels": manifest["labels"],
                "variants": sorted(manifest.get("variants") or {}),
                "url": url,
            }
        )
    except Exception as exc:  # noqa: BLE001
        return _fail(exc)


async def app_classify(request_json: str, channel: str = "") -> str:
    """``{"texts": [...]}`` -> ``{"predictions": [{"label", "probability", "probabilities": [...]}], "labels",
    "variant", "ms"}``; the first call downloads, verifies and opens the classifier (progress on ``channel``)."""
    progress = _Progress(channel or None)
    try:
        from pyapp.browser.web_text_classifier import WebTextClassifier
        from pyapp.errors import InvalidInput

        request = json.loads(request_json)
        if not isinstance(request, dict):
            raise InvalidInput("the request must be a JSON object")
        source = _APP.get("classifier_source")
        if source is None:
            raise InvalidInput("no classifier bundle was found for this page")
        model = _APP.get("classifier")
        if model is None:
            model = await WebTextClassifier.load(
                source[0],
                manifest=source[1],
                progress=lambda phase, done, total: progress.post("classifier", phase, done, total),
            )
            _APP["classifier"] = model
        started = _now_ms()
        rows = await model.predict_proba(request.get("texts"))
        predictions = []
        for probs in rows:
            label, prob = model.best(probs)
            predictions.append({"label": label, "probability": prob, "probabilities": probs})
        return json.dumps(
            {"predictions": predictions, "labels": model.labels, "variant": model.variant, "ms": _now_ms() - started}
        )
    except Exception as exc:  # noqa: BLE001
        return _fail(exc)
    finally:
        progress.close()


__export__ = [
    "boot",
    "run_python",
    "app_open",
    "app_add",
    "app_get",
    "app_search",
    "app_delete",
    "app_list",
    "app_stats",
    "app_load_demo",
    "app_backup",
    "app_restore_plan",
    "app_restore",
    "app_refresh",
    "app_tabs",
    "app_import_stage",
    "app_import_commit",
    "app_import_drop",
    "app_fill_mask_info",
    "app_fill_mask",
    "app_sync",
    "app_classify_info",
    "app_classify",
    "app_suggest_kind",
    "app_kinds",
]
