"""Offline sync between an index and a server (or any peer): push local commits, pull the peer's, merge by
last writer wins per id (commit time; deletes win ties), log every version that lost. Pure Python, so the
page's worker runs the same engine as the server and the CLI. docs/BUNDLE.md ("Sync") describes the rule."""

from __future__ import annotations

from .engine import LocalPeer, Peer, ServerUnreachable, SyncError, SyncReport, SyncState, bundle_bytes, sync
from .merge import Merged, ModelMismatch, check_same_model, merge

__all__ = [
    "LocalPeer",
    "Merged",
    "ModelMismatch",
    "Peer",
    "ServerUnreachable",
    "SyncError",
    "SyncReport",
    "SyncState",
    "bundle_bytes",
    "check_same_model",
    "merge",
    "sync",
]
