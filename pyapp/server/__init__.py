"""The HTTP API server (server build only: FastAPI + uvicorn, the ``server`` extra).

``python -m pyapp serve-api ROOT`` serves every index under ``ROOT``; ``serve.py --api ROOT`` mounts the same
API under ``/api`` beside the page. See ``app.py`` (routes and guards), ``registry.py`` (open indexes),
``updates.py`` (batches over HTTP), ``security.py`` and ``errors.py``.
"""

from __future__ import annotations

from .app import ROUTE_MODULES, build_api, create_app, guard

__all__ = ["ROUTE_MODULES", "build_api", "create_app", "guard"]
