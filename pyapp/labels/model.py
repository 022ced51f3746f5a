"""LabelModel: multinomial logistic regression on embeddings, fitted and used on the server and in the page.

Few-shot labelling (note type, specialty, ...) from vectors the index already holds. Every row is L2-normalised
first, as the index does, so a model sees the geometry cosine search sees and one regularisation strength
suits every embedder. The objective is mean cross-entropy + ``l2``/2 * |W|^2 (biases free), minimised from zeros
by L-BFGS (``optim.py``): deterministic, and the numpy and pure-Python fits agree to rounding. Prediction is one
dot product per label and row.
"""

from __future__ import annotations

import json
import math
import operator
import os
from array import array
from collections.abc import Sequence
from itertools import repeat
from typing import Any

from .._platform import is_pyodide
from ..errors import DimensionMismatch, InvalidInput, InvalidVector, describe
from . import linalg, optim

FORMAT = "clinvec-label-model"
FORMAT_VERSION = 1
DEFAULT_L2 = 1e-3
DEFAULT_MAX_ITER = 500
DEFAULT_TOL = 1e-7
IDENTITY_KEYS = ("model", "revision", "variant")
BACKENDS = ("auto", "numpy", "js", "python")
Label = str | int


class LabelModelError(InvalidInput):
    """A label-model file is not one this version reads (wrong format, unknown version, bad shapes)."""


def _check_label(value: Any) -> Label:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidInput(f"labels must be strings or integers, got {describe(value)}")
    return value


def _label_order(value: Label) -> tuple[str, Any]:
    return (type(value).__name__, value)


def _unit_rows(vectors: Any, dims: int | None = None) -> list[list[float]]:
    """``vectors`` as unit-length float rows; ``InvalidVector``/``DimensionMismatch`` before anything is kept."""
    if isinstance(vectors, str | bytes) or not hasattr(vectors, "__len__"):
        raise InvalidInput(f"vectors must be a sequence of vectors, got {describe(vectors)}")
    rows: list[list[float]] = []
    for i, vector in enumerate(vectors):
        if isinstance(vector, str | bytes) or not hasattr(vector, "__len__"):
            raise InvalidVector(f"vector {i} is not a sequence of numbers: {describe(vector)}")
        try:
            values = vector.tolist() if hasattr(vector, "tolist") else vector
            try:  # plain numbers convert at C level (the page normalises hundreds of 384-d rows per fit)
                row = array("d", values).tolist()
            except TypeError:  # anything else goes through float(), as it always did
                row = [float(v) for v in values]
        except (TypeError, ValueError):
            raise InvalidVector(f"vector {i} holds something that is not a number") from None
        if bool in set(map(type, vector)):  # one C-level pass; bool cannot be subclassed
            raise InvalidVector(f"vector {i} holds a boolean")
        want = dims if dims is not None else (len(rows[0]) if rows else len(row))
        if len(row) != want:
            raise DimensionMismatch(f"vector {i} has {len(row)} values; expected {want}")
        if want == 0:
            raise InvalidVector("vectors must not be empty")
        norm = math.sqrt(math.fsum(map(operator.mul, row, row)))
        if not math.isfinite(norm):
            raise InvalidVector(f"vector {i} holds NaN or infinity (or overflows)")
        if norm == 0.0:
            raise InvalidVector(f"vector {i} is all zeros")
        rows.append(list(map(operator.truediv, row, repeat(norm))))
    return rows


def _pick_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise InvalidInput(f"backend must be one of {', '.join(BACKENDS)}, got {describe(backend)}")
    if backend == "auto":
        if linalg.numpy_available():
            return "numpy"
        return "js" if _js_ops_available() else "python"
    if backend == "js" and not _js_ops_available():
        raise InvalidInput("backend 'js' needs the page (Pyodide with label_ops.mjs registered)")
    return backend


def _js_ops_available() -> bool:
    """In the page without numpy, the objective runs in JS (``pyapp.browser.js_label_ops``): pure Python is too
    slow there. Imported only inside Pyodide, so the core never touches ``js`` on CPython."""
    if not is_pyodide():
        return False
    from ..browser import js_label_ops

    return js_label_ops.available()


def _ops_class(chosen: str) -> Any:
    if chosen == "numpy":
        return linalg.NumpyOps
    if chosen == "js":
        from ..browser.js_label_ops import JsOps

        return JsOps
    return linalg.PyOps


def _public_identity(identity: Any) -> dict[str, Any] | None:
    """The embedder identity worth recording: everything but where the bundle was loaded from."""
    if not identity:
        return None
    if not isinstance(identity, dict):
        raise InvalidInput(f"embedder must be an identity dict, got {describe(identity)}")
    return {k: v for k, v in identity.items() if k != "bundle"}


class LabelModel:
    """A fitted label model: ``labels``, one weight row and bias per label, and what it was trained on."""

    def __init__(
        self,
        labels: Sequence[Label],
        weights: Sequence[Sequence[float]],
        bias: Sequence[float],
        embedder: dict[str, Any] | None = None,
        info: dict[str, Any] | None = None,
    ) -> None:
        self._labels = [_check_label(v) for v in labels]
        if len(self._labels) < 2 or len(set(self._labels)) != len(self._labels):
            raise InvalidInput("a label model needs at least 2 distinct labels")
        self._weights = [[float(v) for v in row] for row in weights]
        self._bias = [float(v) for v in bias]
        dims = len(self._weights[0]) if self._weights else 0
        if len(self._weights) != len(self._labels) or len(self._bias) != len(self._labels) or dims == 0:
            raise InvalidInput("weights and bias need one row per label")
        if any(len(row) != dims for row in self._weights):
            raise InvalidInput("every weight row needs the same length")
        if not all(math.isfinite(v) for row in self._weights for v in row) or not all(map(math.isfinite, self._bias)):
            raise InvalidInput("weights and bias must be finite")
        self.dims = dims
        self.embedder = _public_identity(embedder)
        self.info: dict[str, Any] = dict(info or {})

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit(
        cls,
        vectors: Any,
        labels: Sequence[Any],
        *,
        l2: float = DEFAULT_L2,
        max_iter: int = DEFAULT_MAX_ITER,
        tol: float = DEFAULT_TOL,
        backend: str = "auto",
        embedder: dict[str, Any] | None = None,
    ) -> LabelModel:
        """Fit on ``vectors`` (rows) and their ``labels`` (strings or integers, at least 2 distinct values).

        ``l2``: the weight penalty on the mean loss (larger: smoother, less sure). ``backend``: ``numpy``,
        ``js`` (the page: objective in JS), ``python`` (pure Python anywhere) or ``auto``. ``embedder``: the
        identity of the model that made the vectors, recorded so vectors from another model are refused later."""
        if isinstance(l2, bool) or not isinstance(l2, int | float) or not (math.isfinite(l2) and l2 > 0):
            raise InvalidInput(f"l2 must be a positive number, got {describe(l2)}")
        if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
            raise InvalidInput(f"max_iter must be a positive integer, got {describe(max_iter)}")
        if isinstance(tol, bool) or not isinstance(tol, int | float) or not (math.isfinite(tol) and tol > 0):
            raise InvalidInput(f"tol must be a positive number, got {describe(tol)}")
        chosen = _pick_backend(backend)
        if isinstance(labels, str | bytes) or not hasattr(labels, "__len__"):
            raise InvalidInput(f"labels must be a sequence, got {describe(labels)}")
        checked = [_check_label(v) for v in labels]
        rows = _unit_rows(vectors)
        if len(rows) != len(checked):
            raise InvalidInput(f"{len(rows)} vectors but {len(checked)} labels")
        names = sorted(set(checked), key=_label_order)
        if len(names) < 2:
            raise InvalidInput(f"labels need at least 2 distinct values to learn from; got {describe(names)}")
        position = {name: i for i, name in enumerate(names)}
        targets = [position[v] for v in checked]
        ops = _ops_class(chosen)(rows, targets, len(names), float(l2))
        dims, k = len(rows[0]), len(names)
        solution = optim.minimize(ops, k * (dims + 1), max_iter, float(tol))
        theta = ops.to_list(solution.theta)
        counts = {str(name): targets.count(i) for i, name in enumerate(names)}
        info = {
            "examples": len(rows),
            "per_label": counts,
            "l2": float(l2),
            "iterations": solution.iterations,
            "converged": solution.converged,
            "loss": solution.loss,
            "backend": chosen,
        }
        weights = [theta[c * dims : (c + 1) * dims] for c in range(k)]
        return cls(names, weights, theta[k * dims :], embedder=embedder, info=info)

    # ------------------------------------------------------------------ prediction
    @property
    def labels(self) -> list[Label]:
        """The labels, in the order of ``predict_proba``'s columns."""
        return list(self._labels)

    def predict_proba(self, vectors: Any) -> list[list[float]]:
        """Per row, the probability of each label (``labels`` order); rows are L2-normalised first."""
        out = []
        for row in _unit_rows(vectors, self.dims):
            probs, _ = linalg.softmax_row(
                [linalg.dot_py(row, w) + b for w, b in zip(self._weights, self._bias, strict=True)]
            )
            out.append(probs)
        return out

    def predict(self, vectors: Any) -> list[tuple[Label, float]]:
        """Per row, the most likely label and its probability (ties: the label sorted first)."""
        best = []
        for probs in self.predict_proba(vectors):
            i = max(range(len(probs)), key=probs.__getitem__)
            best.append((self._labels[i], probs[i]))
        return best

    @classmethod
    async def fit_index(cls, index: Any, field: str = "kind", **options: Any) -> LabelModel:
        """Fit on the notes of ``index`` whose metadata has ``field`` (one vector per note: the mean of its
        chunk vectors); records the index's embedder identity. ``options`` as for ``fit``."""
        return await fit_index(index, field, **options)

    async def predict_index(self, index: Any, uris: Any = None, field: str | None = None) -> list[dict[str, Any]]:
        """Suggestions for the notes of ``index`` (all, or ``uris``); refuses an index of another embedder."""
        return await predict_index(self, index, field, uris)

    def check_embedder(self, identity: dict[str, Any] | None, dims: int | None = None) -> None:
        """Refuse vectors from another embedder than the one this model was trained on (or another size)."""
        if dims is not None and dims != self.dims:
            raise DimensionMismatch(f"this label model takes {self.dims}-d vectors; the index holds {dims}-d")
        if self.embedder is None or not identity:
            return
        if any(self.embedder.get(k) != identity.get(k) for k in IDENTITY_KEYS):
            raise InvalidInput(
                f"this label model was trained on vectors from {self.embedder.get('model')!r} "
                f"({self.embedder.get('variant')}); these come from {identity.get('model')!r} "
                f"({identity.get('variant')}): its predictions would be meaningless"
            )

    # ------------------------------------------------------------------ files
    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``save`` writes it): versioned, floats written so they read back exactly."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "labels": self.labels,
            "dims": self.dims,
            "embedder": self.embedder,
            "weights": self._weights,
            "bias": self._bias,
            "info": self.info,
        }

    @classmethod
    def from_dict(cls, data: Any) -> LabelModel:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise LabelModelError(f"not a label model (format is not {FORMAT!r})")
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise LabelModelError(
                f"label model format_version {describe(version)} is not one this version reads ({FORMAT_VERSION})"
            )
        try:
            model = cls(data["labels"], data["weights"], data["bias"], data.get("embedder"), data.get("info"))
        except (KeyError, TypeError, ValueError, InvalidInput) as exc:
            raise LabelModelError(f"label model is malformed: {exc}") from None
        if data.get("dims") != model.dims:
            raise LabelModelError(f"label model says dims {describe(data.get('dims'))} but holds {model.dims}")
        return model

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the model as JSON, atomically (a crash leaves the old file or the new one, never half)."""
        path = os.fspath(path)
        tmp = f"{path}.tmp-{os.getpid()}"
        try:
            with open(tmp, "w", encoding="utf-8") as handle:
                json.dump(self.to_dict(), handle, ensure_ascii=False, allow_nan=False)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except OSError:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LabelModel:
        """Read a file ``save`` wrote; ``LabelModelError`` if it is not one this version reads."""
        try:
            with open(os.fspath(path), "rb") as handle:
                raw = handle.read()
        except OSError as exc:
            raise InvalidInput(f"cannot read label model {os.fspath(path)!r}: {exc.strerror or exc}") from None
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise LabelModelError(f"label model {os.fspath(path)!r} is not JSON: {exc}") from None
        return cls.from_dict(data)

    def __repr__(self) -> str:
        return f"LabelModel(labels={self._labels!r}, dims={self.dims})"


async def fit_index(index: Any, field: str, **options: Any) -> LabelModel:
    """A model for ``field`` from the notes of ``index`` that have it (one mean vector per note)."""
    from .notes import note_vectors

    data = (await note_vectors(index, field)).labelled()
    if not data.uris:
        raise InvalidInput(f"no note in the index has a value for {field!r}")
    model = LabelModel.fit(data.vectors, data.labels, embedder=index.manifest.get("embedder"), **options)
    model.info["field"] = field
    return model


async def predict_index(
    model: LabelModel, index: Any, field: str | None = None, uris: Any = None
) -> list[dict[str, Any]]:
    """A suggestion per note of ``index`` (or per ``uris``): ``{uri, label, probability, given}`` where
    ``given`` is the note's own value of the model's field (None when unlabelled)."""
    from .notes import note_vectors

    model.check_embedder(index.manifest.get("embedder"), index.dims)
    field = field or model.info.get("field")
    if not field:
        raise InvalidInput("this label model records no field; name one")
    data = await note_vectors(index, field, uris)
    if not data.uris:
        return []
    rows = model.predict(data.vectors)
    return [
        {"uri": uri, "label": label, "probability": prob, "given": given}
        for uri, (label, prob), given in zip(data.uris, rows, data.labels, strict=True)
    ]
