"""Query embedding time per inference backend: onnxruntime providers (server) and onnxruntime-web wasm/WebGPU.

    python bench/embed_backends.py [--repeat 20] [--browser-repeat 5] [--no-browser]

Server: ``OnnxEmbedder`` on each provider onnxruntime offers here that clinvec chooses (CPU; CUDA where
onnxruntime-gpu and a GPU exist), fp32 and int8, one query per call, median of ``--repeat`` after a warm-up.
Browser: the page in Chromium with ``--enable-unsafe-webgpu`` (tests/browser/webgpu_driver.py), the WebGPU
embedder the page opened (fp32) against a wasm one in the same worker, median of ``--browser-repeat``.
Prints one JSON object (with ``uptime``'s load average); figures go to docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BUNDLE = ROOT / "web" / "models" / "minilm"
QUERY = "breathless with chest pain after a long flight"


def _load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def server(repeat: int) -> list[dict[str, Any]]:
    from pyapp.embed.onnx import OnnxEmbedder
    from pyapp.embed.providers import CPU, CUDA, available_providers

    rows = []
    for provider in [p for p in (CUDA, CPU) if p in available_providers()]:
        for quantized in (False, True):
            emb = OnnxEmbedder(BUNDLE, quantized=quantized, providers=[provider])
            emb.embed([QUERY])
            times = []
            for _ in range(repeat):
                started = time.perf_counter()
                emb.embed([QUERY])
                times.append((time.perf_counter() - started) * 1000)
            rows.append(
                {
                    "where": "server onnxruntime",
                    "provider": emb.runtime["provider"],
                    "variant": emb.variant,
                    "median_ms": round(statistics.median(times), 2),
                }
            )
    return rows


def browser(repeat: int) -> list[dict[str, Any]]:
    import web_build

    if web_build.needs_build():
        web_build.build()
    sys.path.insert(0, str(ROOT / "tests" / "browser"))
    from serve_process import ServePy  # serve.py on a free port, as the browser tests start it

    serve = ServePy()
    try:
        url = serve.url
        driver = ROOT / "tests" / "browser" / "webgpu_driver.py"
        out = subprocess.run(
            [sys.executable, str(driver), url, "--repeat", str(repeat)], capture_output=True, text=True, timeout=1800
        )
        if out.returncode != 0:
            raise RuntimeError(out.stderr[-2000:])
        forced = json.loads(out.stdout)["forced"]
    finally:
        serve.stop()
    runtime = forced.get("runtime") or {}
    name = "onnxruntime-web webgpu (SwiftShader, software)" if runtime.get("backend") == "webgpu" else "not webgpu"
    return [
        {"where": name, "variant": forced.get("variant"), "median_ms": round(forced.get("gpu_ms", 0), 1)},
        {
            "where": "onnxruntime-web wasm",
            "variant": forced.get("variant"),
            "median_ms": round(forced.get("wasm_ms", 0), 1),
        },
    ]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--browser-repeat", type=int, default=5)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    result: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load_before": _load()}
    result["rows"] = server(args.repeat) + ([] if args.no_browser else browser(args.browser_repeat))
    result["load_after"] = _load()
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
