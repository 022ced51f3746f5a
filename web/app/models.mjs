// Which model bundle, variant and inference backend the page uses, decided once per page load and shared by
// main.mjs (the worker's prefetch) and app.mjs (app_open): `modelChoice(base)` always gives the same answer.
//
// Bundle: `?model=models/x/` when given; else the build's list `models/index.json` (pyapp/embed/catalog.py:
// Bio_ClinicalBERT when exported, else the packaged MiniLM); an empty list means no model, shown as such
// ("hashing (no model)"), never silently. Backend: `?backend=wasm|webgpu` when given; else WebGPU when
// navigator.gpu gives a hardware adapter, wasm otherwise (a software fallback adapter is slower than wasm).
// WebGPU has no int8 kernels (MatMulInteger), so its default variant is fp32; `?variant=` still wins.
// Every choice carries a `why` the page shows.

import { h } from "./dom.mjs";

const MODEL_RE = /^models\/[A-Za-z0-9._-]+\/?$/;
const BACKENDS = ["wasm", "webgpu"];
const ADAPTER_TIMEOUT_MS = 3000;

let chosen = null;

/** The page's choice (memoised): {model, modelWhy, listed, variant, backend, backendWhy, backendError}. */
export function modelChoice(base) {
  if (chosen === null) chosen = decide(new URL(base), new URLSearchParams(location.search));
  return chosen;
}

/** The bundle list the build wrote, or null when this build has none (an older build: MiniLM is tried). */
async function bundleList(base) {
  try {
    const res = await fetch(new URL("models/index.json", base), { cache: "no-cache", credentials: "same-origin" });
    if (!res.ok) return null;
    const list = await res.json();
    return list && Array.isArray(list.bundles) ? list : null;
  } catch (err) {
    return null;
  }
}

async function pickModel(base, params) {
  const asked = params.get("model");
  if (asked !== null) {
    if (!MODEL_RE.test(asked)) throw new Error("?model= must be a folder under models/, e.g. models/minilm/");
    return { model: asked.endsWith("/") ? asked : `${asked}/`, modelWhy: "chosen by ?model= in the address", listed: null };
  }
  const list = await bundleList(base);
  if (list === null) {
    return { model: "models/minilm/", modelWhy: "this build has no models/index.json; trying the packaged MiniLM", listed: null };
  }
  const entry = list.bundles.find((b) => b.name === list.default);
  if (!entry || !MODEL_RE.test(entry.dir)) {
    const skipped = (list.skipped || []).map((s) => `${s.name}: ${s.reason}`).join("; ");
    return {
      model: null,
      modelWhy: "models/index.json lists no model bundle (run scripts/model.sh, then python web_build.py)" +
        (skipped ? `; not usable: ${skipped}` : ""),
      listed: list,
    };
  }
  const others = list.bundles.filter((b) => b !== entry).map((b) => b.name);
  const clinical = /clinicalbert/i.test(entry.name) || /Bio_ClinicalBERT/.test(entry.model);
  const why = clinical
    ? "Bio_ClinicalBERT is listed in models/index.json"
    : "the first bundle in models/index.json (no Bio_ClinicalBERT bundle was exported)";
  return { model: entry.dir, modelWhy: others.length ? `${why}; also listed: ${others.join(", ")}` : why, listed: list };
}

/** navigator.gpu's adapter facts, or {none: reason}. Never waits more than a few seconds. */
async function gpuAdapter() {
  if (!globalThis.navigator || !navigator.gpu) return { none: "this browser has no WebGPU (navigator.gpu is missing)" };
  let timer;
  const timeout = new Promise((resolve) => { timer = setTimeout(() => resolve("timeout"), ADAPTER_TIMEOUT_MS); });
  try {
    const adapter = await Promise.race([navigator.gpu.requestAdapter(), timeout]);
    if (adapter === "timeout") return { none: "navigator.gpu.requestAdapter() did not answer" };
    if (!adapter) return { none: "navigator.gpu.requestAdapter() gave no adapter (no usable GPU, or WebGPU is off)" };
    const info = adapter.info || {};
    const name = [info.vendor, info.architecture, info.description].filter(Boolean).join(" ") || "unnamed adapter";
    return { name, fallback: Boolean(info.isFallbackAdapter) };
  } catch (err) {
    return { none: `navigator.gpu.requestAdapter() failed: ${(err && err.message) || err}` };
  } finally {
    clearTimeout(timer);
  }
}

async function pickBackend(params) {
  const asked = params.get("backend");
  if (asked !== null && !BACKENDS.includes(asked)) throw new Error("?backend= must be wasm or webgpu");
  if (asked === "wasm") return { backend: "wasm", backendWhy: "chosen by ?backend=wasm" };
  const adapter = await gpuAdapter();
  if (asked === "webgpu") {
    if (adapter.none) {
      return { backend: "wasm", backendWhy: "WebGPU was asked for but is unavailable", backendError: `?backend=webgpu: ${adapter.none}; using wasm` };
    }
    return { backend: "webgpu", backendWhy: `chosen by ?backend=webgpu (adapter: ${adapter.name}${adapter.fallback ? ", software fallback" : ""})` };
  }
  if (adapter.none) return { backend: "wasm", backendWhy: adapter.none };
  if (adapter.fallback) {
    return { backend: "wasm", backendWhy: `the only WebGPU adapter is a software fallback (${adapter.name}); wasm is faster` };
  }
  return { backend: "webgpu", backendWhy: `WebGPU adapter: ${adapter.name}` };
}

async function decide(base, params) {
  const variantAsked = params.get("variant");
  if (variantAsked !== null && !["int8", "fp32"].includes(variantAsked)) throw new Error("?variant= must be int8 or fp32");
  const [model, backend] = await Promise.all([pickModel(base, params), pickBackend(params)]);
  const variant = variantAsked || (backend.backend === "webgpu" ? "fp32" : "int8");
  return { ...model, ...backend, variant };
}

/**
 * What the page shows once the app opened (`info` from app_open, with `runtime` from the embedder): which
 * model and why, which backend and why, and a visible error when the backend asked for could not be used.
 * Sets <html data-model> (the bundle folder name, or "none") and <html data-backend> for tests.
 */
export function choiceView(choice, info) {
  const onnx = info.embedder_kind === "onnx";
  const runtime = info.runtime || {};
  const name = onnx ? `${info.embedder.model} (${choice.model})` : "hashing (no model)";
  const modelWhy = onnx ? choice.modelWhy
    : choice.model ? `no model bundle could be opened at ${choice.model} (${choice.modelWhy})` : choice.modelWhy;
  const root = document.documentElement;
  root.dataset.model = onnx ? choice.model.replace(/^models\//, "").replace(/\/$/, "") : "none";
  root.dataset.backend = onnx ? runtime.backend || "wasm" : "none";
  let backend = "none: the hashing embedder runs in Python, no model";
  if (onnx) {
    const threads = runtime.threads ? `, ${runtime.threads} wasm thread${runtime.threads === 1 ? "" : "s"}` : "";
    const probe = runtime.probe_cosine !== null && runtime.probe_cosine !== undefined
      ? `; checked against wasm on a probe sentence: cosine ${Number(runtime.probe_cosine).toFixed(6)}` : "";
    backend = `onnxruntime-web ${runtime.backend || "wasm"}${threads} (${runtime.note || choice.backendWhy}${probe})`;
  }
  const out = [
    h("p", { id: "model-choice", "data-testid": "model-name" }, `Model: ${name}. Why: ${modelWhy}.`),
    h("p", { id: "backend-line", "data-testid": "backend" }, `Backend: ${backend}.`),
  ];
  const problems = [choice.backendError, runtime.note].filter(Boolean);
  if (problems.length) {
    out.push(h("p", { id: "backend-error", class: "error", role: "alert", "data-testid": "backend-error" },
      problems.join(" ")));
  }
  return out;
}
