"""Server embedder: an exported model bundle (``python -m export``) run by onnxruntime.

The bundle's graph already mean-pools and L2-normalises, so this module only tokenises (with the pure-Python
``pyapp.tokenizer`` port, never transformers), batches and runs the session. Texts are sorted by length
before batching so padding stays small; results come back in the caller's order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput, ModelBundleError
from . import bundle
from .base import Embedder, Progress, check_texts, length_batches, token_rows
from .bundle import load_manifest, sha256_file
from .providers import available_providers, choose_providers, requested_from_env

if TYPE_CHECKING:
    import numpy as np


_RUNTIME = ("numpy", "onnxruntime")
SERVER_EXTRA_HINT = 'pip install "clinvec[server]" (pip install -e ".[server]" in a checkout)'


def require_runtime() -> None:
    """``ImportError`` naming the ``server`` extra unless numpy and onnxruntime import here.

    Why up front: without the check a missing onnxruntime surfaces as a bare ``ModuleNotFoundError`` deep
    inside ``__init__``, after the bundle was hashed; Pyodide has no onnxruntime, so a page sees this too.
    """
    missing = []
    for module in _RUNTIME:
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise ImportError(
            f"OnnxEmbedder needs {' and '.join(missing)} (the server extra): {SERVER_EXTRA_HINT}; "
            "in the browser use pyapp.browser.web_embedder.WebEmbedder",
            name=missing[0],
        )


class OnnxEmbedder(Embedder):
    """Embeds texts with a bundle's fp32 or int8 graph on onnxruntime (CUDA when available, else CPU).

    ``providers``: onnxruntime execution providers to ask for (``["cpu"]``, ``["cuda", "cpu"]``, full names
    too); ``None`` reads ``CLINVEC_ORT_PROVIDERS`` (e.g. ``cpu``), and when that is unset picks CUDA then CPU
    where onnxruntime-gpu offers CUDA, CPU alone otherwise. The provider that really runs is in ``runtime``,
    never in ``identity`` (see ``pyapp.embed.providers``).
    """

    def __init__(
        self,
        bundle_dir: str | Path,
        quantized: bool = True,
        batch_size: int = 16,
        threads: int | None = None,
        verify: bool = True,
        providers: Sequence[str] | str | None = None,
    ) -> None:
        require_runtime()
        self.providers = choose_providers(
            requested_from_env() if providers is None else providers, available_providers()
        )
        if not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidInput(f"batch_size must be a positive integer, got {batch_size!r}")
        self.bundle_dir = Path(bundle_dir).resolve()
        self.manifest = load_manifest(self.bundle_dir)
        self.variant = "int8" if quantized else "fp32"
        self.batch_size = batch_size
        self.threads = threads
        self.dims = int(self.manifest["dims"])
        self.max_seq_length = int(self.manifest["max_seq_length"])
        model_file = bundle.variant_file(self.manifest, self.variant)
        self.model_path = self._checked(model_file, verify)
        vocab_path = self._checked(self.manifest["vocab_file"], verify)
        self._sha256 = bundle.file_entry(self.manifest, model_file, str(self.bundle_dir))["sha256"]

        from ..tokenizer import WordPieceTokenizer

        self.tokenizer = WordPieceTokenizer(
            str(vocab_path),
            do_lower_case=bool(self.manifest["do_lower_case"]),
            max_length=self.max_seq_length,
        )
        self._verify = verify
        self._pad_id = self.tokenizer.pad_id
        self._session = self._open(self.model_path)
        self._mlm_session: Any = None

    @property
    def runtime(self) -> dict[str, Any]:
        """Where the graph runs (informational, not compared): the provider onnxruntime really used first
        (it falls back to CPU when CUDA cannot start), the list asked for, and the thread setting."""
        return {
            "engine": "onnxruntime",
            "provider": self._session.get_providers()[0],
            "providers": list(self.providers),
            "threads": self.threads,
        }

    @property
    def identity(self) -> dict[str, Any]:
        return bundle.identity(self.manifest, self.variant, self._sha256, str(self.bundle_dir))

    def embed(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """``(len(texts), dims)`` float32 unit vectors, in the order of ``texts``."""
        import numpy as np

        check_texts(texts, "embed")
        rows = token_rows(self.tokenizer, texts, self.max_seq_length)
        out = np.empty((len(rows), self.dims), dtype=np.float32)
        done = 0
        for chunk in length_batches(rows, self.batch_size):
            out[chunk] = self._run(self._session, [rows[i] for i in chunk], self.manifest["output"])
            done += len(chunk)
            if progress is not None:
                progress(done, len(rows))
        return out

    async def embed_raw(self, texts: Sequence[str], progress: Progress | None = None) -> bytes:
        """Runs ``embed`` on a worker thread (onnxruntime releases the GIL); ``progress`` is called from it."""
        matrix = await asyncio.to_thread(self.embed, list(texts), progress)
        return matrix.astype("<f4", copy=False).tobytes()

    def predict_masked(self, text: str, top_k: int = 5) -> list[list[dict[str, Any]]]:
        """Top ``top_k`` tokens (with softmax scores) for each [MASK] in ``text``, left to right.

        Needs a bundle exported with ``--with-mlm``.
        """
        import numpy as np

        if not isinstance(top_k, int) or top_k < 1:
            raise InvalidInput(f"top_k must be a positive integer, got {top_k!r}")
        mlm = self.manifest.get("mlm")
        if not mlm:
            raise ModelBundleError(f"{self.bundle_dir} has no masked-LM graph; export it with --with-mlm")
        if self._mlm_session is None:
            self._mlm_session = self._open(self._checked(mlm["file"], self._verify))
        mask_id = int(self.manifest["special_tokens"]["mask"]["id"])
        row = token_rows(self.tokenizer, [text], self.max_seq_length)[0]
        logits = self._run(self._mlm_session, [row], mlm.get("output", "logits"))[0]
        result = []
        for pos in [i for i, tok in enumerate(row[0]) if tok == mask_id]:
            scores = logits[pos].astype(np.float64)
            probs = np.exp(scores - scores.max())
            probs /= probs.sum()
            best = np.argsort(-probs, kind="stable")[:top_k]
            result.append(
                [
                    {"token": self.tokenizer.id_to_token(int(i)), "token_id": int(i), "score": float(probs[i])}
                    for i in best
                ]
            )
        return result

    # -- internals -------------------------------------------------------------------------------------

    def _checked(self, name: str, verify: bool) -> Path:
        """Path of a bundle file after its size (and, unless skipped, sha256) matched the manifest."""
        return bundle.checked_path(self.bundle_dir, self.manifest, name, verify)

    def _open(self, path: Path) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self.threads:
            options.intra_op_num_threads = int(self.threads)
            options.inter_op_num_threads = 1
        return ort.InferenceSession(str(path), sess_options=options, providers=self.providers)

    def _run(self, session: Any, rows: list[tuple[list[int], list[int]]], output: str) -> np.ndarray:
        import numpy as np

        width = max(len(ids) for ids, _ in rows)
        input_ids = np.full((len(rows), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        types = np.zeros((len(rows), width), dtype=np.int64)
        for r, (ids, tt) in enumerate(rows):
            input_ids[r, : len(ids)] = ids
            mask[r, : len(ids)] = 1
            types[r, : len(tt)] = tt
        feeds = {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": types}
        return session.run([output], feeds)[0]


__all__ = ["ModelBundleError", "OnnxEmbedder", "load_manifest", "require_runtime", "sha256_file"]
