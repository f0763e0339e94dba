// Shared by the support inbox and chat: building DOM from data (text only: user text never goes
// through innerHTML), the JSON API, dates in the office's time zone, the live event stream and
// small notices. An ES module, no build step.

// --- DOM ------------------------------------------------------------------------------------

// h("a", {href, class: "x"}, "text", child) -> element. Strings become text nodes, so whatever a
// student typed is shown as text, never parsed as markup. `null`/`false` children are skipped.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") el.className = value;
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export const $ = (selector, root = document) => root.querySelector(selector);

// --- the JSON API ---------------------------------------------------------------------------

// A refusal keeps the server's whole answer in `data`: a 409 on reschedule, for one, carries the
// nearest free times next to its detail.
export class ApiError extends Error {
  constructor(status, message, data = null) {
    super(message);
    this.status = status;
    this.data = data;
  }
}

function describe(detail, status) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail) && detail.length) return detail.map((d) => d.msg).join("; ");
  return `The server answered ${status}.`;
}

// JSON in, JSON out, through counseldesk.fetch (app.js: session cookie and CSRF header).
export async function api(path, { method = "GET", body, keepalive = false } = {}) {
  const options = { method, keepalive, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await window.counseldesk.fetch(path, options);
  } catch {
    throw new ApiError(0, "No connection to the server. Check the network and try again.");
  }
  if (response.status === 401) {
    // The session ended (signed out elsewhere, deactivated): log in and come back here.
    window.location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
    throw new ApiError(401, "Your session ended.");
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, describe(data && data.detail, response.status), data);
  return data;
}

// --- time, in the office's zone ---------------------------------------------------------------

export function officeClock(timeZone) {
  const fmt = (options) => new Intl.DateTimeFormat("en-GB", { timeZone, ...options });
  const keyFormat = fmt({ year: "numeric", month: "2-digit", day: "2-digit" });
  const timeFormat = fmt({ hour: "2-digit", minute: "2-digit" });
  const weekdayFormat = fmt({ weekday: "long" });
  const shortDayFormat = fmt({ day: "numeric", month: "short" });
  const longDayFormat = fmt({ weekday: "long", day: "numeric", month: "long", year: "numeric" });
  const fullFormat = fmt({ dateStyle: "full", timeStyle: "short" });
  const yearFormat = fmt({ year: "numeric" });

  const dayKey = (date) => {
    const parts = Object.fromEntries(keyFormat.formatToParts(date).map((p) => [p.type, p.value]));
    return `${parts.year}-${parts.month}-${parts.day}`;
  };
  const daysAgo = (date) => {
    // Whole calendar days between the two office dates (noon UTC avoids DST edges).
    const toUtc = (key) => Date.parse(key + "T12:00:00Z");
    return Math.round((toUtc(dayKey(new Date())) - toUtc(dayKey(date))) / 86_400_000);
  };

  return {
    dayKey: (iso) => dayKey(new Date(iso)),
    time: (iso) => timeFormat.format(new Date(iso)),
    full: (iso) => fullFormat.format(new Date(iso)),
    // "Today", "Yesterday", "Monday", or "Monday 3 November 2026" for a day separator.
    dayLabel(iso) {
      const date = new Date(iso);
      const ago = daysAgo(date);
      if (ago === 0) return "Today";
      if (ago === 1) return "Yesterday";
      if (ago > 1 && ago < 7) return weekdayFormat.format(date);
      return longDayFormat.format(date);
    },
    // Inbox style: "just now", "12 min", "14:05", "Yesterday", "Monday", "3 Nov", "3 Nov 2025".
    relative(iso) {
      const date = new Date(iso);
      const seconds = (Date.now() - date.getTime()) / 1000;
      if (seconds < 60) return "just now";
      if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
      const ago = daysAgo(date);
      if (ago <= 0) return timeFormat.format(date);
      if (ago === 1) return "Yesterday";
      if (ago < 7) return weekdayFormat.format(date);
      const sameYear = yearFormat.format(date) === yearFormat.format(new Date());
      return sameYear ? shortDayFormat.format(date) : `${shortDayFormat.format(date)} ${yearFormat.format(date)}`;
    },
  };
}

// --- live events ------------------------------------------------------------------------------

const EVENT_TYPES = [
  "ticket.created",
  "ticket.updated",
  "ticket.crisis",
  "message.created",
  "notification.updated",
  "appointment.created",
  "appointment.updated",
];
const STATUS_TEXT = { connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…", offline: "Offline" };

// Follows /api/dashboard/events: onEvent(type, data) for each event, onResync() when events were
// missed beyond the server's memory (reload from the API then), onReady() after each (re)connect.
// The browser reconnects by itself after a network break, sending Last-Event-ID, so nothing is
// missed; when the server refuses (401: signed out) it stops, and we try again ourselves.
export function connectLive({ onEvent, onResync = () => {}, onReady = () => {}, statusElement = null }) {
  let source = null;
  let lastId = null;
  let failures = 0;

  const setStatus = (state) => {
    if (!statusElement) return;
    statusElement.dataset.state = state;
    statusElement.textContent = STATUS_TEXT[state];
  };

  const open = () => {
    const url = "/api/dashboard/events" + (lastId ? "?last_event_id=" + encodeURIComponent(lastId) : "");
    source = new EventSource(url);
    source.addEventListener("ready", (event) => {
      lastId = event.lastEventId || lastId;
      failures = 0;
      setStatus("live");
      onReady();
    });
    source.addEventListener("resync", (event) => {
      lastId = event.lastEventId || lastId;
      onResync();
    });
    for (const type of EVENT_TYPES) {
      source.addEventListener(type, (event) => {
        lastId = event.lastEventId || lastId;
        let data;
        try {
          data = JSON.parse(event.data);
        } catch {
          return;
        }
        onEvent(type, data);
      });
    }
    source.onerror = () => {
      if (source.readyState === EventSource.CONNECTING) {
        setStatus("reconnecting");
        return;
      }
      source.close();
      setStatus("offline");
      failures += 1;
      setTimeout(retry, Math.min(30_000, 1000 * 2 ** failures));
    };
  };

  const retry = async () => {
    const answer = await fetch("/api/auth/me", { credentials: "same-origin" }).catch(() => null);
    if (answer && answer.status === 401) {
      window.location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
      return;
    }
    open();
  };

  setStatus("connecting");
  open();
  window.addEventListener("pagehide", () => source && source.close());
  // Back/forward cache: the page comes back as it was, its stream closed and events missed.
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) window.location.reload();
  });
}

// --- small things -----------------------------------------------------------------------------

// At most this many notices at once: a burst (a tab in the background, whose timers the browser
// slows) must not cover the page. The oldest plain notices go first; alerts stay.
const MAX_TOASTS = 3;

// A notice that goes away by itself; `href` makes it a link (a crisis alert opens the chat).
export function toast(container, text, { level = "info", href = null, timeout = 6000 } = {}) {
  const plain = [...container.querySelectorAll(".toast:not(.toast-error):not(.toast-crisis)")];
  for (const old of plain.slice(0, Math.max(plain.length - (MAX_TOASTS - 1), 0))) old.remove();
  const body = href ? h("a", { href }, text) : text;
  const item = h("div", { class: `toast toast-${level}`, role: level === "error" ? "alert" : "status" }, body);
  const close = h("button", { type: "button", class: "toast-close", "aria-label": "Dismiss" }, "×");
  close.addEventListener("click", () => item.remove());
  item.append(close);
  container.append(item);
  if (timeout) setTimeout(() => item.remove(), timeout);
  return item;
}

export const STATUS_LABELS = {
  open: "Open",
  in_progress: "In progress",
  replied: "Replied",
  resolved: "Resolved",
  closed: "Closed",
};
export const PRIORITY_LABELS = { low: "Low", medium: "Medium", high: "High", urgent: "Urgent" };

export function initial(name) {
  return (name || "?").trim().charAt(0).toUpperCase() || "?";
}
