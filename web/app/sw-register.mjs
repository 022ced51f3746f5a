// Registers the offline service worker (web/sw.js) so that a page opened once online boots offline.
//
// It runs beside main.mjs and never blocks start-up. <html data-offline> tells users and tests where it
// stands: "registering", then "ready" once the worker is active (its install precached every asset) and
// controls this page, or "unavailable" / "error". Not registered in automated tests that drive the page
// with ?test (their request routing must reach the network), unless they ask for it with ?test=sw;
// ?test=nosw never registers.

const root = document.documentElement;

function wanted() {
  const test = new URLSearchParams(location.search).get("test");
  return test === null || test === "sw";
}

async function register() {
  if (!("serviceWorker" in navigator) || !isSecureContext) {
    root.dataset.offline = "unavailable";
    return;
  }
  root.dataset.offline = "registering";
  const base = new URL("../", import.meta.url);
  await navigator.serviceWorker.register(new URL("sw.js", base), { scope: base.pathname, updateViaCache: "none" });
  await navigator.serviceWorker.ready;
  if (!navigator.serviceWorker.controller) {
    // clients.claim() in the worker's activate step hands this page over; wait for it.
    await new Promise((resolve) => navigator.serviceWorker.addEventListener("controllerchange", resolve, { once: true }));
  }
  root.dataset.offline = "ready";
}

if (wanted()) {
  register().catch((err) => {
    root.dataset.offline = "error";
    console.warn("clinvec: offline support is off:", err);
  });
}
