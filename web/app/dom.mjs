// The page modules' two shared helpers: building DOM from strings as text only, and calling the Python worker.
//
// Rendering rule: user text only ever reaches the DOM as text nodes (Element.append of strings, textContent),
// never as HTML, so a note such as `<img src=x onerror=...>` shows literally and runs nothing.

/** Build an element; string children become text nodes (never parsed as HTML); `on*` attributes add listeners. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") el.textContent = String(value);
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  el.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false).map(
    (c) => (c instanceof Node ? c : String(c))));
  return el;
}

/** A worker call that returns JSON; a Python-side error becomes a thrown Error with its message, its kind (the
 * ClinvecError class) and, for a file that could not be read, its file and line. */
export async function call(fn, ...args) {
  const out = JSON.parse(await fn(...args));
  if (out && out.error) {
    const err = new Error(out.error);
    Object.assign(err, { kind: out.kind, file: out.file, line: out.line });
    throw err;
  }
  return out;
}
