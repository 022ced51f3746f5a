"""``JsOps``: the label-model arithmetic for Pyodide without numpy, computed in JS (``label_ops.mjs``).

Why: ``PyOps`` (pure Python) needs tens of seconds to fit a few hundred 384-d notes in the page. Here the
training rows go to JS once; parameter vectors (theta, gradients, L-BFGS history) stay JS ``Float64Array``s that
Python holds by handle, so an objective evaluation or a vector step is one bridge call and no element is
converted; only the final parameters are copied back (``to_list``).
"""

from __future__ import annotations

from array import array
from typing import Any

from ._bridge import js_module, to_u8

MODULE = "clinvec_labels"


def available() -> bool:
    """True when ``label_ops.mjs`` is registered (the page's worker registers it)."""
    try:
        js_module(MODULE)
    except ImportError:
        return False
    return True


class JsOps:
    """The ``PyOps``/``NumpyOps`` interface over JS float64 rows and JS parameter vectors."""

    name = "js"

    def __init__(self, rows: list[list[float]], targets: list[int], classes: int, l2: float) -> None:
        self.targets, self.k, self.l2 = targets, classes, l2
        self.n, self.d = len(rows), len(rows[0])
        flat = array("d")
        for row in rows:
            flat.extend(row)
        self._mod: Any = js_module(MODULE)
        self._js: Any = self._mod.LabelOps.new(to_u8(flat), to_u8(array("i", targets)), self.n, self.d, classes, l2)

    def zeros(self, size: int) -> Any:
        return self._mod.zeros(size)

    def dot(self, a: Any, b: Any) -> float:
        return float(self._mod.dot(a, b))

    def axpy(self, alpha: float, x: Any, y: Any) -> Any:
        """``y + alpha * x`` as a new vector."""
        return self._mod.axpy(alpha, x, y)

    def scale(self, alpha: float, x: Any) -> Any:
        return self._mod.scale(alpha, x)

    def max_abs(self, x: Any) -> float:
        return float(self._mod.maxAbs(x))

    def to_list(self, x: Any) -> list[float]:
        return array("d", x.to_bytes()).tolist()

    def loss_grad(self, theta: Any) -> tuple[float, Any]:
        grad = self._js.lossGrad(theta)
        return float(self._js.loss), grad
