"""Which bundle and backend the page uses, and that it says so (web/app/models.mjs, pyapp/embed/catalog.py).

Real parts: the build's list web/models/index.json rewritten by ``web_build.write_model_list`` from real folders
under web/models/ (the packaged MiniLM, hard-linked under another name as a stand-in for an exported
Bio_ClinicalBERT: only the folder name decides, which is what ``scripts/model.sh`` writes), real Chromium,
onnxruntime-web's WebGPU build failing for real where Chromium has no adapter (``--disable-gpu``, as in the
shared session). The WebGPU path itself runs on SwiftShader in ``test_webgpu_page.py`` (slow).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "web" / "models"
MINILM = MODELS / "minilm"
needs_bundle = pytest.mark.skipif(not (MINILM / "manifest.json").is_file(), reason="no web/models/minilm bundle")


def _write_list() -> list[str]:
    sys.path.insert(0, str(ROOT))
    import web_build

    return web_build.write_model_list()


def _goto(app: Any, query: str) -> None:
    app.page.goto(f"{app.base_url}?test&{query}")
    app.page.wait_for_selector('html:not([data-state="loading"])', state="attached", timeout=180_000)
    state = app.page.get_attribute("html", "data-state")
    assert state == "ready", f"{app.page.text_content('#error')}\n" + "\n".join(app.console)


@pytest.fixture()
def models_restored() -> Iterator[None]:
    """Whatever a test does to web/models/, the folders and the list are put back afterwards."""
    yield
    for stray in (MODELS / "bio-clinicalbert-test", MODELS / "bio-clinicalbert"):
        if stray.is_dir() and (stray / ".clinvec-test").is_file():
            shutil.rmtree(stray)
    hidden = MODELS / ".minilm-hidden-by-test"
    if hidden.is_dir() and not MINILM.exists():
        hidden.rename(MINILM)
    _write_list()


@needs_bundle
def test_the_default_page_opens_the_listed_bundle_on_wasm_and_says_why(app: Any) -> None:
    """The shared tab (no ?model=, Chromium with --disable-gpu): MiniLM from the list, wasm, both explained."""
    page = app.page
    assert page.get_attribute("html", "data-model") == "minilm"
    assert page.get_attribute("html", "data-backend") == "wasm"
    model = page.text_content("[data-testid=model-name]")
    assert "sentence-transformers/all-MiniLM-L6-v2 (models/minilm/)" in model
    assert "models/index.json" in model
    backend = page.text_content("[data-testid=backend]")
    assert "onnxruntime-web wasm" in backend and "requestAdapter() gave no adapter" in backend
    assert page.query_selector("[data-testid=backend-error]") is None
    assert "onnxruntime-web wasm" in page.text_content("#model-line")


@needs_bundle
def test_the_page_follows_the_list_when_bundles_come_and_go(
    open_app: Any, index_name: str, models_restored: None
) -> None:
    """A Bio_ClinicalBERT folder appears -> the page opens it; it is removed and MiniLM renamed away -> no bundle
    listed -> hashing, said plainly, and no model file requested. (Back to MiniLM when only MiniLM is listed is
    the shared tab's state: test_the_default_page_opens_the_listed_bundle_on_wasm_and_says_why.)"""
    clinical = MODELS / "bio-clinicalbert"
    assert not clinical.exists(), "a real web/models/bio-clinicalbert is present: this test would replace it"
    clinical.mkdir()
    (clinical / ".clinvec-test").write_text("made by tests/browser/test_model_choice.py\n")
    for src in MINILM.iterdir():
        os.link(src, clinical / src.name)  # hard links: serve.py refuses symlinks leaving web/
    assert _write_list() == ["bio-clinicalbert", "minilm"]
    app = open_app(boot=False)
    requests: list[str] = []
    app.page.on("request", lambda r: requests.append(r.url))
    _goto(app, f"index={index_name}")
    webgpu_build = [u for u in requests if "ort.webgpu" in u or ".asyncify." in u]
    assert webgpu_build == [], "the default wasm path must not load onnxruntime-web's WebGPU build"
    assert any(u.endswith("/ort.wasm.min.mjs") for u in requests)
    assert app.page.get_attribute("html", "data-model") == "bio-clinicalbert"
    assert "Bio_ClinicalBERT is listed in models/index.json; also listed: minilm" in app.page.text_content(
        "[data-testid=model-name]"
    )
    bundle = app.run("import __main__\nresult = __main__._APP['embedder'].identity['bundle']\n")
    assert bundle.endswith("/models/bio-clinicalbert/")
    assert app.page.get_attribute("html", "data-index") == f"{index_name}-int8"

    shutil.rmtree(clinical)
    MINILM.rename(MODELS / ".minilm-hidden-by-test")
    assert _write_list() == []
    requests.clear()
    _goto(app, f"index={index_name}")
    assert app.page.get_attribute("html", "data-embedder") == "hashing"
    assert app.page.get_attribute("html", "data-model") == "none"
    shown = app.page.text_content("[data-testid=model-name]")
    assert "Model: hashing (no model)" in shown and "models/index.json lists no model bundle" in shown
    assert "hashing (no model" in app.page.text_content("#model-line")
    assert "No model bundle" in app.page.text_content("#notice")
    assert not [u for u in requests if "/models/" in u and not u.endswith("/models/index.json")]


@needs_bundle
def test_forcing_webgpu_without_an_adapter_shows_an_error_and_runs_wasm(open_app: Any, index_name: str) -> None:
    app = open_app(boot=False)
    _goto(app, f"backend=webgpu&index={index_name}")
    assert app.page.get_attribute("html", "data-backend") == "wasm"
    error = app.page.text_content("[data-testid=backend-error]")
    assert error.startswith("?backend=webgpu: ") and "using wasm" in error
    assert app.page.get_attribute("html", "data-index") == f"{index_name}-int8"  # wasm keeps the int8 default
    runtime = app.run(
        "import __main__\nemb = __main__._APP['embedder']\nawait emb.embed_raw(['x'])\nresult = emb.runtime\n"
    )
    assert runtime["backend"] == "wasm" and runtime["requested"] == "wasm"  # the page chose wasm: it embeds


def test_a_bad_backend_is_refused_with_a_clear_error(open_app: Any) -> None:
    app = open_app(boot=False)
    app.page.goto(f"{app.base_url}?test&backend=cuda")
    app.page.wait_for_selector('html:not([data-state="loading"])', state="attached", timeout=180_000)
    assert app.page.get_attribute("html", "data-state") == "error"
    assert "?backend= must be wasm or webgpu" in app.page.text_content("#error")


@needs_bundle
def test_webgpu_that_cannot_start_in_the_worker_falls_back_to_wasm_and_says_why(open_app: Any, index_name: str) -> None:
    """Asked for WebGPU where Chromium has none: onnxruntime-web's WebGPU build loads, its session fails for
    real, and the embedder runs on wasm with the reason (nothing raised, vectors equal to a wasm embedder's)."""
    app = open_app(boot=False)
    _goto(app, f"model=models/none/&index={index_name}")  # no onnxruntime-web loaded yet in this worker
    # ?model=models/none/ (what the fast page tests use) is still the hashing fallback, and says so
    assert app.page.get_attribute("html", "data-embedder") == "hashing"
    shown = app.page.text_content("[data-testid=model-name]")
    assert "no model bundle could be opened at models/none/" in shown and "?model=" in shown
    out = app.run(
        "from pyapp.browser.web_embedder import WebEmbedder\n"
        "gpu = await WebEmbedder.load(root + 'models/minilm/', variant='int8', backend='webgpu')\n"
        "wasm = await WebEmbedder.load(root + 'models/minilm/', variant='int8', backend='wasm')\n"
        "texts = ['chest pain on exertion', 'hx CHF']\n"
        "result = {'runtime': gpu.runtime, 'same': await gpu.embed_raw(texts) == await wasm.embed_raw(texts)}\n"
        "await gpu.close(); await wasm.close()\n",
        root=app.base_url.split("?")[0].rstrip("/") + "/",
    )
    runtime = out["runtime"]
    assert runtime["backend"] == "wasm" and runtime["requested"] == "webgpu" and runtime["probe_cosine"] is None
    assert runtime["note"].startswith("WebGPU was not used: onnxruntime-web's WebGPU backend could not start")
    assert out["same"] is True


@pytest.mark.slow  # routing a page turns its HTTP cache off: a cold boot (80 s at load 16 here)
@needs_bundle
def test_a_model_download_cut_once_is_retried(open_app: Any, index_name: str) -> None:
    """The graph download fails once (fault injected: the request is aborted, as when serve.py closes a
    connection the busy worker stopped reading): the page retries it and becomes ready, verified as always."""
    app = open_app(boot=False)
    cut: list[str] = []

    def once(route: Any) -> None:
        if not cut:
            cut.append(route.request.url)
            route.abort("connectionreset")
        else:
            route.continue_()

    app.page.route("**/models/minilm/model_int8.onnx", once)
    _goto(app, f"index={index_name}")
    assert cut and cut[0].endswith("/models/minilm/model_int8.onnx")
    assert app.page.get_attribute("html", "data-embedder") == "onnx"
    assert "verified" in app.page.text_content("#model-line")
