// Live updates: the page hears of changes made elsewhere (another tab, another person, the API, the training
// worker) from /api/events, a Server-Sent Events stream (why SSE: app/api/events.py), and refreshes itself.
//
// One EventSource per tab, open only while the tab is visible: a browser allows about six HTTP/1.1 connections
// per server, and hidden tabs holding one each would starve the visible one. A tab shown again (or brought
// back by Back/Forward) asks for what it missed: the stream starts after the last change it heard, or after
// the feed's position when the page was rendered (the snapclass-change-id meta tag), so a change made while
// the page loaded or while it was hidden is not lost; the server says "all" when that is too long ago.

const GATHER_MS = 150; // changes arriving together (an upload, training progress) make one refresh
const RETRY_MS = 10_000; // the server refused the stream (signed out, a deleted project): try again later

// follow({ project, onChange }): onChange(changes) gets the list of {project_id, topic} gathered since the last
// call; topic "all" means "assume everything changed". It may return a promise: no second call overlaps it.
// Returns { stop } to end following for good (a deleted project).
export function follow({ project = null, onChange }) {
  const base = project ? `/api/events?project=${encodeURIComponent(project)}&` : "/api/events?";
  const rendered = document.querySelector("meta[name=snapclass-change-id]")?.content;
  let lastId = rendered && /^\d+$/.test(rendered) ? Number(rendered) : null;
  let source = null;
  let timer = 0;
  let retry = 0;
  let running = false;
  let stopped = false;
  let pending = [];

  const flush = async () => {
    timer = 0;
    if (running) return; // the refresh under way calls again when it ends
    running = true;
    try {
      while (pending.length && !stopped) {
        const batch = pending;
        pending = [];
        await onChange(batch);
      }
    } catch (err) {
      console.error("live update failed", err);
    } finally {
      running = false;
    }
  };
  const heard = (change) => {
    pending.push(change);
    if (!timer) timer = setTimeout(flush, GATHER_MS);
  };

  const open = () => {
    if (source || stopped || document.visibilityState !== "visible") return;
    source = new EventSource(lastId === null ? base : `${base}after=${lastId}`);
    source.addEventListener("change", (event) => {
      try {
        const change = JSON.parse(event.data);
        lastId = Math.max(lastId ?? 0, change.id);
        heard(change);
      } catch {
        heard({ project_id: project, topic: "all" });
      }
    });
    // A dropped connection reconnects by itself (with Last-Event-ID); a refused one (not 200) is CLOSED.
    source.addEventListener("error", () => {
      if (source && source.readyState === EventSource.CLOSED) {
        close();
        heard({ project_id: project, topic: "all" }); // the refresh says why (signed out, deleted)
        clearTimeout(retry);
        retry = setTimeout(open, RETRY_MS);
      }
    });
  };
  const close = () => {
    source?.close();
    source = null;
  };
  const stop = () => {
    stopped = true;
    clearTimeout(retry);
    close();
  };

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState !== "visible") {
      close();
    } else if (!source) {
      if (lastId === null) heard({ project_id: project, topic: "all" }); // else the stream replays what it missed
      open();
    }
  });
  // Back/Forward may show the page from memory (bfcache) as it was (pages are no-store, so rarely): catch up.
  window.addEventListener("pageshow", (event) => {
    if (!event.persisted) return;
    if (lastId === null) heard({ project_id: project, topic: "all" });
    open();
  });
  window.addEventListener("pagehide", close);
  // A request that found its thing deleted: the view shows it still, so refresh it.
  window.addEventListener("snapclass:gone", () => heard({ project_id: project, topic: "all" }));
  open();
  return { stop };
}
