// One conversation, WhatsApp-style: newest at the bottom, older messages 50 at a time when the
// counselor scrolls to the top (the view does not jump), new ones live, a reply shown at once
// with its delivery state (sending, queued, sent, failed + retry) followed live from the outbox.

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

const root = $("#support-chat");
const ticketId = Number(root.dataset.ticketId);
const me = Number(root.dataset.me);
const myName = root.dataset.myName;
const clock = officeClock(root.dataset.timezone);
const base = `/api/dashboard/support/tickets/${ticketId}`;

const timeline = $("#timeline");
const items = $("#timeline-items");
const olderNote = $("#timeline-older");
const startNote = $("#timeline-start");
const jumpButton = $("#jump-new");
const composer = $("#composer");
const textarea = $("#composer-text");
const sendButton = $("#composer-send");
const toasts = $("#toasts");
const controls = {
  status: $("#ticket-status"),
  priority: $("#ticket-priority"),
  assignee: $("#ticket-assignee"),
  take: $("#ticket-take"),
};

const PAGE = 50;
const NEAR_BOTTOM_PX = 80;

const state = {
  ticket: null,
  counselors: [],
  messages: new Map(), // id -> {message, el}
  oldestId: null,
  newestId: 0,
  hasOlder: false,
  loadingOlder: false,
  // Outbox news that came before we knew the reply (the worker can beat the POST's answer).
  deliveries: new Map(), // message id -> delivery
  // Sent from here and not yet confirmed: tempId -> {message, el}
  pending: new Map(),
  lastReadSent: 0,
};
let tempSequence = 0;

// --- rendering --------------------------------------------------------------------------------

function kindOf(message) {
  if (message.sender_type === "system") return "system";
  if (message.sender_type === "student") return "student";
  return message.is_internal ? "note" : "counselor";
}

function mediaNode(media) {
  if (media.kind === "photo") {
    const image = h("img", { src: media.url, alt: "Photo from the student", loading: "lazy" });
    image.addEventListener("load", keepAtBottomIfThere);
    return h("a", { class: "bubble-media", href: media.url, target: "_blank", rel: "noopener" }, image);
  }
  if (media.kind === "voice") {
    return h("audio", { class: "bubble-audio", controls: true, preload: "none", src: media.url });
  }
  const name = media.file_name || "Document";
  const extension = (name.includes(".") ? name.split(".").pop() : "file").slice(0, 4).toUpperCase();
  return h(
    "a",
    { class: "bubble-file", href: media.url, download: name },
    h("span", { class: "file-icon", "aria-hidden": "true" }, extension),
    h("span", { class: "file-name" }, name),
  );
}

const DELIVERY_TEXT = {
  sending: "Sending…",
  queued: "Queued",
  sent: "Sent",
  failed: "Not delivered",
  unsent: "Not sent",
};

function deliveryNode(message) {
  const delivery = message.delivery;
  if (!delivery) return null;
  const status = delivery.status;
  const node = h(
    "span",
    { class: `delivery delivery-${status}`, title: delivery.error || DELIVERY_TEXT[status] },
    DELIVERY_TEXT[status] || status,
  );
  if (status === "failed" || status === "unsent") {
    const retry = h("button", { type: "button", class: "link-button retry" }, "Retry");
    retry.addEventListener("click", () => (status === "failed" ? retryDelivery(message) : resend(message)));
    return h("span", { class: "delivery-wrap" }, node, " · ", retry);
  }
  return node;
}

function renderMessage(message) {
  const kind = kindOf(message);
  const time = h("time", { datetime: message.created_at, title: clock.full(message.created_at) }, clock.time(message.created_at));
  if (kind === "system") {
    return h("div", { class: "msg msg-system", dataset: { id: message.id } }, h("span", { class: "system-text" }, message.body, " · ", time));
  }
  let author = null;
  if (kind === "note") {
    const by = message.counselor ? (message.counselor.id === me ? "You" : message.counselor.full_name) : "";
    author = h("span", { class: "bubble-author" }, "Internal note", by ? ` · ${by}` : "");
  } else if (kind === "counselor" && message.counselor) {
    author = h("span", { class: "bubble-author" }, message.counselor.id === me ? "You" : message.counselor.full_name);
  }
  const bubble = h(
    "div",
    { class: "bubble" },
    author,
    message.media ? mediaNode(message.media) : null,
    message.body ? h("p", { class: "bubble-text" }, message.body) : null,
    h("span", { class: "bubble-meta" }, time, kind === "counselor" ? deliveryNode(message) : null),
  );
  return h("div", { class: `msg msg-${kind}`, dataset: { id: message.id } }, bubble);
}

// The timeline is a list of day groups, each a sticky date label and that day's messages, so
// the label of the day being read stays at the top while scrolling (as in WhatsApp).
function dayGroup(message) {
  return h(
    "section",
    { class: "day-group", dataset: { day: clock.dayKey(message.created_at) } },
    h("div", { class: "day-separator" }, h("span", {}, clock.dayLabel(message.created_at))),
  );
}

// The group of the message's office day, made (in day order) if there is none yet.
function groupFor(message) {
  const day = clock.dayKey(message.created_at);
  let group = items.lastElementChild;
  while (group && group.dataset.day > day) group = group.previousElementSibling;
  if (group && group.dataset.day === day) return group;
  const made = dayGroup(message);
  if (group) group.after(made);
  else items.prepend(made);
  return made;
}

function nearBottom() {
  return timeline.scrollHeight - timeline.scrollTop - timeline.clientHeight < NEAR_BOTTOM_PX;
}

function scrollToBottom() {
  timeline.scrollTop = timeline.scrollHeight;
  jumpButton.hidden = true;
}

let stuckToBottom = true;
function keepAtBottomIfThere() {
  if (stuckToBottom) scrollToBottom();
}

function track(message) {
  if (typeof message.id === "number") {
    state.newestId = Math.max(state.newestId, message.id);
    if (state.oldestId === null || message.id < state.oldestId) state.oldestId = message.id;
  }
}

// A known delivery state wins over an older one, except that "sent" is final.
function mergeDelivery(message) {
  const news = state.deliveries.get(message.id);
  if (news && message.delivery && message.delivery.status !== "sent") {
    message.delivery = { ...message.delivery, ...news };
  }
  return message;
}

// Almost always at the very end; but a message that arrives after a newer one of ours was
// confirmed goes before it, so the timeline stays in id order. Bubbles still being sent from
// here stay last.
function insertInOrder(message) {
  const group = groupFor(message);
  let after = group.lastElementChild;
  while (
    after.classList.contains("msg") &&
    (after.classList.contains("is-pending") || Number(after.dataset.id) > message.id)
  ) {
    after = after.previousElementSibling;
  }
  const el = renderMessage(message);
  state.messages.set(message.id, { message, el });
  after.after(el);
}

function appendMessages(messages) {
  const fresh = messages
    .filter((m) => !state.messages.has(m.id))
    .sort((a, b) => a.id - b.id)
    .map(mergeDelivery);
  if (!fresh.length) return [];
  const wasAtBottom = nearBottom();
  fresh.forEach(insertInOrder);
  fresh.forEach(track);
  if (wasAtBottom) scrollToBottom();
  else jumpButton.hidden = false;
  return fresh;
}

function prependMessages(messages) {
  const older = messages
    .filter((m) => !state.messages.has(m.id))
    .sort((a, b) => b.id - a.id)
    .map(mergeDelivery);
  if (!older.length) return;
  const fromBottom = timeline.scrollHeight - timeline.scrollTop;
  for (const message of older) {
    let group = items.firstElementChild;
    if (!group || group.dataset.day !== clock.dayKey(message.created_at)) {
      group = dayGroup(message);
      items.prepend(group);
    }
    const el = renderMessage(message);
    state.messages.set(message.id, { message, el });
    group.firstElementChild.after(el); // right below the day's label
  }
  older.forEach(track);
  // Keep what the counselor was looking at in place: same distance from the bottom as before.
  timeline.scrollTop = timeline.scrollHeight - fromBottom;
}

// Takes a bubble out, and its day group with it when that was the group's last message.
function removeBubble(el) {
  const group = el.parentElement;
  el.remove();
  if (group && group.classList.contains("day-group") && !group.querySelector(".msg")) group.remove();
}

function replaceMessage(id, message) {
  const entry = state.messages.get(id);
  if (!entry) return;
  const el = renderMessage(message);
  entry.el.replaceWith(el);
  state.messages.set(id, { message, el });
}

// --- the header -------------------------------------------------------------------------------

function fillAssignees(ticket) {
  const current = ticket.assigned_counselor;
  const people = [...state.counselors];
  if (current && !people.some((c) => c.id === current.id)) people.push(current); // deactivated
  const options = [h("option", { value: "" }, "Nobody")];
  for (const person of people) options.push(h("option", { value: person.id }, person.id === me ? `${person.full_name} (you)` : person.full_name));
  controls.assignee.replaceChildren(...options);
  controls.assignee.value = current ? String(current.id) : "";
}

function renderHeader(ticket) {
  state.ticket = ticket;
  const student = ticket.student;
  $("#chat-student").textContent = student.full_name;
  $("#chat-avatar").textContent = initial(student.full_name);
  const meta = [student.admission_no, `Year ${student.year_of_study}`];
  const phone = student.phone ? h("a", { href: `tel:${student.phone.replace(/\s+/g, "")}` }, student.phone) : null;
  const category = ticket.category ? ticket.category.name : null;
  $("#chat-meta").replaceChildren(
    meta.join(" · "),
    phone ? " · " : "",
    phone || "",
    category ? ` · ${category}` : "",
  );
  const badges = [];
  if (ticket.crisis) badges.push(h("span", { class: "badge badge-crisis" }, "Crisis"));
  if (ticket.priority === "urgent" || ticket.priority === "high") {
    badges.push(h("span", { class: `badge badge-${ticket.priority}` }, PRIORITY_LABELS[ticket.priority]));
  }
  $("#chat-subject").replaceChildren(h("span", { class: "chat-subject-text" }, ticket.subject), ...badges);
  document.title = `${student.full_name}: ${ticket.subject} · counseldesk`;
  root.classList.toggle("is-crisis", Boolean(ticket.crisis));

  for (const name of ["status", "priority", "assignee"]) {
    if (controls[name].dataset.busy) continue;
    controls[name].disabled = false;
  }
  if (!controls.status.dataset.busy) controls.status.value = ticket.status;
  if (!controls.priority.dataset.busy) controls.priority.value = ticket.priority;
  if (!controls.assignee.dataset.busy) fillAssignees(ticket);
  const mine = ticket.assigned_counselor && ticket.assigned_counselor.id === me;
  controls.take.hidden = Boolean(mine);
}

async function change(control, patch) {
  control.dataset.busy = "1";
  control.disabled = true;
  try {
    const ticket = await api(base, { method: "PATCH", body: patch });
    delete control.dataset.busy;
    renderHeader(ticket);
  } catch (error) {
    delete control.dataset.busy;
    toast(toasts, error.message, { level: "error" });
    if (state.ticket) renderHeader(state.ticket); // back to what is true
  } finally {
    control.disabled = false;
  }
}

controls.status.addEventListener("change", () => change(controls.status, { status: controls.status.value }));
controls.priority.addEventListener("change", () => change(controls.priority, { priority: controls.priority.value }));
controls.assignee.addEventListener("change", () => {
  const value = controls.assignee.value;
  change(controls.assignee, { assigned_counselor_id: value ? Number(value) : null });
});
controls.take.addEventListener("click", () => change(controls.take, { assigned_counselor_id: me }));

// --- loading ----------------------------------------------------------------------------------

async function loadTicket() {
  renderHeader(await api(base));
}

async function loadNewest() {
  const page = await api(`${base}/messages?limit=${PAGE}`);
  return page;
}

async function loadOlder() {
  if (state.loadingOlder || !state.hasOlder || state.oldestId === null) return;
  state.loadingOlder = true;
  olderNote.hidden = false;
  try {
    const page = await api(`${base}/messages?limit=${PAGE}&before=${state.oldestId}`);
    prependMessages(page.items);
    state.hasOlder = page.has_next;
  } catch (error) {
    toast(toasts, error.message, { level: "error" });
  } finally {
    state.loadingOlder = false;
    olderNote.hidden = true;
    startNote.hidden = state.hasOlder;
  }
  // Still at the top (a short page, a tall screen): the observer will not fire again by itself.
  if (state.hasOlder && timeline.scrollTop < 200) loadOlder();
}

// New messages since the newest shown: page 1 is the newest 50; if more than that arrived at
// once, walk back until the pages meet what is shown.
let fetchingNewest = null;
async function fetchNewer() {
  if (fetchingNewest) return fetchingNewest;
  fetchingNewest = (async () => {
    try {
      const collected = [];
      let page = await loadNewest();
      collected.unshift(...page.items);
      for (let guard = 0; guard < 5 && page.has_next && page.items.length && page.items[0].id > state.newestId + 1; guard++) {
        page = await api(`${base}/messages?limit=${PAGE}&before=${page.items[0].id}`);
        collected.unshift(...page.items);
      }
      for (const message of collected) {
        if (state.messages.has(message.id)) {
          updateDelivery(message.id, message.delivery, { fromSnapshot: true });
        }
      }
      adoptOwn(collected);
      // Anything not shown yet and newer than the oldest shown (older ones come by scrolling).
      const floor = state.oldestId ?? 0;
      const fresh = appendMessages(collected.filter((m) => m.id > floor));
      if (fresh.some((m) => m.sender_type === "student")) markReadSoon();
    } catch (error) {
      toast(toasts, error.message, { level: "error" });
    } finally {
      fetchingNewest = null;
    }
  })();
  return fetchingNewest;
}

// --- sending ----------------------------------------------------------------------------------

function mode() {
  return composer.querySelector('input[name="mode"]:checked').value;
}

function sameDraft(pending, message) {
  return (
    message.sender_type === "counselor" &&
    message.counselor &&
    message.counselor.id === me &&
    message.is_internal === pending.message.is_internal &&
    message.body === pending.message.body
  );
}

// A message of ours that the live stream delivered before the POST answered: the optimistic
// bubble gives way to it instead of the message appearing twice.
function adoptOwn(messages) {
  for (const message of messages) {
    if (state.messages.has(message.id)) continue;
    for (const [tempId, pending] of state.pending) {
      if (sameDraft(pending, message)) {
        removeBubble(pending.el);
        state.pending.delete(tempId);
        break;
      }
    }
  }
}

function confirmPending(tempId, message) {
  const pending = state.pending.get(tempId);
  if (!pending) return;
  state.pending.delete(tempId);
  if (state.messages.has(message.id)) {
    removeBubble(pending.el); // already shown
    return;
  }
  mergeDelivery(message);
  const el = renderMessage(message);
  pending.el.replaceWith(el);
  state.messages.set(message.id, { message, el });
  track(message);
}

async function send(body, asNote, existing = null) {
  const tempId = existing ? existing.tempId : `temp-${++tempSequence}`;
  const message = {
    id: tempId,
    ticket_id: ticketId,
    sender_type: "counselor",
    counselor: { id: me, full_name: myName },
    body,
    is_internal: asNote,
    media: null,
    created_at: new Date().toISOString(),
    delivery: asNote ? null : { status: "sending", error: null, notification_id: null },
    tempId,
  };
  const el = renderMessage(message);
  el.classList.add("is-pending");
  if (existing) existing.el.replaceWith(el);
  else groupFor(message).append(el);
  state.pending.set(tempId, { message, el });
  scrollToBottom();
  try {
    const saved = await api(`${base}/${asNote ? "notes" : "messages"}`, { method: "POST", body: { body } });
    confirmPending(tempId, saved);
  } catch (error) {
    const pending = state.pending.get(tempId);
    if (!pending) return;
    if (asNote) {
      removeBubble(pending.el);
      state.pending.delete(tempId);
      toast(toasts, `The note was not saved: ${error.message}`, { level: "error" });
      return;
    }
    message.delivery = { status: "unsent", error: error.message, notification_id: null };
    const failed = renderMessage(message);
    failed.classList.add("is-pending");
    pending.el.replaceWith(failed);
    pending.el = failed;
  }
}

function resend(message) {
  const pending = state.pending.get(message.tempId);
  if (pending) send(message.body, false, { tempId: message.tempId, el: pending.el });
}

async function retryDelivery(message) {
  updateDelivery(message.id, { status: "queued", error: null }, { force: true });
  try {
    const saved = await api(`/api/dashboard/support/messages/${message.id}/retry`, { method: "POST" });
    updateDelivery(saved.id, saved.delivery, { force: true });
  } catch (error) {
    toast(toasts, error.message, { level: "error" });
    fetchNewer();
  }
}

// Outbox status -> what the bubble shows.
const OUTBOX_TO_DELIVERY = { pending: "queued", sending: "queued", sent: "sent", failed: "failed", cancelled: "failed" };

function updateDelivery(messageId, delivery, { fromSnapshot = false, force = false } = {}) {
  if (!delivery) return;
  const entry = state.messages.get(messageId);
  if (!entry) {
    if (!fromSnapshot) state.deliveries.set(messageId, delivery);
    return;
  }
  const current = entry.message.delivery;
  if (!force && current && current.status === "sent") return; // final
  if (fromSnapshot && state.deliveries.has(messageId)) return; // live news is newer
  if (!fromSnapshot) state.deliveries.set(messageId, delivery);
  if (current && current.status === delivery.status && current.error === delivery.error) return;
  replaceMessage(messageId, { ...entry.message, delivery: { ...current, ...delivery } });
}

function submit() {
  const body = textarea.value.trim();
  if (!body) return;
  textarea.value = "";
  autosize();
  send(body, mode() === "note");
  textarea.focus();
}

composer.addEventListener("submit", (event) => {
  event.preventDefault();
  submit();
});
textarea.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    submit();
  }
});
function autosize() {
  textarea.style.height = "auto";
  textarea.style.height = `${Math.min(textarea.scrollHeight, 160)}px`;
}
textarea.addEventListener("input", autosize);
composer.addEventListener("change", (event) => {
  if (event.target.name !== "mode") return;
  const note = mode() === "note";
  composer.dataset.mode = note ? "note" : "reply";
  textarea.placeholder = note ? "Write an internal note (the student never sees it)…" : "Write a reply to the student…";
  sendButton.textContent = note ? "Add note" : "Send";
  textarea.focus();
});

// --- read marks -------------------------------------------------------------------------------

let readTimer = null;
function markReadSoon() {
  clearTimeout(readTimer);
  readTimer = setTimeout(markRead, 400);
}

async function markRead({ leaving = false } = {}) {
  clearTimeout(readTimer);
  readTimer = null;
  if ((document.visibilityState !== "visible" && !leaving) || !nearBottom()) return;
  let newestStudent = 0;
  for (const { message } of state.messages.values()) {
    if (message.sender_type === "student" && message.id > newestStudent) newestStudent = message.id;
  }
  if (!newestStudent || newestStudent <= state.lastReadSent) return;
  state.lastReadSent = newestStudent;
  try {
    await api(`${base}/read`, {
      method: "POST",
      body: { up_to_message_id: newestStudent },
      keepalive: leaving,
    });
  } catch {
    state.lastReadSent = 0; // try again next time
  }
}

document.addEventListener("visibilitychange", markReadSoon);
// Leaving right after a message came in: send the pending read mark now (keepalive outlives
// the page), so the inbox does not count as unread what was on screen.
window.addEventListener("pagehide", () => {
  if (readTimer) markRead({ leaving: true });
});

// --- live -------------------------------------------------------------------------------------

let headerTimer = null;
let newerTimer = null;
function onEvent(type, data) {
  if (type === "ticket.crisis" && data.ticket_id !== ticketId) {
    toast(toasts, `Possible crisis: ${data.student_name || "a student"} — open the conversation`, {
      level: "crisis",
      href: `/support/${data.ticket_id}`,
      timeout: 0,
    });
    return;
  }
  if (type === "notification.updated") {
    const ref = data.ref || {};
    if (ref.ticket_id === ticketId && ref.message_id) {
      const status = OUTBOX_TO_DELIVERY[data.status] || "queued";
      updateDelivery(ref.message_id, { status, error: data.error || null, notification_id: data.notification_id });
    }
    return;
  }
  if (data.ticket_id !== ticketId) return;
  if (type === "message.created") {
    clearTimeout(newerTimer);
    newerTimer = setTimeout(fetchNewer, 80);
  }
  if (type.startsWith("ticket.")) {
    clearTimeout(headerTimer);
    headerTimer = setTimeout(() => loadTicket().catch(() => {}), 120);
  }
}

async function resync() {
  await Promise.all([loadTicket().catch(() => {}), fetchNewer()]);
}

// --- start ------------------------------------------------------------------------------------

timeline.addEventListener("scroll", () => {
  stuckToBottom = nearBottom();
  if (stuckToBottom) {
    jumpButton.hidden = true;
    markReadSoon();
  }
});
jumpButton.addEventListener("click", () => {
  scrollToBottom();
  markReadSoon();
});

async function start() {
  try {
    const [ticket, page, counselors] = await Promise.all([
      api(base),
      loadNewest(),
      api("/api/dashboard/counselors").catch(() => []),
    ]);
    state.counselors = counselors;
    renderHeader(ticket);
    page.items.map(mergeDelivery).forEach(insertInOrder);
    page.items.forEach(track);
    state.hasOlder = page.has_next;
    startNote.hidden = state.hasOlder;
    items.setAttribute("aria-busy", "false");
    scrollToBottom();
    markReadSoon();
  } catch (error) {
    items.setAttribute("aria-busy", "false");
    items.replaceChildren(h("p", { class: "timeline-error", role: "alert" }, error.message));
    return;
  }
  // Older messages when the top comes into view (200 px early, so they are usually there first).
  const observer = new IntersectionObserver(
    (entries) => {
      if (entries.some((entry) => entry.isIntersecting)) loadOlder();
    },
    { root: timeline, rootMargin: "200px 0px 0px 0px" },
  );
  observer.observe($("#timeline-top"));
}

start();
connectLive({ onEvent, onResync: resync, statusElement: $("#live-status") });
