// The Python worker (a module Web Worker): Pyodide, pyapp and web/app/worker.py, without PyScript.
//
// Why not PyScript: its worker start-up (its own Python package, plugins, config fetches, hooks that the
// CSP refuses) ran strictly after Pyodide, and nothing of ours could run in the worker before Python was
// up. Here everything that does not need Python starts at once, in parallel with Pyodide's start-up:
// the app files (pyapp.zip, build record, worker.py), the JS modules, and the model bundle (download,
// sha256 against its manifest, onnxruntime-web session). Python's WebEmbedder.load then finds the bytes
// and the session ready (see `prefetching`); it still checks sizes and sha256 itself, so the guarantee
// "onnxruntime-web never sees an unverified byte" holds: the prefetch only opens a session after the
// same check against the same manifest.
//
// Protocol (JSON-free structured clone): the page posts {type: "init", ...} once, then
// {type: "call", id, fn, args}; the worker answers {type: "progress", detail}, {type: "ready", exports,
// timings} or {type: "failed", error}, and {type: "result", id, ok, value | error} per call.

const timings = {};
const t0 = performance.now();
const mark = (name) => { timings[name] = Math.round(performance.now() - t0); };
const progress = (detail) => postMessage({ type: "progress", detail });

async function fetchOk(url, kind) {
  const res = await fetch(url, { credentials: "same-origin" });
  if (!res.ok) throw new Error(`${new URL(url).pathname} is missing (HTTP ${res.status})`);
  return kind === "text" ? res.text() : new Uint8Array(await res.arrayBuffer());
}

/**
 * The model bundle fetched and checked in JS while Python starts. `downloads`: url -> {answer (what
 * fetchBytes resolves to), steps (its progress so far), listeners} for the manifest, vocabulary and graph;
 * `session`: resolves to {bytes, promise} (an onnxruntime-web session for exactly those graph bytes, opened
 * only after their size and sha256 matched the manifest) or null. Any failure just leaves things out:
 * Python then fetches, checks and reports as it always did.
 */
function prefetchModel(embed, { bundleURL, variant, ortURL, backend = "wasm" }) {
  const downloads = new Map();
  const start = (name) => {
    const url = new URL(name, bundleURL).href;
    const entry = { steps: [], listeners: new Set() };
    entry.answer = embed.fetchBytes(url, (done, total) => {
      entry.steps.push([done, total]);
      for (const listener of entry.listeners) listener(done, total);
    });
    entry.answer.catch(() => {}); // Python sees the failure when it asks for this file
    downloads.set(url, entry);
    return entry.answer;
  };
  const files = { int8: "model_int8.onnx", fp32: "model.onnx" };
  const planned = (async () => {
    const answer = await start("manifest.json");
    if (!answer.ok) return null;
    const manifest = JSON.parse(new TextDecoder().decode(answer.bytes));
    const entry = (manifest.variants || {})[variant];
    const file = (entry && typeof entry.file === "string" && entry.file) || files[variant];
    const graph = start(file);
    if (typeof manifest.vocab_file === "string") start(manifest.vocab_file);
    // Compile onnxruntime-web's wasm while the model downloads.
    return { graph, listed: (manifest.files || {})[file], ort: embed.initOrt(ortURL, 0, backend) };
  })().catch((err) => {
    console.warn("clinvec: model prefetch skipped:", err);
    return null;
  });
  const session = planned.then(async (plan) => {
    if (!plan || !plan.listed) return null;
    const [graph] = await Promise.all([plan.graph, plan.ort]);
    if (!graph.ok || Number(plan.listed.bytes) !== graph.bytes.byteLength) return null;
    if ((await embed.sha256Hex(graph.bytes)) !== String(plan.listed.sha256).toLowerCase()) return null;
    const opened = { bytes: graph.bytes, backend, promise: embed.createSession(graph.bytes, backend) };
    opened.promise.catch(() => {}); // reported to Python when it asks for the session
    return opened;
  }).catch((err) => {
    console.warn("clinvec: model prefetch skipped:", err);
    return null;
  });
  return { downloads, planned, session };
}

/**
 * `clinvec_embed` as Python sees it: the real module, except that fetchBytes answers from the prefetch
 * (once per URL; its download progress so far is replayed, the rest follows live) and createSession hands
 * over the prefetched session for those very bytes.
 */
function prefetching(embed, prefetched) {
  return {
    ...embed,
    async fetchBytes(url, onProgress) {
      await prefetched.planned;
      const entry = prefetched.downloads.get(url);
      if (!entry) return embed.fetchBytes(url, onProgress);
      prefetched.downloads.delete(url);
      if (!onProgress) return entry.answer;
      for (const [done, total] of entry.steps) onProgress(done, total);
      entry.listeners.add(onProgress);
      try {
        return await entry.answer;
      } finally {
        entry.listeners.delete(onProgress);
      }
    },
    async createSession(bytes, backend = "wasm") {
      const session = await prefetched.session;
      if (session && session.bytes === bytes && session.backend === backend) {
        session.bytes = null; // hand it over once
        return session.promise;
      }
      return embed.createSession(bytes, backend);
    },
  };
}

// Pyodide memory snapshots (Pyodide's private _makeSnapshot/_loadSnapshot options): the interpreter's
// heap right after CPython started and imported pyapp's pure-Python core, kept in Cache Storage under a
// key naming the Pyodide build and pyapp.zip's sha256, so any change to either makes a new one. Restoring
// skips CPython's start-up and those imports (most of a warm boot). Only modules that touch no JS object
// may be in it (pyapp.browser is imported afterwards), and random is reseeded after a restore.
const SNAPSHOT_CACHE = "clinvec-python-snapshot";
const SNAPSHOT_IMPORTS = [
  "asyncio", "json", "hashlib", "dataclasses", "typing", "array", "base64", "zipfile",
  "pyapp", "pyapp.notes", "pyapp.kernels", "pyapp.documents", "pyapp.tokenizer", "pyapp.embed.bundle",
  "pyapp.embed.base", "pyapp.embed.hashing", "pyapp.transfer",
];

function snapshotRequest(key) {
  return new Request(new URL(`python-snapshot/${encodeURIComponent(key)}`, self.location.href));
}

async function readSnapshot(key) {
  try {
    const res = await (await caches.open(SNAPSHOT_CACHE)).match(snapshotRequest(key));
    return res ? new Uint8Array(await res.arrayBuffer()) : null;
  } catch (err) {
    return null;
  }
}

/** Drop the stored snapshot (after a failed restore, or to replace it). */
async function dropSnapshots() {
  try {
    await caches.delete(SNAPSHOT_CACHE);
  } catch (err) {
    /* nothing stored */
  }
}

/**
 * This Pyodide build exports its wasm memory at a fixed initial size, and a snapshot restore writes the
 * saved heap over it: grow the fresh instance's memory to the snapshot's heap size first.
 */
function growingFor(createModule, snapshot) {
  const header = new Uint32Array(snapshot.buffer, snapshot.byteOffset, 4);
  const heapBytes = snapshot.byteLength - header[1];
  return async (settings) => {
    const mod = await createModule(settings);
    if (mod.HEAP8.length < heapBytes && !mod.growMemory(heapBytes)) throw new Error("cannot grow wasm memory");
    return mod;
  };
}

function pythonOptions(msg) {
  return {
    indexURL: msg.indexURL,
    env: { HOME: "/home/pyodide" },
    stdout: (line) => console.log(line),
    stderr: (line) => console.warn(line),
  };
}

function unpack(pyodide, files) {
  for (const [dest, bytes] of files) {
    if (dest === "./*") pyodide.unpackArchive(bytes, "zip", { extractDir: "." });
    else pyodide.FS.writeFile(dest, bytes);
  }
}

/**
 * Make and store the snapshot, in a worker of its own (the page starts one when idle after a boot that
 * found none): an interpreter started for a snapshot wraps JS globals in a recording proxy, so it is
 * never the one the app uses.
 */
async function makeSnapshot(msg) {
  const [{ loadPyodide }, files] = await Promise.all([
    import(msg.pyodideURL),
    Promise.all(msg.files.map(async ([url, dest]) => [dest, await fetchOk(url, "bytes")])),
  ]);
  const pyodide = await loadPyodide({ ...pythonOptions(msg), _makeSnapshot: true });
  unpack(pyodide, files);
  pyodide.runPython(`import importlib, os, sys\nif os.getcwd() not in sys.path: sys.path.insert(0, os.getcwd())\n` +
    `for name in ${JSON.stringify(SNAPSHOT_IMPORTS)}:\n    importlib.import_module(name)\n`);
  const bytes = pyodide.makeMemorySnapshot();
  await dropSnapshots();
  const cache = await caches.open(SNAPSHOT_CACHE);
  await cache.put(snapshotRequest(msg.snapshotKey),
    new Response(bytes, { headers: { "Content-Type": "application/octet-stream" } }));
  return bytes.byteLength;
}

/** Start Python: from the snapshot when one is stored for this build (else, or if it fails, from scratch). */
async function startPython(msg, loadPyodide) {
  const snapshot = msg.snapshotKey ? await readSnapshot(msg.snapshotKey) : null;
  if (snapshot) {
    try {
      const asm = await import(new URL("pyodide.asm.mjs", msg.indexURL).href);
      const pyodide = await loadPyodide({
        ...pythonOptions(msg),
        _loadSnapshot: snapshot,
        createPyodideModule: growingFor(asm.default, snapshot),
      });
      timings.snapshot = "restored";
      return pyodide;
    } catch (err) {
      console.warn("clinvec: the Python snapshot did not restore; starting from scratch:", err);
      await dropSnapshots();
    }
  }
  timings.snapshot = msg.snapshotKey ? "missing" : "off";
  return loadPyodide(pythonOptions(msg));
}

async function init(msg) {
  progress("Loading Pyodide");
  const pyodideModule = import(msg.pyodideURL);
  const files = Promise.all(msg.files.map(async ([url, dest]) => [dest, await fetchOk(url, "bytes")]));
  const source = fetchOk(msg.scriptURL, "text");
  const modules = Promise.all(msg.jsModules.map(async ([url, name]) => [name, await import(url)]));
  // Only once the JS modules are in (the prefetch uses web_embedder.mjs); Python asks after that anyway.
  const embedModule = modules.then((mods) => (mods.find(([name]) => name === "clinvec_embed") || [])[1]);
  const prefetched = msg.model ? embedModule.then((embed) => embed && prefetchModel(embed, msg.model)) : null;
  if (prefetched) prefetched.then((p) => p && p.session.then(() => mark("model_prefetched")));
  const { loadPyodide } = await pyodideModule;
  progress("Loading interpreter");
  const pyodide = await startPython(msg, loadPyodide);
  mark("interpreter");
  progress("Loading files");
  unpack(pyodide, await files);
  if (timings.snapshot === "restored") {
    pyodide.runPython("import random; random.seed()"); // else every boot would replay one random sequence
  }
  const ready = prefetched && (await prefetched);
  for (const [name, mod] of await modules) {
    pyodide.registerJsModule(name, name === "clinvec_embed" && ready ? prefetching(mod, ready) : mod);
  }
  progress("Starting the app");
  await pyodide.runPythonAsync(await source, { filename: "worker.py" });
  mark("script");
  const exported = pyodide.globals.get("__export__");
  const names = exported.toJs();
  exported.destroy();
  return { pyodide, names };
}

let booted = null;

self.addEventListener("message", async ({ data }) => {
  if (data.type === "init") {
    booted = init(data);
    try {
      const { names } = await booted;
      postMessage({ type: "ready", exports: names, timings });
    } catch (err) {
      postMessage({ type: "failed", error: String((err && err.message) || err) });
    }
    return;
  }
  if (data.type === "snapshot") {
    try {
      postMessage({ type: "snapshot-done", ok: true, bytes: await makeSnapshot(data) });
    } catch (err) {
      postMessage({ type: "snapshot-done", ok: false, error: String((err && err.message) || err) });
    }
    return;
  }
  if (data.type !== "call") return;
  try {
    const { pyodide, names } = await booted;
    if (!names.includes(data.fn)) throw new Error(`worker.py exports no ${data.fn}`);
    const fn = pyodide.globals.get(data.fn);
    try {
      const value = await fn(...data.args);
      postMessage({ type: "result", id: data.id, ok: true, value });
    } finally {
      fn.destroy();
    }
  } catch (err) {
    postMessage({ type: "result", id: data.id, ok: false, error: String((err && err.message) || err) });
  }
});
