// The notes UI: load the model (progress bar), then add / search / delete notes and show stats.
//
// Python runs in the worker (web/app/worker.py); every call here is an async message, so the page never
// freezes. Rendering rule: user text only ever reaches the DOM as text (Element.append of strings,
// textContent), never as HTML, so a note such as `<img src=x onerror=...>` shows literally and runs nothing.

import * as ui from "./ui.mjs";
import { mountBackup } from "./backup.mjs";
import { mountSync } from "./sync.mjs";
import { mountImport } from "./import.mjs";
import { mountFillMask } from "./fillmask.mjs";
import { mountClassify } from "./classify.mjs";
import { mountSuggest } from "./suggest.mjs";
import { watchTabs } from "./tabs.mjs";
import { h, call } from "./dom.mjs";
import { modelChoice, choiceView } from "./models.mjs";

const MB = 1024 * 1024;
const INDEX_RE = /^[A-Za-z0-9._-]{1,64}$/;
const DEMO_KEY = "clinvec.demo-declined:";
const PHASES = {
  manifest: ["Reading the model manifest", 0.02],
  vocab: ["Loading the vocabulary", 0.05],
  download: ["Downloading the model", 0.1],
  verify: ["Verifying the model (sha256)", 0.85],
  session: ["Starting onnxruntime-web", 0.92],
};

const $ = (id) => document.getElementById(id);
const fmt = (x, digits = 3) => (x === null || x === undefined ? "–" : Number(x).toFixed(digits));

/** Page options: the index from the URL; bundle, variant and backend as models.mjs chose them (with why). */
async function options() {
  const params = new URLSearchParams(location.search);
  const index = params.get("index") || "";
  if (index && !INDEX_RE.test(index)) throw new Error("?index= may use letters, digits, '.', '_' and '-' only");
  const root = new URL("../", import.meta.url).href;
  const choice = await modelChoice(root);
  return { model: choice.model, variant: choice.variant, backend: choice.backend, index, root, choice };
}

/** A BroadcastChannel with a fresh name: the worker posts progress there (it cannot call the page). */
function progressChannel(onMessage) {
  const name = `clinvec-progress-${crypto.randomUUID()}`;
  const channel = new BroadcastChannel(name);
  channel.onmessage = (event) => onMessage(JSON.parse(event.data));
  return { name, close: () => channel.close() };
}

function modelProgress(msg) {
  const [label, start] = PHASES[msg.phase] || [msg.phase, undefined];
  if (msg.phase === "download" && msg.total > 0) {
    const frac = msg.done / msg.total;
    ui.progress(`${label}: ${(msg.done / MB).toFixed(1)} / ${(msg.total / MB).toFixed(1)} MB`, 0.1 + 0.74 * frac);
  } else {
    ui.progress(`${label}…`, start);
  }
}

function layout() {
  const modes = [["hybrid", "Hybrid"], ["semantic", "Semantic"], ["keyword", "Keyword"]];
  return [
    h("p", { id: "notice", role: "note", hidden: true }),
    h("p", { id: "model-line" }),
    h("div", { id: "demo-offer", class: "card", hidden: true },
      h("p", { text: "This browser holds no notes yet. Load the 40 bundled demo notes (synthetic, no patient " +
        "data)? They are embedded here, in a worker, which takes a few seconds." }),
      h("div", { class: "row" },
        h("button", { id: "demo-load", type: "button" }, "Load demo notes"),
        h("button", { id: "demo-skip", type: "button", class: "secondary" }, "Start empty")),
      h("progress", { id: "demo-progress", max: "100", hidden: true, "aria-label": "Demo notes progress" }),
      h("p", { id: "demo-status", role: "status" })),
    h("p", { id: "app-error", role: "alert", hidden: true }),
    h("div", { class: "columns" },
      h("section", { id: "search-panel", "aria-labelledby": "search-title" },
        h("h2", { id: "search-title" }, "Search"),
        h("form", { id: "search-form", autocomplete: "off" },
          h("div", { class: "row" },
            h("input", { id: "search-text", type: "search", placeholder: "e.g. shortness of breath after a flight",
              "aria-label": "Search text", required: true, "data-testid": "search" }),
            h("button", { id: "search-go", type: "submit", "data-testid": "search-submit" }, "Search")),
          h("div", { class: "row" },
            h("label", {}, "Mode ",
              h("select", { id: "search-mode", "data-testid": "search-mode" },
                modes.map(([v, t]) => h("option", { value: v }, t)))),
            h("label", {}, "Ward ", h("select", { id: "search-ward" }, h("option", { value: "" }, "All wards"))),
            h("label", { class: "grow" }, "Filter (JSON) ",
              h("input", { id: "search-filter", type: "text", spellcheck: "false",
                placeholder: '{"year": {"$gte": 2021}}' })))),
        h("p", { id: "search-summary", role: "status" }),
        h("ol", { id: "results", class: "notes", "data-testid": "results", "aria-label": "Search results" })),
      h("aside", {},
        h("section", { id: "add-panel", "aria-labelledby": "add-title" },
          h("h2", { id: "add-title" }, "Add a note"),
          h("form", { id: "add-form", autocomplete: "off" },
            h("textarea", { id: "note-text", rows: "4", required: true, "aria-label": "Note text",
              placeholder: "Clinical note text (any length: long notes are split into passages)",
              "data-testid": "note-text" }),
            h("div", { class: "row" },
              h("input", { id: "note-ward", type: "text", placeholder: "Ward", "aria-label": "Ward",
                list: "ward-list" }),
              h("input", { id: "note-year", type: "number", placeholder: "Year", "aria-label": "Year",
                min: "1900", max: "2100" }),
              h("input", { id: "note-author", type: "text", placeholder: "Author", "aria-label": "Author" })),
            h("datalist", { id: "ward-list" }),
            h("button", { id: "note-add", type: "submit", "data-testid": "note-add" }, "Add note")),
          h("progress", { id: "add-progress", max: "100", value: "0", hidden: true, "aria-label": "Embedding progress" }),
          h("p", { id: "add-message", role: "status" })),
        h("section", { id: "recent-panel", "aria-labelledby": "recent-title" },
          h("h2", { id: "recent-title" }, "Newest notes"),
          h("ul", { id: "recent", class: "notes compact" })),
        h("section", { id: "stats-panel", "aria-labelledby": "stats-title" },
          h("h2", { id: "stats-title" }, "Stats"),
          h("dl", { id: "stats" })))),
    noteDialog(),
  ];
}

/** The "Open note" dialog: the whole note as text (byte-exact), the shown passage marked in it. */
function noteDialog() {
  const close = () => $("note-dialog").close();
  return h("dialog", { id: "note-dialog", "aria-labelledby": "note-dialog-title" },
    h("div", { class: "dialog-head" },
      h("h2", { id: "note-dialog-title" }, "Note"),
      h("button", { type: "button", class: "secondary", id: "note-dialog-close", onclick: close }, "Close")),
    h("p", { id: "note-dialog-meta", class: "meta" }),
    h("div", { id: "note-full", class: "note-full", "data-testid": "note-full", tabindex: "0" }));
}

/**
 * Text with marked spans, as text nodes and <mark> elements (never HTML). Offsets come from Python, which
 * counts code points; JS strings count UTF-16 units, so the text is cut as an array of code points.
 */
function marked(text, spans) {
  const points = Array.from(text);
  const out = [];
  let at = 0;
  for (const [start, end] of spans) {
    if (start < at || end <= start) continue;
    if (start > at) out.push(points.slice(at, start).join(""));
    out.push(h("mark", {}, points.slice(start, end).join("")));
    at = end;
  }
  if (at < points.length) out.push(points.slice(at).join(""));
  return out;
}

function metaLine(meta) {
  const parts = [];
  if (meta && meta.ward !== undefined) parts.push(`ward ${meta.ward}`);
  if (meta && meta.year !== undefined) parts.push(String(meta.year));
  if (meta && meta.author !== undefined) parts.push(`by ${meta.author}`);
  if (meta && meta.kind !== undefined) parts.push(String(meta.kind));
  return parts.join(" · ");
}

class NotesApp {
  constructor(api, opts) {
    this.api = api;
    this.opts = opts;
    this.info = null;
    this.busy = 0;
    this.ops = 0; // finished UI operations, exposed as <html data-ops> so tests can wait for one
  }

  async start() {
    // Model loading timeline as the page saw it ([phase, ms since start, done, total]), for tests and benchmarks.
    const started = performance.now();
    const timeline = (window.clinvecModelLoad = []);
    const channel = progressChannel((msg) => {
      timeline.push([msg.phase, Math.round(performance.now() - started), msg.done, msg.total]);
      modelProgress(msg);
    });
    try {
      ui.progress("Loading the model…", 0.01);
      this.info = await call(this.api.app_open, JSON.stringify({ ...this.opts, channel: channel.name }));
    } finally {
      channel.close();
    }
    $("app").replaceChildren(...layout());
    this.wire();
    mountBackup(document.querySelector("#app aside"), this); // backup download and restore (backup.mjs)
    mountImport(document.querySelector("#app aside"), this); // files in: picker, folder, drop (import.mjs)
    mountSync(document.querySelector("#app aside"), this); // "Sync with server": push, pull, log (sync.mjs)
    mountSuggest(this); // the add form's Type field and "Suggest type" (suggest.mjs)
    this.showModel();
    // Side panels and the first listing at once: each mount appends its panel before its first await (order
    // kept), and the worker answers the calls in turn, so only the round trips overlap (warm boot: ~0.1 s).
    await Promise.all([
      mountFillMask(document.querySelector("#app aside"), this), // "Suggest a word" (fillmask.mjs)
      mountClassify(document.querySelector("#app aside"), this), // "Classify" (classify.mjs)
      this.refresh(),
    ]);
    this.stopTabs = await watchTabs(this, this.api); // tab-status; other tabs' commits re-render this one
    if (this.info.items === 0 && !this.info.read_only && !localStorage.getItem(DEMO_KEY + this.info.location)) {
      $("demo-offer").hidden = false;
    }
    document.documentElement.dataset.embedder = this.info.embedder_kind;
    document.documentElement.dataset.index = this.info.location;
  }

  wire() {
    $("search-form").addEventListener("submit", (e) => { e.preventDefault(); this.search(); });
    $("add-form").addEventListener("submit", (e) => { e.preventDefault(); this.add(); });
    $("demo-load").addEventListener("click", () => this.loadDemo());
    $("demo-skip").addEventListener("click", () => {
      localStorage.setItem(DEMO_KEY + this.info.location, "1");
      $("demo-offer").hidden = true;
    });
    for (const id of ["search-mode", "search-ward"]) {
      $(id).addEventListener("change", () => { if ($("search-text").value.trim()) this.search(); });
    }
    if (this.info.read_only) {
      for (const id of ["note-text", "note-ward", "note-year", "note-author", "note-add"]) $(id).disabled = true;
    }
  }

  showModel() {
    const e = this.info.embedder;
    const line = this.info.embedder_kind === "onnx"
      ? `Embedder: ${e.model} (${e.variant}, sha256 ${String(e.sha256).slice(0, 12)}… verified, ` +
        `onnxruntime-web ${(this.info.runtime || {}).backend || "wasm"}, ` +
        `${this.info.threads} thread${this.info.threads === 1 ? "" : "s"})`
      : `Embedder: hashing (no model; ${e.dims} dims, lexical)`;
    $("model-line").textContent = line;
    $("model-line").after(...choiceView(this.opts.choice, this.info)); // model and backend, and why (models.mjs)
    if (this.info.notice) {
      $("notice").textContent = this.info.notice;
      $("notice").hidden = false;
    }
  }

  /** Run `work` with the controls disabled; errors are shown in #app-error (the page stays usable). */
  async guarded(work) {
    this.busy += 1;
    document.documentElement.dataset.busy = "true";
    const controls = document.querySelectorAll("#app button, #app select, #app input, #app textarea");
    const before = new Map([...controls].map((el) => [el, el.disabled]));
    controls.forEach((el) => { el.disabled = true; });
    $("app-error").hidden = true;
    try {
      return await work();
    } catch (err) {
      $("app-error").textContent = String((err && err.message) || err);
      $("app-error").hidden = false;
      return undefined;
    } finally {
      before.forEach((was, el) => { el.disabled = was; });
      this.busy -= 1;
      this.ops += 1;
      document.documentElement.dataset.ops = String(this.ops);
      if (this.busy === 0) delete document.documentElement.dataset.busy;
    }
  }

  async search() {
    const text = $("search-text").value.trim();
    if (!text) return;
    await this.guarded(async () => {
      $("search-summary").textContent = "Searching…";
      const query = {
        text, mode: $("search-mode").value, ward: $("search-ward").value, filter: $("search-filter").value,
        top_k: 10,
      };
      let out;
      try {
        out = await call(this.api.app_search, JSON.stringify(query));
      } catch (err) {
        $("search-summary").textContent = "";
        $("results").replaceChildren();
        throw err;
      }
      this.lastQuery = query;
      $("search-summary").textContent =
        `${out.results.length} note${out.results.length === 1 ? "" : "s"} found (${query.mode}) of ` +
        `${out.note_count} in ${Math.round(out.ms)} ms`;
      $("results").replaceChildren(...out.results.map((r, i) => this.resultItem(r, i + 1, query.mode)));
    });
  }

  resultItem(r, rank, mode) {
    const legs = [];
    if (r.vector_score !== null) legs.push(`semantic ${fmt(r.vector_score)}`);
    if (r.keyword_score !== null) legs.push(`keyword ${fmt(r.keyword_score, 2)}`);
    const scoreName = mode === "hybrid" ? "fused" : mode === "semantic" ? "cosine" : "BM25";
    const [start, end] = r.span;
    const where = r.chunks > 1 ? `passage ${r.chunk + 1} of ${r.chunks} · characters ${start}–${end}` : "";
    const whole = r.highlights.length === 1 && r.highlights[0][0] === 0 &&
      r.highlights[0][1] === Array.from(r.passage).length;
    const passage = h("p", {
      class: ["passage", r.chunk > 0 ? "cut-start" : "", r.chunk < r.chunks - 1 ? "cut-end" : "",
        whole ? "whole" : ""].filter(Boolean).join(" "),
      "data-testid": "passage",
    }, marked(r.passage, r.highlights));
    return h("li", { class: "note", "data-id": r.id, "data-note-id": r.id, "data-testid": "result" },
      h("div", { class: "note-head" },
        h("span", { class: "rank" }, `#${rank}`),
        h("span", { class: "score", title: "final ranking score (the note's best passage)" },
          `${scoreName} ${fmt(r.score, 4)}`),
        h("span", { class: "legs" }, legs.join(" · ")),
        h("span", { class: "meta" }, metaLine(r.metadata)),
        h("button", { type: "button", class: "open secondary", "data-testid": "open-note",
          "aria-label": `Open note ${r.id}`, onclick: () => this.openNote(r.id, r.span) }, "Open note"),
        this.deleteButton(r.id)),
      passage,
      h("p", { class: "note-id" }, where ? `${r.id} · ${where}` : r.id));
  }

  /** Show the whole note in the dialog, its text exactly as stored, the passage `span` marked and in view. */
  async openNote(id, span) {
    await this.guarded(async () => {
      const note = await call(this.api.app_get, id);
      $("note-dialog-title").textContent = `Note ${note.id}`;
      const length = Array.from(note.text).length;
      $("note-dialog-meta").textContent = [metaLine(note.metadata),
        `${length.toLocaleString()} characters`, `${note.chunks} passage${note.chunks === 1 ? "" : "s"}`]
        .filter(Boolean).join(" · ");
      const full = $("note-full");
      full.replaceChildren(...marked(note.text, span && span[1] <= length ? [span] : []));
      $("note-dialog").showModal();
      const mark = full.querySelector("mark");
      if (mark) mark.scrollIntoView({ block: "center" });
    });
  }

  deleteButton(id) {
    if (this.info.read_only) return null;
    return h("button", { type: "button", class: "delete secondary", "aria-label": `Delete note ${id}`,
      onclick: () => this.remove(id) }, "Delete");
  }

  async add() {
    const text = $("note-text").value; // stored exactly as typed; "Open note" shows it byte for byte
    if (!text.trim()) return;
    const bar = $("add-progress");
    // [done, total, ms since start] per progress message, for tests and benchmarks
    const timeline = (window.clinvecAddProgress = []);
    const started = performance.now();
    const channel = progressChannel((msg) => {
      timeline.push([msg.done, msg.total, Math.round(performance.now() - started)]);
      if (msg.total > 0) {
        bar.hidden = false;
        bar.value = Math.round((100 * msg.done) / msg.total);
        $("add-message").textContent = `Embedding passage ${msg.done} of ${msg.total}…`;
      }
    });
    try {
      await this.guarded(async () => {
        $("add-message").textContent = "Splitting into passages and embedding…";
        const note = {
          text, metadata: { ward: $("note-ward").value, year: $("note-year").value, author: $("note-author").value,
            kind: $("note-kind") ? $("note-kind").value : "" },
        };
        let out;
        try {
          out = await call(this.api.app_add, JSON.stringify(note), channel.name);
        } catch (err) {
          $("add-message").textContent = "";
          throw err;
        }
        const passages = out.chunks === 1 ? "" : `, ${out.chunks} passages`;
        $("add-message").textContent = `Saved note ${out.id} (${Math.round(out.ms)} ms${passages}).`;
        $("note-text").value = "";
        $("demo-offer").hidden = true;
        await this.refresh();
      });
    } finally {
      channel.close();
      bar.hidden = true;
    }
  }

  async remove(id) {
    await this.guarded(async () => {
      const out = await call(this.api.app_delete, id);
      for (const li of document.querySelectorAll("#results li, #recent li")) {
        if (li.dataset.id === id) li.remove();
      }
      $("search-summary").textContent = out.deleted ? `Deleted note ${id}.` : `Note ${id} was already gone.`;
      await this.refresh();
    });
  }

  async loadDemo() {
    const bar = $("demo-progress");
    bar.hidden = false;
    bar.value = 0;
    const channel = progressChannel((msg) => {
      if (msg.total > 0) bar.value = Math.round((100 * msg.done) / msg.total);
      $("demo-status").textContent = `Embedding demo notes: ${msg.done} / ${msg.total}`;
    });
    try {
      await this.guarded(async () => {
        const out = await call(this.api.app_load_demo, channel.name);
        bar.value = 100;
        $("demo-status").textContent = `Loaded ${out.loaded} demo notes in ${(out.ms / 1000).toFixed(1)} s.`;
        localStorage.setItem(DEMO_KEY + this.info.location, "1");
        setTimeout(() => { $("demo-offer").hidden = true; }, 1500);
        await this.refresh();
      });
    } finally {
      channel.close();
    }
  }

  async refresh() {
    await Promise.all([this.refreshLists(), this.refreshStats()]);
  }

  async refreshLists() {
    const out = await call(this.api.app_list, JSON.stringify({ limit: 8 }));
    $("recent").replaceChildren(...(out.notes.length ? out.notes.map((n) => h("li", { class: "note", "data-id": n.id },
      h("div", { class: "note-head" }, h("span", { class: "meta" }, metaLine(n.metadata)),
        n.chunks > 1 ? h("span", { class: "meta" }, `${n.chunks} passages`) : null,
        h("button", { type: "button", class: "open secondary", "aria-label": `Open note ${n.id}`,
          onclick: () => this.openNote(n.id, null) }, "Open"),
        this.deleteButton(n.id)),
      h("p", { class: "note-text" }, n.text || ""))) : [h("li", { class: "empty" }, "No notes yet.")]));
    const select = $("search-ward");
    const chosen = select.value;
    select.replaceChildren(h("option", { value: "" }, "All wards"),
      ...out.wards.map((w) => h("option", { value: w }, w)));
    select.value = out.wards.includes(chosen) ? chosen : "";
    $("ward-list").replaceChildren(...out.wards.map((w) => h("option", { value: w })));
  }

  async refreshStats() {
    const s = await call(this.api.app_stats);
    const e = s.embedder;
    const storage = [`IndexedDB ${s.database || ""}`.trim(),
      s.persisted === true ? "persistent" : s.persisted === false ? "not persistent (best-effort)" : "persistence unknown"];
    if (s.usage_bytes !== null && s.usage_bytes !== undefined) {
      storage.push(s.usage_bytes < MB ? `${Math.ceil(s.usage_bytes / 1024)} KB used` : `${(s.usage_bytes / MB).toFixed(1)} MB used`);
    }
    const rows = [
      ["Notes", String(s.note_count), "stat-notes", "note-count"],
      ["Items", String(s.items), "stat-items"],
      ["Vector kernel", s.kernel, "stat-kernel"],
      ["Storage", storage.join(", "), "stat-storage"],
      ["Embedder", e.model === "hashing" ? `hashing (${e.dims} dims)` : `${e.model} (${e.variant})`, "stat-embedder"],
      ["Access", s.read_only ? "read-only (open in another tab)" : "read-write", "stat-access"],
    ];
    $("stats").replaceChildren(...rows.flatMap(([k, v, id, testid]) =>
      [h("dt", {}, k), h("dd", { id, "data-testid": testid }, v)]));
  }
}

/**
 * Mount the UI; resolves once a search can run (main.mjs then sets data-state="ready"). Rejects when the
 * model bundle fails its checks (the page then shows the error state).
 */
export async function mountApp(api, status) {
  const app = new NotesApp(api, await options());
  await app.start();
  window.clinvecApp = { info: app.info, kernel: status.kernel };
  return app;
}
