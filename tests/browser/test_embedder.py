"""WebEmbedder (onnxruntime-web in the page's worker) against the server's OnnxEmbedder (onnxruntime).

Why: an index embedded on the server must be searchable in the browser, so both builds must turn the same
text into the same vector (fp32: cosine >= 0.9999) and rank the same data the same way. The model bundle is
checked before use: a tampered file must stop the page with a clear error, a missing bundle must not.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "web" / "models" / "minilm"
HAVE_BUNDLE = all((BUNDLE / name).is_file() for name in ("manifest.json", "vocab.txt", "model.onnx", "model_int8.onnx"))
needs_bundle = pytest.mark.skipif(
    not HAVE_BUNDLE, reason="web/models/minilm is missing: export it first with `python -m export --model minilm`"
)

TEXTS = [
    "Patient presents with acute shortness of breath and pleuritic chest pain after a long flight.",
    "Day 3 post CABG x3. Extubated yesterday, now on 2L nasal cannula.",
    "New onset atrial fibrillation with rapid ventricular response, HR 140s. Started on diltiazem drip.",
    "72 year old with congestive heart failure exacerbation: orthopnea, bilateral leg edema.",
    "Type 2 diabetes poorly controlled, HbA1c 9.1%. Metformin increased, basal insulin glargine added.",
    "Diabetic ketoacidosis resolved. Na+ 135 mEq/L, K+ 3.9, anion gap closed.",
    "Community acquired pneumonia, right lower lobe consolidation. Fever 38.5°C, productive cough.",
    "COPD exacerbation with wheeze; nebulised salbutamol and ipratropium, prednisolone 40 mg.",
    "Fall at home, left neck of femur fracture, for hemiarthroplasty tomorrow.",
    "Acute ischaemic stroke, right hemiparesis and aphasia, thrombolysed within 3 hours.",
    "Sepsis of urinary source, lactate 4.2, blood cultures taken, piperacillin-tazobactam started.",
    "Café-au-lait macules noted on examination; referral to genetics for neurofibromatosis.",
    "Upper GI bleed: melaena, Hb 72 g/L, two units transfused, urgent endoscopy arranged.",
    "Acute kidney injury stage 2, creatinine 245 µmol/L, IV fluids and nephrotoxic drugs held.",
    "Migraine with aura, photophobia and nausea; sumatriptan given with good effect.",
    "Anaphylaxis after peanut exposure: urticaria, lip swelling, wheeze. Epinephrine IM given.",
    "Hypothyroidism, TSH 8.2 on levothyroxine 75 mcg; dose increased to 88 mcg.",
    "Post-operative day 1 after laparoscopic cholecystectomy; pain controlled, tolerating fluids.",
    "Ödem beider Unterschenkel, Verdacht auf Herzinsuffizienz (German note, mixed-language record).",
    # Longer than max_seq_length (256 tokens): both builds must cut it the same way.
    "Long discharge summary. "
    + " ".join(f"Day {d}: observations stable, mobilising with physio, eating well." for d in range(1, 40)),
]
QUERY = "breathless with chest pain after travelling by plane"
WARDS = ("ED", "ICU", "Medicine")

BROWSER_PARITY = """
import base64, js
from array import array
from pyapp import LocalIndex
from pyapp.browser.web_embedder import WebEmbedder
from pyapp.browser._bridge import js_module
root = str(js_module('clinvec_embed').webRoot())
emb = await WebEmbedder.load(root + 'models/minilm/', variant='fp32')
t0 = js.performance.now()
raw = await emb.embed_raw(texts)
embed_ms = js.performance.now() - t0
w = emb.dims * 4

async def ranked(idx):
    out = {}
    for mode in ('vector', 'hybrid', 'keyword'):
        out[mode] = [[h.id, h.score] for h in await idx.query(text=query, top_k=8, mode=mode)]
    out['filtered'] = [[h.id, h.score] for h in await idx.query(text=query, top_k=3, mode='vector',
                                                                   filter={'ward': 'ICU'})]
    return out

hits = {}
for name, source in (('browser_vectors', 'embed'), ('server_vectors', 'import')):
    location = prefix + name
    await LocalIndex.drop(location)
    idx = await LocalIndex.create(location, indexed=['ward'], embedder=emb)
    if source == 'embed':
        await idx.insert_many([{'id': f't{i}', 'vector': array('f', raw[i * w:(i + 1) * w]), 'text': t,
                                'metadata': {'ward': wards[i % 3]}} for i, t in enumerate(texts)])
    else:
        with open('/tmp/server.jsonl', 'w') as fh:
            fh.write(server_jsonl)
        await idx.import_from('/tmp/server.jsonl')
    hits[name] = await ranked(idx)
    await idx.close()
    await LocalIndex.drop(location)
result = {'vectors': base64.b64encode(raw).decode(), 'identity': emb.identity, 'hits': hits,
          'embed_ms': embed_ms, 'threads': emb.threads}
await emb.close()
"""


def _server_embedder(quantized: bool) -> Any:
    pytest.importorskip("onnxruntime")
    from pyapp.embed.onnx import OnnxEmbedder

    return OnnxEmbedder(BUNDLE, quantized=quantized)


def _unit_rows(raw: bytes, dims: int) -> Any:
    np = pytest.importorskip("numpy")
    rows = np.frombuffer(raw, dtype="<f4").reshape(-1, dims).astype(np.float64)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _without_bundle(identity: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in identity.items() if k != "bundle"}


async def _server_ranked(tmp_path: Path, embedder: Any, vectors: Any) -> tuple[dict[str, list[Any]], str]:
    from pyapp import LocalIndex

    idx = await LocalIndex.create(str(tmp_path / "index"), indexed=["ward"], embedder=embedder)
    await idx.insert_many(
        [
            {"id": f"t{i}", "vector": vectors[i], "text": t, "metadata": {"ward": WARDS[i % 3]}}
            for i, t in enumerate(TEXTS)
        ]
    )
    out = {
        mode: [[h.id, h.score] for h in await idx.query(text=QUERY, top_k=8, mode=mode)]
        for mode in ("vector", "hybrid", "keyword")
    }
    out["filtered"] = [
        [h.id, h.score] for h in await idx.query(text=QUERY, top_k=3, mode="vector", filter={"ward": "ICU"})
    ]
    path = tmp_path / "server.jsonl"
    await idx.export_to(str(path))
    await idx.close()
    return out, path.read_text()


@needs_bundle
def test_fp32_vectors_and_rankings_match_the_server(app: Any, tmp_path: Path, index_name: str) -> None:
    """Browser fp32 vectors vs server fp32: cosine >= 0.9999 per text; identical top-k, whether the browser
    embedded the notes itself or imported the server's vectors (and embedded only the query)."""
    server = _server_embedder(quantized=False)
    server_vectors = server.embed(TEXTS)
    # On a thread with its own event loop: Playwright's sync API keeps a loop running on this one.
    with ThreadPoolExecutor(1) as pool:
        server_hits, server_jsonl = pool.submit(asyncio.run, _server_ranked(tmp_path, server, server_vectors)).result()

    out = app.run(
        BROWSER_PARITY, texts=TEXTS, query=QUERY, wards=list(WARDS), prefix=index_name, server_jsonl=server_jsonl
    )

    browser = _unit_rows(base64.b64decode(out["vectors"]), server.dims)
    expected = _unit_rows(server_vectors.astype("<f4").tobytes(), server.dims)
    cosines = (browser * expected).sum(axis=1)
    assert cosines.min() >= 0.9999, dict(enumerate(cosines.round(6)))
    assert _without_bundle(out["identity"]) == _without_bundle(server.identity)
    assert out["identity"]["bundle"].endswith("/models/minilm/")
    for source in ("browser_vectors", "server_vectors"):
        got = out["hits"][source]
        for mode, hits in server_hits.items():
            assert [h[0] for h in got[mode]] == [h[0] for h in hits], (source, mode)
            assert [h[1] for h in got[mode]] == pytest.approx([h[1] for h in hits], abs=2e-4), (source, mode)
    assert server_hits["vector"][0][0] == "t0"  # the query really is about note t0: the check is not vacuous
    assert all(h[0] in {f"t{i}" for i in range(1, len(TEXTS), 3)} for h in server_hits["filtered"])


@needs_bundle
def test_page_embeds_with_the_int8_bundle_close_to_the_server(app: Any) -> None:
    """The page's own embedder is the int8 variant, verified, and agrees with native int8 (wasm int8
    kernels differ slightly from native ones: cosine ~0.99, not 0.9999)."""
    out = app.run(
        "import base64, __main__\n"
        "emb = __main__._APP['embedder']\n"
        "raw = await emb.embed_raw(texts)\n"
        "result = {'identity': emb.identity, 'vectors': base64.b64encode(raw).decode(),\n"
        "          'location': __main__._APP['index'].location}\n",
        texts=TEXTS,
    )
    server = _server_embedder(quantized=True)
    assert _without_bundle(out["identity"]) == _without_bundle(server.identity)
    manifest = json.loads((BUNDLE / "manifest.json").read_text())
    assert out["identity"]["sha256"] == manifest["files"]["model_int8.onnx"]["sha256"]
    assert out["location"] == "notes-minilm-int8"
    browser = _unit_rows(base64.b64decode(out["vectors"]), server.dims)
    expected = _unit_rows(server.embed(TEXTS).astype("<f4").tobytes(), server.dims)
    assert (browser * expected).sum(axis=1).min() >= 0.98
    # The page drew the model's progress: streamed download (several steps), then verify, then session.
    timeline = app.page.evaluate("() => window.clinvecModelLoad")
    phases = [step[0] for step in timeline]
    assert phases.index("download") < phases.index("verify") < phases.index("session")
    downloads = [step for step in timeline if step[0] == "download"]
    assert len(downloads) >= 5 and downloads[-1][2] == downloads[-1][3] == (BUNDLE / "model_int8.onnx").stat().st_size
    assert "int8" in app.page.text_content("#model-line")
    assert "verified" in app.page.text_content("#model-line")


@pytest.fixture()
def tampered_bundle() -> Any:
    """A copy of the bundle under web/models/ (git-ignored) whose int8 model has the right size but other
    bytes, so the size check passes and only the sha256 check can catch it. Served by the test server as is
    (Playwright's page.route does not see requests made by the page's worker)."""
    folder = BUNDLE.parent / f"tampered-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    try:
        for name in ("manifest.json", "vocab.txt"):
            (folder / name).write_bytes((BUNDLE / name).read_bytes())
        data = bytearray((BUNDLE / "model_int8.onnx").read_bytes())
        middle = len(data) // 2
        data[middle : middle + 64] = bytes(b ^ 0xFF for b in data[middle : middle + 64])
        (folder / "model_int8.onnx").write_bytes(bytes(data))
        yield f"models/{folder.name}/"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@needs_bundle
def test_a_tampered_model_stops_the_page_with_a_clear_error(open_app: Any, tampered_bundle: str) -> None:
    app = open_app(boot=False)
    app.page.goto(f"{app.base_url}?test&model={tampered_bundle}")
    app.page.wait_for_selector('html:not([data-state="loading"])', state="attached", timeout=180_000)
    assert app.page.get_attribute("html", "data-state") == "error"
    message = app.page.text_content("#error")
    assert app.page.is_visible("#error")
    assert "model_int8.onnx fails its sha256 check" in message
    assert "not loaded" in message
    assert app.page.query_selector("#search-form") is None  # nothing to search with an unverified model


def test_a_missing_bundle_falls_back_to_the_hashing_embedder(open_app: Any, index_name: str) -> None:
    """No bundle served (404): the page still becomes ready (keyword search works, "semantic" is lexical)
    and says so; this is also what CI sees before the model is exported."""
    app = open_app(boot=False)
    app.page.goto(f"{app.base_url}?test&model=models/absent-{index_name}/&index={index_name}")
    app.page.wait_for_selector('html:not([data-state="loading"])', state="attached", timeout=180_000)
    assert app.page.get_attribute("html", "data-state") == "ready", app.page.text_content("#error")
    assert app.page.get_attribute("html", "data-embedder") == "hashing"
    assert app.page.get_attribute("html", "data-index") == f"{index_name}-hashing"
    assert "No model bundle" in app.page.text_content("#notice")
    assert app.page.is_visible("#search-form")


@pytest.fixture()
def future_bundle() -> Any:
    """A bundle folder under web/models/ whose manifest declares a format version newer than this clinvec
    reads; only the manifest is needed, since nothing else may be fetched once it is refused."""
    from pyapp.embed.bundle import FORMAT_VERSION

    folder = BUNDLE.parent / f"future-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    try:
        manifest = json.loads((BUNDLE / "manifest.json").read_text())
        manifest["format_version"] = FORMAT_VERSION + 1
        (folder / "manifest.json").write_text(json.dumps(manifest))
        yield f"models/{folder.name}/"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@needs_bundle
def test_embedder_errors_are_clear(app: Any, index_name: str, future_bundle: str) -> None:
    """Bad arguments, absent bundles and a newer bundle format raise clinvec errors (InvalidInput,
    ModelBundleError from the shared bundle module), not JS noise."""
    out = app.run(
        "from pyapp.browser.web_embedder import WebEmbedder\n"
        "from pyapp.browser._bridge import js_module\n"
        "import __main__\n"
        "root = str(js_module('clinvec_embed').webRoot())\n"
        "result = {}\n"
        "for label, url, variant in (('variant', root + 'models/minilm/', 'fp16'),\n"
        "                            ('future', root + future, 'int8'),\n"
        "                            ('absent', root + 'models/absent-' + name + '/', 'int8')):\n"
        "    try:\n"
        "        await WebEmbedder.load(url, variant=variant)\n"
        "    except Exception as exc:\n"
        "        result[label] = [type(exc).__name__, str(exc)]\n"
        "        if label == 'absent':\n"
        "            from pyapp.errors import ModelBundleError\n"
        "            result['absent_is_bundle_error'] = isinstance(exc, ModelBundleError)\n"
        "emb = __main__._APP['embedder']\n"
        "try:\n"
        "    await emb.embed_raw('one string')\n"
        "except Exception as exc:\n"
        "    result['string'] = [type(exc).__name__, str(exc)]\n"
        "result['empty'] = len(await emb.embed_raw([]))\n",
        name=index_name,
        future=future_bundle,
    )
    assert out["variant"][0] == "InvalidInput" and "fp16" in out["variant"][1]
    assert out["absent"][0] == "BundleNotFound" and "HTTP 404" in out["absent"][1]
    assert out["absent_is_bundle_error"] is True
    assert out["future"][0] == "ModelBundleError" and "newer than" in out["future"][1], out["future"]
    assert out["string"][0] == "InvalidInput"
    assert out["empty"] == 0
