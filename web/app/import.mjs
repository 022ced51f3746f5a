// Files in: pick files or a folder, or drop them anywhere on the page; each file becomes notes in one commit.
//
// The page drives the loop one file at a time: read it (File.arrayBuffer; a PDF's text is extracted here, page
// by page, by the vendored pdfjs, whose own worker does the parsing), hand it to the Python worker once
// (`app_import_stage`), ask for a CSV's column mapping, then `app_import_commit` writes it in one commit. So a
// bad file or line costs that file only (listed by name and line), Cancel stops after the current file, and the
// page never runs the heavy work on its own thread. The rules live in pyapp/notes_import.py.
// Text reaches the DOM only through textContent / text nodes.

import { h, call } from "./dom.mjs";

const SUFFIXES = [".txt", ".md", ".markdown", ".pdf", ".jsonl", ".csv"]; // = pyapp.files.SUFFIXES (tested)
const MAX_BYTES = 256 * 1024 * 1024; // = pyapp.notes_import.MAX_FILE_BYTES
const TICK_MS = 250;
const CELL_CHARS = 80;

const suffix = (name) => {
  const dot = name.lastIndexOf(".");
  return dot < 0 ? "" : name.slice(dot).toLowerCase();
};
const readable = (name) => SUFFIXES.includes(suffix(name));
/** Skipped inside folders, as `python -m pyapp ingest` skips them: dot files, editor backups, partial downloads. */
const hidden = (part) => /^[.~]/.test(part) || /(~|\.tmp|\.part|\.swp|\.crdownload)$/.test(part);
/** A file's name inside a picked or dropped folder, relative to that folder (ingest names files the same way). */
const insideFolder = (path) => path.replace(/^\/+/, "").split("/").slice(1).join("/");
const seconds = (ms) => (ms < 60_000 ? `${Math.max(1, Math.round(ms / 1000))} s` :
  `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`);
const plural = (n, word) => `${n.toLocaleString()} ${word}${n === 1 ? "" : "s"}`;

// ---------------------------------------------------------------------- PDF text (vendored pdfjs, no CDN)
let pdfjs = null;

async function loadPdfjs() {
  if (!pdfjs) {
    pdfjs = (async () => {
      const base = new URL("../", import.meta.url);
      const res = await fetch(new URL("vendor/build.json", base));
      const build = res.ok ? await res.json() : {};
      if (!build.paths || !build.paths.pdfjs) {
        throw new Error("PDF import needs the vendored pdfjs: run `python serve.py --build`");
      }
      const dir = new URL(build.paths.pdfjs, base);
      const lib = await import(new URL("pdf.min.mjs", dir).href);
      lib.GlobalWorkerOptions.workerSrc = new URL("pdf.worker.min.mjs", dir).href;
      return { lib, dir };
    })();
    pdfjs.catch(() => { pdfjs = null; }); // a failed load may be retried by the next PDF
  }
  return pdfjs;
}

/** Each page's text (pdfjs's text items, a line break where pdfjs sees one); `onPage(done, total)`. */
async function pdfPages(buffer, onPage) {
  const { lib, dir } = await loadPdfjs();
  const task = lib.getDocument({
    data: new Uint8Array(buffer),
    isEvalSupported: false, // the page's CSP has no 'unsafe-eval'
    cMapUrl: new URL("cmaps/", dir).href,
    cMapPacked: true,
    standardFontDataUrl: new URL("standard_fonts/", dir).href,
    useSystemFonts: false,
    disableFontFace: true,
    enableXfa: false,
  });
  let doc;
  try {
    doc = await task.promise;
  } catch (err) {
    await task.destroy();
    if (err && err.name === "PasswordException") throw new Error("the PDF is encrypted with a password");
    throw new Error(`not a readable PDF (${(err && err.message) || err})`);
  }
  try {
    const pages = [];
    for (let n = 1; n <= doc.numPages; n += 1) {
      const page = await doc.getPage(n);
      const content = await page.getTextContent();
      pages.push(content.items.map((it) => (typeof it.str === "string" ? it.str + (it.hasEOL ? "\n" : "") : ""))
        .join(""));
      page.cleanup();
      onPage(n, doc.numPages);
    }
    return pages;
  } finally {
    await task.destroy(); // ends the document and its pdfjs worker
  }
}

// ---------------------------------------------------------------------- what was picked or dropped
/** Walk a dropped folder (FileSystemDirectoryEntry) into [{file, path}]; readEntries answers in pages. */
async function walk(entry, out) {
  if (entry.isFile) {
    const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
    out.push({ file, path: entry.fullPath });
    return;
  }
  const reader = entry.createReader();
  for (;;) {
    const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
    if (!batch.length) break;
    for (const child of batch) await walk(child, out);
  }
}

/**
 * The files to import, each with its note name, plus what was left out. Files picked or dropped one by one
 * keep their name (a type clinvec does not read is an error); files inside a folder are named relative to it,
 * sorted, and other types and hidden files are skipped (counted).
 */
function plan(loose, inFolders) {
  const files = [];
  const errors = [];
  let skipped = 0;
  for (const file of loose) {
    if (readable(file.name)) files.push({ file, name: file.name });
    else errors.push({ name: file.name, message: `not a file clinvec reads (expected one of ${SUFFIXES.join(", ")})` });
  }
  const sorted = inFolders.map(({ file, path }) => ({ file, name: insideFolder(path) }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const item of sorted) {
    if (!item.name || item.name.split("/").some(hidden) || !readable(item.name)) skipped += 1;
    else files.push(item);
  }
  const seen = new Set();
  const unique = [];
  for (const item of files) {
    if (seen.has(item.name)) errors.push({ name: item.name, message: "another file in this import has the same name" });
    else unique.push(item);
    seen.add(item.name);
  }
  return { files: unique, errors, skipped };
}

// ---------------------------------------------------------------------- the panel
/**
 * Mount the import panel after `#add-panel` in `parent` (else at its end), and make the whole page a drop
 * target. `app` is the notes app: `api` (worker calls), `guarded(work)` (busy state, controls disabled, errors
 * shown), `refresh()` (note count, newest notes, ward list), `info.read_only`.
 */
export function mountImport(parent, app) {
  const html = document.documentElement;
  const accept = SUFFIXES.join(",");
  const fileInput = h("input", { id: "import-file", type: "file", multiple: true, accept,
    "data-testid": "import-file" });
  const folderInput = h("input", { id: "import-folder", type: "file", webkitdirectory: true,
    "data-testid": "import-folder" });
  const bar = h("progress", { id: "import-progress", max: "1000", value: "0", "aria-label": "Import progress",
    "data-testid": "import-progress" });
  const status = h("p", { id: "import-status", role: "status", "aria-live": "polite", "data-testid": "import-status" });
  const cancel = h("button", { id: "import-cancel", type: "button", class: "secondary", "data-testid": "import-cancel" },
    "Cancel");
  const running = h("div", { id: "import-run", hidden: true }, bar, h("div", { class: "row" }, status, cancel));
  const mapping = h("div", { id: "csv-mapping", class: "card", hidden: true, "data-testid": "csv-mapping" });
  const summary = h("p", { id: "import-summary", role: "status", "data-testid": "import-summary" });
  const errors = h("ul", { id: "import-errors", "aria-label": "Files not imported", "data-testid": "import-errors",
    hidden: true });
  const section = h("section", { id: "import-panel", "aria-labelledby": "import-title" },
    h("h2", { id: "import-title" }, "Import files"),
    h("p", { class: "hint" }, "Text, Markdown and PDF: one note per file, named by the file. JSONL and CSV: " +
      "one note per record (a CSV's columns are shown to you first). Drop files or a folder anywhere on the " +
      "page. Each file goes in whole or not at all."),
    h("div", { class: "import-pick" },
      h("label", { for: "import-file" }, "Files "), fileInput,
      h("label", { for: "import-folder" }, "Folder "), folderInput),
    running, mapping, summary, errors);
  const anchor = parent.querySelector("#add-panel");
  if (anchor) anchor.after(section);
  else parent.append(section);

  let cancelled = false;
  let answerMapping = null; // resolves the CSV prompt shown, if any
  cancel.addEventListener("click", () => {
    cancelled = true;
    cancel.disabled = true;
    status.textContent = `${status.textContent} · cancelling after this file…`;
    if (answerMapping) answerMapping(null);
  });

  /** Show a CSV's columns and first rows; resolves with the mapping the user confirms, or null (skip). */
  function askMapping(preview) {
    const columns = preview.columns;
    const suggested = preview.mapping;
    const select = (id, label, chosen, none) => h("label", {}, label,
      h("select", { id, "data-testid": id },
        h("option", { value: "" }, none),
        columns.filter(Boolean).map((c) => h("option", { value: c, selected: c === chosen }, c))));
    const cell = (v) => h("td", {}, v.length > CELL_CHARS ? `${v.slice(0, CELL_CHARS)}…` : v);
    const confirm = h("button", { type: "button", "data-testid": "csv-confirm" }, "Import this file");
    const skip = h("button", { type: "button", class: "secondary", "data-testid": "csv-skip" }, "Skip this file");
    mapping.replaceChildren(
      h("p", {}, h("strong", {}, preview.name), `: ${plural(columns.length, "column")}. Choose which column holds ` +
        "each note's text and id; ticked columns become metadata fields (ward, year, …)."),
      h("div", { class: "csv-table" }, h("table", { "aria-label": `First rows of ${preview.name}` },
        h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c || "(unnamed)")))),
        h("tbody", {}, preview.rows.map((row) => h("tr", {}, row.map(cell)))))),
      preview.more ? h("p", { class: "hint" }, "More rows follow.") : null,
      h("div", { class: "row" },
        select("csv-text", "Text ", suggested.text, "(none)"),
        select("csv-id", "Id ", suggested.id, "(none: file name and line)"),
        select("csv-vector", "Vector ", suggested.vector, "(none: embed the text)"),
        select("csv-metadata", "Metadata JSON ", suggested.metadata, "(none)")),
      h("fieldset", { class: "row" }, h("legend", {}, "Metadata fields"),
        columns.filter(Boolean).map((c) => h("label", {},
          h("input", { type: "checkbox", value: c, checked: suggested.fields.includes(c), "data-testid": "csv-field" }),
          c))),
      h("div", { class: "row" }, confirm, skip));
    mapping.hidden = false;
    return new Promise((resolve) => {
      answerMapping = (answer) => {
        answerMapping = null;
        mapping.hidden = true;
        mapping.replaceChildren();
        resolve(answer);
      };
      skip.addEventListener("click", () => answerMapping(null));
      confirm.addEventListener("click", () => {
        const pick = (id) => mapping.querySelector(`#${id}`).value || null;
        const chosen = { id: pick("csv-id"), text: pick("csv-text"), vector: pick("csv-vector"),
          metadata: pick("csv-metadata") };
        const taken = new Set(Object.values(chosen).filter(Boolean));
        const fields = [...mapping.querySelectorAll('input[type="checkbox"]:checked')].map((el) => el.value)
          .filter((c) => !taken.has(c));
        answerMapping({ ...chosen, fields });
      });
      confirm.focus();
    });
  }

  function fail(name, err) {
    const line = err && err.line ? Number(err.line) : null;
    let message = String((err && err.message) || err);
    // Python's messages already start with "name line N: "; say it once.
    for (const prefix of [`${name} line ${line}: `, `${name}: `]) {
      if (message.startsWith(prefix)) message = message.slice(prefix.length);
    }
    errors.append(h("li", { "data-file": name, "data-line": line ?? undefined },
      h("strong", {}, line ? `${name} line ${line}` : name), `: ${message}`));
    errors.hidden = false;
  }

  /** Import `work.files` one by one (see the module comment); the page stays live throughout. */
  async function run(work) {
    cancelled = false;
    errors.replaceChildren();
    errors.hidden = true;
    for (const e of work.errors) fail(e.name, { message: e.message });
    const totalBytes = work.files.reduce((sum, f) => sum + f.file.size, 0) || 1;
    const stats = { files: 0, notes: 0, embedded: 0, unchanged: 0, failed: work.errors.length, skipped: 0 };
    let bytesDone = 0;
    let current = { index: 0, name: "", fraction: 0, notes: 0, phase: "" };
    let activeMs = 0; // time spent importing, not waiting for a CSV mapping
    let since = performance.now();
    const elapsed = () => activeMs + (since === null ? 0 : performance.now() - since);
    const pause = () => { activeMs = elapsed(); since = null; };
    const resume = () => { since = performance.now(); };

    const draw = () => {
      const done = bytesDone + current.fraction * (work.files[current.index]?.file.size || 0);
      bar.value = Math.round((1000 * done) / totalBytes);
      const ms = elapsed();
      const notes = stats.notes + current.notes;
      const rate = ms > 0 ? (1000 * notes) / ms : 0;
      const parts = [`File ${Math.min(current.index + 1, work.files.length)} of ${work.files.length}: ${current.name}`,
        current.phase, `${plural(Math.floor(notes), "note")} imported`];
      if (ms > 1000) parts.push(`${rate.toFixed(1)} notes/s`);
      if (ms > 1000 && since !== null && done > 0 && done < totalBytes) {
        parts.push(`about ${seconds((ms * (totalBytes - done)) / done)} left`);
      }
      status.textContent = parts.filter(Boolean).join(" · ") + (cancelled ? " · cancelling after this file…" : "");
    };
    const channelName = `clinvec-import-${crypto.randomUUID()}`;
    const channel = new BroadcastChannel(channelName);
    channel.onmessage = (event) => {
      const msg = JSON.parse(event.data);
      if (msg.task !== current.name || !(msg.total > 0)) return;
      current.notes = msg.done / 100;
      current.fraction = 0.1 + (0.9 * msg.done) / msg.total; // reading and staging count for the first tenth
      current.phase = "embedding";
      draw();
    };
    const timer = setInterval(() => { if (since !== null) draw(); }, TICK_MS);
    const log = (window.clinvecImportLog = []); // [{name, ms, notes}] per file, for tests and benchmarks
    html.dataset.importing = "true";
    running.hidden = false;
    cancel.disabled = false;
    summary.textContent = "";
    const started = performance.now();
    try {
      for (let i = 0; i < work.files.length; i += 1) {
        if (cancelled) break;
        const { file, name } = work.files[i];
        current = { index: i, name, fraction: 0, notes: 0, phase: "reading" };
        draw();
        const fileStarted = performance.now();
        let staged = false;
        try {
          if (file.size > MAX_BYTES) {
            throw new Error(`the file is ${file.size.toLocaleString()} bytes; at most ${MAX_BYTES.toLocaleString()} go in one import`);
          }
          const buffer = await file.arrayBuffer();
          if (suffix(name) === ".pdf") {
            const pages = await pdfPages(buffer, (n, total) => {
              current.phase = `reading page ${n} of ${total}`;
              current.fraction = (0.1 * n) / total;
              draw();
            });
            await call(app.api.app_import_stage, null, name, JSON.stringify(pages));
            staged = true;
          } else {
            const info = await call(app.api.app_import_stage, new Uint8Array(buffer), name, "");
            staged = true;
            if (info.preview) {
              pause();
              current.phase = "waiting for the column choice";
              draw();
              const chosen = await askMapping(info.preview);
              resume();
              if (!chosen) {
                await call(app.api.app_import_drop);
                staged = false;
                stats.skipped += 1;
                fail(name, { message: cancelled ? "not imported (cancelled)" : "skipped: its columns were not confirmed" });
                continue;
              }
              current.mapping = chosen;
            }
          }
          current.phase = "writing";
          current.fraction = 0.1;
          draw();
          const out = await call(app.api.app_import_commit, JSON.stringify({ mapping: current.mapping || null }),
            channelName);
          staged = false;
          stats.files += 1;
          stats.notes += out.notes;
          stats.embedded += out.documents;
          stats.unchanged += out.unchanged;
          log.push({ name, ms: Math.round(performance.now() - fileStarted), notes: out.notes });
        } catch (err) {
          stats.failed += 1;
          fail(name, err);
          if (staged) await call(app.api.app_import_drop).catch(() => {});
        } finally {
          current.notes = 0;
          current.fraction = 0;
          bytesDone += file.size;
        }
      }
    } finally {
      clearInterval(timer);
      channel.close();
      pause();
      running.hidden = true;
      delete html.dataset.importing;
    }
    const left = work.files.length - stats.files - (stats.failed - work.errors.length) - stats.skipped;
    const ms = performance.now() - started;
    const rate = activeMs > 0 ? (1000 * stats.notes) / activeMs : 0;
    const parts = [`Imported ${plural(stats.files, "file")} (${plural(stats.notes, "note")}` +
      (stats.unchanged ? `, ${stats.unchanged} unchanged` : "") + `) in ${(ms / 1000).toFixed(1)} s` +
      (stats.notes ? `, ${rate.toFixed(1)} notes/s` : "") + "."];
    if (stats.failed + stats.skipped) parts.push(`${plural(stats.failed + stats.skipped, "file")} not imported (listed below).`);
    if (work.skipped) parts.push(`${plural(work.skipped, "file")} of other types skipped.`);
    if (cancelled && left > 0) parts.push(`Cancelled: ${plural(left, "file")} not started.`);
    summary.textContent = parts.join(" ");
    window.clinvecImport = { ...stats, skippedTypes: work.skipped, cancelled, left, ms: Math.round(ms),
      activeMs: Math.round(activeMs), rate };
    if (stats.files) {
      const offer = document.getElementById("demo-offer");
      if (offer) offer.hidden = true;
      await app.refresh();
    }
  }

  /** Start an import unless one (or another write) runs; everything it shows is in this panel. */
  function start(work) {
    if (app.info.read_only) {
      summary.textContent = "This tab is read-only: import in the tab that writes.";
      return Promise.resolve();
    }
    if (html.dataset.busy) {
      summary.textContent = "Busy: drop or pick the files again when the current work has finished.";
      return Promise.resolve();
    }
    if (!work.files.length && !work.errors.length) {
      summary.textContent = work.skipped ? `No file clinvec reads (${plural(work.skipped, "file")} skipped).` : "";
      return Promise.resolve();
    }
    return app.guarded(async () => {
      cancel.disabled = false; // guarded() disabled every control; Cancel must stay live
      await run(work);
    });
  }

  fileInput.addEventListener("change", () => {
    const picked = [...(fileInput.files || [])];
    fileInput.value = "";
    start(plan(picked, []));
  });
  folderInput.addEventListener("change", () => {
    const picked = [...(folderInput.files || [])].map((file) => ({ file, path: file.webkitRelativePath || file.name }));
    folderInput.value = "";
    start(plan([], picked));
  });

  const carriesFiles = (event) => !!event.dataTransfer && [...(event.dataTransfer.types || [])].includes("Files");
  document.addEventListener("dragover", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
    html.dataset.dropping = "true";
  });
  document.addEventListener("dragleave", (event) => {
    if (!event.relatedTarget) delete html.dataset.dropping;
  });
  document.addEventListener("drop", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    delete html.dataset.dropping;
    // DataTransfer items are readable only during the event: take the entries and files now, walk folders after.
    const loose = [];
    const folders = [];
    for (const item of [...event.dataTransfer.items]) {
      if (item.kind !== "file") continue;
      const entry = typeof item.webkitGetAsEntry === "function" ? item.webkitGetAsEntry() : null;
      if (entry && entry.isDirectory) folders.push(entry);
      else {
        const file = item.getAsFile();
        if (file) loose.push(file);
      }
    }
    (async () => {
      const inFolders = [];
      for (const entry of folders) await walk(entry, inFolders);
      await start(plan(loose, inFolders));
    })().catch((err) => { summary.textContent = `The dropped files could not be read: ${err.message || err}`; });
  });

  if (app.info.read_only) {
    fileInput.disabled = true;
    folderInput.disabled = true;
    summary.textContent = "This tab is read-only: import in the tab that writes.";
  }
}
