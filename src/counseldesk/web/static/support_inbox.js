// The support inbox: 20 conversations at a time from the JSON API, filters kept in the address
// (so reload and back keep them), and live updates: a new ticket or message re-reads that one
// ticket and moves it to where it now belongs, without reloading the list.

import {
  $,
  PRIORITY_LABELS,
  STATUS_LABELS,
  api,
  connectLive,
  h,
  initial,
  officeClock,
  toast,
} from "./support_common.js";

const root = $("#support-inbox");
const me = Number(root.dataset.me);
const clock = officeClock(root.dataset.timezone);
const form = $("#inbox-filters");
const list = $("#ticket-list");
const moreButton = $("#load-more");
const summary = $("#inbox-summary");
const emptyNote = $("#ticket-empty");
const errorNote = $("#ticket-error");
const notice = $("#inbox-notice");
const toasts = $("#toasts");

const FILTERS = ["q", "status", "priority", "category_id", "assigned"];
const PAGE_SIZE = 20;

const state = {
  filters: {},
  tickets: new Map(), // id -> ticket (the rows shown, in `list`'s order)
  nextCursor: null,
  hasNext: false,
  total: 0,
  totalIsEstimate: false,
  generation: 0, // answers for an older filter are dropped
};

// --- filters ----------------------------------------------------------------------------------

function readFiltersFromAddress() {
  const params = new URLSearchParams(location.search);
  const filters = {};
  for (const name of FILTERS) filters[name] = params.get(name) || "";
  if (!["all", "mine", "unassigned"].includes(filters.assigned)) filters.assigned = "all";
  return filters;
}

function showFilters(filters) {
  form.elements.q.value = filters.q;
  form.elements.status.value = filters.status;
  form.elements.priority.value = filters.priority;
  form.elements.category_id.value = filters.category_id;
  for (const radio of form.querySelectorAll('input[name="assigned"]')) radio.checked = radio.value === filters.assigned;
}

function filtersFromForm() {
  return {
    q: form.elements.q.value.trim(),
    status: form.elements.status.value,
    priority: form.elements.priority.value,
    category_id: form.elements.category_id.value,
    assigned: form.querySelector('input[name="assigned"]:checked').value,
  };
}

function queryString(filters, extra = {}) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries({ ...filters, ...extra })) {
    if (value && !(name === "assigned" && value === "all")) params.set(name, value);
  }
  return params.toString();
}

function applyFilters() {
  state.filters = filtersFromForm();
  const query = queryString(state.filters);
  history.replaceState(null, "", query ? `?${query}` : location.pathname);
  loadFirstPage();
}

// Does a ticket belong in the list under the current filters? (Search is checked by the server.)
function matches(ticket) {
  const f = state.filters;
  if (f.status && ticket.status !== f.status) return false;
  if (f.priority && ticket.priority !== f.priority) return false;
  if (f.category_id && String(ticket.category ? ticket.category.id : "") !== f.category_id) return false;
  const assignee = ticket.assigned_counselor ? ticket.assigned_counselor.id : null;
  if (f.assigned === "mine" && assignee !== me) return false;
  if (f.assigned === "unassigned" && assignee !== null) return false;
  return true;
}

// --- rows -------------------------------------------------------------------------------------

function badge(text, kind) {
  return h("span", { class: `badge badge-${kind}` }, text);
}

function previewPrefix(ticket) {
  if (ticket.last_sender_type === "counselor") return h("span", { class: "preview-who" }, "Counselor: ");
  if (ticket.last_sender_type === "system") return h("span", { class: "preview-who" }, "Update: ");
  return null;
}

function renderRow(ticket) {
  const urgent = ticket.priority === "urgent";
  const unread = ticket.unread_count > 0;
  const classes = ["ticket-row"];
  if (ticket.crisis) classes.push("is-crisis");
  else if (urgent) classes.push("is-urgent");
  if (unread) classes.push("is-unread");
  if (ticket.status === "resolved" || ticket.status === "closed") classes.push("is-closed");

  const assignee = ticket.assigned_counselor;
  const who = assignee
    ? h("span", { class: "ticket-assignee" }, assignee.id === me ? "You" : assignee.full_name)
    : h("span", { class: "ticket-assignee is-unassigned" }, "Unassigned");
  const unreadLabel = ticket.unread_count >= 99 ? "99+" : String(ticket.unread_count);

  const link = h(
    "a",
    { class: classes.join(" "), href: `/support/${ticket.id}` },
    h("span", { class: "avatar", "aria-hidden": "true" }, initial(ticket.student.full_name)),
    h(
      "span",
      { class: "ticket-main" },
      h(
        "span",
        { class: "ticket-line" },
        h("span", { class: "ticket-student" }, ticket.student.full_name),
        h("span", { class: "ticket-admission" }, ticket.student.admission_no),
        h(
          "time",
          { class: "ticket-time", datetime: ticket.last_activity_at, title: clock.full(ticket.last_activity_at) },
          clock.relative(ticket.last_activity_at),
        ),
      ),
      h(
        "span",
        { class: "ticket-line" },
        h("span", { class: "ticket-subject" }, ticket.subject),
        ticket.crisis ? badge("Crisis", "crisis") : null,
        urgent || ticket.priority === "high" ? badge(PRIORITY_LABELS[ticket.priority], ticket.priority) : null,
        badge(STATUS_LABELS[ticket.status] || ticket.status, `status-${ticket.status}`),
        ticket.category ? h("span", { class: "ticket-category" }, ticket.category.name) : null,
        who,
      ),
      h(
        "span",
        { class: "ticket-line" },
        h("span", { class: "ticket-preview" }, previewPrefix(ticket), ticket.last_message_preview || "—"),
        unread
          ? h("span", { class: "unread-badge", title: `${unreadLabel} unread`, "aria-label": `${unreadLabel} unread` }, unreadLabel)
          : null,
      ),
    ),
  );
  return h("li", { dataset: { id: ticket.id } }, link);
}

function rowFor(id) {
  return list.querySelector(`li[data-id="${CSS.escape(String(id))}"]`);
}

// Newest activity first, then the higher id: the order the API pages in.
function before(a, b) {
  const ta = Date.parse(a.last_activity_at);
  const tb = Date.parse(b.last_activity_at);
  return ta !== tb ? ta > tb : a.id > b.id;
}

function appendTickets(tickets) {
  for (const ticket of tickets) {
    if (state.tickets.has(ticket.id)) continue; // moved up by a live update meanwhile
    state.tickets.set(ticket.id, ticket);
    list.append(renderRow(ticket));
  }
}

function removeTicket(id) {
  state.tickets.delete(id);
  const row = rowFor(id);
  if (row) row.remove();
}

// Put a fresh copy of a ticket where it belongs now (usually the top).
function placeTicket(ticket) {
  const existing = rowFor(ticket.id);
  state.tickets.delete(ticket.id);
  if (existing) existing.remove();
  let anchor = null;
  for (const row of list.children) {
    const other = state.tickets.get(Number(row.dataset.id));
    if (other && before(ticket, other)) {
      anchor = row;
      break;
    }
  }
  // Past the last loaded row, with more pages to come: it will arrive with "Load more".
  if (!anchor && state.hasNext) return;
  const row = renderRow(ticket);
  if (!existing) row.classList.add("is-new");
  list.insertBefore(row, anchor);
  // Map order mirrors the list order for later insertions.
  const ordered = [...list.children].map((li) => Number(li.dataset.id));
  const copy = new Map(state.tickets);
  copy.set(ticket.id, ticket);
  state.tickets = new Map(ordered.map((id) => [id, copy.get(id)]));
}

function showSummary() {
  const shown = state.tickets.size;
  emptyNote.hidden = shown > 0;
  moreButton.hidden = !state.hasNext;
  if (!shown) {
    summary.textContent = "\u00a0";
    return;
  }
  const total = state.total.toLocaleString("en-GB");
  const of = state.totalIsEstimate ? `about ${total}` : total;
  summary.textContent = `${shown.toLocaleString("en-GB")} of ${of} conversation${state.total === 1 ? "" : "s"}`;
}

// --- loading ----------------------------------------------------------------------------------

async function loadFirstPage() {
  const generation = ++state.generation;
  list.setAttribute("aria-busy", "true");
  errorNote.hidden = true;
  notice.hidden = true;
  try {
    const page = await api(`/api/dashboard/support/tickets?${queryString(state.filters, { limit: PAGE_SIZE })}`);
    if (generation !== state.generation) return;
    state.tickets = new Map();
    list.replaceChildren();
    takePage(page);
  } catch (error) {
    if (generation !== state.generation) return;
    errorNote.textContent = error.message;
    errorNote.hidden = false;
  } finally {
    if (generation === state.generation) list.setAttribute("aria-busy", "false");
  }
}

function takePage(page) {
  appendTickets(page.items);
  state.nextCursor = page.next_cursor;
  state.hasNext = page.has_next;
  state.total = page.total;
  state.totalIsEstimate = page.total_is_estimate;
  showSummary();
}

async function loadMore() {
  if (!state.nextCursor) return;
  const generation = state.generation;
  moreButton.disabled = true;
  moreButton.textContent = "Loading…";
  try {
    const query = queryString(state.filters, { limit: PAGE_SIZE, cursor: state.nextCursor });
    const page = await api(`/api/dashboard/support/tickets?${query}`);
    if (generation === state.generation) takePage(page);
  } catch (error) {
    toast(toasts, error.message, { level: "error" });
  } finally {
    moreButton.disabled = false;
    moreButton.textContent = "Load more";
  }
}

// --- live -------------------------------------------------------------------------------------

const changed = new Set();
const created = new Set(); // new tickets count towards the total; moved ones already did
let flushTimer = null;

function onEvent(type, data) {
  if (type === "ticket.crisis") {
    toast(toasts, `Possible crisis: ${data.student_name || "a student"} — open the conversation`, {
      level: "crisis",
      href: `/support/${data.ticket_id}`,
      timeout: 0,
    });
  }
  if (type === "notification.updated" || !data.ticket_id) return;
  if (type === "ticket.created") created.add(data.ticket_id);
  // A reply produces several events at once: read the ticket once for all of them.
  changed.add(data.ticket_id);
  clearTimeout(flushTimer);
  flushTimer = setTimeout(refreshChanged, 150);
}

async function refreshChanged() {
  const ids = [...changed];
  changed.clear();
  const generation = state.generation;
  await Promise.all(
    ids.map(async (id) => {
      let ticket;
      try {
        ticket = await api(`/api/dashboard/support/tickets/${id}`);
      } catch (error) {
        if (error.status === 404) removeTicket(id);
        return;
      }
      if (generation !== state.generation) return;
      if (state.filters.q) {
        // Whether it matches the search only the server knows: update a row that is shown,
        // and offer to reload for anything else.
        if (state.tickets.has(id)) placeTicket(ticket);
        else notice.hidden = false;
      } else if (matches(ticket)) {
        if (created.delete(id)) state.total += 1;
        placeTicket(ticket);
      } else if (state.tickets.has(id)) {
        removeTicket(id);
        state.total = Math.max(0, state.total - 1);
      }
    }),
  );
  showSummary();
}

function refreshTimes() {
  for (const time of list.querySelectorAll("time.ticket-time")) {
    time.textContent = clock.relative(time.getAttribute("datetime"));
  }
}

// --- start ------------------------------------------------------------------------------------

state.filters = readFiltersFromAddress();
showFilters(state.filters);
form.addEventListener("submit", (event) => {
  event.preventDefault();
  applyFilters();
});
form.addEventListener("change", (event) => {
  if (event.target.name !== "q") applyFilters();
});
form.elements.q.addEventListener("search", () => {
  if (!form.elements.q.value) applyFilters(); // the field's clear button
});
moreButton.addEventListener("click", loadMore);
$("#inbox-refresh").addEventListener("click", loadFirstPage);
window.addEventListener("popstate", () => {
  state.filters = readFiltersFromAddress();
  showFilters(state.filters);
  loadFirstPage();
});
setInterval(refreshTimes, 30_000);

loadFirstPage();
connectLive({ onEvent, onResync: loadFirstPage, statusElement: $("#live-status") });
