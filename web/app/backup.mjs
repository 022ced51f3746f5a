// Backup and restore panel: one click downloads the whole index as a .clinvec bundle; a file input restores one.
//
// The bundle is written and read by the same Python code as `python -m pyapp export/import` (pyapp.bundle), in the
// worker. The worker posts the finished Blob over a BroadcastChannel (it cannot call into the page), and the page
// saves it through an <a download>. Restore merges: the worker first verifies the whole bundle (sha256) and says
// what will happen; the user confirms before any note is overwritten; then one all-or-nothing commit.
// Text reaches the DOM only through textContent.

import { h, call } from "./dom.mjs";

const BLOB_WAIT_MS = 60_000;

/** A fresh BroadcastChannel: progress arrives as JSON strings, the finished backup as a Blob. */
function channel(onProgress) {
  const name = `clinvec-backup-${crypto.randomUUID()}`;
  const bc = new BroadcastChannel(name);
  let received;
  const blob = new Promise((resolve) => { received = resolve; });
  bc.onmessage = (event) => {
    if (event.data instanceof Blob) received(event.data);
    else onProgress(JSON.parse(event.data));
  };
  return { name, blob, close: () => bc.close() };
}

function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not arrive within ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function sizeText(bytes) {
  return bytes < 1024 * 1024 ? `${Math.ceil(bytes / 1024)} KB` : `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function save(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = h("a", { href: url, download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), BLOB_WAIT_MS);
}

/**
 * Mount the panel into `parent`. `app` is the notes app: `api` (worker calls), `guarded(work)` (busy state,
 * controls disabled, errors shown), `refresh()` (lists and stats), `info.read_only`.
 */
export function mountBackup(parent, app) {
  const status = h("p", { id: "backup-status", role: "status", "aria-live": "polite" });
  const bar = h("progress", { id: "backup-progress", max: "100", hidden: true, "aria-label": "Backup progress",
    "data-testid": "backup-progress" });
  const exportButton = h("button", { id: "backup-export", type: "button", "data-testid": "export" },
    "Download backup");
  const input = h("input", { id: "restore-file", type: "file", accept: ".clinvec,application/gzip",
    "data-testid": "restore-file" });
  const section = h("section", { id: "backup-panel", "aria-labelledby": "backup-title" },
    h("h2", { id: "backup-title" }, "Backup"),
    h("p", { class: "hint" }, "Download every note (text, metadata, vectors, model) as one .clinvec file. " +
      "Restoring a backup merges it into this index: notes with the same id are replaced by the backup's " +
      "version, other notes stay. You are asked before anything is replaced."),
    h("div", { class: "row" }, exportButton),
    h("label", { for: "restore-file" }, "Restore from a backup file "),
    input, bar, status);
  parent.append(section);

  const show = (msg, verb) => {
    bar.hidden = false;
    if (msg.total > 0) bar.value = Math.round((100 * msg.done) / msg.total);
    else bar.removeAttribute("value");
    status.textContent = `${verb}: ${msg.done} / ${msg.total} items`;
  };

  exportButton.addEventListener("click", () => app.guarded(async () => {
    const ch = channel((msg) => show(msg, "Writing the backup"));
    try {
      status.textContent = "Writing the backup…";
      bar.hidden = false;
      bar.removeAttribute("value");
      const info = await call(app.api.app_backup, ch.name);
      const blob = await within(ch.blob, BLOB_WAIT_MS, "The backup file");
      save(blob, info.name);
      bar.value = 100;
      status.textContent = `Saved ${info.name}: ${info.items} items, ${sizeText(info.bytes)}.`;
      document.documentElement.dataset.backup = info.name;
    } catch (err) {
      status.textContent = "";
      throw err;
    } finally {
      ch.close();
    }
  }));

  input.addEventListener("change", () => {
    const file = input.files && input.files[0];
    if (!file) return;
    app.guarded(async () => {
      const ch = channel((msg) => show(msg, "Restoring"));
      try {
        status.textContent = `Checking ${file.name}…`;
        const data = new Uint8Array(await file.arrayBuffer());
        const plan = await call(app.api.app_restore_plan, data);
        if (plan.confirm && !window.confirm(`Restore ${file.name}?\n\n${plan.message}`)) {
          status.textContent = "Restore cancelled; nothing changed.";
          return;
        }
        status.textContent = `Restoring ${file.name}…`;
        const out = await call(app.api.app_restore, data, ch.name);
        bar.value = 100;
        status.textContent = `Restored ${out.restored} items from ${file.name}; the index now holds ${out.items}.`;
        await app.refresh();
      } catch (err) {
        status.textContent = `Nothing was restored from ${file.name}.`;
        throw err;
      } finally {
        ch.close();
        input.value = "";
      }
    });
  });

  if (app.info.read_only) {
    input.disabled = true;
    status.textContent = "This tab is read-only: restoring is possible in the tab that writes.";
  }
}
