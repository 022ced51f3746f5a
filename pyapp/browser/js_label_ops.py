"""``JsOps``: the label-model arithmetic for Pyodide without numpy, its objective computed in JS.

Why: ``PyOps`` (pure Python) needs tens of seconds to fit a few hundred 384-d notes in the page. Here the
training rows go to ``label_ops.mjs`` once, and each objective evaluation is one bridge call (theta in as a
float64 buffer, loss and gradient back as one). The small vector steps of L-BFGS stay ``PyOps``'s Python lists.
"""

from __future__ import annotations

from array import array
from typing import Any

from ..labels.linalg import PyOps
from ._bridge import js_module, to_u8

MODULE = "clinvec_labels"


def available() -> bool:
    """True when ``label_ops.mjs`` is registered (the page's worker registers it)."""
    try:
        js_module(MODULE)
    except ImportError:
        return False
    return True


class JsOps(PyOps):
    """``PyOps`` whose ``loss_grad`` runs in JS over float64 rows held there."""

    name = "js"

    def __init__(self, rows: list[list[float]], targets: list[int], classes: int, l2: float) -> None:
        self.targets, self.k, self.l2 = targets, classes, l2
        self.n, self.d = len(rows), len(rows[0])
        flat = array("d")
        for row in rows:
            flat.extend(row)
        self._js: Any = js_module(MODULE).LabelOps.new(
            to_u8(flat), to_u8(array("i", targets)), self.n, self.d, classes, l2
        )

    def loss_grad(self, theta: list[float]) -> tuple[float, list[float]]:
        out = array("d", self._js.lossGrad(to_u8(array("d", theta))).to_bytes())
        return out[0], out[1:].tolist()
