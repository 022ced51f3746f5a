// "Sync with server": send the notes written here since the last sync, bring back the server's, list what moved.
//
// The worker does the work (pyapp.sync: push, pull, merge by last writer wins per note, deletes win ties) and
// fetches the bundles from the page's own origin (`api/`, CSP connect-src 'self'); a broken download resumes
// where it stopped, and nothing is applied before the whole bundle has arrived and checked out. The page keeps
// the sync position per index and server index in localStorage, shows progress, and lists every overwritten
// version. Text reaches the DOM only through text nodes.

import { h, call } from "./dom.mjs";

const STATE_KEY = "clinvec-sync:";

function progressChannel(onProgress) {
  const name = `clinvec-sync-${crypto.randomUUID()}`;
  const bc = new BroadcastChannel(name);
  bc.onmessage = (event) => onProgress(JSON.parse(event.data));
  return { name, close: () => bc.close() };
}

function mb(bytes) {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function when(ms) {
  return ms ? new Date(ms).toLocaleString() : "unknown time";
}

/** One log line: the note, what was kept and what was overwritten, and the overwritten text (as text). */
function logEntry(entry) {
  const li = h("li", { "data-testid": "sync-log-entry", "data-note-id": entry.note, class: entry.conflict ? "conflict" : "" },
    h("strong", {}, entry.note), ` — ${entry.message}`,
    entry.conflict ? h("span", { class: "tag" }, " conflict") : null);
  if (entry.overwritten_text !== null && entry.overwritten_text !== undefined) {
    li.append(h("details", {},
      h("summary", {}, `Overwritten version (${when(entry.overwritten_time)})`),
      h("blockquote", { "data-testid": "sync-overwritten" }, entry.overwritten_text)));
  }
  return li;
}

/**
 * Mount the panel into `parent`. `app` is the notes app: `api` (worker calls), `guarded(work)` (busy state,
 * controls disabled, errors shown), `refresh()` (lists and stats), `info` (location, read_only).
 */
export function mountSync(parent, app) {
  const params = new URLSearchParams(location.search);
  const nameInput = h("input", { id: "sync-name", type: "text", value: params.get("sync") || "notes",
    "data-testid": "sync-name", autocomplete: "off", spellcheck: "false" });
  const button = h("button", { id: "sync-run", type: "button", "data-testid": "sync" }, "Sync with server");
  const bar = h("progress", { id: "sync-progress", max: "100", hidden: true, "aria-label": "Sync progress",
    "data-testid": "sync-progress" });
  const status = h("p", { id: "sync-status", role: "status", "aria-live": "polite", "data-testid": "sync-status" });
  const log = h("ol", { id: "sync-log", "data-testid": "sync-log", "aria-label": "Sync log" });
  const section = h("section", { id: "sync-panel", "aria-labelledby": "sync-title" },
    h("h2", { id: "sync-title" }, "Sync with server"),
    h("p", { class: "hint" }, "Sends the notes written here since the last sync to the server and brings back " +
      "the server's. When a note changed on both sides the later change wins (a delete wins over an older " +
      "edit); every overwritten version is listed below. Without a connection nothing changes: try again later."),
    h("div", { class: "row" }, h("label", { for: "sync-name" }, "Server index "), nameInput, button),
    bar, status, log);
  parent.append(section);
  if (app.info.read_only) button.disabled = true;

  const stateKey = () => `${STATE_KEY}${app.info.location}:${nameInput.value.trim()}`;
  const show = (msg) => {
    bar.hidden = false;
    if (msg.total > 0) bar.value = Math.round((100 * msg.done) / msg.total);
    else bar.removeAttribute("value");
    if (msg.phase === "push") status.textContent = "Sending this device's changes…";
    else if (msg.phase === "pull") status.textContent = `Receiving: ${mb(msg.done)} of ${mb(msg.total)}`;
    else status.textContent = `Applying: ${msg.done} of ${msg.total} items`;
  };

  button.addEventListener("click", () => app.guarded(async () => {
    const name = nameInput.value.trim();
    const root = document.documentElement;
    root.dataset.sync = "running";
    const ch = progressChannel(show);
    try {
      status.textContent = `Syncing with the server index ${name}…`;
      bar.hidden = false;
      bar.removeAttribute("value");
      const api = new URL("api/", document.baseURI).href;
      const out = await call(app.api.app_sync, JSON.stringify({ api, name, state: localStorage.getItem(stateKey()) || "" }),
        ch.name);
      localStorage.setItem(stateKey(), JSON.stringify(out.state));
      window.clinvecSyncTimings = out.timings; // for tests and bench/sync_bench.py
      bar.value = 100;
      status.textContent = out.message;
      log.replaceChildren(...out.log.map(logEntry));
      if (out.log_total > out.log.length) log.append(h("li", {}, `… and ${out.log_total - out.log.length} more`));
      root.dataset.sync = "done";
      await app.refresh();
    } catch (err) {
      bar.hidden = true;
      status.textContent = err.kind === "ServerUnreachable" || !navigator.onLine
        ? "The server could not be reached: nothing was changed here, your notes are kept. Try again when online."
        : "The sync did not finish: nothing was changed here.";
      root.dataset.sync = "failed";
      throw err;
    } finally {
      ch.close();
    }
  }));
}
