// Page UI helpers. Every user-visible string goes through textContent, never innerHTML, so note
// text such as `<img src=x onerror=...>` renders as text and runs nothing.

const $ = (id) => document.getElementById(id);

/** Set the page state ("loading" | "ready" | "error") that tests and users read, plus the status line. */
export function setState(state, message) {
  document.documentElement.dataset.state = state;
  if (message !== undefined) $("status").textContent = message;
}

/** Show start-up progress (the Python worker's steps, the model download) while loading. */
export function progress(detail, fraction) {
  if (document.documentElement.dataset.state === "error") return; // a late step must not hide the failure
  $("status").textContent = String(detail);
  const bar = $("progress");
  if (fraction === undefined) bar.removeAttribute("value");
  else bar.value = Math.round(fraction * 100);
}

/** Show a failure visibly: the state becomes "error" and the message is rendered as text. */
export function showError(message) {
  const box = $("error");
  box.textContent = String(message);
  box.hidden = false;
  setState("error", "Could not start");
}

/** Fill the runtime facts list (kernel, storage persistence, Python, isolation). */
export function showFacts(facts) {
  for (const [key, value] of Object.entries(facts)) {
    const el = $(`fact-${key}`);
    if (el) el.textContent = String(value);
  }
}
