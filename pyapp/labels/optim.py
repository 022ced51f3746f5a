"""L-BFGS with a backtracking (Armijo) line search: deterministic, and written once for both backends.

The objective (mean cross-entropy + L2) is smooth and strictly convex, so L-BFGS reaches the one optimum in
tens of full-batch steps where plain gradient descent needs thousands; that matters in the page, where each
step is pure Python. Every decision (step size, history update, stop) depends only on the backend's numbers,
so the numpy and pure-Python fits take the same steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

HISTORY = 10
ARMIJO = 1e-4
MAX_HALVINGS = 40


@dataclass(frozen=True)
class Solution:
    """The parameters reached, the objective there, and how the run ended."""

    theta: Any
    loss: float
    iterations: int
    converged: bool


def minimize(ops: Any, size: int, max_iter: int, tol: float) -> Solution:
    """Minimise ``ops.loss_grad`` from zeros until the largest gradient entry is below ``tol``."""
    theta = ops.zeros(size)
    loss, grad = ops.loss_grad(theta)
    history: list[tuple[Any, Any, float]] = []  # (s, y, 1 / y.s)
    for iteration in range(max_iter):
        if ops.max_abs(grad) <= tol:
            return Solution(theta, loss, iteration, True)
        direction = _direction(ops, grad, history)
        slope = ops.dot(grad, direction)
        if slope >= 0:  # not a descent direction (rounding): restart from the gradient
            history.clear()
            direction, slope = ops.scale(-1.0, grad), -ops.dot(grad, grad)
        step = 1.0
        for _ in range(MAX_HALVINGS):
            candidate = ops.axpy(step, direction, theta)
            new_loss, new_grad = ops.loss_grad(candidate)
            if new_loss <= loss + ARMIJO * step * slope:
                break
            step *= 0.5
        else:
            return Solution(theta, loss, iteration, False)
        s = ops.axpy(-1.0, theta, candidate)
        y = ops.axpy(-1.0, grad, new_grad)
        ys = ops.dot(y, s)
        if ys > 1e-12:
            history.append((s, y, 1.0 / ys))
            if len(history) > HISTORY:
                history.pop(0)
        theta, loss, grad = candidate, new_loss, new_grad
    return Solution(theta, loss, max_iter, ops.max_abs(grad) <= tol)


def _direction(ops: Any, grad: Any, history: list[tuple[Any, Any, float]]) -> Any:
    """``-H grad`` by the two-loop recursion (H the L-BFGS inverse-Hessian estimate)."""
    q = grad
    alphas = []
    for s, y, rho in reversed(history):
        alpha = rho * ops.dot(s, q)
        alphas.append(alpha)
        q = ops.axpy(-alpha, y, q)
    if history:
        s, y, _ = history[-1]
        q = ops.scale(ops.dot(s, y) / ops.dot(y, y), q)
    for (s, y, rho), alpha in zip(history, reversed(alphas), strict=True):
        beta = rho * ops.dot(y, q)
        q = ops.axpy(alpha - beta, s, q)
    return ops.scale(-1.0, q)
