"""Retrieval quality of clinvec's keyword, vector and hybrid search on real clinical terminology.

Why: hybrid is the default text query, and it must never do worse than keyword search alone; the issue's
target is hybrid nDCG@10 >= 1.2x BM25 on ICD-10-CM inclusion terms with the packaged MiniLM. The sets are
built at run time from pinned PyPI terminologies (``_beir.py``); nothing derived is committed.

    python bench/retrieval.py run  [--sets icd10cm,hpo,icd10pcs] [--queries N] [--max-docs N] [--out FILE]
    python bench/retrieval.py tune [--set icd10cm] [--queries N] [--max-docs N] [--variant int8] [--out FILE]
    python bench/retrieval.py table FILE.jsonl
    python bench/retrieval.py beir --set icd10cm --dir DIR [--queries N] [--max-docs N]
    python bench/retrieval.py abbrev [--sets icd10cm,hpo] [--queries N] [--max-docs N] [--variant fp32] [--out FILE]

``run`` scores every figure through ``LocalIndex.query`` (the product's own code path, in a memory store):
``keyword``, ``vector``, ``hybrid`` (its default fusion, read from its signature), ``hybrid-rrf`` (equal-weight
RRF, k=60, for reference) and ``hybrid-weighted a=A`` (min-max, weights (A, 1 - A) for each ``--alphas`` value;
0.5 and the former default 0.75 unless told otherwise), for every bundle found (MiniLM; Bio_ClinicalBERT when
``web/models/bio-clinicalbert`` exists) in int8 and fp32, plus the mixed pairs (corpus int8 / queries fp32 and
the reverse). ``tune`` splits the queries into disjoint DEV and TEST halves, searches fusion choices (RRF k, leg
weights, weighted min-max alpha, candidate depth) on DEV only with a harness that mirrors ``LocalIndex.query``
(checked against it), and reports DEV and TEST for the winners and for the reference rows (LocalIndex's default,
the first and the former default, equal-weight min-max); ``--no-grid`` reports only the reference rows.

Embeddings are cached under ``bench/results/embeddings/<model>-<variant>-<sha256 of the ONNX file>/``, one
row per distinct text (keyed by the text's sha256), so any later run or subset over the same texts embeds
nothing again. Every result line records the set's sha256, sizes and the exact command.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import inspect
import json
import math
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
for _p in (str(HERE), str(REPO)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import _beir  # noqa: E402
import numpy as np  # noqa: E402

from pyapp.fusion import reciprocal_rank_fusion, weighted_fusion  # noqa: E402
from pyapp.index import HYBRID_DEPTH, LocalIndex  # noqa: E402
from pyapp.keyword import KeywordIndex  # noqa: E402

RESULTS = HERE / "results"
CACHE = RESULTS / "embeddings"
BUNDLES = ("web/models/minilm", "web/models/bio-clinicalbert")
K = 10
RRF_K = 60.0  # the textbook RRF k (Cormack et al. 2009; pyapp.fusion's default), used by the reference rows
EQUAL = (0.5, 0.5)
# Reference rows: the hybrid default before tuning (equal-weight RRF, k=60, max(5 * top_k, 50) candidates per leg)
# and the first tuned one (weighted min-max 0.75/0.25, 200 candidates per leg), which RRF then replaced.
FIRST_DEFAULT = {"fusion": "rrf", "k": RRF_K, "weights": (1.0, 1.0), "depth": 50}
FORMER_DEFAULT = {"fusion": "weighted", "alpha": 0.75, "depth": 200}
# int8 graphs quantise activations dynamically, with one scale per tensor, i.e. per *batch*: a text's int8 vector
# depends on the texts batched with it (cosine 0.983-0.99 between alone and in a batch of 64 on MiniLM; fp32 is
# batch-invariant to 1e-6). LocalIndex.query embeds one query at a time, so int8 queries are embedded alone here;
# corpora are embedded in batches, as insert_many does. The batch size is part of the cache key.
CORPUS_BATCH = 64
QUERY_BATCH = {"int8": 1, "fp32": CORPUS_BATCH}


def default_depth(top_k: int) -> int:
    """Candidates taken from each leg by LocalIndex's hybrid query."""
    return max(top_k, HYBRID_DEPTH)


def product_default() -> dict[str, Any]:
    """LocalIndex.query's hybrid defaults, read from its signature so the harness follows any change to them."""
    params = inspect.signature(LocalIndex.query).parameters
    weights = tuple(float(w) for w in params["weights"].default)
    return config_of(params["fusion"].default, weights, float(params["rrf_k"].default))


def config_of(fusion: str, weights: Sequence[float], rrf_k: float) -> dict[str, Any]:
    """The harness configuration of a ``LocalIndex.query(fusion=, weights=, rrf_k=)`` call at its candidate depth.

    Both fusions rank alike under a common scaling of the weights; weighted min-max is stored as the vector
    share ``alpha`` (the tuning grid's form), RRF keeps the weights as given.
    """
    if fusion == "rrf":
        return {"fusion": "rrf", "k": float(rrf_k), "weights": tuple(weights), "depth": default_depth(K)}
    return {"fusion": "weighted", "alpha": weights[0] / sum(weights), "depth": default_depth(K)}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------- metrics


def ndcg_at_k(ranked: Sequence[str], rel: dict[str, int], k: int = K) -> float:
    """nDCG@k with linear gains (BEIR/pytrec_eval): DCG = sum rel_i / log2(i + 1) over ranks i = 1..k."""
    dcg = sum(rel.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranked[:k]))
    ideal = sorted(rel.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal) if g > 0)
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked: Sequence[str], rel: dict[str, int], k: int = K) -> float:
    """Share of the relevant documents found in the top k (BEIR's recall@k)."""
    wanted = {doc for doc, g in rel.items() if g > 0}
    return len(wanted.intersection(ranked[:k])) / len(wanted) if wanted else 0.0


def evaluate(run: dict[str, Sequence[str]], qrels: dict[str, dict[str, int]], k: int = K) -> dict[str, float]:
    """Mean nDCG@k and recall@k over every judged query (a query missing from ``run`` scores 0)."""
    n = len(qrels)
    if n == 0:
        return {f"ndcg@{k}": 0.0, f"recall@{k}": 0.0, "queries": 0}
    ndcg = sum(ndcg_at_k(run.get(q, ()), rel, k) for q, rel in qrels.items()) / n
    recall = sum(recall_at_k(run.get(q, ()), rel, k) for q, rel in qrels.items()) / n
    return {f"ndcg@{k}": ndcg, f"recall@{k}": recall, "queries": n}


# --------------------------------------------------------------------------------------------- embeddings


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


class Bundle:
    """One exported model bundle and variant; the ONNX file's sha256 (from its manifest) names its cache."""

    def __init__(self, path: str | Path, variant: str, batch_size: int = CORPUS_BATCH) -> None:
        from pyapp.embed.onnx import load_manifest

        self.path = Path(path)
        self.variant = variant
        self.batch_size = batch_size
        self.manifest = load_manifest(self.path)
        file = self.manifest.get("variants", {}).get(variant, {}).get("file")
        if not file or file not in self.manifest["files"]:
            raise SystemExit(f"{self.path} has no {variant} graph")
        self.file = file
        self.sha256 = self.manifest["files"][file]["sha256"]
        self.model = self.manifest["model"]
        self.dims = int(self.manifest["dims"])
        self._embedder: Any = None

    @property
    def label(self) -> str:
        return f"{self.model.rsplit('/', 1)[-1]}-{self.variant}"

    def embedder(self) -> Any:
        """The OnnxEmbedder, built on first use (it verifies the file's sha256 against the manifest)."""
        if self._embedder is None:
            from pyapp.embed.onnx import OnnxEmbedder

            self._embedder = OnnxEmbedder(self.path, quantized=self.variant == "int8", batch_size=self.batch_size)
            if self._embedder.identity["sha256"] != self.sha256:
                raise SystemExit(f"{self.path}: the {self.variant} graph does not match its manifest")
        return self._embedder


def query_bundle(path: str | Path, variant: str) -> Bundle:
    """The bundle as LocalIndex.query uses it: int8 queries one at a time (see QUERY_BATCH)."""
    return Bundle(path, variant, batch_size=QUERY_BATCH[variant])


class EmbeddingCache:
    """Append-only per-text cache of one bundle variant: ``keys.txt`` (text sha256) + ``vectors.f32``.

    Row i of the vectors belongs to line i of the keys. Vectors are written before their keys, so a torn
    write leaves rows without keys, which the next writer cuts off. Every read and append holds an exclusive
    ``flock`` on ``.lock``, so two benchmark processes can share the cache.
    """

    def __init__(self, bundle: Bundle, root: Path = CACHE) -> None:
        self.bundle = bundle
        self.folder = root / f"{bundle.label}-{bundle.sha256[:16]}-b{bundle.batch_size}"
        self.folder.mkdir(parents=True, exist_ok=True)
        meta = {
            "model": bundle.model,
            "variant": bundle.variant,
            "file": bundle.file,
            "sha256": bundle.sha256,
            "batch_size": bundle.batch_size,
        }
        (self.folder / "bundle.json").write_text(json.dumps(meta))
        self.keys_path = self.folder / "keys.txt"
        self.vectors_path = self.folder / "vectors.f32"
        self.row_bytes = 4 * bundle.dims
        self.row: dict[str, int] = {}

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.folder / ".lock", "a") as handle:
            try:
                import fcntl

                fcntl.flock(handle, fcntl.LOCK_EX)
            except ImportError:  # not POSIX: one process at a time is the caller's business
                pass
            yield

    def _sync(self) -> int:
        """Re-read the keys (another process may have added some) and cut a torn tail; returns the row count."""
        keys = self.keys_path.read_text().split() if self.keys_path.exists() else []
        rows = self.vectors_path.stat().st_size // self.row_bytes if self.vectors_path.exists() else 0
        n = min(len(keys), rows)
        if self.vectors_path.exists() and self.vectors_path.stat().st_size != n * self.row_bytes:
            with open(self.vectors_path, "r+b") as handle:
                handle.truncate(n * self.row_bytes)
        if len(keys) != n:
            self.keys_path.write_text("".join(k + "\n" for k in keys[:n]))
        self.row = {}
        for i, key in enumerate(keys[:n]):
            self.row.setdefault(key, i)
        return n

    def _append(self, part: list[tuple[str, str]], vectors: np.ndarray) -> None:
        with self._locked():
            n = self._sync()
            fresh = [i for i, (key, _) in enumerate(part) if key not in self.row]
            if not fresh:
                return
            with open(self.vectors_path, "r+b" if self.vectors_path.exists() else "wb") as handle:
                handle.seek(n * self.row_bytes)
                handle.write(np.ascontiguousarray(vectors[fresh], dtype="<f4").tobytes())
            with open(self.keys_path, "a") as handle:
                handle.write("".join(part[i][0] + "\n" for i in fresh))
            for j, i in enumerate(fresh):
                self.row[part[i][0]] = n + j

    def get(self, texts: Sequence[str], label: str = "", chunk: int = 2048) -> np.ndarray:
        """``(len(texts), dims)`` float32 vectors, embedding (and caching) only texts never seen before."""
        keys = [text_key(t) for t in texts]
        with self._locked():
            self._sync()
        missing: dict[str, str] = {}
        for key, text in zip(keys, texts):
            if key not in self.row and key not in missing:
                missing[key] = text
        if missing:
            embedder = self.bundle.embedder()
            todo = list(missing.items())
            start = time.monotonic()
            for i in range(0, len(todo), chunk):
                part = todo[i : i + chunk]
                self._append(part, embedder.embed([t for _, t in part]))
                done = i + len(part)
                rate = done / max(time.monotonic() - start, 1e-9)
                log(f"  embedded {done}/{len(todo)} {label} texts with {self.bundle.label} ({rate:.0f}/s)")
        with self._locked():
            n = self._sync()
            if n == 0:
                return np.empty((0, self.bundle.dims), dtype=np.float32)
            matrix = np.fromfile(self.vectors_path, dtype="<f4", count=n * self.bundle.dims)
        return np.ascontiguousarray(matrix.reshape(n, self.bundle.dims)[[self.row[k] for k in keys]])


def find_bundles(paths: Sequence[str] | None) -> list[Path]:
    roots = [REPO / p for p in (paths or BUNDLES)]
    found = [p for p in roots if (p / "manifest.json").exists()]
    if paths and len(found) != len(roots):
        missing = [str(p) for p in roots if p not in found]
        raise SystemExit(f"no model bundle at {missing}; export one with `python -m export`")
    return found


# --------------------------------------------------------------------------------------------- the product path


async def build_index(ds: _beir.Dataset, vectors: np.ndarray, name: str) -> LocalIndex:
    """An in-memory LocalIndex holding the corpus in its order (insertion order breaks ties)."""
    index = await LocalIndex.create(f"memory://{name}", dims=int(vectors.shape[1]))
    items = [
        {"id": doc_id, "vector": vectors[i], "text": doc.full} for i, (doc_id, doc) in enumerate(ds.corpus.items())
    ]
    await index.insert_many(items)
    return index


async def query_all(
    index: LocalIndex,
    ds: _beir.Dataset,
    mode: str,
    qvectors: np.ndarray | None = None,
    fusion: str | None = None,
    weights: Sequence[float] | None = None,
    rrf_k: float | None = None,
) -> dict[str, list[str]]:
    """Top-10 ids of every query through ``LocalIndex.query``; ``None`` leaves its default fusion, weights or k."""
    run: dict[str, list[str]] = {}
    given = {"fusion": fusion, "weights": weights, "rrf_k": rrf_k}
    options = {name: value for name, value in given.items() if value is not None}
    for i, (qid, text) in enumerate(ds.queries.items()):
        vector = None if qvectors is None or mode == "keyword" else qvectors[i]
        hits = await index.query(vector=vector, text=None if mode == "vector" else text, top_k=K, mode=mode, **options)
        run[qid] = [h.id for h in hits]
    return run


def host() -> dict[str, Any]:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__, "loadavg_1m": load}


def line(ds: _beir.Dataset, **fields: Any) -> dict[str, Any]:
    base = {
        "set": ds.name,
        "set_sha256": ds.digest()[:16],
        "docs": len(ds.corpus),
        "queries": len(ds.queries),
        "source": ds.info.get("source"),
        "edition": ds.info.get("edition"),
        "subset": ds.info.get("subset"),
        "split": ds.info.get("split"),
        "strict": ds.info.get("strict", False),
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": host(),
    }
    base.update(fields)
    return base


def emit(record: dict[str, Any], out: Path | None) -> None:
    """A short summary on stderr; the JSON line to ``out`` (or stdout when there is none)."""
    text = json.dumps(record, ensure_ascii=False)
    what = record.get("label") or record.get("system") or record.get("kind")
    variants = f"{record.get('corpus_variant') or record.get('variant') or ''}/{record.get('query_variant') or ''}"
    part = (record.get("split") or {}).get("part", "")
    if "ndcg@10" in record:
        log(
            f"  {record['set']} {part} {what} {variants}: nDCG@10 {record['ndcg@10']:.4f} recall@10 "
            f"{record['recall@10']:.4f}"
        )
    if out is None:
        print(text, flush=True)
        return
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "a", encoding="utf-8") as handle:
            handle.write(text + "\n")


def load_set(name: str, queries: int | None, max_docs: int | None, seed: int, strict: bool) -> _beir.Dataset:
    ds = _beir.build(name, strict=strict)
    if queries is not None or max_docs is not None:
        ds = _beir.subset(ds, queries, max_docs, seed)
    log(f"{name}: {len(ds.corpus)} docs, {len(ds.queries)} queries, sha256 {ds.digest()[:16]} ({ds.info['hygiene']})")
    return ds


def systems(alphas: Sequence[float]) -> list[tuple[str, str, dict[str, Any]]]:
    """(name, mode, LocalIndex.query options) of every vector-using system; no option = its default.

    ``hybrid`` is the default text query; ``hybrid-rrf`` is equal-weight RRF (k=60) and ``hybrid-weighted a=A``
    weighted min-max with weights (A, 1 - A), all with LocalIndex's candidate depth.
    """
    out: list[tuple[str, str, dict[str, Any]]] = [
        ("vector", "vector", {}),
        ("hybrid", "hybrid", {}),
        ("hybrid-rrf", "hybrid", {"fusion": "rrf", "weights": EQUAL, "rrf_k": RRF_K}),
    ]
    for alpha in alphas:
        out.append((f"hybrid-weighted a={alpha:g}", "hybrid", {"fusion": "weighted", "weights": (alpha, 1 - alpha)}))
    return out


def options_config(options: dict[str, Any]) -> dict[str, Any]:
    """The harness configuration of a hybrid query with these LocalIndex.query options (defaults filled in)."""
    default = inspect.signature(LocalIndex.query).parameters
    fusion = options.get("fusion", default["fusion"].default)
    weights = tuple(float(w) for w in options.get("weights", default["weights"].default))
    return config_of(fusion, weights, float(options.get("rrf_k", default["rrf_k"].default)))


async def run_set(
    ds: _beir.Dataset,
    bundle_dirs: Sequence[Path],
    variants: Sequence[str],
    mix: bool,
    out: Path | None,
    alphas: Sequence[float] = (0.5,),
) -> None:
    """Every system on one set, through LocalIndex.query; one JSON line per (system, corpus, query variant)."""
    docs = [doc.full for doc in ds.corpus.values()]
    queries = list(ds.queries.values())
    start = time.monotonic()
    index = await build_index(ds, np.ones((len(docs), 1), dtype=np.float32), f"{ds.name}-kw-{time.monotonic_ns()}")
    try:
        scores = evaluate(await query_all(index, ds, "keyword"), ds.qrels)
    finally:
        await index.close()
    fields = {"model": None, "corpus_variant": None, "query_variant": None}
    emit(line(ds, system="keyword", seconds=round(time.monotonic() - start, 1), **fields, **scores), out)
    for bundle_dir in bundle_dirs:
        bundles = {v: Bundle(bundle_dir, v) for v in variants}
        corpus_vecs = {v: EmbeddingCache(b).get(docs, "corpus") for v, b in bundles.items()}
        query_vecs = {v: EmbeddingCache(query_bundle(bundle_dir, v)).get(queries, "query") for v in variants}
        for cv in variants:
            start = time.monotonic()
            index = await build_index(ds, corpus_vecs[cv], f"{ds.name}-{cv}-{time.monotonic_ns()}")
            log(f"  indexed {len(docs)} docs ({cv}) in {time.monotonic() - start:.1f}s")
            try:
                for qv in variants:
                    if qv != cv and not mix:
                        continue
                    for system, mode, options in systems(alphas):
                        start = time.monotonic()
                        run = await query_all(index, ds, mode, query_vecs[qv], **options)
                        config = None if mode == "vector" else options_config(options)
                        fields = {
                            "model": bundles[cv].model,
                            "corpus_variant": cv,
                            "query_variant": qv,
                            "fusion": config and config["fusion"],
                            "config": config,  # the harness's form: rrf k, weights, depth / weighted alpha, depth
                            "describe": config and describe(config),
                            "default": system == "hybrid",  # LocalIndex.query's default text query
                            "corpus_sha256": bundles[cv].sha256[:16],
                            "query_sha256": bundles[qv].sha256[:16],
                            "query_batch": QUERY_BATCH[qv],
                        }
                        seconds = round(time.monotonic() - start, 1)
                        emit(line(ds, system=system, seconds=seconds, **fields, **evaluate(run, ds.qrels)), out)
            finally:
                await index.close()


# --------------------------------------------------------------------------------------------- tuning harness


class Legs:
    """Each query's vector and keyword legs to ``depth`` candidates, computed once, fused many ways.

    Mirrors LocalIndex.query's hybrid path: the kernel's own exact top-k (ties by insertion order), BM25
    with the index's k1/b over the same texts in the same order, a leg cut to ``d`` keeps its first ``d``
    hits, and fused scores are sorted by (-score, insertion order).
    """

    def __init__(self, ds: _beir.Dataset, corpus: np.ndarray, queries: np.ndarray, depth: int = 200) -> None:
        from pyapp.kernels.numpy_kernel import NumpyKernel

        self.ds = ds
        self.depth = depth
        self.seq = {doc_id: i for i, doc_id in enumerate(ds.corpus)}
        kernel = NumpyKernel(int(corpus.shape[1]))
        kernel.append(kernel.prepare(corpus.astype("<f4").tobytes(), len(corpus)), len(corpus))
        keyword = KeywordIndex(0.9, 0.4)
        keyword.load((doc_id, doc.full) for doc_id, doc in ds.corpus.items())
        ids = list(ds.corpus)
        self.vector: dict[str, list[tuple[str, float]]] = {}
        self.keyword: dict[str, list[tuple[str, float]]] = {}
        start = time.monotonic()
        for i, (qid, text) in enumerate(ds.queries.items()):
            q = kernel.prepare(queries[i].astype("<f4").tobytes(), 1)
            hits = kernel.topk(q, depth)
            hits.sort(key=lambda h: (-h[1], h[0]))
            self.vector[qid] = [(ids[r], s) for r, s in hits[:depth]]
            self.keyword[qid] = keyword.search(text, top_k=depth)
            if (i + 1) % 2000 == 0:
                log(f"  legs for {i + 1}/{len(ds.queries)} queries ({time.monotonic() - start:.0f}s)")

    def run(
        self, fuse: Callable[[list[tuple[str, float]], list[tuple[str, float]]], list[tuple[str, float]]], depth: int
    ) -> dict[str, list[str]]:
        seq = self.seq
        out: dict[str, list[str]] = {}
        for qid in self.ds.queries:
            fused = fuse(self.vector[qid][:depth], self.keyword[qid][:depth])
            fused.sort(key=lambda h: (-h[1], seq[h[0]]))
            out[qid] = [k for k, _ in fused[:K]]
        return out

    def single(self, leg: str) -> dict[str, list[str]]:
        legs = self.vector if leg == "vector" else self.keyword
        return {q: [k for k, _ in legs[q][:K]] for q in self.ds.queries}


def rrf(k: float, weights: Sequence[float]) -> Callable[..., list[tuple[str, float]]]:
    def fuse(v: list[tuple[str, float]], w: list[tuple[str, float]]) -> list[tuple[str, float]]:
        return reciprocal_rank_fusion([[key for key, _ in v], [key for key, _ in w]], k=k, weights=weights)

    return fuse


def weighted(alpha: float) -> Callable[..., list[tuple[str, float]]]:
    def fuse(v: list[tuple[str, float]], w: list[tuple[str, float]]) -> list[tuple[str, float]]:
        return weighted_fusion([v, w], [alpha, 1.0 - alpha])

    return fuse


def grid(fine: bool) -> Iterable[dict[str, Any]]:
    """Fusion choices tried on DEV."""
    depths = (10, 20, 30, 50, 100, 200) if fine else (10, 20, 50, 100, 200)
    for depth in depths:
        for k in (0, 1, 2, 5, 10, 20, 40, 60, 100):
            for wv in (0.3, 0.4, 0.5, 0.6, 0.7):
                yield {"fusion": "rrf", "k": float(k), "weights": (wv, round(1 - wv, 2)), "depth": depth}
        for step in range(21):
            yield {"fusion": "weighted", "alpha": round(step * 0.05, 2), "depth": depth}


def fuser(config: dict[str, Any]) -> Callable[..., list[tuple[str, float]]]:
    if config["fusion"] == "rrf":
        return rrf(config["k"], config["weights"])
    return weighted(config["alpha"])


async def parity(ds: _beir.Dataset, legs: Legs, corpus: np.ndarray, queries: np.ndarray, sample: int) -> dict:
    """Share of ``sample`` queries whose top-10 lists agree between the harness and LocalIndex.query: its default
    hybrid, equal-weight RRF k=60 and weighted min-max 0.5 and 0.75, at its candidate depth, and both legs."""
    sub_ids = list(ds.queries)[:sample]
    sub = _beir.Dataset(ds.name, ds.corpus, {q: ds.queries[q] for q in sub_ids}, {q: ds.qrels[q] for q in sub_ids})
    index = await build_index(ds, corpus, f"parity-{time.monotonic_ns()}")
    default = product_default()
    depth = default_depth(K)
    try:
        checks = {
            "keyword": (await query_all(index, sub, "keyword"), legs.single("keyword")),
            "vector": (await query_all(index, sub, "vector", queries), legs.single("vector")),
            "hybrid (default)": (await query_all(index, sub, "hybrid", queries), legs.run(fuser(default), depth)),
            "hybrid rrf k=60": (
                await query_all(index, sub, "hybrid", queries, fusion="rrf", weights=EQUAL, rrf_k=RRF_K),
                legs.run(rrf(RRF_K, EQUAL), depth),
            ),
            "hybrid weighted 0.5": (
                await query_all(index, sub, "hybrid", queries, fusion="weighted", weights=EQUAL),
                legs.run(weighted(0.5), depth),
            ),
            "hybrid weighted 0.75": (
                await query_all(index, sub, "hybrid", queries, fusion="weighted", weights=(0.75, 0.25)),
                legs.run(weighted(0.75), depth),
            ),
        }
    finally:
        await index.close()
    return {name: sum(real[q] == mine[q] for q in sub_ids) / len(sub_ids) for name, (real, mine) in checks.items()}


def describe(config: dict[str, Any]) -> str:
    if config["fusion"] == "rrf":
        return f"rrf k={config['k']:g} w=({config['weights'][0]:g},{config['weights'][1]:g}) depth={config['depth']}"
    return f"weighted alpha={config['alpha']:g} depth={config['depth']}"


def degrade(vectors: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """Add seeded Gaussian noise of expected norm ``sigma`` to unit vectors (the kernel renormalises them).

    A stress test, not a model: it stands in for a weak vector leg (raw mean-pooled BERT scores a tenth of
    BM25 on NFCorpus) to show how each fusion behaves when the vector leg is bad.
    """
    if sigma <= 0:
        return vectors
    noise = np.random.default_rng(seed).standard_normal(vectors.shape, dtype=np.float32)
    return (vectors + noise * np.float32(sigma / math.sqrt(vectors.shape[1]))).astype(np.float32)


def parse_config(text: str) -> dict[str, Any]:
    """``rrf:k=20,wv=0.6,depth=50`` or ``weighted:alpha=0.7,depth=100`` (wv = vector weight; keyword = 1 - wv)."""
    fusion, _, rest = text.partition(":")
    fields = dict(part.split("=", 1) for part in rest.split(",") if part)
    depth = int(fields.get("depth", default_depth(K)))
    if fusion == "rrf":
        wv = float(fields.get("wv", 0.5))
        k = float(fields.get("k", RRF_K))
        return {"fusion": "rrf", "k": k, "weights": (wv, round(1 - wv, 4)), "depth": depth}
    if fusion == "weighted":
        return {"fusion": "weighted", "alpha": float(fields.get("alpha", 0.5)), "depth": depth}
    raise SystemExit(f"cannot read fusion configuration {text!r}")


async def tune(args: argparse.Namespace) -> None:
    """Search fusion choices on DEV, report the DEV winners (and the defaults) on TEST."""
    out = Path(args.out) if args.out else None
    ds = load_set(args.set, args.queries, args.max_docs, args.seed, args.strict)
    dev, test = _beir.split(ds, args.dev_fraction, args.split_seed)
    bundle_dir = find_bundles([args.bundle] if args.bundle else None)[0]
    docs = [doc.full for doc in ds.corpus.values()]
    variants = args.variants.split(",")
    common = {"degrade": args.degrade}
    bundles = {v: Bundle(bundle_dir, v) for v in variants}
    tune_variant = variants[0]
    corpus_vecs = {v: degrade(EmbeddingCache(b).get(docs, "corpus"), args.degrade, 1) for v, b in bundles.items()}
    harness: dict[tuple[str, str], Legs] = {}
    for v in variants:
        cache = EmbeddingCache(query_bundle(bundle_dir, v))
        for part in (dev, test):
            qvecs = degrade(
                cache.get(list(part.queries.values()), f"{part.info['split']['part']} query"), args.degrade, 2
            )
            log(f"legs: {v}, {part.info['split']['part']}")
            harness[(v, part.info["split"]["part"])] = Legs(part, corpus_vecs[v], qvecs, depth=200)
    if args.parity:
        v = tune_variant
        qvecs = degrade(EmbeddingCache(query_bundle(bundle_dir, v)).get(list(test.queries.values())), args.degrade, 2)
        agree = await parity(test, harness[(v, "test")], corpus_vecs[v], qvecs, args.parity)
        log(f"parity with LocalIndex.query on {args.parity} TEST queries ({v}): {agree}")
        emit(
            line(test, kind="parity", model=bundles[v].model, variant=v, sample=args.parity, agreement=agree, **common),
            out,
        )

    defaults = [
        dict(product_default(), label="LocalIndex default"),
        dict(FIRST_DEFAULT, label="first default (equal-weight RRF)"),
        dict(FORMER_DEFAULT, label="former default (weighted 0.75)"),
        {"fusion": "weighted", "alpha": 0.5, "depth": default_depth(K), "label": "equal-weight min-max"},
    ]
    extras = [dict(parse_config(text), label=f"given: {text}") for text in args.extra]
    dev_legs = harness[(tune_variant, "dev")]
    start = time.monotonic()
    scored: list[tuple[float, dict[str, Any]]] = []
    for config in [] if args.no_grid else grid(args.fine):
        scores = evaluate(dev_legs.run(fuser(config), config["depth"]), dev.qrels)
        scored.append((scores[f"ndcg@{K}"], config))
    scored.sort(key=lambda s: -s[0])
    picks = defaults + extras
    if scored:
        log(f"grid of {len(scored)} configurations on DEV in {time.monotonic() - start:.0f}s")
        best_rrf = next(c for _, c in scored if c["fusion"] == "rrf")
        best_weighted = next(c for _, c in scored if c["fusion"] == "weighted")
        # the best RRF at equal weights and the default depth: what changing only k would give
        best_k = next(
            c
            for _, c in scored
            if c["fusion"] == "rrf" and c["weights"] == (0.5, 0.5) and c["depth"] == default_depth(K)
        )
        picks += [
            dict(best_rrf, label="best rrf on DEV"),
            dict(best_k, label="best k, equal weights, default depth, on DEV"),
            dict(best_weighted, label="best weighted on DEV"),
        ]
    for rank, (ndcg, config) in enumerate(scored[: args.top]):
        log(f"  DEV #{rank + 1}: {describe(config)} nDCG@10 {ndcg:.4f}")
    for v in variants:
        for part, split_ds in (("dev", dev), ("test", test)):
            legs = harness[(v, part)]
            for leg in ("keyword", "vector"):
                emit(
                    line(
                        split_ds,
                        kind="tune",
                        system=leg,
                        model=bundles[v].model,
                        variant=v,
                        **common,
                        **evaluate(legs.single(leg), split_ds.qrels),
                    ),
                    out,
                )
            for config in picks:
                cfg = {k: v2 for k, v2 in config.items() if k != "label"}
                emit(
                    line(
                        split_ds,
                        kind="tune",
                        system="hybrid",
                        label=config["label"],
                        config=cfg,
                        describe=describe(cfg),
                        tuned_on=f"dev ({tune_variant})",
                        model=bundles[v].model,
                        variant=v,
                        **common,
                        **evaluate(legs.run(fuser(cfg), cfg["depth"]), split_ds.qrels),
                    ),
                    out,
                )
    if args.grid_out:
        with open(args.grid_out, "w", encoding="utf-8") as handle:
            for ndcg, config in scored:
                handle.write(json.dumps({"dev_ndcg@10": ndcg, **config, "describe": describe(config)}) + "\n")


# --------------------------------------------------------------------------------------------- abbreviations

EXAMPLE = "pt c/o SOB, hx CHF"  # issue 10: must find a heart-failure note (ICD-10-CM I50.*)
EXPANSIONS = (  # (label, keyword leg query, vector leg text) per ambiguity rule; None = the query as typed
    ("off", None, None),
    ("keyword, all meanings", "appended:all", None),
    ("keyword, skip ambiguous", "appended:skip", None),
    ("both legs, all meanings", "appended:all", "inline:all"),
    ("both legs, skip ambiguous", "appended:skip", "inline:skip"),
)


def _expanded(texts: Sequence[str], how: str | None) -> list[str]:
    from pyapp import abbreviations

    if how is None:
        return list(texts)
    form, rule = how.split(":")
    expand = abbreviations.expand_appended if form == "appended" else abbreviations.expand_inline
    return [expand(t, rule) for t in texts]


async def abbrev_set(name: str, args: argparse.Namespace, out: Path | None) -> None:
    """Original and abbreviated queries of one set over one corpus, every leg with expansion off and on."""
    import random

    import _abbrev

    full = _beir.build(name)
    short, _ = _abbrev.abbreviated_set(full)
    rng = random.Random(args.seed)
    n = args.queries or 1000
    pick_short = sorted(rng.sample(list(short.queries), min(n, len(short.queries))))
    pick_orig = sorted(rng.sample(list(full.queries), min(n, len(full.queries))))
    queries = {**{q: full.queries[q] for q in pick_orig}, **{q: short.queries[q] for q in pick_short}}
    qrels = {**{q: full.qrels[q] for q in pick_orig}, **{q: short.qrels[q] for q in pick_short}}
    if name == "icd10cm":
        queries["example"] = EXAMPLE
        qrels["example"] = {d: 1 for d in full.corpus if d.startswith("I50")}
    both = _beir.subset(_beir.Dataset(name, full.corpus, queries, qrels, dict(full.info)), None, args.max_docs, 1)
    parts = {
        "original": [q for q in both.queries if q in pick_orig],
        "abbreviated": [q for q in both.queries if q.endswith("~ab")],
    }
    log(f"{name}: {len(both.corpus)} docs; {len(parts['original'])} original, {len(parts['abbreviated'])} abbreviated")
    bundle = Bundle(find_bundles([args.bundle])[0], args.variant)
    docs = [doc.full for doc in both.corpus.values()]
    index = await build_index(both, EmbeddingCache(bundle).get(docs, "corpus"), f"abbrev-{name}-{time.monotonic_ns()}")
    qcache = EmbeddingCache(query_bundle(bundle.path, args.variant))
    qids = list(both.queries)
    texts = [both.queries[q] for q in qids]
    try:
        # parity: the harness's "keyword, all meanings" row is LocalIndex.query(expand_abbreviations="keyword")
        sample = qids[: args.parity]
        vecs = qcache.get([both.queries[q] for q in sample], "query")
        for i, q in enumerate(sample):
            mine = await index.query(vector=vecs[i], text=_expanded([both.queries[q]], "appended:all")[0], top_k=K)
            real = await index.query(vector=vecs[i], text=both.queries[q], top_k=K, expand_abbreviations="keyword")
            assert [h.id for h in mine] == [h.id for h in real], q
        for label, kw_how, vec_how in EXPANSIONS:
            kw_texts = _expanded(texts, kw_how)
            vec_texts = _expanded(texts, vec_how)
            qvecs = qcache.get(vec_texts, f"query ({label})")
            for mode in ("keyword", "vector", "hybrid"):
                if (mode == "keyword" and vec_how) or (mode == "vector" and kw_how and not vec_how):
                    continue  # the same figures as another row
                run: dict[str, list[str]] = {}
                for i, q in enumerate(qids):
                    vector = None if mode == "keyword" else qvecs[i]
                    text = None if mode == "vector" else kw_texts[i]
                    run[q] = [h.id for h in await index.query(vector=vector, text=text, top_k=K, mode=mode)]
                for part, ids in parts.items():
                    scores = evaluate({q: run[q] for q in ids}, {q: both.qrels[q] for q in ids})
                    fields = {"model": bundle.model, "variant": args.variant, "part": part, "expansion": label}
                    emit(
                        line(both, kind="abbrev", system=mode, label=f"{part} {mode} {label}", **fields, **scores), out
                    )
                if "example" in run:
                    ranked = run["example"]
                    first = next((i + 1 for i, d in enumerate(ranked) if d.startswith("I50")), None)
                    log(
                        f"  example {EXAMPLE!r} {mode} {label}: first heart-failure code at rank {first} ({ranked[:3]})"
                    )
                    emit(
                        line(
                            both,
                            kind="abbrev-example",
                            system=mode,
                            expansion=label,
                            first_i50_rank=first,
                            top3=ranked[:3],
                            model=bundle.model,
                            variant=args.variant,
                        ),
                        out,
                    )
    finally:
        await index.close()


# --------------------------------------------------------------------------------------------- tables


def table(path: Path) -> str:
    """Markdown tables from a results file: one per set for ``run`` lines, one per set for ``tune`` lines."""
    rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    out: list[str] = []
    runs = [r for r in rows if "kind" not in r]
    for name in dict.fromkeys(r["set"] for r in runs):
        mine = [r for r in runs if r["set"] == name]
        first = mine[0]
        keyword = next((r for r in mine if r["system"] == "keyword"), None)
        out.append(
            f"**{name}** ({first['docs']:,} docs, {first['queries']:,} queries, set sha256 {first['set_sha256']})\n"
        )
        out.append("| system | configuration | model | corpus / query vectors | nDCG@10 | recall@10 | vs keyword |")
        out.append("|---|---|---|---|---|---|---|")
        for r in mine:
            model = (r.get("model") or "—").rsplit("/", 1)[-1]
            variants = "—" if r["system"] == "keyword" else f"{r['corpus_variant']} / {r['query_variant']}"
            ratio = f"{r['ndcg@10'] / keyword['ndcg@10']:.2f}x" if keyword and keyword["ndcg@10"] else "—"
            out.append(
                f"| {r['system']} | {r.get('describe') or '—'} | {model} | {variants} | {r['ndcg@10']:.4f} | "
                f"{r['recall@10']:.4f} | {ratio} |"
            )
        out.append("")
    tunes = [r for r in rows if r.get("kind") == "tune"]
    groups: dict[tuple[Any, ...], dict[str, dict[str, dict[str, Any]]]] = {}
    for r in tunes:  # (set, variant, noise) -> part -> label -> latest line
        key = (r["set"], r["docs"], r["variant"], r.get("degrade", 0.0))  # DEV and TEST differ in set_sha256
        part = groups.setdefault(key, {"dev": {}, "test": {}})[r["split"]["part"]]
        part[r.get("label", r["system"])] = r
    for (name, _, variant, noise), parts in groups.items():
        dev_rows, test_rows = parts["dev"], parts["test"]
        if not test_rows or "keyword" not in test_rows:
            continue
        first = next(iter(test_rows.values()))
        dev_n = next(iter(dev_rows.values()))["queries"] if dev_rows else 0
        stress = f", vectors degraded by noise of norm {noise:g}" if noise else ""
        sizes = f"DEV {dev_n:,} / TEST {first['queries']:,} queries, {first['docs']:,} docs{stress}"
        out.append(f"**{name}**, {variant} ({sizes})\n")
        out.append("| system | configuration | DEV nDCG@10 | TEST nDCG@10 | TEST recall@10 | TEST vs keyword |")
        out.append("|---|---|---|---|---|---|")
        test_kw = test_rows["keyword"]["ndcg@10"]
        for label, r in test_rows.items():
            dev = dev_rows.get(label)
            dev_text = f"{dev['ndcg@10']:.4f}" if dev else "—"
            out.append(
                f"| {label} | {r.get('describe', '—')} | {dev_text} | {r['ndcg@10']:.4f} | "
                f"{r['recall@10']:.4f} | {r['ndcg@10'] / test_kw:.2f}x |"
            )
        out.append("")
    return "\n".join(out)


# --------------------------------------------------------------------------------------------- CLI


def _size(value: str) -> int | None:
    return None if value in ("all", "0") else int(value)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def sizing(p: argparse.ArgumentParser) -> None:
        p.add_argument("--queries", type=_size, default=None, help="seeded sample of queries (default: all)")
        p.add_argument(
            "--max-docs",
            type=_size,
            default=None,
            help="relevant docs + random distractors up to this many documents (default: whole corpus)",
        )
        p.add_argument("--seed", type=int, default=13)
        p.add_argument("--strict", action="store_true", help="also drop queries spelled out in their own document")
        p.add_argument("--out", default=None, help="append JSON lines here (default: stdout only)")

    p_run = sub.add_parser("run", help="every system on each set through LocalIndex.query")
    p_run.add_argument("--sets", default=",".join(_beir.SETS))
    p_run.add_argument("--bundles", default=None, help="comma-separated bundle folders (default: those found)")
    p_run.add_argument("--variants", default="int8,fp32")
    p_run.add_argument("--no-mix", action="store_true", help="skip corpus/query variant mixing")
    p_run.add_argument(
        "--alphas",
        default="0.5,0.75",
        help="vector weights of the weighted min-max hybrid rows (LocalIndex weights=(a, 1 - a))",
    )
    sizing(p_run)

    p_tune = sub.add_parser("tune", help="fusion choices on DEV, reported on a disjoint TEST split")
    p_tune.add_argument("--set", default="icd10cm", choices=_beir.SETS)
    p_tune.add_argument("--bundle", default=None)
    p_tune.add_argument("--variants", default="int8,fp32", help="the first is tuned on; all are reported")
    p_tune.add_argument("--dev-fraction", type=float, default=0.5)
    p_tune.add_argument("--split-seed", type=int, default=7)
    p_tune.add_argument("--parity", type=int, default=300, help="TEST queries checked against LocalIndex.query")
    p_tune.add_argument("--fine", action="store_true", help="a finer depth grid")
    p_tune.add_argument("--top", type=int, default=15, help="DEV leaders to print")
    p_tune.add_argument("--grid-out", default=None, help="write every DEV configuration's score here")
    p_tune.add_argument(
        "--extra", action="append", default=[], help="also report this configuration, e.g. rrf:k=20,wv=0.6,depth=50"
    )
    p_tune.add_argument("--no-grid", action="store_true", help="no search: only the defaults and --extra")
    p_tune.add_argument(
        "--degrade", type=float, default=0.0, help="stress test: Gaussian noise of this norm on every vector"
    )
    sizing(p_tune)

    p_table = sub.add_parser("table", help="Markdown tables from a results file")
    p_table.add_argument("file")

    p_beir = sub.add_parser("beir", help="write a set in BEIR's file layout")
    p_beir.add_argument("--set", required=True, choices=_beir.SETS)
    p_beir.add_argument("--dir", required=True)
    sizing(p_beir)

    p_abbrev = sub.add_parser("abbrev", help="abbreviation query sets, expansion off and on (pyapp.abbreviations)")
    p_abbrev.add_argument("--sets", default="icd10cm,hpo")
    p_abbrev.add_argument("--bundle", default="web/models/minilm")
    p_abbrev.add_argument("--variant", default="fp32")
    p_abbrev.add_argument("--parity", type=int, default=100, help="queries checked against LocalIndex.query")
    sizing(p_abbrev)

    args = parser.parse_args(argv)
    if args.command == "abbrev":
        for name in args.sets.split(","):
            asyncio.run(abbrev_set(name, args, Path(args.out) if args.out else None))
        return 0
    if args.command == "table":
        print(table(Path(args.file)))
        return 0
    if args.command == "beir":
        ds = load_set(args.set, args.queries, args.max_docs, args.seed, args.strict)
        print(_beir.write_beir(ds, args.dir))
        return 0
    if args.command == "tune":
        asyncio.run(tune(args))
        return 0
    bundle_dirs = find_bundles(args.bundles.split(",") if args.bundles else None)
    if not bundle_dirs:
        log("no model bundle found: only keyword figures can be computed; run `python -m export --model minilm`")
    out = Path(args.out) if args.out else None
    for name in args.sets.split(","):
        ds = load_set(name, args.queries, args.max_docs, args.seed, args.strict)
        alphas = [float(a) for a in args.alphas.split(",")]
        asyncio.run(run_set(ds, bundle_dirs, args.variants.split(","), not args.no_mix, out, alphas))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
