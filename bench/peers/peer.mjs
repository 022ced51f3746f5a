// One peer of bench/browser_peers.py in this page: ?peer=orama|mememo|vectra&size=NxDIMS.
//
// Every peer gets the same workload files (bench/_browser_workload.py) and the same measurements, timed in the
// page with performance.now(); window.peerBench.run() builds, queries and inserts, and reopen() (on a fresh page
// load) reads the index back from IndexedDB and answers one query. How each peer is driven fairly (from
// /work/shared/peers/browser-peers.md):
// - Orama 3.1.18: exact brute force, `similarity: 0` (its 0.8 default finds nothing on random data), `category`
//   as an enum; no incremental save, so a durable insert is persist(db, "json") of the whole database plus one
//   IndexedDB put (JSON is its fastest persistence format); its insertMultiple is in memory only.
// - MeMemo 0.1.0: in-memory HNSW (m=16, efConstruction=100, query ef=100), cosine over app-normalised vectors
//   ("cosine-normalized", its default); no filters, no keyword search;
//   durable state is saved by the app (exportIndex + the vectors, one put), since its IndexedDB mode wipes itself.
// - vectra 0.15.0 (browser build, IndexedDBStorage, TextEncoder-based Buffer shim): exact; every save rewrites the
//   whole index; its keyword (BM25) search covers document chunks only, so no hybrid row.

const params = new URLSearchParams(location.search);
const peer = params.get("peer");
const size = params.get("size");
const lib = await import(`./dist/${peer}.mjs`);
const base = `./data/${size}/`;
const meta = await (await fetch(base + "meta.json")).json();
const vectors = new Float32Array(await (await fetch(base + "vectors.f32")).arrayBuffer());
const queries = new Float32Array(await (await fetch(base + "queries.f32")).arrayBuffer());
const { n, dims } = meta;
const vec = (i) => Array.from(vectors.subarray(i * dims, (i + 1) * dims));
const qvec = (i) => Array.from(queries.subarray(i * dims, (i + 1) * dims));
const idOf = (key) => Number(String(key).slice(1));
const now = () => performance.now();

// ---------------------------------------------------------------- app-level IndexedDB (Orama, MeMemo)
function openKv(name) {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(name, 1);
    req.onupgradeneeded = () => req.result.createObjectStore("kv");
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}
async function kvPut(name, value) {
  const db = await openKv(name);
  const tx = db.transaction("kv", "readwrite", { durability: "strict" });
  tx.objectStore("kv").put(value, "state");
  await new Promise((resolve, reject) => {
    tx.oncomplete = resolve;
    tx.onabort = () => reject(tx.error);
  });
  db.close();
}
async function kvGet(name) {
  const db = await openKv(name);
  const req = db.transaction("kv").objectStore("kv").get("state");
  const value = await new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
  db.close();
  return value;
}

// ---------------------------------------------------------------- the peers
const KV = `peer-${peer}-${size}`;

const orama = {
  notes: "insert_many is in memory only (no durable bulk write); a durable insert re-persists the whole database",
  db: null,
  schema: { id: "string", text: "string", category: "enum", embedding: `vector[${dims}]` },
  doc: (i, v, text, category) => ({ id: `n${i}`, text, category, embedding: v }),
  async build() {
    const docs = Array.from({ length: n }, (_, i) => this.doc(i, vec(i), meta.texts[i], meta.categories[i]));
    this.db = lib.create({ schema: this.schema });
    const t0 = now();
    await lib.insertMultiple(this.db, docs);
    return now() - t0;
  },
  async search(i, extra) {
    const v = { value: qvec(i), property: "embedding" };
    const res = await lib.search(this.db, { mode: "vector", vector: v, similarity: 0, limit: 10, ...extra });
    return res.hits.map((h) => idOf(h.id));
  },
  query(i) {
    return this.search(i, {});
  },
  filtered(i) {
    return this.search(i, { where: { category: { eq: "c3" } } });
  },
  hybrid(i) {
    return this.search(i, { mode: "hybrid", term: meta.query_texts[i] });
  },
  async insertOne(j) {
    const t0 = now();
    await lib.insert(this.db, this.doc(n + j, qvec(j), meta.query_texts[j], "c3"));
    await kvPut(KV, await lib.persist(this.db, "json"));
    return now() - t0;
  },
  async reopen() {
    const t0 = now();
    this.db = await lib.restore("json", await kvGet(KV));
    await this.query(0);
    return now() - t0;
  },
};

// MeMemo's "cosine" recomputes both norms on every distance (three passes over the vectors); its default,
// "cosine-normalized", is one dot product and ranks the same once the vectors are unit length. So the app
// normalises them (as clinvec does inside insert), and the 10k build finishes (about 120 s at 768-d here).
const unit = (v) => {
  const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  return v.map((x) => x / norm);
};

const mememo = {
  notes: "approximate (HNSW, vectors normalised by the app, cosine-normalized); no filter, no keyword search; " +
    "a durable insert re-saves the graph and vectors",
  config: { distanceFunction: "cosine-normalized", m: 16, efConstruction: 100, seed: 42 },
  hnsw: null,
  keys: [],
  values: [],
  async build(budgetMs) {
    this.keys = Array.from({ length: n }, (_, i) => `n${i}`);
    this.values = Array.from({ length: n }, (_, i) => unit(vec(i)));
    this.hnsw = new lib.HNSW(this.config);
    // In batches, so a build that would take longer than the run's budget stops (and says so) instead of
    // holding the whole benchmark: an HNSW build is minutes at 10k x 768 on two busy cores.
    const t0 = now();
    for (let i = 0; i < n; i += 500) {
      await this.hnsw.bulkInsert(this.keys.slice(i, i + 500), this.values.slice(i, i + 500));
      if (now() - t0 > budgetMs && i + 500 < n) {
        this.keys.length = this.values.length = i + 500;
        throw new Error(`build stopped after ${Math.round((now() - t0) / 1000)} s at ${i + 500} of ${n} rows`);
      }
    }
    return now() - t0;
  },
  async query(i) {
    const res = await this.hnsw.query(unit(qvec(i)), 10);
    return res.keys.map(idOf);
  },
  filtered: null,
  hybrid: null,
  async insertOne(j) {
    const t0 = now();
    const key = `n${n + j}`, value = unit(qvec(j));
    await this.hnsw.insert(key, value);
    this.keys.push(key);
    this.values.push(value);
    const flat = new Float32Array(this.values.length * dims);
    this.values.forEach((v, r) => flat.set(v, r * dims));
    await kvPut(KV, { index: this.hnsw.exportIndex(), keys: this.keys, vectors: flat });
    return now() - t0;
  },
  async reopen() {
    const t0 = now();
    const saved = await kvGet(KV);
    this.hnsw = new lib.HNSW(this.config);
    this.hnsw.loadIndex(saved.index);
    const values = saved.keys.map((_, r) => Array.from(saved.vectors.subarray(r * dims, (r + 1) * dims)));
    await this.hnsw.bulkInsertSkipIndex(saved.keys, values);
    await this.query(0);
    return now() - t0;
  },
};

const vectra = {
  notes: "insert_many (one beginUpdate/endUpdate) and every insert rewrite the whole index; no hybrid on items",
  index: null,
  open() {
    this.index = new lib.LocalIndex("idx", undefined, new lib.IndexedDBStorage(KV));
  },
  async build() {
    this.open();
    await this.index.createIndex({ version: 1, deleteIfExists: true });
    const items = Array.from({ length: n }, (_, i) => ({
      id: `n${i}`,
      vector: vec(i),
      metadata: { category: meta.categories[i], text: meta.texts[i] },
    }));
    const t0 = now();
    await this.index.beginUpdate();
    for (const item of items) await this.index.insertItem(item);
    await this.index.endUpdate();
    return now() - t0;
  },
  async query(i) {
    return (await this.index.queryItems(qvec(i), "", 10)).map((r) => idOf(r.item.id));
  },
  async filtered(i) {
    return (await this.index.queryItems(qvec(i), "", 10, { category: { $eq: "c3" } })).map((r) => idOf(r.item.id));
  },
  hybrid: null,
  async insertOne(j) {
    const t0 = now();
    await this.index.insertItem({ id: `n${n + j}`, vector: qvec(j), metadata: { category: "c3", text: meta.query_texts[j] } });
    return now() - t0;
  },
  async reopen() {
    const t0 = now();
    this.open();
    await this.query(0);
    return now() - t0;
  },
};

const impl = { orama, mememo, vectra }[peer];

async function timed(fn, warmup, count) {
  for (let i = 0; i < warmup; i++) await fn(i);
  const times = [], found = [];
  for (let i = warmup; i < warmup + count; i++) {
    const t0 = now();
    const ids = await fn(i);
    times.push(now() - t0);
    found.push(ids);
  }
  return { times, found };
}

async function run(argsJson) {
  const { warmup, timed: count, budget_ms: budgetMs, repeats = 1, repeat_budget_ms: repeatBudget = 0 } =
    JSON.parse(argsJson);
  const out = { notes: impl.notes, insert_many_ms: [] };
  // insert_many timed up to `repeats` times, each build into a fresh database (the rule clinvec's run follows
  // too): no further run once the runs so far took `repeat_budget_ms`; the last build stays for the queries.
  const spentBuilding = () => out.insert_many_ms.reduce((a, b) => a + b, 0);
  try {
    do {
      out.insert_many_ms.push(await impl.build(budgetMs));
    } while (out.insert_many_ms.length < repeats && spentBuilding() < repeatBudget);
  } catch (err) {
    return JSON.stringify({ notes: impl.notes, error: String(err.message || err) });
  }
  const plain = await timed((i) => impl.query(i), warmup, count);
  out.query_ms = plain.times;
  out.found = plain.found;
  if (impl.filtered) {
    const filtered = await timed((i) => impl.filtered(i), warmup, count);
    out.filtered_ms = filtered.times;
    out.filtered_found = filtered.found;
  } else out.filtered_ms_note = "n/a";
  if (impl.hybrid) out.hybrid_ms = (await timed((i) => impl.hybrid(i), warmup, count)).times;
  else out.hybrid_ms_note = "n/a";
  out.insert_one_ms = [];
  let spent = 0;
  try {
    for (let j = 0; j < 5 && spent < 5000; j++) {
      const ms = await impl.insertOne(j);
      out.insert_one_ms.push(ms);
      spent += ms;
    }
  } catch (err) {
    // e.g. Orama's persist of a large database: "Invalid string length". The query figures still count.
    out.insert_one_ms = null;
    out.insert_one_ms_note = "failed";
    out.notes += `; durable insert failed: ${String(err.message || err).slice(0, 200)}`;
  }
  return JSON.stringify(out);
}

async function reopen() {
  try {
    return JSON.stringify({ reopen_ms: await impl.reopen() });
  } catch (err) {
    return JSON.stringify({ reopen_ms: null, reopen_ms_note: "failed", reopen_error: String(err.message || err).slice(0, 200) });
  }
}

window.peerBench = { run, reopen };
document.documentElement.dataset.ready = "1";
