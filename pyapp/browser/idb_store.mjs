// IndexedDB side of the browser store: every call is one transaction, awaited once.
//
// Why JS: an IDB transaction auto-commits at the first await that leaves it idle
// (TransactionInactiveError), so all requests of one transaction are issued here, synchronously,
// and only its `complete` (or `abort`) event is awaited. Python passes bulk data as Uint8Array and
// control data as JSON strings.
//
// Layout of database `clinvec/<location>` (version 1):
//   meta   : "manifest" -> JSON text, "state" -> JSON text {rows, dims, chunk_rows, chunks, generation}
//            (generation: bumped by every snapshot rewrite, so other tabs know to reload)
//   chunks : i -> Blob (ArrayBuffer before), snapshot vectors of rows [i*chunk_rows, (i+1)*chunk_rows) as float32
//   rows   : i -> ArrayBuffer, codec.encode_rows of the same rows
//   log    : autoIncrement -> ArrayBuffer, one codec.encode_commit record per commit

import { withPyBytes } from "./js_kernel.mjs";

const VERSION = 1;
const STORES = ["meta", "chunks", "rows", "log"];

export const dbName = (location) => `clinvec/${location}`;
// Held for a writer's whole life: exclusively by page versions with one writer per index, in "shared" mode
// by versions where every tab writes (so each generation keeps the other out, and tabs can be counted).
export const lockName = (location) => `clinvec-writer/${location}`;
// Held per commit by writers that share the index: commits from different tabs never interleave.
export const commitLockName = (location) => `clinvec-commit/${location}`;
// Writers post here after every commit; other tabs then refresh.
export const channelName = (location) => `clinvec-changes/${location}`;

/** An Error whose message starts with the DOMException name, so Python can map it. */
function failure(err, what) {
  const name = (err && err.name) || "UnknownError";
  const e = new Error(`${name}: ${what}: ${(err && err.message) || name}`);
  e.name = name;
  return e;
}

function requestPromise(req, what) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(failure(req.error, what));
  });
}

/** Resolve on `complete`; reject on `abort`/`error` with the transaction's error (e.g. QuotaExceededError). */
function done(tx, what) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve(true);
    tx.onabort = () => reject(failure(tx.error || { name: "AbortError" }, what));
    tx.onerror = (ev) => ev.preventDefault(); // the abort handler reports it once
  });
}

function onVersionChange(db) {
  // Another tab is deleting the database: let it, instead of blocking it forever.
  db.onversionchange = () => db.close();
  return db;
}

/** True when the database exists and holds a manifest; never creates a database as a side effect. */
export async function exists(location) {
  let db;
  try {
    db = await new Promise((resolve, reject) => {
      const req = indexedDB.open(dbName(location));
      req.onupgradeneeded = () => req.transaction.abort(); // did not exist: undo the creation
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  } catch (err) {
    if (err && err.name === "AbortError") return false;
    throw failure(err, "checking for the index");
  }
  try {
    if (!STORES.every((s) => db.objectStoreNames.contains(s))) return false;
    const tx = db.transaction("meta", "readonly");
    const key = await requestPromise(tx.objectStore("meta").getKey("manifest"), "reading the manifest");
    return key !== undefined;
  } finally {
    db.close();
  }
}

/** Open (creating the object stores when new) and return the IDBDatabase. */
export function openDb(location) {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(dbName(location), VERSION);
    req.onupgradeneeded = () => {
      const db = req.result;
      for (const s of STORES) {
        if (!db.objectStoreNames.contains(s)) {
          db.createObjectStore(s, s === "log" ? { autoIncrement: true } : undefined);
        }
      }
    };
    req.onsuccess = () => resolve(onVersionChange(req.result));
    req.onerror = () => reject(failure(req.error, "opening the database"));
    req.onblocked = () => reject(failure({ name: "InvalidStateError", message: "blocked by another tab" }, "opening the database"));
  });
}

/** Write manifest + empty state in one transaction; resolves false when a manifest already exists. */
export async function create(db, manifestJson, stateJson) {
  const tx = db.transaction(["meta", "chunks", "rows", "log"], "readwrite", { durability: "strict" });
  const finished = done(tx, "creating the index");
  const meta = tx.objectStore("meta");
  let created = false;
  const probe = meta.getKey("manifest");
  probe.onsuccess = () => {
    if (probe.result !== undefined) return; // exists: write nothing, let the transaction finish
    for (const s of ["chunks", "rows", "log"]) tx.objectStore(s).clear();
    meta.put(manifestJson, "manifest");
    meta.put(stateJson, "state");
    created = true;
  };
  await finished;
  return created;
}

/** The ArrayBuffer of a Uint8Array that spans all of it (no copy), else a copy of its bytes. */
function whole(u8) {
  return u8.byteOffset === 0 && u8.buffer.byteLength === u8.byteLength ? u8.buffer : u8.slice().buffer;
}

function concat(buffers) {
  let total = 0;
  for (const b of buffers) total += b.byteLength;
  const out = new Uint8Array(total);
  let pos = 0;
  for (const b of buffers) {
    out.set(new Uint8Array(b), pos);
    pos += b.byteLength;
  }
  return out;
}

/** Everything needed to rebuild the index, read in one transaction, bulk data concatenated. */
export async function load(db) {
  const tx = db.transaction(STORES, "readonly");
  const finished = done(tx, "reading the index");
  const meta = tx.objectStore("meta");
  const reqs = {
    manifest: meta.get("manifest"),
    state: meta.get("state"),
    chunkKeys: tx.objectStore("chunks").getAllKeys(),
    chunks: tx.objectStore("chunks").getAll(),
    rowKeys: tx.objectStore("rows").getAllKeys(),
    rows: tx.objectStore("rows").getAll(),
    log: tx.objectStore("log").getAll(),
    logKeys: tx.objectStore("log").getAllKeys(),
  };
  await finished;
  const r = Object.fromEntries(Object.entries(reqs).map(([k, req]) => [k, req.result]));
  if (r.manifest === undefined) return { found: false };
  // Snapshots written before vector chunks were Blobs hold ArrayBuffers: both read back the same.
  r.chunks = await Promise.all(r.chunks.map((c) => (c instanceof Blob ? c.arrayBuffer() : c)));
  const lens = (bufs) => Float64Array.from(bufs, (b) => b.byteLength);
  return {
    found: true,
    manifest: r.manifest,
    state: r.state === undefined ? "null" : r.state,
    chunkKeys: JSON.stringify(r.chunkKeys),
    rowKeys: JSON.stringify(r.rowKeys),
    vectors: concat(r.chunks),
    chunkLens: lens(r.chunks),
    rows: concat(r.rows),
    rowLens: lens(r.rows),
    log: concat(r.log),
    logLens: lens(r.log),
    logKeys: Float64Array.from(r.logKeys),
  };
}

/**
 * What other writers did since (`generation`, log key `after`), read in one transaction: the log records
 * after that key, or `{reload: true}` when the snapshot was rewritten since (the caller then calls load()).
 * Cheap when nothing changed: one state read and an empty key range.
 */
export async function changes(db, generation, after) {
  const tx = db.transaction(["meta", "log"], "readonly");
  const finished = done(tx, "reading new commits");
  const state = tx.objectStore("meta").get("state");
  const range = IDBKeyRange.lowerBound(after, true);
  const log = tx.objectStore("log").getAll(range);
  const keys = tx.objectStore("log").getAllKeys(range);
  await finished;
  let current = 0;
  try {
    current = (JSON.parse(state.result || "{}").generation) || 0;
  } catch (_) {
    current = -1; // unreadable state: reload, which reports it as corrupt
  }
  if (current !== generation) return { reload: true };
  return {
    reload: false,
    log: concat(log.result),
    logLens: Float64Array.from(log.result, (b) => b.byteLength),
    logKeys: Float64Array.from(keys.result),
  };
}

/**
 * Append one commit record (however large: one `add` in one transaction, so a tab closed mid-way leaves all
 * of it or none); resolves with its log key only after the transaction's `complete` event.
 */
export async function commit(db, record) {
  const tx = db.transaction("log", "readwrite", { durability: "strict" });
  const finished = done(tx, "committing");
  const req = tx.objectStore("log").add(whole(record));
  await finished;
  return req.result;
}

/**
 * The snapshot's vector chunks as Blobs, `chunkBytes` each, cut from `vectors`: a Uint8Array, or a Python buffer
 * (a PyProxy) read where it lies in Pyodide's memory (no copy into JS first): one Blob copies the bytes, the chunks
 * are slices of it (no copy). Synchronous, so Python cannot run (and move its memory) before the view is released.
 */
export function vectorBlobs(vectors, chunkBytes) {
  const all = withPyBytes(vectors, (u8) => new Blob([u8]), false); // one copy, one Blob: slices of it copy nothing
  const out = [];
  for (let pos = 0; pos < all.size; pos += chunkBytes) out.push(all.slice(pos, Math.min(pos + chunkBytes, all.size)));
  return out;
}

/**
 * Replace the snapshot and clear the log in one transaction (compaction, or a bulk first load).
 * `vectorChunks`: Blobs of rows*dims float32 (vectorBlobs); `rowChunks` is an array of Uint8Array (one per chunk).
 *
 * A writer that shares the index passes what it has seen, `checkJson` = {generation, after, own}: the snapshot
 * generation, the last log key it caught up to and its own later commits' keys. When another tab wrote
 * something it has not seen, nothing is written and the promise rejects with a `StaleWriter` error, since the
 * rewrite would silently drop that tab's commit. `checkJson` null: no check.
 *
 * Returns `{tx, done}` at once, every request issued: the caller may work while the browser writes, and abort
 * `tx` if that work fails (it is still active until the caller awaits); `done` resolves on `complete`.
 */
export function startSnapshot(db, manifestJson, stateJson, vectorChunks, rowChunks, checkJson) {
  const t0 = performance.now();
  const tx = db.transaction(STORES, "readwrite", { durability: "strict" });
  const finished = done(tx, "writing the snapshot");
  const check = checkJson ? JSON.parse(checkJson) : null;
  let stale = false;
  if (check) {
    // Checked inside the same transaction, so no commit can slip in between. The reads are issued before the
    // writes and requests run in order, so they see the index as it was; the writes are issued at once (the
    // browser starts on them while the caller works), and a stale check aborts them all from its callback,
    // which runs before the transaction can commit.
    const own = new Set(check.own);
    const state = tx.objectStore("meta").get("state");
    const keys = tx.objectStore("log").getAllKeys();
    keys.onsuccess = () => {
      let current = -1;
      try {
        current = JSON.parse(state.result || "{}").generation || 0;
      } catch (_) { /* unreadable: stale */ }
      if (current !== check.generation || !keys.result.every((k) => k <= check.after || own.has(k))) {
        stale = true;
        tx.abort();
      }
    };
  }
  const q0 = performance.now();
  const chunks = tx.objectStore("chunks");
  const rows = tx.objectStore("rows");
  chunks.clear();
  rows.clear();
  tx.objectStore("log").clear();
  // Vector chunks as Blobs (vectorBlobs): one copy of the bytes each, where an ArrayBuffer value costs a
  // slice, its structured clone, and Chromium's own wrapping of a large value into a blob. Same transaction,
  // so the same durability: `complete` fires only once every record, blob data included, is committed.
  for (let i = 0; i < vectorChunks.length; i++) chunks.put(vectorChunks[i], i);
  for (let i = 0; i < rowChunks.length; i++) rows.put(whole(rowChunks[i]), i);
  const meta = tx.objectStore("meta");
  meta.put(manifestJson, "manifest");
  meta.put(stateJson, "state");
  marks.idb_queue = performance.now() - q0;
  const settled = (async () => {
    try {
      await finished;
    } catch (err) {
      if (err.name === "AbortError" && check && stale) {
        throw failure({ name: "StaleWriter", message: "another tab changed the index since this one caught up" },
          "writing the snapshot");
      }
      throw err;
    }
    marks.idb_total = performance.now() - t0;
    return true;
  })();
  return { tx, done: settled };
}

const marks = {};
/** Phases of the last startSnapshot in ms (idb_queue: issuing the puts, values cloned; idb_total), for
 * bench/browser_insert_profile.py. */
export function lastMarks() {
  return JSON.stringify(marks);
}

/** Delete the whole database; waits for other connections to close (they close on versionchange). */
export function drop(location) {
  return new Promise((resolve, reject) => {
    const req = indexedDB.deleteDatabase(dbName(location));
    req.onsuccess = () => resolve(true);
    req.onerror = () => reject(failure(req.error, "deleting the index"));
  });
}

/**
 * Take the writer lock for `location` exclusively if nobody holds it (dropping the index): resolves to an
 * object with `release()`, or false at once when another tab/worker holds it, in either mode.
 */
export function acquireLock(location) {
  return holdLock(lockName(location), { ifAvailable: true }, "taking the writer lock");
}

/**
 * Join the writers of `location` for this context's life: the writer lock in "shared" mode, if no page of an
 * older version holds it exclusively (then false, at once). Resolves to an object with `release()`.
 */
export function joinWriters(location) {
  return holdLock(lockName(location), { mode: "shared", ifAvailable: true }, "joining the writers");
}

/**
 * The per-commit lock: waits (in arrival order) while another tab commits, up to `timeoutMs`, then rejects
 * with a TimeoutError. Resolves to an object with `release()`; the browser also frees it if the tab goes away.
 */
export function commitLock(location, timeoutMs) {
  const options = { mode: "exclusive" };
  if (timeoutMs > 0 && typeof AbortSignal.timeout === "function") options.signal = AbortSignal.timeout(timeoutMs);
  return holdLock(commitLockName(location), options, "waiting for the commit lock");
}

function holdLock(name, options, what) {
  if (!globalThis.navigator || !navigator.locks) return Promise.resolve({ release: async () => true });
  return new Promise((resolve, reject) => {
    let held = null;
    held = navigator.locks
      .request(name, options, (lock) => {
        if (!lock) {
          resolve(false);
          return undefined;
        }
        return new Promise((unlock) => resolve({ release: () => (unlock(true), held.then(() => true)) }));
      })
      .catch((err) => reject(failure(err, what)));
  });
}

/** How many contexts hold `location`'s writer lock (tabs with the index open for writing), or null. */
export async function writerCount(location) {
  if (!globalThis.navigator || !navigator.locks || !navigator.locks.query) return null;
  const state = await navigator.locks.query();
  return state.held.filter((l) => l.name === lockName(location)).length;
}

const channels = new Map();

/** Tell the other tabs that `location` changed (BroadcastChannel; never reaches this context's own channel). */
export function announce(location, message) {
  if (typeof BroadcastChannel === "undefined") return false;
  let channel = channels.get(location);
  if (!channel) {
    channel = new BroadcastChannel(channelName(location));
    channels.set(location, channel);
  }
  channel.postMessage(message);
  return true;
}

/** Storage facts for stats(): whether storage is persistent, usage and quota (bytes). */
export async function storageInfo(requestPersist) {
  const sm = globalThis.navigator && navigator.storage;
  const out = { persisted: null, usage: null, quota: null };
  if (!sm) return JSON.stringify(out);
  try {
    if (requestPersist && typeof sm.persist === "function") out.persisted = await sm.persist();
    else if (typeof sm.persisted === "function") out.persisted = await sm.persisted();
  } catch (_) {
    out.persisted = null;
  }
  try {
    const est = await sm.estimate();
    out.usage = est.usage ?? null;
    out.quota = est.quota ?? null;
  } catch (_) {
    /* estimate is optional */
  }
  return JSON.stringify(out);
}
