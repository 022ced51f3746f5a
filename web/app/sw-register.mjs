// Registers the offline service worker (web/sw.js) and offers new versions without ever mixing them.
//
// It runs beside main.mjs and never blocks start-up. <html data-offline> tells users and tests where it
// stands: "registering", then "ready" once the worker is active (its install precached every asset) and
// controls this page, or "unavailable" / "error". <html data-update> is "installing" while a new version
// downloads beside the running one, "ready" when it waits for the user (the banner "A new version is
// ready" with a Reload button shows), "switched" when another tab switched (this page keeps the files of
// its own version and says a reload is needed). Not registered in automated tests that drive the page with
// ?test (their request routing must reach the network), unless they ask for it with ?test=sw;
// ?test=nosw never registers.

const root = document.documentElement;
const CHECK_MS = 60_000; // how often an open page asks the server whether a new version exists

function wanted() {
  const test = new URLSearchParams(location.search).get("test");
  return test === null || test === "sw";
}

function banner(text, action) {
  const box = document.getElementById("update");
  const button = document.getElementById("update-reload");
  if (!box || !button) return;
  document.getElementById("update-text").textContent = text;
  button.onclick = action;
  box.hidden = false;
}

/** Watch `reg` for a new version: it installs beside this one, then waits for the user's reload. */
function watchUpdates(reg) {
  let reloading = false;
  const offer = (worker) => {
    root.dataset.update = "ready";
    banner("A new version of clinvec is ready. Reload to use it; until then this page keeps working as it is.",
      () => {
        reloading = true;
        worker.postMessage({ type: "SKIP_WAITING" }); // the new worker activates, then controllerchange
      });
  };
  const track = (worker) => {
    if (!worker) return;
    if (worker.state === "installed") {
      if (navigator.serviceWorker.controller) offer(worker);
      return;
    }
    root.dataset.update = "installing";
    worker.addEventListener("statechange", () => {
      if (worker.state === "installed" && navigator.serviceWorker.controller) offer(worker);
      else if (worker.state === "redundant" && root.dataset.update === "installing") root.dataset.update = "failed";
    });
  };
  track(reg.waiting);
  reg.addEventListener("updatefound", () => track(reg.installing));
  const hadController = Boolean(navigator.serviceWorker.controller);
  navigator.serviceWorker.addEventListener("controllerchange", () => {
    if (reloading) {
      location.reload();
    } else if (hadController) {
      root.dataset.update = "switched";
      banner("clinvec was updated in another tab. Reload this tab to use the new version.", () => location.reload());
    }
  });
  const check = () => reg.update().catch(() => { /* offline: try again later */ });
  setInterval(check, CHECK_MS);
  addEventListener("online", check);
}

async function register() {
  if (!("serviceWorker" in navigator) || !isSecureContext) {
    root.dataset.offline = "unavailable";
    return;
  }
  root.dataset.offline = "registering";
  const base = new URL("../", import.meta.url);
  const reg = await navigator.serviceWorker.register(new URL("sw.js", base), { scope: base.pathname, updateViaCache: "none" });
  watchUpdates(reg);
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
