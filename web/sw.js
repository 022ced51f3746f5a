// clinvec's service worker: the page boots with no network once it has been opened online.
//
// Why these policies:
// - Install precaches every URL in vendor/precache.json (written by web_build.py: the page, app code,
//   Pyodide incl. pyodide-lock.json, onnxruntime-web .mjs+.wasm, PyScript, pyapp.zip, wheels, model
//   bundles), with cache "reload" so a stale HTTP cache can never end up in the offline copy.
// - vendor/<package>-<version>/ never changes under the same URL: cache first (also lets Chromium reuse
//   its compiled-wasm cache). Everything else is network first with the cache as the offline fallback,
//   so a developer's edit shows on the next reload; a changed response (new ETag) refreshes the copy.
// - Cached responses are returned as stored, headers included, so COOP/COEP/CORP (cross-origin isolation,
//   threads) and the CSP hold offline too. Same-origin GET/HEAD only; other requests are not touched.
// - ignoreSearch: "/?test" or "/?model=..." are the same files as "/".

const CACHE = "clinvec-offline-v1";
const SCOPE = new URL("./", self.location).href;
const PRECACHE_URL = new URL("vendor/precache.json", SCOPE).href;
const IMMUTABLE = /^vendor\/[A-Za-z0-9_.@]+(?:-[A-Za-z0-9_.@]+)*-\d+(?:\.\d+)+\//;
const NETWORK_TIMEOUT_MS = 8000; // waiting for response headers; then fall back to the cache if it can
const PARALLEL = 6;

/** The precache list (path -> revision) as served now; throws when the server cannot be reached. */
async function fetchList() {
  const res = await fetch(PRECACHE_URL, { cache: "no-cache" });
  if (!res.ok) throw new Error(`precache list: HTTP ${res.status}`);
  const list = await res.json();
  if (!list || typeof list.version !== "string" || typeof list.files !== "object") {
    throw new Error("precache list: malformed");
  }
  return list;
}

/** Cache every listed file whose revision changed (or is missing), then drop what is no longer listed.
 * The list itself is stored last, so an interrupted sync is simply redone next time. */
async function sync(list) {
  const cache = await caches.open(CACHE);
  const previousRes = await cache.match(PRECACHE_URL);
  const previous = previousRes ? await previousRes.json() : { version: "", files: {} };
  const wanted = new Set(Object.keys(list.files).map((path) => new URL(path, SCOPE).href));
  const todo = [];
  for (const [path, rev] of Object.entries(list.files)) {
    const url = new URL(path, SCOPE).href;
    if (previous.files[path] !== rev || !(await cache.match(url))) todo.push(url);
  }
  if (!todo.length && previous.version === list.version) return;
  let next = 0;
  async function lane() {
    while (next < todo.length) {
      const url = todo[next++];
      const res = await fetch(new Request(url, { cache: "reload", credentials: "same-origin" }));
      if (!res.ok || res.type !== "basic") throw new Error(`precache ${url}: HTTP ${res.status}`);
      await cache.put(url, res);
    }
  }
  await Promise.all(Array.from({ length: PARALLEL }, lane));
  for (const request of await cache.keys()) {
    if (request.url !== PRECACHE_URL && !wanted.has(request.url)) await cache.delete(request);
  }
  await cache.put(PRECACHE_URL, new Response(JSON.stringify(list), { headers: { "Content-Type": "application/json" } }));
}

self.addEventListener("install", (event) => {
  // A failed precache fails the install: the previous worker (if any) keeps serving.
  event.waitUntil(fetchList().then(sync).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) {
      if (key.startsWith("clinvec-") && key !== CACHE) await caches.delete(key);
    }
    await self.clients.claim(); // control the page that registered us, without a reload
  })());
});

/** A HEAD answer made from a cached GET: same status and headers, no body. */
function headOf(res) {
  return new Response(null, { status: res.status, statusText: res.statusText, headers: res.headers });
}

async function fromCache(request, url) {
  const cache = await caches.open(CACHE);
  const key = url.origin + url.pathname;
  const hit = await cache.match(key, { ignoreSearch: true, ignoreMethod: true });
  if (hit || request.mode !== "navigate") return hit;
  return cache.match(new URL("index.html", SCOPE).href); // any navigation in scope is the app page
}

function withTimeout(promise, ms) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error("network timeout")), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Keep the offline copy of a precached URL current: replace it when the server's ETag moved on. */
async function refresh(url, res) {
  const cache = await caches.open(CACHE);
  const key = url.origin + url.pathname;
  const cached = await cache.match(key);
  const etag = res.headers.get("ETag");
  if (!cached || (etag && etag === cached.headers.get("ETag"))) {
    await res.body?.cancel(); // the unread copy would otherwise buffer the whole body (models: 90 MB)
    return;
  }
  await cache.put(key, res);
}

async function cacheFirst(event, url) {
  const hit = await fromCache(event.request, url);
  if (hit) return event.request.method === "HEAD" ? headOf(hit) : hit;
  const res = await fetch(event.request);
  if (res.ok && res.type === "basic" && event.request.method === "GET") {
    const copy = res.clone();
    event.waitUntil(caches.open(CACHE).then((cache) => cache.put(url.origin + url.pathname, copy)));
  }
  return res;
}

async function networkFirst(event, url) {
  const network = fetch(event.request);
  try {
    const res = await withTimeout(network, NETWORK_TIMEOUT_MS);
    if (res.status >= 500) throw new Error(`HTTP ${res.status}`);
    if (res.ok && res.type === "basic" && event.request.method === "GET") {
      event.waitUntil(refresh(url, res.clone()));
    }
    if (event.request.mode === "navigate") event.waitUntil(updateInBackground());
    return res;
  } catch (err) {
    const hit = await fromCache(event.request, url);
    if (hit) return event.request.method === "HEAD" ? headOf(hit) : hit;
    return network; // nothing cached: the network's own answer or error
  }
}

let lastSync = 0;

/** Online page loads re-sync the precache (new or changed files), at most once a minute. */
async function updateInBackground() {
  if (Date.now() - lastSync < 60_000) return;
  lastSync = Date.now();
  try {
    await sync(await fetchList());
  } catch (err) {
    console.warn("clinvec service worker: precache update failed", err);
  }
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET" && request.method !== "HEAD") return;
  if (request.headers.has("range")) return; // partial responses are not cacheable
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || !request.url.startsWith(SCOPE)) return;
  const path = url.pathname.slice(new URL(SCOPE).pathname.length);
  if (path === "sw.js") return;
  event.respondWith(IMMUTABLE.test(path) ? cacheFirst(event, url) : networkFirst(event, url));
});
