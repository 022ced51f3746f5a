"""The page's security headers: one definition for ``serve.py`` (static files, stdlib only) and the HTTP API's
``pyapp.server.security.SecurityHeaders``, so the page and ``/api`` share one origin and one policy.

Pure data with no imports, so ``serve.py`` can use it without the ``server`` extra.
"""

from __future__ import annotations

# 'wasm-unsafe-eval': compiling WebAssembly (Pyodide, onnxruntime-web). blob: in worker-src dates from when
# PyScript started its worker from a Blob URL (py-worker.mjs is a plain module worker); check that no library
# (onnxruntime-web, pdfjs) starts one from a Blob URL before removing it. Nothing else: no inline script,
# no eval, no other origin.
CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'wasm-unsafe-eval'",
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "img-src 'self' data:",
        "style-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

# COOP/COEP/CORP: cross-origin isolation (threads, SharedArrayBuffer) on every response.
SECURITY_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
