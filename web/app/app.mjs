// The note/search UI. Placeholder until the search UI lands: it only says how many indexes exist.
// Keep all rendering here, and only via textContent.

export function mountApp(api, status) {
  const root = document.getElementById("app");
  const p = document.createElement("p");
  p.textContent = `Python ready with the ${status.kernel} kernel.`;
  root.replaceChildren(p);
}
