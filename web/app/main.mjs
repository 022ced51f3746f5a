// Page bootstrap (main thread): starts the Python worker via PyScript, asks for persistent
// storage (only possible from a window), then flips <html data-state> to "ready" or "error".
// Python never runs on this thread, so embedding or importing cannot freeze the page.

import * as ui from "./ui.mjs";

const BOOT_TIMEOUT_MS = 180_000;
const STEPS = ["Loading Pyodide", "Loading interpreter", "Loaded interpreter", "Loading files", "Loaded files",
  "Loading JS modules", "Loaded JS modules", "Loaded Pyodide"];

async function requestPersistence() {
  try {
    if (navigator.storage && navigator.storage.persist) return await navigator.storage.persist();
  } catch (_) {
    /* not granted, or not available */
  }
  return false;
}

/** Fail fast with a clear message when the build is missing (else Pyodide can hang on a 404 wasm). */
async function preflight() {
  const base = new URL("../", import.meta.url);
  const res = await fetch(new URL("vendor/build.json", base), { cache: "no-cache" });
  if (!res.ok) throw new Error("the runtime assets are missing: run `python serve.py --build`");
  const build = await res.json();
  if (!build.paths) throw new Error("the runtime assets are from an older build: run `python serve.py --build`");
  const critical = ["pyodide.mjs", "pyodide.asm.wasm", "python_stdlib.zip", "pyodide-lock.json"]
    .map((f) => build.paths.pyodide + f)
    .concat([build.paths.app + "pyapp.zip"]);
  await Promise.all(critical.map(async (path) => {
    const head = await fetch(new URL(path, base), { method: "HEAD" });
    if (!head.ok) throw new Error(`${path} is missing (HTTP ${head.status}): run \`python serve.py --build\``);
  }));
  const configURL = new URL("pyscript.json", base).href;
  const configRes = await fetch(configURL, { cache: "no-cache" });
  if (!configRes.ok) throw new Error(`pyscript.json is missing (HTTP ${configRes.status})`);
  const config = await configRes.json();
  return {
    build, config, configURL,
    pyodide: new URL(build.paths.pyodide + "pyodide.mjs", base).href,
    pyscript: new URL(build.paths.pyscript + "core.js", base).href,
  };
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * PyScript ships worker hooks to the worker by re-creating them with Function(), which our CSP (no
 * 'unsafe-eval') forbids. Its only default worker hook registers `_pyscript` for pyscript.fs (local
 * folder access), which this app does not use, so drop the function hooks instead of weakening the CSP.
 */
function dropWorkerFunctionHooks(hooks) {
  for (const [name, set] of Object.entries(hooks.worker)) {
    if (name.startsWith("on") && typeof set.clear === "function") set.clear();
  }
}

async function main() {
  const started = performance.now();
  ui.setState("loading", "Starting Python…");
  const marks = [];
  addEventListener("py:progress", ({ detail }) => {
    marks.push([String(detail), Math.round(performance.now() - started)]);
    const i = STEPS.indexOf(detail);
    ui.progress(detail, i < 0 ? undefined : (i + 1) / (STEPS.length + 1));
  });
  const persisted = requestPersistence();
  const assets = await preflight();
  // Imported only now, so a missing build shows the preflight's message instead of a dead page.
  const { PyWorker, hooks } = await import(assets.pyscript);
  dropWorkerFunctionHooks(hooks);
  const worker = await withTimeout(
    PyWorker(new URL("./worker.py", import.meta.url).href, {
      // Passed as an object (with its URL for relative paths) so Python's pyscript.config sees its keys.
      config: assets.config,
      configURL: assets.configURL,
      // The local Pyodide (PyScript would otherwise pick its CDN default for workers started from JS).
      version: assets.pyodide,
    }),
    BOOT_TIMEOUT_MS,
    "Starting Python",
  );
  marks.push(["worker ready", Math.round(performance.now() - started)]);
  const status = JSON.parse(await worker.sync.boot());
  marks.push(["pyapp imported", Math.round(performance.now() - started)]);
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
    window.clinvecTest = { run: (code) => worker.sync.run_python(code), status, persisted: granted };
  }
  const { mountApp } = await import("./app.mjs");
  // Resolves once a search can run (model loaded and verified, index open): only then "ready".
  await mountApp(worker.sync, status);
  // Start-up timeline (ms since this module ran), for benchmarks and diagnosis.
  window.clinvecBootMarks = marks;
  ui.setState("ready", `Ready (${((performance.now() - started) / 1000).toFixed(1)} s)`);
  document.documentElement.dataset.kernel = status.kernel;
  document.documentElement.dataset.persisted = String(granted);
}

function fail(err) {
  console.error(err, err && err.stack);
  if (document.documentElement.dataset.state === "loading") {
    ui.showError(`clinvec could not start: ${(err && err.message) || err}`);
  }
}

// PyScript reports some start-up failures (e.g. a missing worker script) only as unhandled rejections.
addEventListener("unhandledrejection", (event) => fail(event.reason));
addEventListener("error", (event) => fail(event.error || event.message));
main().catch(fail);
