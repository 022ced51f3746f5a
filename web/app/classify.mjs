// "Classify": label a piece of text with a fine-tuned classifier bundle (`python -m export finetune`).
//
// The work is Python's (pyapp.embed.text_classifier, the same code as `python -m pyapp classify`), in the worker:
// this module only draws. The panel exists only when a classifier bundle is found (`?classifier=models/x/`, or
// models/classifier/ in the build); otherwise it stays hidden. The classifier graph is downloaded and verified on
// first use, with a progress bar. Text reaches the DOM only through text nodes.

import { h, call } from "./dom.mjs";
import { percent, runWithGraphProgress } from "./model_panel.mjs";

const FOLDER_RE = /^models\/[A-Za-z0-9._-]+\/?$/;
const WORDS = {
  prefix: "clinvec-classify",
  download: "Downloading the classifier",
  verify: "Verifying the classifier (sha256)…",
  session: "Starting the classifier…",
  busy: "Classifying…",
};

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
    const parts = { bar: $("classify-progress"), status: $("classify-status"), results: $("classify-results") };
    await runWithGraphProgress(app, parts, WORDS, async (name) => {
      const out = await call(app.api.app_classify, JSON.stringify({ texts: [text] }), name);
      const best = out.predictions[0];
      parts.results.replaceChildren(...results(best, out.labels));
      parts.status.textContent =
        `${String(best.label)} (${percent(best.probability)} sure); ${info.model} (${out.variant}), ` +
        `${Math.round(out.ms)} ms`;
    });
  });
}
