// Shared by the live pages: state labels, badges, announcements, event streams, relative times.
// The labels and event kinds come from the page (a JSON data block rendered by the server), so
// the words for each state are defined once, in handlers/pages_view.py.

const data = JSON.parse(document.getElementById("live-data")?.textContent || "{}");
const STATES = data.states || {};
const KINDS = data.kinds || [];

/** The label and description of a state (an unknown state reads as itself). */
export function stateView(state) {
  return STATES[state] || { label: state, description: "" };
}

/** A state badge element, like the server renders. */
export function makeBadge(state) {
  const badge = document.createElement("span");
  const dot = document.createElement("span");
  const label = document.createElement("span");
  dot.className = "badge__dot";
  dot.setAttribute("aria-hidden", "true");
  label.className = "badge__label";
  badge.append(dot, label);
  updateBadge(badge, state);
  return badge;
}

/** Show ``state`` on an existing badge. */
export function updateBadge(badge, state) {
  const known = Object.hasOwn(STATES, state) ? state : "unknown";
  const view = stateView(state);
  badge.className = `badge badge--${known}`;
  badge.dataset.state = state;
  badge.title = view.description;
  badge.querySelector(".badge__label").textContent = view.label;
}

/** Say something to screen-reader users through the page's polite live region. */
export function announce(text) {
  const region = document.getElementById("live-status");
  if (region) region.textContent = text;
}

/**
 * Listen to a Server-Sent Events URL; ``onEvent`` gets each event's JSON, ``onStatus`` gets
 * "open", "reconnecting" or "closed". The browser reconnects by itself (with Last-Event-ID).
 */
export function subscribe(url, onEvent, onStatus = () => {}) {
  const source = new EventSource(url);
  const handle = (message) => {
    let event;
    try {
      event = JSON.parse(message.data);
    } catch {
      return;
    }
    onEvent(event);
  };
  for (const kind of KINDS) source.addEventListener(kind, handle);
  source.addEventListener("message", handle);
  source.addEventListener("open", () => onStatus("open"));
  source.addEventListener("error", () =>
    onStatus(source.readyState === EventSource.CLOSED ? "closed" : "reconnecting"),
  );
  return source;
}

/** "just now", "5 min ago", "3 h ago", "2 d ago" (as the server writes them). */
export function age(iso, now = Date.now()) {
  const seconds = Math.floor((now - Date.parse(iso)) / 1000);
  if (!(seconds >= 60)) return "just now";
  for (const [size, unit] of [[86400, "d"], [3600, "h"], [60, "min"]]) {
    if (seconds >= size) return `${Math.floor(seconds / size)} ${unit} ago`;
  }
  return "just now";
}

/** A <time> element showing how long ago ``iso`` was. */
export function makeTime(iso) {
  const time = document.createElement("time");
  time.dateTime = iso;
  time.title = iso;
  time.textContent = age(iso);
  return time;
}

/** Keep every "… ago" on the page current. */
export function keepTimesFresh() {
  setInterval(() => {
    for (const time of document.querySelectorAll("time[datetime]")) {
      time.textContent = age(time.dateTime);
    }
  }, 30000);
}
