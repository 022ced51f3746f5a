// What the model panels ("Classify", "Suggest a word") share: the probability as text, and one run of a model
// call that shows its graph's first-use download, sha256 check and session start, then the answer or the error.
//
// Why one home: both panels drew the same progress from the same worker messages (phase, done, total on a
// BroadcastChannel named per call) and cleaned up the same way; this keeps the two from drifting apart.
// Text reaches the DOM only through textContent.

/** A probability as the panels print it ("12.3 %", or "< 0.1 %"). */
export const percent = (p) => (p >= 0.001 ? `${(100 * p).toFixed(1)} %` : "< 0.1 %");

/**
 * Run `work(channelName)` inside `app.guarded` (the page is busy meanwhile). The worker reports the graph's
 * progress on the BroadcastChannel `channelName`: the download fills `bar`, the phases are said in `status`.
 * An error clears `results` and is shown in `status`; the channel is closed and the bar hidden afterwards.
 * `words`: { prefix (of the channel name), download, verify, session, busy } (what `status` says when).
 */
export async function runWithGraphProgress(app, { bar, status, results }, words, work) {
  const name = `${words.prefix}-${crypto.randomUUID()}`;
  const channel = new BroadcastChannel(name);
  channel.onmessage = (e) => {
    const msg = JSON.parse(e.data);
    if (msg.phase === "download" && msg.total > 0) {
      bar.hidden = false;
      bar.value = Math.round((100 * msg.done) / msg.total);
      status.textContent =
        `${words.download}: ${(msg.done / 1048576).toFixed(1)} / ${(msg.total / 1048576).toFixed(1)} MB`;
    } else if (msg.phase === "verify" || msg.phase === "session") {
      status.textContent = msg.phase === "verify" ? words.verify : words.session;
    }
  };
  try {
    await app.guarded(async () => {
      status.textContent = words.busy;
      try {
        await work(name);
      } catch (err) {
        results.replaceChildren();
        status.textContent = String((err && err.message) || err);
      }
    });
  } finally {
    channel.close();
    bar.hidden = true;
  }
}
