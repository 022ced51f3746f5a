"""Drive the page in a Chromium that has a WebGPU adapter (SwiftShader, software) and print JSON facts.

Why a separate process: the browser tests' session already holds Playwright's sync API (one per thread), and
this Chromium needs other flags: no ``--disable-gpu``, plus ``--enable-unsafe-webgpu``, which on Debian's
headless Chromium here gives SwiftShader's fallback adapter. Used by test_webgpu_page.py and bench/.

    python tests/browser/webgpu_driver.py URL [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser_helpers import AppPage  # noqa: E402
from conftest import CHROMIUM, LAUNCH_ARGS  # noqa: E402

WEBGPU_ARGS = [a for a in LAUNCH_ARGS if a != "--disable-gpu"] + ["--enable-unsafe-webgpu"]
TEXTS = [
    "Pt c/o SOB and orthopnea, hx CHF, bilateral leg edema.",
    "New onset atrial fibrillation with rapid ventricular response, started on diltiazem.",
    "Type 2 diabetes poorly controlled, HbA1c 9.1%, basal insulin added.",
    "Community acquired pneumonia, right lower lobe consolidation, fever 38.5°C.",
]
QUERY = "breathless with chest pain after a long flight"

IN_PAGE = """
import base64, time, __main__
from pyapp.browser.web_embedder import WebEmbedder
import pyapp.browser.web_embedder as web

emb = __main__._APP['embedder']
wasm = await WebEmbedder.load(root + 'models/minilm/', variant=emb.variant, backend='wasm')

async def timed(e):
    await e.embed_raw([query])  # warm
    ms = []
    for _ in range(repeat):
        t = time.perf_counter()
        await e.embed_raw([query])
        ms.append((time.perf_counter() - t) * 1000)
    return sorted(ms)[len(ms) // 2]

result = {
    'runtime': emb.runtime, 'variant': emb.variant,
    'gpu': base64.b64encode(await emb.embed_raw(texts)).decode(),
    'wasm': base64.b64encode(await wasm.embed_raw(texts)).decode(),
    'gpu_ms': await timed(emb), 'wasm_ms': await timed(wasm),
}
await wasm.close()
web.PROBE_MIN_COSINE = 1.5  # fault injected: no probe can pass, so WebGPU must not be trusted
refused = await WebEmbedder.load(root + 'models/minilm/', variant=emb.variant, backend='webgpu')
result['refused'] = refused.runtime
await refused.close()
web.PROBE_MIN_COSINE = 0.999
"""


def facts(url: str, repeat: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    root = url.split("?")[0].rstrip("/") + "/"
    out: dict[str, Any] = {"flags": WEBGPU_ARGS}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=WEBGPU_ARGS, headless=True)
        try:
            app = AppPage(browser.new_context().new_page(), root)
            page = app.page
            page.goto(f"{root}?test&backend=webgpu&index=webgpu-{uuid.uuid4().hex[:8]}")
            page.wait_for_selector('html:not([data-state="loading"])', state="attached", timeout=600_000)
            out["forced"] = {
                "state": page.get_attribute("html", "data-state"),
                "error": page.text_content("#error"),
                "backend": page.get_attribute("html", "data-backend"),
                "index": page.get_attribute("html", "data-index"),
                "backend_line": page.text_content("[data-testid=backend]"),
                "backend_error": page.text_content("[data-testid=backend-error]")
                if page.query_selector("[data-testid=backend-error]")
                else None,
            }
            if out["forced"]["state"] == "ready":
                out["forced"].update(app.run(IN_PAGE, root=root, texts=TEXTS, query=QUERY, repeat=repeat))
            out["console"] = app.console[-20:]
            page.goto(f"{root}?test&index=webgpu-default-{uuid.uuid4().hex[:8]}")
            page.wait_for_selector('html:not([data-state="loading"])', state="attached", timeout=600_000)
            out["default"] = {
                "state": page.get_attribute("html", "data-state"),
                "backend": page.get_attribute("html", "data-backend"),
                "backend_line": page.text_content("[data-testid=backend]"),
            }
        finally:
            browser.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(facts(args.url, args.repeat)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
