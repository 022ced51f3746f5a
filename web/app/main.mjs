// Page bootstrap (main thread): starts the Python worker (web/app/py-worker.mjs: Pyodide + worker.py),
// asks for persistent storage (only possible from a window), then flips <html data-state> to "ready" or
// "error". Python never runs on this thread, so embedding or importing cannot freeze the page.
//
// Start-up is parallel where it can be: the worker starts at once and fetches Pyodide, the app files and
// the model bundle together, while this thread checks the build and imports the UI module.

import * as ui from "./ui.mjs";
import { persistence } from "./storage.mjs";
import { modelChoice } from "./models.mjs";

const BOOT_TIMEOUT_MS = 180_000;
const STEPS = ["Loading Pyodide", "Loading interpreter", "Loading files", "Starting the app"];
const SNAPSHOT_DELAY_MS = 1500; // let the first search and paint go first on a small machine

/** The build record; fails with a clear message when the build is missing. */
async function buildRecord(base) {
  const res = await fetch(new URL("vendor/build.json", base), { cache: "no-cache" });
  if (!res.ok) throw new Error("the runtime assets are missing: run `python serve.py --build`");
  const build = await res.json();
  if (!build.paths) throw new Error("the runtime assets are from an older build: run `python serve.py --build`");
  return build;
}

/** Fail fast with a clear message when a runtime file is missing (else Pyodide can hang on a 404 wasm). */
async function checkCritical(build, base) {
  const critical = ["pyodide.mjs", "pyodide.asm.wasm", "python_stdlib.zip", "pyodide-lock.json"]
    .map((f) => build.paths.pyodide + f)
    .concat([build.paths.app + "pyapp.zip"]);
  await Promise.all(critical.map(async (path) => {
    const head = await fetch(new URL(path, base), { method: "HEAD" });
    if (!head.ok) throw new Error(`${path} is missing (HTTP ${head.status}): run \`python serve.py --build\``);
  }));
}

/** pyscript.json's "files" and worker "js_modules", as absolute URLs (its historical name is kept). */
async function workerConfig(base) {
  const url = new URL("pyscript.json", base);
  const res = await fetch(url, { cache: "no-cache" });
  if (!res.ok) throw new Error(`pyscript.json is missing (HTTP ${res.status})`);
  const config = await res.json();
  return {
    files: Object.entries(config.files || {}).map(([src, dest]) => [new URL(src, url).href, dest]),
    jsModules: Object.entries((config.js_modules || {}).worker || {}).map(([src, name]) => [new URL(src, url).href, name]),
  };
}

/** The model bundle the app will load (models.mjs decides for both), for the worker's prefetch. */
function modelToPrefetch(build, base, choice) {
  if (!choice.model) return null; // no bundle listed: the app shows "hashing (no model)"
  const { variant, backend } = choice;
  return { bundleURL: new URL(choice.model, base).href, variant, backend, ortURL: new URL(build.paths.ort, base).href };
}

/**
 * Start web/app/py-worker.mjs and resolve, once worker.py ran, to {api, timings}: `api` has one async
 * function per name in worker.py's __export__ (each returns what the Python function returns).
 */
function startWorker(init, onProgress) {
  const worker = new Worker(new URL("./py-worker.mjs", import.meta.url), { type: "module", name: "clinvec-python" });
  const pending = new Map();
  let nextId = 0;
  return new Promise((resolve, reject) => {
    const failAll = (message) => {
      reject(new Error(message));
      for (const { reject: r } of pending.values()) r(new Error(message));
      pending.clear();
    };
    worker.addEventListener("error", (event) => failAll(`the Python worker failed: ${event.message || "error"}`));
    worker.addEventListener("message", ({ data }) => {
      if (data.type === "progress") onProgress(data.detail);
      else if (data.type === "failed") failAll(data.error);
      else if (data.type === "ready") {
        const call = (fn) => (...args) => new Promise((res, rej) => {
          const id = nextId++;
          pending.set(id, { resolve: res, reject: rej });
          worker.postMessage({ type: "call", id, fn, args });
        });
        resolve({ api: Object.fromEntries(data.exports.map((name) => [name, call(name)])), timings: data.timings });
      } else if (data.type === "result") {
        const waiter = pending.get(data.id);
        pending.delete(data.id);
        if (waiter) data.ok ? waiter.resolve(data.value) : waiter.reject(new Error(data.error));
      }
    });
    worker.postMessage({ type: "init", ...init });
  });
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Boot phase timeline: a performance mark per phase end ("clinvec:runtime", ...) for DevTools, plus
 * window.clinvecBoot = {phases: {name: ms}, marks: [[label, ms since start]]} for bench/browser_bench.py.
 */
function bootClock() {
  const started = performance.now();
  const marks = [];
  const phases = {};
  let last = started;
  return {
    started,
    marks,
    phases,
    /** A free-form point on the timeline (the worker's progress steps). */
    note(label) { marks.push([label, Math.round(performance.now() - started)]); },
    /** End of phase `name`: its duration since the previous phase ended (or `ms` when measured elsewhere). */
    phase(name, ms) {
      const now = performance.now();
      performance.mark(`clinvec:${name}`);
      phases[name] = Math.round(ms === undefined ? now - last : ms);
      marks.push([name, Math.round(now - started)]);
      last = now;
    },
  };
}

async function main() {
  const clock = bootClock();
  const { started, marks } = clock;
  clock.phases.page = Math.round(started); // navigation start -> this module running (HTML, module fetch)
  window.clinvecBoot = clock;
  ui.setState("loading", "Starting Python…");
  const onProgress = (detail) => {
    clock.note(String(detail));
    const i = STEPS.indexOf(detail);
    ui.progress(detail, i < 0 ? undefined : (i + 1) / (STEPS.length + 1));
  };
  const persisted = persistence; // asked by the storage panel (storage.mjs) as the page loads
  const appModule = import("./app.mjs");
  const base = new URL("../", import.meta.url);
  const [build, config, choice] = await Promise.all([buildRecord(base), workerConfig(base), modelChoice(base)]);
  const checks = checkCritical(build, base);
  const init = {
    pyodideURL: new URL(build.paths.pyodide + "pyodide.mjs", base).href,
    indexURL: new URL(build.paths.pyodide, base).href,
    scriptURL: new URL("./worker.py", import.meta.url).href,
    files: config.files,
    jsModules: config.jsModules,
    // Off with ?nosnapshot (to compare); the key changes with the Pyodide build and pyapp.zip.
    snapshotKey: new URLSearchParams(location.search).has("nosnapshot") ? null
      : `${build.versions.pyodide}-${build.pyapp_sha256}`,
    model: new URLSearchParams(location.search).has("noprefetch") ? null : modelToPrefetch(build, base, choice),
  };
  const starting = startWorker(init, onProgress);
  // A missing runtime file is reported as such, even when the worker fails first because of it.
  const booting = starting.catch(async (err) => { await checks; throw err; });
  const [worker] = await withTimeout(Promise.all([booting, checks]), BOOT_TIMEOUT_MS, "Starting Python");
  clock.phases.worker = worker.timings;
  clock.phase("runtime");
  const status = JSON.parse(await worker.api.boot());
  clock.phase("pyapp");
  if (status.error) throw new Error(status.error);
  const granted = await persisted;
  ui.showFacts({
    kernel: status.kernel === "numpy" ? "numpy (Pyodide package)" : "JavaScript (numpy not available offline)",
    storage: `IndexedDB, ${granted ? "persistent" : "best-effort (the browser may evict it under pressure)"}`,
    python: `${status.python} on Pyodide ${status.pyodide}`,
    isolated: crossOriginIsolated ? "yes" : "no",
  });
  const params = new URLSearchParams(location.search);
  if (params.has("test")) {
    // Test hook only: run Python in the worker and get JSON back (tests/browser/).
    window.clinvecTest = { run: (code) => worker.api.run_python(code), status, persisted: granted };
  }
  const { mountApp } = await appModule;
  // Resolves once a search can run (model loaded and verified, index open): only then "ready".
  const app = await mountApp(worker.api, status);
  const timings = (app.info && app.info.timings) || {};
  clock.phase("app");
  clock.phases.model = Math.round(timings.model_ms || 0);
  clock.phases.index = Math.round(timings.index_ms || 0);
  clock.phases.total = Math.round(performance.now() - started);
  // Start-up timeline (ms since this module ran), for benchmarks and diagnosis.
  window.clinvecBootMarks = marks;
  ui.setState("ready", `Ready (${((performance.now() - started) / 1000).toFixed(1)} s)`);
  document.documentElement.dataset.kernel = status.kernel;
  document.documentElement.dataset.persisted = String(granted);
  if (worker.timings.snapshot === "missing") snapshotWhenIdle(init);
  else document.documentElement.dataset.snapshot = worker.timings.snapshot;
}

/**
 * After a boot that found no Python snapshot for this build, make one in a short-lived worker once the
 * page is idle, so the next boot restores it. <html data-snapshot> says where it stands.
 */
function snapshotWhenIdle(init) {
  const root = document.documentElement;
  root.dataset.snapshot = "pending";
  setTimeout(() => {
    root.dataset.snapshot = "making";
    const maker = new Worker(new URL("./py-worker.mjs", import.meta.url), { type: "module", name: "clinvec-snapshot" });
    maker.addEventListener("message", ({ data }) => {
      if (data.type !== "snapshot-done") return;
      maker.terminate();
      root.dataset.snapshot = data.ok ? "saved" : "failed";
      if (!data.ok) console.warn("clinvec: no Python snapshot:", data.error);
    });
    maker.addEventListener("error", () => { maker.terminate(); root.dataset.snapshot = "failed"; });
    maker.postMessage({ type: "snapshot", ...init, model: null });
  }, SNAPSHOT_DELAY_MS);
}

function fail(err) {
  console.error(err, err && err.stack);
  if (document.documentElement.dataset.state === "loading") {
    ui.showError(`clinvec could not start: ${(err && err.message) || err}`);
  }
}

addEventListener("unhandledrejection", (event) => fail(event.reason));
addEventListener("error", (event) => fail(event.error || event.message));
main().catch(fail);
