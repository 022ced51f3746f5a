"""``WebEmbedder``: a model bundle (``python -m export``) run by onnxruntime-web, from Python in the page.

Why it mirrors ``embed.onnx.OnnxEmbedder``: an index embedded on the server must open and be queried in the
browser, so both tokenise with the same pure-Python ``pyapp.tokenizer``, truncate the same way, and report the
same ``identity`` (model, revision, variant, sha256) for the same bundle file. The bundle is fetched from the
page's own origin and its sha256 checked (WebCrypto) before onnxruntime-web sees a byte. Control data crosses
the bridge as JSON, token ids as ``BigInt64Array`` (``to_js(array('q', ...))``), vectors come back as float32.
"""

from __future__ import annotations

import json
import sys
from array import array
from collections.abc import Callable, Sequence
from typing import Any

from pyodide.ffi import JsException, create_proxy, to_js  # type: ignore[import-not-found]

from ..embed import bundle
from ..embed.base import Embedder, Progress, check_texts, length_batches, token_rows
from ..embed.bundle import VARIANT_FILES
from ..errors import InvalidInput, ModelBundleError
from ..tokenizer import WordPieceTokenizer
from ._bridge import js_module

MODULE = "clinvec_embed"
DEFAULT_VARIANT = "int8"  # wasm runs int8 faster (docs/BENCHMARKS.md); WebGPU would need fp32 (no int8 kernels)
BACKENDS = ("wasm", "webgpu")
# WebGPU is trusted only after its first run agrees with wasm on this sentence (same graph bytes, both backends).
PROBE_TEXT = "Pt c/o chest pain and SOB on exertion; hx of CHF, started on furosemide 40 mg."
PROBE_MIN_COSINE = 0.999

LoadProgress = Callable[[str, int, int], None]  # (phase, done, total): manifest, vocab, download, verify, session


class BundleHTTPError(ModelBundleError):
    """A bundle file answered an HTTP error status (kept in ``status``)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class BundleNotFound(ModelBundleError):
    """The page serves no bundle at that URL (its ``manifest.json`` answered 404): a missing model, which the
    page may work around (hashing embedder), unlike a bundle that is present but incomplete or altered."""


def _join(base: str, name: str) -> str:
    return base + name if base.endswith("/") else f"{base}/{name}"


class WebEmbedder(Embedder):
    """Embeds texts with a bundle's fp32 or int8 graph on onnxruntime-web (wasm or WebGPU, in the worker).

    The backend is where the graph runs, not what it computes: it is reported in ``runtime``, never in
    ``identity``, so an index embedded on wasm (or on the server) is queried on WebGPU and the reverse.
    """

    def __init__(
        self,
        bundle_url: str,
        manifest: dict[str, Any],
        tokenizer: WordPieceTokenizer,
        session: Any,
        variant: str,
        sha256: str,
        batch_size: int = 8,
        threads: int = 1,
        backend: str = "wasm",
    ) -> None:
        """Use ``await WebEmbedder.load(...)``; this only stores what ``load`` fetched and checked."""
        self.bundle_url = bundle_url
        self.manifest = manifest
        self.tokenizer = tokenizer
        self.variant = variant
        self.batch_size = batch_size
        self.threads = threads
        self.dims = int(manifest["dims"])
        self.max_seq_length = int(manifest["max_seq_length"])
        self._sha256 = sha256
        self._session = session
        self._pad_id = tokenizer.pad_id
        self._mod: Any = js_module(MODULE)
        self.backend = backend
        self.requested_backend = backend
        self.backend_note: str | None = None  # why the backend differs from the one asked for
        self.probe_cosine: float | None = None

    # ------------------------------------------------------------------ loading
    @classmethod
    async def load(
        cls,
        bundle_url: str,
        variant: str = DEFAULT_VARIANT,
        progress: LoadProgress | None = None,
        batch_size: int = 8,
        ort_url: str | None = None,
        threads: int = 0,
        backend: str = "wasm",
    ) -> WebEmbedder:
        """Fetch ``manifest.json``, ``vocab.txt`` and the variant's model from ``bundle_url`` (a folder URL),
        verify sizes and sha256 against the manifest, and open an onnxruntime-web session.

        ``ort_url``: the folder holding onnxruntime-web (default: the build's ``paths.ort``); ``threads`` 0
        means "as many as useful" (up to 4 when the page is cross-origin isolated, else 1). ``backend``
        "webgpu" runs the graph on onnxruntime-web's WebGPU execution provider once its first run matched wasm
        on ``PROBE_TEXT`` (cosine >= ``PROBE_MIN_COSINE``); when WebGPU cannot start or disagrees, the
        embedder runs on wasm and ``backend_note`` says why (nothing is raised for that).
        Raises ``ModelBundleError`` when the bundle is missing, incomplete or fails its checks.
        """
        if backend not in BACKENDS:
            raise InvalidInput(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
        if variant not in VARIANT_FILES:
            raise InvalidInput(f"variant must be one of {sorted(VARIANT_FILES)}, got {variant!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidInput(f"batch_size must be a positive integer, got {batch_size!r}")
        mod = js_module(MODULE)
        report = progress or (lambda phase, done, total: None)

        report("manifest", 0, 1)
        manifest = await fetch_manifest(mod, bundle_url, "model", bundle.TASK_EMBED)
        model_file = bundle.variant_file(manifest, variant)
        report("manifest", 1, 1)

        report("vocab", 0, 1)
        tokenizer = await fetch_tokenizer(mod, manifest, bundle_url)
        report("vocab", 1, 1)

        model_bytes, sha256 = await _download(mod, manifest, bundle_url, model_file, report)

        report("session", 0, 1)
        base = ort_url or _default_ort_url(mod)
        where = _join(bundle_url, model_file)
        session, facts, note = await _open_session(mod, base, int(threads), model_bytes, backend, where)
        names = json.loads(str(mod.sessionNames(session)))
        if manifest["output"] not in names["outputs"]:
            raise ModelBundleError(f"{model_file} has no output {manifest['output']!r} (it has {names['outputs']})")
        used = backend if note is None else "wasm"
        threads_used = int(facts["threads"])
        embedder = cls(bundle_url, manifest, tokenizer, session, variant, sha256, batch_size, threads_used, used)
        embedder.requested_backend, embedder.backend_note = backend, note
        if used == "webgpu":
            await embedder._trust_webgpu(model_bytes)
        report("session", 1, 1)
        return embedder

    # ------------------------------------------------------------------ the Embedder API
    @property
    def identity(self) -> dict[str, Any]:
        """Equal to ``OnnxEmbedder.identity`` for the same bundle file, except ``bundle`` (a URL here)."""
        return bundle.identity(self.manifest, self.variant, self._sha256, self.bundle_url)

    async def embed_raw(self, texts: Sequence[str], progress: Progress | None = None) -> bytes:
        """``len(texts) * dims`` little-endian float32 values, in the order of ``texts``.

        Texts are sorted by token count and batched so padding stays small (as the server does).
        """
        check_texts(texts, "embed_raw")
        if self._session is None:
            raise InvalidInput("this WebEmbedder was closed")
        rows = token_rows(self.tokenizer, texts, self.max_seq_length)
        width = self.dims * 4
        out: list[bytes] = [b""] * len(rows)
        done = 0
        for chunk in length_batches(rows, self.batch_size):
            flat = await self._run([rows[i] for i in chunk])
            for j, i in enumerate(chunk):
                out[i] = flat[j * width : (j + 1) * width]
            done += len(chunk)
            if progress is not None:
                progress(done, len(rows))
        return b"".join(out)

    @property
    def runtime(self) -> dict[str, Any]:
        """Where the graph runs (informational, never compared): the backend used, the one asked for, why
        they differ, the WebGPU probe's cosine to wasm, and onnxruntime-web's wasm thread count."""
        return {
            "engine": "onnxruntime-web",
            "backend": self.backend,
            "requested": self.requested_backend,
            "note": self.backend_note,
            "probe_cosine": self.probe_cosine,
            "threads": self.threads,
        }

    async def close(self) -> None:
        """Free the session's wasm memory (the embedder is unusable afterwards)."""
        session, self._session = self._session, None
        if session is not None:
            await self._mod.release(session)

    # ------------------------------------------------------------------ internals
    async def _trust_webgpu(self, model_bytes: Any) -> None:
        """Run ``PROBE_TEXT`` on WebGPU and on wasm (a second session on the same bytes); keep WebGPU only when
        the vectors agree (cosine >= ``PROBE_MIN_COSINE``), else switch to the wasm session and say why."""
        rows = token_rows(self.tokenizer, [PROBE_TEXT], self.max_seq_length)
        try:
            gpu: bytes | None = await self._run(rows)
            failure = None
        except (JsException, ModelBundleError) as exc:
            gpu, failure = None, f"its first run failed ({exc})"
        try:
            wasm_session = await self._mod.createSession(model_bytes, "wasm")
        except JsException as exc:
            raise ModelBundleError(f"onnxruntime-web could not open the wasm check session: {exc}") from None
        wasm = await self._run(rows, wasm_session)
        if gpu is not None:
            self.probe_cosine = round(_cosine(gpu, wasm), 7)
            if self.probe_cosine >= PROBE_MIN_COSINE:
                await self._mod.release(wasm_session)
                return
            failure = (
                f"it disagreed with wasm on a probe sentence (cosine {self.probe_cosine:.6f} < {PROBE_MIN_COSINE})"
            )
        await self._mod.release(self._session)
        self._session, self.backend = wasm_session, "wasm"
        self.backend_note = f"WebGPU was not used: {failure}; running on wasm"

    async def _run(self, rows: list[tuple[list[int], list[int]]], session: Any = None) -> bytes:
        """One padded batch through the session; float32 bytes, ``len(rows) * dims`` values."""
        seq = max(len(ids) for ids, _ in rows)
        ids, mask, types = array("q"), array("q"), array("q")
        for row_ids, row_types in rows:
            pad = seq - len(row_ids)
            ids.extend(row_ids)
            ids.extend([self._pad_id] * pad)
            mask.extend([1] * len(row_ids))
            mask.extend([0] * pad)
            types.extend(row_types)
            types.extend([0] * (seq - len(row_types)))
        result = await self._mod.run(
            self._session if session is None else session,
            to_js(ids),
            to_js(mask),
            to_js(types),
            len(rows),
            seq,
            self.manifest["output"],
        )
        data = bytes(result.to_bytes())
        if len(data) != len(rows) * self.dims * 4:
            raise ModelBundleError(
                f"the model returned {len(data) // 4} values for {len(rows)} texts; expected {self.dims} each"
            )
        if sys.byteorder == "big":  # wasm is little-endian; keep the contract even on an odd host
            flipped = array("f", data)
            flipped.byteswap()
            data = flipped.tobytes()
        return data


# ---------------------------------------------------------------------- helpers


async def _open_session(
    mod: Any, base: str, threads: int, model_bytes: Any, backend: str, where: str
) -> tuple[Any, dict[str, Any], str | None]:
    """(session, onnxruntime-web facts, note): a session on ``backend``; when WebGPU cannot be loaded or
    cannot open the graph, a wasm session and a note saying why. A wasm failure is the bundle's fault."""
    if backend == "webgpu":
        try:
            facts = json.loads(str(await mod.initOrt(base, threads, "webgpu")))
            return await mod.createSession(model_bytes, "webgpu"), facts, None
        except JsException as exc:
            note = f"WebGPU was not used: onnxruntime-web's WebGPU backend could not start ({exc}); running on wasm"
    else:
        note = None
    facts = json.loads(str(await mod.initOrt(base, threads, "wasm")))
    try:
        return await mod.createSession(model_bytes, "wasm"), facts, note
    except JsException as exc:
        raise ModelBundleError(f"onnxruntime-web could not load {where}: {exc}") from None


def _cosine(a: bytes, b: bytes) -> float:
    """Cosine of two float32 vectors given as bytes (pure Python: one short probe vector)."""
    x, y = array("f", a), array("f", b)
    dot = sum(p * q for p, q in zip(x, y, strict=True))
    norm = (sum(p * p for p in x) * sum(q * q for q in y)) ** 0.5
    return dot / norm if norm > 0 else 0.0


def _default_ort_url(mod: Any) -> str:
    """The vendored onnxruntime-web folder, from ``clinvec_build.json`` (written beside the worker)."""
    root = str(mod.webRoot())
    try:
        with open("clinvec_build.json") as fh:
            path = json.load(fh)["paths"]["ort"]
    except (OSError, ValueError, KeyError):
        raise ModelBundleError("the build record lacks paths.ort: run `python serve.py --build`") from None
    return _join(root, path.lstrip("/"))


async def _fetch(mod: Any, url: str, on_progress: Any) -> Any:
    """The bytes at ``url`` (a JS ``Uint8Array``); ``ModelBundleError`` on HTTP errors or network failure.

    A network failure is retried once: the download started while the worker was busy starting CPython
    (the prefetch), and a server that saw no reading for its idle timeout closed it; the retry runs while
    Python awaits, so the worker reads as the bytes come.
    """
    try:
        res = await mod.fetchBytes(url, on_progress)
    except JsException:
        try:
            res = await mod.fetchBytes(url, on_progress)
        except JsException as exc:
            raise ModelBundleError(f"could not download {url} (tried twice): {exc}") from None
    if not res.ok:
        status = int(res.status)
        raise BundleHTTPError(f"{url} answered HTTP {status}: the model bundle is missing or incomplete", status)
    return res.bytes


async def _verify(mod: Any, manifest: dict[str, Any], name: str, data: Any, bundle_url: str) -> str:
    """Check a fetched file's size and sha256 (hashed by WebCrypto) against the manifest; returns the sha256."""
    bundle.check_size(manifest, name, int(data.byteLength), bundle_url)
    return bundle.check_sha256(manifest, name, str(await mod.sha256Hex(data)), bundle_url)


async def fetch_manifest(mod: Any, bundle_url: str, what: str, task: str | None) -> dict[str, Any]:
    """The checked ``manifest.json`` of the ``what`` bundle (for ``task``) at ``bundle_url``; ``BundleNotFound``
    when it answers 404 (no bundle there: the page may work around that, unlike a damaged one)."""
    url = _join(bundle_url, "manifest.json")
    try:
        data = await _fetch(mod, url, None)
    except BundleHTTPError as exc:
        if exc.status == 404:
            raise BundleNotFound(f"no {what} bundle at {bundle_url} ({url} answered HTTP 404)") from None
        raise
    return bundle.parse_manifest(bytes(data.to_bytes()), url, task=task)


async def fetch_tokenizer(mod: Any, manifest: dict[str, Any], bundle_url: str) -> WordPieceTokenizer:
    """Fetch the bundle's vocabulary, check its size and sha256, and build the tokenizer the manifest names:
    the step every graph of a bundle (embedder, fill-mask, classifier) needs."""
    vocab = await _fetch(mod, _join(bundle_url, manifest["vocab_file"]), None)
    await _verify(mod, manifest, manifest["vocab_file"], vocab, bundle_url)
    return WordPieceTokenizer.from_manifest(manifest, bytes(vocab.to_bytes()).decode("utf-8"))


async def _download(
    mod: Any, manifest: dict[str, Any], bundle_url: str, model_file: str, report: Any
) -> tuple[Any, str]:
    """Download ``model_file`` with progress and check its size and sha256; returns ``(bytes, sha256)``."""
    on_bytes = create_proxy(lambda done, total: report("download", int(done), int(total)))
    try:
        data = await _fetch(mod, _join(bundle_url, model_file), on_bytes)
    finally:
        on_bytes.destroy()
    size = int(data.byteLength)
    report("verify", 0, size)
    sha256 = await _verify(mod, manifest, model_file, data, bundle_url)
    report("verify", size, size)
    return data, sha256


async def open_graph(
    mod: Any, manifest: dict[str, Any], bundle_url: str, model_file: str, output: str, report: Any, ort_url: str | None
) -> tuple[Any, str]:
    """Download ``model_file`` with progress, check its sha256 and open an onnxruntime-web session that must
    have ``output``: the step the fill-mask and classifier graphs share. Returns ``(session, sha256)``."""
    data, sha256 = await _download(mod, manifest, bundle_url, model_file, report)
    report("session", 0, 1)
    await mod.initOrt(ort_url or _default_ort_url(mod), 0)
    try:
        session = await mod.createSession(data)
    except JsException as exc:
        raise ModelBundleError(f"onnxruntime-web could not load {_join(bundle_url, model_file)}: {exc}") from None
    names = json.loads(str(mod.sessionNames(session)))
    if output not in names["outputs"]:
        raise ModelBundleError(f"{model_file} has no output {output!r}: export it again")
    report("session", 1, 1)
    return session, sha256


__all__ = [
    "BACKENDS",
    "DEFAULT_VARIANT",
    "PROBE_MIN_COSINE",
    "PROBE_TEXT",
    "BundleHTTPError",
    "BundleNotFound",
    "WebEmbedder",
]
