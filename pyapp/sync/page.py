"""The page's "Sync with server" rules on plain JSON: state in, report and new state out (tested on CPython).

Why here: the page's worker only moves JSON and bytes; what a sync says to the user (the summary line, the
log of moved and overwritten notes) is a rule, so it lives beside the engine and runs in the CPython suite.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .engine import Peer, SyncProgress, SyncState, sync

if TYPE_CHECKING:
    from ..index import LocalIndex

LOG_LIMIT = 500  # entries the page shows; the counts cover everything


def _note(entry: dict[str, Any]) -> dict[str, Any]:
    """A log entry as the page lists it: which note, which rule, what was kept and what was overwritten."""
    winner, loser = entry["winner"], entry["overwritten"]

    def words(version: dict[str, Any]) -> str:
        where = "on the server" if version["side"] == "server" else "on this device"
        what = "deleted" if version.get("deleted") else "edit"
        return f"{what} {where}"

    note = (entry["overwritten"].get("metadata") or {}).get("_doc") or entry["id"]
    return {
        "id": entry["id"],
        "note": note if isinstance(note, str) else entry["id"],
        "conflict": bool(entry.get("conflict")),
        "rule": entry["rule"],
        "message": f"{words(winner)} kept; {words(loser)} overwritten ({entry['rule']})",
        "overwritten_text": loser.get("text"),
        "overwritten_time": loser.get("time"),
        "winner_time": winner.get("time"),
    }


def summary(report: dict[str, Any]) -> str:
    """One line for the status: what moved each way and how many versions were overwritten."""
    pushed, pulled = report["pushed"], report["pulled"]
    sent = "nothing to send" if pushed is None else f"sent {pushed['moved']} change(s)"
    got = f"received {pulled['added']} new, {pulled['updated']} updated, {pulled['deleted']} deleted"
    over = len(report["log"])
    conflicts = report["conflicts"]
    tail = f"; {over} version(s) overwritten ({conflicts} conflict(s)), listed below" if over else ""
    return f"Synced: {sent}; {got}{tail}."


async def page_sync(
    index: LocalIndex, peer: Peer, state_json: str | None, progress: SyncProgress | None = None
) -> dict[str, Any]:
    """Sync ``index`` with ``peer`` from the saved state (JSON or empty); the page saves ``state`` again."""
    state = SyncState.from_dict(json.loads(state_json) if state_json else None)
    report = (await sync(index, peer, state, progress)).as_dict()
    log = [_note(entry) for entry in report["log"]]
    return {
        "message": summary(report),
        "state": report["state"],
        "pushed": report["pushed"] and {k: v for k, v in report["pushed"].items() if k != "log"},
        "pulled": {k: v for k, v in report["pulled"].items() if k != "log"},
        "conflicts": report["conflicts"],
        "log": log[:LOG_LIMIT],
        "log_total": len(log),
        "items": await index.count(),
        "timings": report["timings"],
    }
