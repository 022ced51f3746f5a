// onnxruntime-web glue for WebEmbedder (pyapp/browser/web_embedder.py): fetch with progress, sha256,
// session creation and inference. Python keeps the control flow; this module only does what must be JS.
//
// Why a module: onnxruntime-web is an ES module (imported here from the page's own origin, never a
// CDN), streaming a download needs a ReadableStream reader, and crypto.subtle is a promise API.

let ortModule = null; // the imported onnxruntime-web module, shared by every session of this worker
let ortBaseUrl = null;

/** Threads ORT may use: several only when the page is cross-origin isolated (else it runs one anyway). */
export function defaultThreads() {
  const cores = (globalThis.navigator && navigator.hardwareConcurrency) || 1;
  return globalThis.crossOriginIsolated ? Math.max(1, Math.min(4, cores)) : 1;
}

/** The web root this module was served from (it sits in <root>/vendor/app/). */
export function webRoot() {
  return new URL("../../", import.meta.url).href;
}

// Which onnxruntime-web build each backend needs: the WebGPU build (with its ~27 MB asyncify wasm) is imported
// only when WebGPU was chosen, so the default wasm path never downloads or compiles it.
const ORT_BUILDS = { wasm: "ort.wasm.min.mjs", webgpu: "ort.webgpu.min.mjs" };
let ortBuild = null; // the backend whose build is loaded ("webgpu" also runs the wasm backend)

/**
 * Import onnxruntime-web from `ortBase` (a folder URL holding its .mjs and wasm files) once, and configure
 * it before the first session: local wasmPaths, thread count. `backend` "webgpu" imports the WebGPU build
 * (which runs "wasm" sessions too); "wasm" (the default) the smaller wasm-only build. Returns JSON facts.
 */
export async function initOrt(ortBase, threads, backend = "wasm") {
  if (!(backend in ORT_BUILDS)) throw new Error(`unknown onnxruntime-web backend ${backend}`);
  if (ortModule === null) {
    const mod = await import(new URL(ORT_BUILDS[backend], ortBase).href);
    const ort = mod.default && mod.default.env ? mod.default : mod;
    ort.env.wasm.wasmPaths = ortBase;
    ort.env.wasm.numThreads = threads > 0 ? threads : defaultThreads();
    ort.env.wasm.proxy = false;
    ort.env.logLevel = "error";
    ortModule = ort;
    ortBaseUrl = ortBase;
    ortBuild = backend;
  } else if (ortBase !== ortBaseUrl) {
    throw new Error(`onnxruntime-web is already loaded from ${ortBaseUrl}`);
  } else if (backend === "webgpu" && ortBuild !== "webgpu") {
    throw new Error("onnxruntime-web's wasm-only build is already loaded in this worker; WebGPU needs a reload");
  }
  return JSON.stringify({
    threads: ortModule.env.wasm.numThreads,
    isolated: Boolean(globalThis.crossOriginIsolated),
    version: ortModule.env.versions ? ortModule.env.versions.web || ortModule.env.versions.common : null,
    build: ortBuild,
  });
}

/**
 * GET `url` and return {ok, status, bytes: Uint8Array}; `onProgress(done, total)` is called as bytes
 * stream in (at most ~100 times; total is 0 when the server sent no Content-Length).
 */
export async function fetchBytes(url, onProgress) {
  const res = await fetch(url, { credentials: "same-origin" });
  if (!res.ok) return { ok: false, status: res.status, bytes: new Uint8Array(0) };
  const total = Number(res.headers.get("Content-Length")) || 0;
  if (!res.body || !res.body.getReader) {
    const bytes = new Uint8Array(await res.arrayBuffer());
    if (onProgress) onProgress(bytes.byteLength, total || bytes.byteLength);
    return { ok: true, status: res.status, bytes };
  }
  const reader = res.body.getReader();
  let buffer = new Uint8Array(total > 0 ? total : 1 << 20);
  let done = 0;
  let reported = 0;
  const step = Math.max(1 << 18, Math.floor(total / 100));
  for (;;) {
    const chunk = await reader.read();
    if (chunk.done) break;
    const part = chunk.value;
    if (done + part.byteLength > buffer.byteLength) {
      const grown = new Uint8Array(Math.max(buffer.byteLength * 2, done + part.byteLength));
      grown.set(buffer.subarray(0, done));
      buffer = grown;
    }
    buffer.set(part, done);
    done += part.byteLength;
    if (onProgress && done - reported >= step) {
      reported = done;
      onProgress(done, total);
    }
  }
  if (onProgress) onProgress(done, total || done);
  return { ok: true, status: res.status, bytes: done === buffer.byteLength ? buffer : buffer.slice(0, done) };
}

/** Lower-case hex SHA-256 of the bytes (WebCrypto: native code, off the Python thread). */
export async function sha256Hex(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** An InferenceSession for the model bytes on `backend` ("wasm" or "webgpu"; after initOrt). */
export async function createSession(bytes, backend = "wasm") {
  if (ortModule === null) throw new Error("initOrt must run before createSession");
  if (backend === "webgpu" && ortBuild !== "webgpu") throw new Error("the WebGPU build of onnxruntime-web is not loaded");
  return ortModule.InferenceSession.create(bytes, {
    executionProviders: [backend],
    graphOptimizationLevel: "all",
  });
}

/** Names of the session's inputs and outputs, as JSON (to check the bundle's manifest against the graph). */
export function sessionNames(session) {
  return JSON.stringify({ inputs: Array.from(session.inputNames), outputs: Array.from(session.outputNames) });
}

/**
 * Run one padded batch. `ids`, `mask`, `types` are BigInt64Array of batch*seq values (int64 inputs);
 * only the inputs the graph declares are fed. Returns the output tensor's Float32Array (batch*dims).
 */
export async function run(session, ids, mask, types, batch, seq, outputName) {
  const shape = [batch, seq];
  const given = {
    input_ids: new ortModule.Tensor("int64", ids, shape),
    attention_mask: new ortModule.Tensor("int64", mask, shape),
    token_type_ids: new ortModule.Tensor("int64", types, shape),
  };
  const feeds = {};
  for (const name of session.inputNames) {
    if (!(name in given)) throw new Error(`the model wants an input named ${name}`);
    feeds[name] = given[name];
  }
  const out = await session.run(feeds, [outputName]);
  const tensor = out[outputName];
  if (!tensor) throw new Error(`the model has no output named ${outputName}`);
  const data = tensor.data;
  for (const t of Object.values(feeds)) if (t.dispose) t.dispose();
  const copy = data instanceof Float32Array ? data.slice() : Float32Array.from(data);
  if (tensor.dispose) tensor.dispose();
  return copy;
}

/** Free the session's wasm memory. */
export async function release(session) {
  if (session && session.release) await session.release();
}
