// "Suggest a word": type a sentence with [MASK], see the model's ranked words with their probabilities.
//
// The work is Python's (pyapp.embed.masked_lm, the same code as `python -m pyapp fill-mask`), in the worker:
// this module only draws. The panel exists only when the loaded bundle has a masked-LM graph; otherwise it
// stays hidden (MiniLM, the packaged default, has none; nor has the hashing fallback). The fill-mask graph is
// downloaded and verified on first use, with a progress bar. Text reaches the DOM only through text nodes.

import { h, call } from "./dom.mjs";
import { percent, runWithGraphProgress } from "./model_panel.mjs";

const MASK = "[MASK]";
const WORDS = {
  prefix: "clinvec-fill-mask",
  download: "Downloading the fill-mask model",
  verify: "Verifying the model (sha256)…",
  session: "Starting the fill-mask model…",
  busy: "Thinking…",
};

function panel() {
  return h("section", { id: "fill-mask-panel", "aria-labelledby": "fill-mask-title", "data-testid": "fill-mask",
    hidden: true },
  h("h2", { id: "fill-mask-title" }, "Suggest a word"),
  h("p", { class: "meta" }, `Write ${MASK} where a word is missing; the model ranks the words that fit there.`),
  h("form", { id: "fill-mask-form", autocomplete: "off" },
    h("div", { class: "row" },
      h("input", { id: "fill-mask-text", type: "text", required: true, spellcheck: "false",
        "aria-label": "Sentence with [MASK]", placeholder: `Patient started on ${MASK} for hypertension.`,
        "data-testid": "fill-mask-text" }),
      h("button", { id: "fill-mask-go", type: "submit", "data-testid": "fill-mask-submit" }, "Suggest"))),
  h("progress", { id: "fill-mask-progress", max: "100", hidden: true, "aria-label": "Fill-mask model download",
    "data-testid": "fill-mask-progress" }),
  h("p", { id: "fill-mask-status", role: "status", "data-testid": "fill-mask-status" }),
  h("div", { id: "fill-mask-results", "data-testid": "fill-mask-results" }));
}

/** One ranked list per [MASK]: the word, its probability as text, the exact value in data-probability. */
function results(masks) {
  return masks.map((options, i) => h("div", { class: "fill-mask-mask", "data-testid": "fill-mask-mask" },
    masks.length > 1 ? h("h3", {}, `${MASK} ${i + 1}`) : "",
    h("ol", { class: "fill-mask-options" }, ...options.map((o) => h("li", {
      "data-testid": "fill-mask-option", "data-token": o.token, "data-probability": String(o.probability) },
    h("span", { class: "token" }, o.token), " ", h("span", { class: "meta" }, percent(o.probability)))))));
}

/** Append the panel to `container` and wire it to `app` (NotesApp: its api and guarded()). */
export async function mountFillMask(container, app) {
  const section = panel();
  container.append(section);
  const info = await call(app.api.app_fill_mask_info);
  section.dataset.available = String(Boolean(info.available));
  if (!info.available) return; // hidden: nothing to suggest with (the reason is in info.reason)
  section.hidden = false;
  const $ = (id) => section.querySelector(`#${id}`);
  $("fill-mask-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = $("fill-mask-text").value;
    if (!text.includes(MASK)) {
      $("fill-mask-status").textContent = `Write ${MASK} where a word should be suggested.`;
      $("fill-mask-results").replaceChildren();
      return;
    }
    const parts = { bar: $("fill-mask-progress"), status: $("fill-mask-status"), results: $("fill-mask-results") };
    await runWithGraphProgress(app, parts, WORDS, async (name) => {
      const out = await call(app.api.app_fill_mask, JSON.stringify({ text, top_k: 5 }), name);
      parts.results.replaceChildren(...results(out.masks));
      parts.status.textContent = `${info.model} (${out.variant}), ${Math.round(out.ms)} ms`;
    });
  });
}
