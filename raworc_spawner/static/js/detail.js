// The session page: state, history, panel and log follow the session live, without a reload.
import {
  announce,
  keepTimesFresh,
  makeBadge,
  makeTime,
  stateView,
  subscribe,
  updateBadge,
} from "./live.js";

const panel = document.getElementById("live-panel");
const history = document.getElementById("history");
const log = document.getElementById("log");
const follow = document.getElementById("follow-log");
const dialog = document.getElementById("delete-dialog");
const connection = document.getElementById("connection");
const sessionId = panel.dataset.sessionId;
const ACTIVE = new Set(["init", "ready", "busy"]);
const MAX_LOG_CHARS = 200000;

let source = null;
let deleted = false;
let refreshTimer = null;
let logController = null;

function currentState() {
  return document.getElementById("state-badge")?.dataset.state;
}

// -- history ------------------------------------------------------------------------------

function addHistory(event) {
  history.querySelector(".history__item--empty")?.remove();
  const item = document.createElement("li");
  item.className = "history__item history__item--new";
  item.classList.add(`history__item--${event.kind.replace(/[^a-z-]/g, "")}`);
  const when = document.createElement("span");
  when.className = "history__when";
  when.append(makeTime(event.timestamp || new Date().toISOString()));
  const sameAsState = event.state && [event.state, stateView(event.state).label].includes(event.kind);
  const kindText = [sameAsState ? "" : event.kind, event.reason].filter(Boolean).join(" · ");
  const message = document.createElement("span");
  message.className = "history__message";
  message.textContent = event.message;
  item.append(when);
  if (event.state) item.append(makeBadge(event.state));
  if (kindText) {
    const kind = document.createElement("span");
    kind.className = "history__kind";
    kind.textContent = kindText;
    item.append(kind);
  }
  item.append(message);
  history.prepend(item);
}

// -- the live panel (state, explanation, actions, compute) --------------------------------

function showState(state) {
  const badge = document.getElementById("state-badge");
  if (!badge || badge.dataset.state === state) return;
  updateBadge(badge, state);
  announce(`Session state: ${stateView(state).label}.`);
}

function refreshPanelSoon() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(refreshPanel, 150);
}

async function refreshPanel() {
  if (deleted) return;
  let response;
  try {
    response = await fetch(panel.dataset.panelUrl, { headers: { Accept: "text/html" } });
  } catch {
    return;
  }
  if (response.status === 404) {
    markDeleted();
    return;
  }
  if (!response.ok) return;
  const html = await response.text();
  const fragment = new DOMParser().parseFromString(html, "text/html");
  const focused = panel.contains(document.activeElement) ? document.activeElement.id : "";
  panel.replaceChildren(...fragment.body.childNodes);
  if (focused) document.getElementById(focused)?.focus();
  followIfActive();
}

function markDeleted() {
  if (deleted) return;
  deleted = true;
  source?.close();
  stopFollow();
  const badge = document.getElementById("state-badge");
  if (badge) updateBadge(badge, "deleted");
  panel.querySelector(".status-card__actions")?.replaceChildren();
  document.getElementById("deleted-banner").hidden = false;
  connection.hidden = true;
  announce("This session has been deleted.");
}

function onEvent(event) {
  if (event.session_id !== sessionId) return;
  addHistory(event);
  if (event.kind === "deleted") {
    markDeleted();
    return;
  }
  if (event.state) showState(event.state);
  refreshPanelSoon();
}

let opens = 0;

function onConnection(status) {
  connection.hidden = status !== "reconnecting" || deleted;
  // After a reconnect, events missed meanwhile are replayed, but read the panel afresh anyway.
  if (status === "open" && opens++ > 0) refreshPanelSoon();
}

// -- log tail with follow -----------------------------------------------------------------

function appendLog(text) {
  const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
  log.append(text);
  if (log.textContent.length > MAX_LOG_CHARS) {
    log.textContent = log.textContent.slice(-MAX_LOG_CHARS / 2);
  }
  if (atEnd) log.scrollTop = log.scrollHeight;
}

async function startFollow() {
  if (logController || deleted) return;
  const controller = new AbortController();
  logController = controller;
  log.setAttribute("aria-busy", "true");
  try {
    const response = await fetch(log.dataset.logUrl, {
      signal: controller.signal,
    });
    if (!response.ok || !response.body) return;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let first = true;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (first) log.textContent = "";
      first = false;
      appendLog(value);
    }
  } catch (error) {
    if (error.name !== "AbortError") appendLog("\n(The log stream was interrupted.)\n");
  } finally {
    if (logController === controller) logController = null;
    log.removeAttribute("aria-busy");
  }
}

function stopFollow() {
  logController?.abort();
  logController = null;
}

function followIfActive() {
  if (follow.checked && ACTIVE.has(currentState())) startFollow();
}

follow.addEventListener("change", () => (follow.checked ? followIfActive() : stopFollow()));

// -- delete confirmation ------------------------------------------------------------------

panel.addEventListener("click", (event) => {
  const link = event.target.closest("#action-delete");
  if (!link || !dialog?.showModal) return;
  event.preventDefault();
  dialog.showModal();
});
dialog?.querySelector("[data-close]")?.addEventListener("click", () => dialog.close());

// -- start --------------------------------------------------------------------------------

const after = encodeURIComponent(history.dataset.after || "0");
source = subscribe(
  `/api/v0/sessions/${encodeURIComponent(sessionId)}/events?after=${after}`,
  onEvent,
  onConnection,
);
followIfActive();
keepTimesFresh();
