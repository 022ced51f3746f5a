// The storage panel: is this origin's storage persistent, how much is used of the quota, and what eviction
// means for the user (the notes exist only in this browser, so a backup is their only other copy).
//
// Why here and not in Python: navigator.storage.persist() may only be asked from a window, not a worker.
// Chromium answers without a prompt (it grants persistence to sites the user engages with, installed
// apps, bookmarked ones); other browsers may ask the user. Either way the answer is shown, and the user may
// ask again with the button (e.g. after installing the app). Text only via textContent.

const $ = (id) => document.getElementById(id);
const REFRESH_MS = 10_000;

/** "12.3 MB"-style sizes (powers of 1024, as the browsers' own settings pages show). */
export function formatBytes(bytes) {
  if (!Number.isFinite(bytes) || bytes < 0) return "unknown";
  const units = ["bytes", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} bytes` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

async function persisted() {
  try {
    return navigator.storage && navigator.storage.persisted ? await navigator.storage.persisted() : null;
  } catch (_) {
    return null;
  }
}

/** Ask for persistent storage once per page load; resolves to true, false, or null (not supported). */
async function askPersistence() {
  if (!navigator.storage || !navigator.storage.persist) return null;
  if (await persisted()) return true;
  try {
    return await navigator.storage.persist();
  } catch (_) {
    return false;
  }
}

function showPersistence(granted) {
  const el = $("storage-persisted");
  const button = $("storage-persist");
  if (!el) return;
  el.dataset.persisted = String(granted);
  if (granted === true) {
    el.textContent = "Persistent: the browser will not delete these notes to free space.";
  } else if (granted === false) {
    el.textContent = "Not persistent (best-effort): the browser did not grant persistence, so it may delete " +
      "these notes when space runs low.";
  } else {
    el.textContent = "Unknown: this browser does not say whether it keeps the notes.";
  }
  if (button) button.hidden = granted !== false;
}

/** Usage and quota from navigator.storage.estimate(), shown as text and as a meter. */
export async function refreshUsage() {
  const el = $("storage-usage");
  if (!el) return;
  if (!navigator.storage || !navigator.storage.estimate) {
    el.textContent = "Unknown: this browser does not report it.";
    return;
  }
  try {
    const { usage = 0, quota = 0 } = await navigator.storage.estimate();
    const share = quota > 0 ? usage / quota : 0;
    const percent = share > 0 && share < 0.01 ? "under 1 %" : `${Math.round(share * 100)} %`;
    el.textContent = `${formatBytes(usage)} of ${formatBytes(quota)} available to this site (${percent})`;
    el.dataset.usageBytes = String(usage);
    el.dataset.quotaBytes = String(quota);
    const meter = $("storage-meter");
    meter.value = Math.min(1, share);
    meter.hidden = !(quota > 0);
  } catch (err) {
    el.textContent = `Unknown (${(err && err.message) || err})`;
  }
}

/** Show the browser's current answer (it may change after the first one), also in <html data-persisted>
 * where the runtime facts keep it. Only an actual change is rendered, so a refusal's extra advice stays. */
async function refreshPersistence() {
  const granted = await persisted();
  const el = $("storage-persisted");
  if (granted === null || !el || el.dataset.persisted === undefined || el.dataset.persisted === String(granted)) return;
  showPersistence(granted);
  document.documentElement.dataset.persisted = String(granted);
  const fact = $("fact-storage");
  if (fact) fact.textContent = `IndexedDB, ${granted ? "persistent" : "best-effort (the browser may evict it under pressure)"}`;
}

/** The persistence request, made as the page loads; main.mjs shows its answer among the runtime facts. */
export const persistence = askPersistence();

function mount() {
  persistence.then(showPersistence);
  const button = $("storage-persist");
  if (button) {
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        const granted = await navigator.storage.persist();
        showPersistence(granted);
        if (!granted) {
          $("storage-persisted").textContent += " Installing the app or bookmarking the page can help; " +
            "keep exporting backups either way.";
        }
      } finally {
        button.disabled = false;
      }
    });
  }
  refreshUsage();
  // Usage changes as notes are added or imported, and the browser may grant persistence later (after the app
  // is installed or bookmarked): refresh both now and then, and whenever an app operation ends.
  const refresh = () => {
    refreshUsage();
    refreshPersistence();
  };
  setInterval(() => { if (document.visibilityState === "visible") refresh(); }, REFRESH_MS);
  new MutationObserver(refresh).observe(document.documentElement,
    { attributes: true, attributeFilter: ["data-ops", "data-state"] });
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mount, { once: true });
else mount();
