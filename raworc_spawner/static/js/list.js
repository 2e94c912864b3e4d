// The sessions list: state badges follow every session's events live, without a reload.
import { announce, keepTimesFresh, stateView, subscribe, updateBadge } from "./live.js";

const rows = new Map(
  [...document.querySelectorAll("tr[data-session-id]")].map((row) => [row.dataset.sessionId, row]),
);
const newSessions = document.getElementById("new-sessions");

function rowName(row) {
  return row.querySelector(".session-link")?.textContent || "A session";
}

function showState(row, state) {
  const badge = row.querySelector(".badge");
  if (!badge || badge.dataset.state === state) return;
  updateBadge(badge, state);
  announce(`${rowName(row)} is now ${stateView(state).label}.`);
}

function onEvent(event) {
  const row = rows.get(event.session_id);
  if (!row) {
    if (event.kind === "created" && newSessions) newSessions.hidden = false;
    return;
  }
  if (event.kind === "deleted") {
    row.classList.add("row--deleted");
    showState(row, "deleted");
    return;
  }
  if (event.state) showState(row, event.state);
}

// Events that happened between rendering and connecting are not replayed by /api/v0/events,
// so rows still changing are read once when the stream opens.
async function catchUp() {
  for (const [id, row] of rows) {
    const state = row.querySelector(".badge")?.dataset.state;
    if (state !== "init" && state !== "deleting") continue;
    const response = await fetch(`/api/v0/sessions/${encodeURIComponent(id)}`);
    if (response.status === 404) onEvent({ session_id: id, kind: "deleted" });
    else if (response.ok) showState(row, (await response.json()).state);
  }
}

if (document.querySelector("[data-live-list]")) {
  let opened = false;
  subscribe("/api/v0/events", onEvent, (status) => {
    if (status === "open" && !opened) {
      opened = true;
      catchUp();
    }
  });
  keepTimesFresh();
}
