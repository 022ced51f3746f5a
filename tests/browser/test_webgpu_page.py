"""The real WebGPU path: onnxruntime-web's WebGPU execution provider on SwiftShader (Chromium's software adapter).

Debian's headless Chromium here gives a WebGPU adapter only with ``--enable-unsafe-webgpu`` and without
``--disable-gpu`` (then ``requestAdapter()`` answers SwiftShader's fallback adapter; every other flag set tried,
``--enable-features=Vulkan``, ``--use-webgpu-adapter=swiftshader``, ``--use-angle=swiftshader``, gave the same
adapter, see docs/BENCHMARKS.md). The page is driven in a subprocess (tests/browser/webgpu_driver.py: its own
Playwright and Chromium). Slow: a cold boot, the 27 MB WebGPU build of onnxruntime-web and the fp32 graph.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from array import array
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

HERE = Path(__file__).resolve().parent
MINILM = HERE.parents[1] / "web" / "models" / "minilm"


def _rows(b64: str, dims: int) -> list[array]:
    flat = array("f", base64.b64decode(b64))
    return [flat[i : i + dims] for i in range(0, len(flat), dims)]


def _cosine(a: array, b: array) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (sum(x * x for x in a) * sum(y * y for y in b)) ** 0.5


@pytest.mark.skipif(not (MINILM / "manifest.json").is_file(), reason="no web/models/minilm bundle")
def test_webgpu_runs_checked_against_wasm_and_is_refused_when_the_check_fails(web_url: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(HERE / "webgpu_driver.py"), web_url, "--repeat", "3"],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    facts = json.loads(proc.stdout)
    forced = facts["forced"]
    assert forced["state"] == "ready", forced["error"]
    if forced["backend"] != "webgpu":
        pytest.fail(f"no WebGPU here with {facts['flags']}: {forced['backend_line']} {forced['backend_error']}")
    runtime = forced["runtime"]
    assert runtime["backend"] == runtime["requested"] == "webgpu" and runtime["note"] is None
    assert runtime["probe_cosine"] >= 0.999
    assert forced["variant"] == "fp32" and forced["index"].endswith("-fp32")  # WebGPU has no int8 kernels
    assert "checked against wasm on a probe sentence: cosine" in forced["backend_line"]
    assert forced["backend_error"] is None
    gpu, wasm = _rows(forced["gpu"], 384), _rows(forced["wasm"], 384)
    assert len(gpu) == len(wasm) == 4
    assert min(_cosine(a, b) for a, b in zip(gpu, wasm, strict=True)) >= 0.999
    refused = forced["refused"]  # the probe threshold made impossible: WebGPU must not be trusted
    assert refused["backend"] == "wasm" and refused["requested"] == "webgpu"
    assert "disagreed with wasm on a probe sentence" in refused["note"]
    default = facts["default"]  # no ?backend: a software fallback adapter is not chosen over wasm
    assert default["state"] == "ready" and default["backend"] == "wasm"
    assert "software fallback" in default["backend_line"]
