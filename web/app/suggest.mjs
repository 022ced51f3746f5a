// "Type" on the add form, and "Suggest type": a type for the draft note learnt from the types given to others.
//
// The work is Python's (NotesService.suggest_kind -> pyapp/labels/suggest.py: a LabelModel fitted on the notes'
// `kind` values, kept in the worker until the notes change; in the page its objective runs in JS, label_ops.mjs).
// This module only draws: the Type input with a list of the types given so far, the button, and the answer.
// Text reaches the DOM only through text nodes.

import { h, call } from "./dom.mjs";

const percent = (p) => `${Math.round(100 * p)} %`;

/** Add the Type field and the suggestion to `#add-form` (before its submit button) and wire them to `app`. */
export function mountSuggest(app) {
  const form = document.querySelector("#add-form");
  const kind = h("input", { id: "note-kind", type: "text", placeholder: "Type (e.g. discharge summary)",
    "aria-label": "Note type", list: "kind-list", maxlength: "200", "data-testid": "note-kind" });
  const list = h("datalist", { id: "kind-list" });
  const ask = h("button", { id: "suggest-kind", type: "button", "data-testid": "suggest-kind" }, "Suggest type");
  const answer = h("div", { id: "kind-answer", role: "status", class: "meta", "aria-live": "polite" });
  form.insertBefore(h("div", { class: "row" }, kind, ask), form.querySelector("#note-add"));
  form.insertBefore(list, form.querySelector("#note-add"));
  form.insertBefore(answer, form.querySelector("#note-add"));
  kind.disabled = Boolean(app.info && app.info.read_only); // like the other add fields (suggesting only reads)

  const choice = (item, best) => h("button", {
    type: "button", class: best ? "kind-choice best" : "kind-choice",
    "data-testid": best ? "kind-suggestion" : "kind-alternative",
    "data-label": String(item.label), "data-probability": String(item.probability),
    onclick: () => { kind.value = String(item.label); kind.focus(); },
  }, best ? `Suggested type: ${item.label} (${percent(item.probability)} sure)`
    : `${item.label} (${percent(item.probability)})`);

  kind.addEventListener("focus", async () => {
    try {
      const out = await call(app.api.app_kinds);
      list.replaceChildren(...out.kinds.map((k) => h("option", { value: k })));
    } catch { /* the list is a convenience: typing still works */ }
  });

  ask.addEventListener("click", async () => {
    const text = document.querySelector("#note-text").value;
    if (!text.trim()) {
      answer.replaceChildren("Type the note's text first, then ask for a type.");
      return;
    }
    answer.replaceChildren("Learning the types from your notes…");
    await app.guarded(async () => {
      try {
        const out = await call(app.api.app_suggest_kind, JSON.stringify({ text }));
        if (!out.ready) {
          answer.replaceChildren(out.needs);
          return;
        }
        const [best, ...others] = out.alternatives;
        answer.replaceChildren(choice(best, true),
          ...(others.length ? [h("span", {}, " Or: "), ...others.map((o) => choice(o, false))] : []));
        Object.assign(answer.dataset, { refit: String(out.refit), backend: out.backend });
      } catch (err) {
        answer.replaceChildren(String((err && err.message) || err));
      }
    });
  });
}
