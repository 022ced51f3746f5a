// "Classify": label a piece of text with a fine-tuned classifier bundle (`python -m export finetune`).
//
// The work is Python's (pyapp.embed.text_classifier, the same code as `python -m pyapp classify`), in the worker:
// this module only draws. The panel exists only when a classifier bundle is found (`?classifier=models/x/`, or
// models/classifier/ in the build); otherwise it stays hidden. The classifier graph is downloaded and verified on
// first use, with a progress bar. Text reaches the DOM only through text nodes.

import { h, call } from "./dom.mjs";

const FOLDER_RE = /^models\/[A-Za-z0-9._-]+\/?$/;
const percent = (p) => (p >= 0.001 ? `${(100 * p).toFixed(1)} %` : "< 0.1 %");

function panel() {
  return h("section", { id: "classify-panel", "aria-labelledby": "classify-title", "data-testid": "classify",
    hidden: true },
  h("h2", { id: "classify-title" }, "Classify"),
  h("p", { id: "classify-about", class: "meta" }),
  h("form", { id: "classify-form", autocomplete: "off" },
    h("textarea", { id: "classify-text", rows: "3", required: true, spellcheck: "false",
      "aria-label": "Text to classify", placeholder: "Paste a note or a sentence", "data-testid": "classify-text" }),
    h("button", { id: "classify-go", type: "submit", "data-testid": "classify-submit" }, "Classify")),
  h("progress", { id: "classify-progress", max: "100", hidden: true, "aria-label": "Classifier download",
    "data-testid": "classify-progress" }),
  h("p", { id: "classify-status", role: "status", "data-testid": "classify-status" }),
  h("ol", { id: "classify-results", class: "classify-options", "data-testid": "classify-results" }));
}

/** The labels best first; the exact value in data-probability, the top one marked. */
function results(prediction, labels) {
  const order = labels.map((label, i) => [label, prediction.probabilities[i]]).sort((a, b) => b[1] - a[1]);
  return order.slice(0, 5).map(([label, p], i) => h("li", {
    "data-testid": "classify-option", "data-label": String(label), "data-probability": String(p),
    class: i === 0 ? "best" : undefined },
  h("span", { class: "token" }, String(label)), " ", h("span", { class: "meta" }, percent(p))));
}

/** Append the panel to `container` and wire it to `app` (NotesApp: its api, opts and guarded()). */
export async function mountClassify(container, app) {
  const section = panel();
  container.append(section);
  const folder = new URLSearchParams(location.search).get("classifier") || "";
  if (folder && !FOLDER_RE.test(folder)) {
    section.dataset.available = "false"; // the worker would refuse it too; nothing to classify with
    return;
  }
  const info = await call(app.api.app_classify_info, JSON.stringify({ root: app.opts.root, classifier: folder }));
  section.dataset.available = String(Boolean(info.available));
  if (!info.available) return; // hidden (the reason is in info.reason)
  section.hidden = false;
  const $ = (id) => section.querySelector(`#${id}`);
  $("classify-about").textContent =
    `${info.model}: one of ${info.labels.length} labels (${info.labels.slice(0, 4).join(", ")}` +
    `${info.labels.length > 4 ? ", …" : ""}).`;
  $("classify-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = $("classify-text").value;
    if (!text.trim()) return;
    const bar = $("classify-progress");
    const name = `clinvec-classify-${crypto.randomUUID()}`;
    const channel = new BroadcastChannel(name);
    channel.onmessage = (e) => {
      const msg = JSON.parse(e.data);
      if (msg.phase === "download" && msg.total > 0) {
        bar.hidden = false;
        bar.value = Math.round((100 * msg.done) / msg.total);
        $("classify-status").textContent =
          `Downloading the classifier: ${(msg.done / 1048576).toFixed(1)} / ${(msg.total / 1048576).toFixed(1)} MB`;
      } else if (msg.phase === "verify" || msg.phase === "session") {
        $("classify-status").textContent = msg.phase === "verify" ? "Verifying the classifier (sha256)…"
          : "Starting the classifier…";
      }
    };
    try {
      await app.guarded(async () => {
        $("classify-status").textContent = "Classifying…";
        try {
          const out = await call(app.api.app_classify, JSON.stringify({ texts: [text] }), name);
          const best = out.predictions[0];
          $("classify-results").replaceChildren(...results(best, out.labels));
          $("classify-status").textContent =
            `${String(best.label)} (${percent(best.probability)} sure); ${info.model} (${out.variant}), ` +
            `${Math.round(out.ms)} ms`;
        } catch (err) {
          $("classify-results").replaceChildren();
          $("classify-status").textContent = String((err && err.message) || err);
        }
      });
    } finally {
      channel.close();
      bar.hidden = true;
    }
  });
}
