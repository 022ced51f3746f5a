// clinvec's service worker: the page boots with no network once it has been opened online, and a new
// version never mixes with the old one in an open page.
//
// Why these policies:
// - The precache list comes from vendor/precache.js (written by web_build.py: path -> revision for the
//   page, app code, Pyodide, onnxruntime-web, pyapp.zip, icons, model bundles), pulled in with
//   importScripts so the browser's own update check sees a new build: a changed list is a new worker.
// - Each version has its own cache ("clinvec-v-<version>"). A new worker installs its version beside the
//   old one (unchanged files are copied from the old cache, changed ones fetched with cache "reload"), then
//   waits: the page shows "a new version is ready"; the banner's Reload (which posts SKIP_WAITING) or the
//   user's own reload of the only page of this app switches. A failed install changes nothing; the old
//   version keeps serving.
// - The user's reload: the old worker answers that navigation with an empty page that refreshes at once
//   and tells the waiting worker to take over, so the refreshed page loads from the new version whole
//   (never the old page with new files, nor the reverse). Only when no other page of the app is open
//   (another tab keeps its version until its own reload; the banner says so).
// - Pages open when the new version activates keep the old version's files (their client ids are kept in
//   the new cache), so a lazy import or a model fetch in such a page never gets a file of the other version.
//   The old cache is deleted once none of those pages is left.
// - Precached files are served cache first, as stored (headers included: COOP/COEP/CORP and the CSP hold
//   offline). Other same-origin GETs go to the network. ignoreSearch: "/?test" is the same file as "/".

importScripts("vendor/precache.js"); // defines self.CLINVEC_PRECACHE = {version, files}

const LIST = self.CLINVEC_PRECACHE;
const PREFIX = "clinvec-v-";
const CACHE = PREFIX + LIST.version;
const SCOPE = new URL("./", self.location).href;
const STATE_URL = new URL("sw-state.json", SCOPE).href; // kept in CACHE: {version, oldCache, oldClients}
const PARALLEL = 6;

const urlOf = (path) => new URL(path, SCOPE).href;
const keyOf = (url) => url.origin + url.pathname;

/** The newest other version's cache and its list (to copy unchanged files from), if any. */
async function previousVersion() {
  for (const name of (await caches.keys()).reverse()) {
    if (!name.startsWith(PREFIX) || name === CACHE) continue;
    const cache = await caches.open(name);
    const state = await cache.match(STATE_URL);
    if (state) return { cache, files: (await state.json()).files || {} };
  }
  return null;
}

/** Fill this version's cache: copy what did not change, fetch the rest; the state record goes in last. */
async function install() {
  const cache = await caches.open(CACHE);
  const previous = await previousVersion();
  const todo = [];
  for (const [path, rev] of Object.entries(LIST.files)) {
    const url = urlOf(path);
    if (await cache.match(url)) continue; // an interrupted install of this same version
    const old = previous && previous.files[path] === rev ? await previous.cache.match(url) : undefined;
    if (old) await cache.put(url, old);
    else todo.push(url);
  }
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
  await cache.put(STATE_URL, Response.json({ version: LIST.version, files: LIST.files }));
}

self.addEventListener("install", (event) => {
  // The very first install has nothing to wait for; an update waits for the user's reload.
  event.waitUntil(install().then(() => (self.registration.active ? undefined : self.skipWaiting())));
});

self.addEventListener("message", (event) => {
  if (event.data && event.data.type === "SKIP_WAITING") self.skipWaiting();
  if (event.data && event.data.type === "VERSION" && event.ports[0]) event.ports[0].postMessage(LIST.version);
});

/** Pages still running an older version: client id -> that version's cache name. */
let oldClients = null;

async function loadOldClients() {
  if (oldClients) return oldClients;
  oldClients = new Map();
  const res = await (await caches.open(CACHE)).match(STATE_URL);
  const state = res ? await res.json() : {};
  for (const [id, cache] of Object.entries(state.oldClients || {})) oldClients.set(id, cache);
  return oldClients;
}

async function saveOldClients() {
  const cache = await caches.open(CACHE);
  await cache.put(STATE_URL, Response.json({ version: LIST.version, files: LIST.files,
    oldClients: Object.fromEntries(oldClients) }));
}

/** Delete caches of versions no open page uses any more. */
async function dropUnused() {
  const map = await loadOldClients();
  for (const id of [...map.keys()]) if (!(await self.clients.get(id))) map.delete(id);
  const inUse = new Set([CACHE, ...map.values()]);
  for (const name of await caches.keys()) {
    if (name.startsWith("clinvec-") && !name.startsWith("clinvec-python-") && !inUse.has(name)) await caches.delete(name);
  }
  await saveOldClients();
}

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    const previous = (await caches.keys()).filter((n) => n.startsWith(PREFIX) && n !== CACHE).pop();
    oldClients = new Map();
    if (previous) {
      for (const client of await self.clients.matchAll({ includeUncontrolled: true, type: "all" })) {
        oldClients.set(client.id, previous);
      }
    }
    await dropUnused();
    await self.clients.claim(); // control the page that registered us (first install) without a reload
  })());
});

/** A HEAD answer made from a cached GET: same status and headers, no body. */
function headOf(res) {
  return new Response(null, { status: res.status, statusText: res.statusText, headers: res.headers });
}

async function cached(request, url, clientId) {
  const map = await loadOldClients();
  // A navigation makes a new page: always this version (its clientId may name the page it replaces).
  const name = (request.mode !== "navigate" && clientId && map.get(clientId)) || CACHE;
  const cache = await caches.open(name);
  const hit = await cache.match(keyOf(url), { ignoreSearch: true, ignoreMethod: true });
  if (hit || request.mode !== "navigate") return hit;
  return cache.match(urlOf("index.html")); // any navigation in scope is the app page
}

/**
 * A navigation that reloads the only open page while a new version waits: hand over to that version and
 * answer with an empty page that refreshes at once (it is served by the new version once it is active;
 * until then this repeats). Null when this navigation is not such a reload.
 */
async function handOver(request) {
  const waiting = self.registration.waiting;
  if (request.mode !== "navigate" || request.method !== "GET" || !waiting || !self.registration.active) return null;
  const pages = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  if (pages.length !== 1 || keyOf(new URL(pages[0].url)) !== keyOf(new URL(request.url))) return null;
  waiting.postMessage({ type: "SKIP_WAITING" });
  return new Response("<!doctype html><title>clinvec: updating</title>", {
    headers: {
      "Content-Type": "text/html; charset=utf-8",
      Refresh: "0",
      "Cache-Control": "no-store",
      "Cross-Origin-Opener-Policy": "same-origin",
      "Cross-Origin-Embedder-Policy": "require-corp",
    },
  });
}

async function respond(event, url) {
  const switching = await handOver(event.request);
  if (switching) return switching;
  const hit = await cached(event.request, url, event.clientId);
  if (hit) return event.request.method === "HEAD" ? headOf(hit) : hit;
  return fetch(event.request); // not precached: the network's own answer or error
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET" && request.method !== "HEAD") return;
  if (request.headers.has("range")) return; // partial responses are not cacheable
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || !request.url.startsWith(SCOPE)) return;
  const path = url.pathname.slice(new URL(SCOPE).pathname.length);
  if (path === "sw.js" || path === "vendor/precache.js") return;
  event.respondWith(respond(event, url));
  if (request.mode === "navigate" && oldClients && oldClients.size) event.waitUntil(dropUnused());
});
