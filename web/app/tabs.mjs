// Every tab is a full app: follow the commits other tabs make, and say what this tab can do.
//
// Why on the page's main thread: a writer's store posts on a BroadcastChannel after each commit
// (pyapp/browser/idb_store.py); the worker cannot call into the page, but the page can hear the channel
// itself, ask its worker to apply the new commits (`app_refresh`, cheap when nothing is new) and re-render.
// The tab count comes from the Web Lock each writing tab holds (`navigator.locks.query()`), so a closed or
// crashed tab drops out by itself. Text only ever reaches the DOM through textContent.

import { call } from "./dom.mjs";

const COUNT_EVERY_MS = 2000;

async function writerCount(lockName) {
  if (!lockName || !navigator.locks || !navigator.locks.query) return null;
  const state = await navigator.locks.query();
  return state.held.filter((lock) => lock.name === lockName).length;
}

/**
 * Add the `tab-status` line and keep this tab in step with the others. `app` needs `refresh()` (lists,
 * count, stats) and may have `lastQuery` + `search()` (a shown search is run again). Returns a stop function.
 */
export async function watchTabs(app, api) {
  const status = document.createElement("p");
  status.id = "tab-status";
  status.dataset.testid = "tab-status";
  status.setAttribute("role", "status");
  const anchor = document.getElementById("model-line");
  if (anchor) anchor.after(status);
  else document.getElementById("app").prepend(status);

  const tabs = await call(api.app_tabs);
  const html = document.documentElement;
  const log = (window.clinvecTabSync = []); // [{at, applied, ms}] per refresh, for tests and benchmarks
  let stale = false;

  async function render() {
    if (tabs.read_only) {
      status.textContent = `read-only: ${tabs.notice || "this tab cannot write to the index"}`;
      html.dataset.tabAccess = "read-only";
      return;
    }
    const count = await writerCount(tabs.writer_lock);
    const open = count === null ? "" : ` · ${count} tab${count === 1 ? "" : "s"} open`;
    status.textContent = `read-write${open}${stale ? " · other tabs changed the notes: search again to update" : ""}`;
    html.dataset.tabAccess = "read-write";
  }

  const typing = () => {
    const el = document.activeElement;
    return !!el && (el.tagName === "TEXTAREA" || el.tagName === "INPUT") && el.type !== "file";
  };

  let running = null;
  let again = false;
  async function sync(heard) {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        const out = await call(api.app_refresh);
        if (out.applied > 0) {
          await app.refresh();
          if (app.lastQuery && typeof app.search === "function") {
            // Run the shown search again, unless the user is typing or busy (it would disable the form).
            if (!html.dataset.busy && !typing()) {
              stale = false;
              await app.search();
            } else {
              stale = true;
            }
          }
          log.push({ at: Date.now(), heard, applied: out.applied, items: out.items });
          html.dataset.tabSync = String(log.length);
        }
        await render();
      } while (again);
    })().finally(() => {
      running = null;
    });
    return running;
  }

  let channel = null;
  if (tabs.channel && typeof BroadcastChannel !== "undefined") {
    channel = new BroadcastChannel(tabs.channel);
    channel.onmessage = (event) => {
      let msg = {};
      try {
        msg = JSON.parse(event.data);
      } catch (_) {
        /* not ours: refresh anyway, it is cheap */
      }
      if (msg.writer && msg.writer === tabs.writer_id) return;
      sync(Date.now()).catch((err) => console.error("clinvec: refreshing from other tabs failed", err));
    };
  }
  const timer = setInterval(() => render().catch(() => {}), COUNT_EVERY_MS);
  addEventListener("submit", () => { stale = false; }, true);
  await render();
  return () => {
    clearInterval(timer);
    if (channel) channel.close();
  };
}
