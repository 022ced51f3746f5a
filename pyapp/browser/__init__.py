"""Browser adapters (Pyodide only): the JS vector kernel and the IndexedDB store.

The one place in ``pyapp`` that imports ``js``/``pyodide``; the core reaches it only through
``kernels.default_kernel`` and ``stores.store_for`` when running inside Pyodide. Each adapter
drives a small ES module (``*.mjs`` beside it, copied to ``web/vendor/app/`` by the build).
"""
