// Student simulator: chat with the bot as a test student. Every action goes to /simulator/api/,
// which passes it on to the Telegram emulator. An ES module; no framework, no build step.
//
// The chat is a timeline of entries from the emulator. Each has an entry_id and a version; a
// changed entry (an edited or deleted message, an answered button press) arrives again with a
// new seq and a higher version, and replaces the old one in place. Entries are shown in
// first_seq order. Live updates come from a long poll: "anything after last_seq?".
//
// Text a student typed, names and file names are put on the page with textContent only. The one
// innerHTML is the bot's message `html`, which the emulator builds from the message entities with
// every character of the text escaped.

const API = "/simulator/api";
const FILES = `${API}/files/`;
const WAIT_SECONDS = 25;
const TYPING_MS = 5000;

const $ = (id) => document.getElementById(id);
const ui = {
  root: $("simulator"),
  students: $("sim-students"),
  studentsEmpty: $("sim-students-empty"),
  listError: $("sim-list-error"),
  refresh: $("sim-refresh"),
  newDetails: $("sim-new"),
  newForm: $("sim-new-form"),
  newError: $("sim-new-error"),
  back: $("sim-back"),
  avatar: $("sim-avatar"),
  name: $("sim-name"),
  status: $("sim-status"),
  timeline: $("sim-timeline"),
  placeholder: $("sim-placeholder"),
  messages: $("sim-messages"),
  toast: $("sim-toast"),
  chatError: $("sim-chat-error"),
  replyKeyboard: $("sim-reply-keyboard"),
  contactForm: $("sim-contact-form"),
  contactCancel: $("sim-contact-cancel"),
  composer: $("sim-composer"),
  text: $("sim-text"),
  attach: $("sim-attach"),
  attachMenu: $("sim-attach-menu"),
  file: $("sim-file"),
};

const state = {
  students: [],
  current: null, // the picked student (an entry of state.students, or the emulator's user)
  entries: new Map(), // entry_id -> entry
  nodes: new Map(), // entry_id -> <li>
  lastSeq: 0,
  replyKeyboard: null,
  generation: 0, // bumped on every switch: answers for an earlier student are dropped
  poll: null, // AbortController of the running long poll
  pinned: true, // the timeline shows its end, and keeps doing so as messages come
  typingTimer: 0,
  toastTimer: 0,
  listTimer: 0,
};

// --- talking to the server -----------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function describe(detail, status) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    // FastAPI's validation errors: [{loc: ["body", "first_name"], msg: "..."}]
    return detail
      .map((item) => {
        const field = (item.loc || []).filter((part) => part !== "body").join(".");
        return field ? `${field.replace("_", " ")}: ${item.msg}` : item.msg;
      })
      .join(" ");
  }
  return `The server answered HTTP ${status}.`;
}

async function call(method, path, { json, form, signal } = {}) {
  const headers = { Accept: "application/json" };
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    body = form;
  }
  let response;
  try {
    response = await window.counseldesk.fetch(API + path, { method, headers, body, signal });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "The dashboard cannot be reached. Check your connection.");
  }
  if (response.status === 204) return null;
  const payload = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, describe(payload?.detail, response.status));
  return payload;
}

function show(element, message) {
  element.textContent = message || "";
  element.hidden = !message;
}

// The chat's error line says what failed last: the live updates ("poll") or an action. Each
// clears only its own message when it succeeds again.
function chatError(source, message) {
  if (!message && ui.chatError.dataset.source !== source) return;
  show(ui.chatError, message);
  ui.chatError.dataset.source = source;
}

// --- the list of test students -------------------------------------------------------------------

function displayName(student) {
  return student.name || `Student ${student.telegram_user_id}`;
}

function describeStudent(student) {
  const parts = [student.registered ? `Registered · ${student.admission_no}` : "Not registered"];
  if (student.username) parts.push(`@${student.username}`);
  return parts.join(" · ");
}

function renderStudents() {
  ui.students.replaceChildren();
  for (const student of state.students) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "sim-student";
    button.dataset.id = String(student.telegram_user_id);
    if (state.current?.telegram_user_id === student.telegram_user_id) {
      button.setAttribute("aria-current", "true");
    }
    const avatar = document.createElement("span");
    avatar.className = "avatar";
    avatar.setAttribute("aria-hidden", "true");
    avatar.textContent = displayName(student).slice(0, 1).toUpperCase();
    const text = document.createElement("span");
    text.className = "sim-student-text";
    const name = document.createElement("strong");
    name.textContent = displayName(student);
    const meta = document.createElement("small");
    meta.textContent = describeStudent(student);
    text.append(name, meta);
    button.append(avatar, text);
    button.addEventListener("click", () => pickStudent(student.telegram_user_id));
    const item = document.createElement("li");
    item.append(button);
    ui.students.append(item);
  }
  const empty = state.students.length === 0 && ui.listError.hidden;
  ui.studentsEmpty.hidden = !empty;
  if (empty) ui.newDetails.open = true;
}

async function loadStudents() {
  try {
    const { students } = await call("GET", "/students");
    state.students = students;
    show(ui.listError, "");
    if (state.current) {
      const fresh = students.find((s) => s.telegram_user_id === state.current.telegram_user_id);
      if (fresh) {
        state.current = fresh;
        renderHeader();
      }
    }
  } catch (error) {
    show(ui.listError, error.message);
  }
  renderStudents();
}

// Registration changes what the list shows; the bot's replies are the moment it may happen.
function refreshStudentsSoon() {
  clearTimeout(state.listTimer);
  state.listTimer = setTimeout(loadStudents, 800);
}

ui.refresh.addEventListener("click", loadStudents);

ui.newDetails.addEventListener("toggle", () => {
  if (ui.newDetails.open) ui.newForm.elements.first_name.focus();
});

ui.newForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const data = new FormData(ui.newForm);
  const firstName = String(data.get("first_name") || "").trim();
  if (!firstName) {
    show(ui.newError, "A test student needs a first name.");
    ui.newForm.elements.first_name.focus();
    return;
  }
  const submit = ui.newForm.querySelector('button[type="submit"]');
  submit.disabled = true;
  try {
    const user = await call("POST", "/users", {
      json: {
        first_name: firstName,
        last_name: String(data.get("last_name") || "") || null,
        username: String(data.get("username") || "") || null,
      },
    });
    show(ui.newError, "");
    ui.newForm.reset();
    ui.newDetails.open = false;
    await loadStudents();
    await pickStudent(user.id);
  } catch (error) {
    show(ui.newError, error.message);
  } finally {
    submit.disabled = false;
  }
});

// --- picking a student ---------------------------------------------------------------------------

function renderHeader() {
  const student = state.current;
  if (!student) return;
  ui.name.textContent = displayName(student);
  ui.avatar.textContent = displayName(student).slice(0, 1).toUpperCase();
  ui.status.textContent = `${describeStudent(student)} · id ${student.telegram_user_id}`;
}

function resetChat() {
  state.generation += 1;
  state.poll?.abort();
  state.poll = null;
  state.entries.clear();
  state.nodes.clear();
  state.lastSeq = 0;
  state.replyKeyboard = null;
  ui.messages.replaceChildren();
  renderReplyKeyboard();
  closeContactForm();
  chatError("action", "");
  chatError("poll", "");
  show(ui.toast, "");
}

async function pickStudent(id) {
  resetChat();
  const generation = state.generation;
  const listed = state.students.find((s) => s.telegram_user_id === id);
  state.current = listed || { telegram_user_id: id, name: "", registered: false };
  renderHeader();
  renderStudents();
  ui.root.dataset.view = "chat";
  ui.placeholder.hidden = true;
  history.replaceState(null, "", `#student=${id}`);
  try {
    // Demo students start out in the database only: this adds them to the emulator.
    const user = await call("PUT", `/users/${id}`);
    if (generation !== state.generation) return;
    if (!listed || !listed.in_emulator) {
      if (!listed) state.current.name = [user.first_name, user.last_name].filter(Boolean).join(" ");
      renderHeader();
      loadStudents();
    }
    const feed = await call("GET", `/users/${id}/chat?after=0`);
    if (generation !== state.generation) return;
    applyFeed(feed, false);
    scrollToEnd();
    ui.text.focus();
    poll(generation);
  } catch (error) {
    if (generation === state.generation) chatError("action", error.message);
  }
}

ui.back.addEventListener("click", () => {
  ui.root.dataset.view = "list";
});

// --- live updates --------------------------------------------------------------------------------

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function poll(generation) {
  let pause = 1000;
  while (generation === state.generation) {
    const controller = new AbortController();
    state.poll = controller;
    const id = state.current.telegram_user_id;
    try {
      const path = `/users/${id}/chat?after=${state.lastSeq}&wait=${WAIT_SECONDS}`;
      const feed = await call("GET", path, { signal: controller.signal });
      if (generation !== state.generation) return;
      if (feed && feed.last_seq < state.lastSeq) {
        // The emulator restarted and counts from zero again: start over.
        pickStudent(id);
        return;
      }
      if (feed) applyFeed(feed, true);
      chatError("poll", "");
      pause = 1000;
    } catch (error) {
      if (generation !== state.generation || error.name === "AbortError") return;
      chatError("poll", `${error.message} Trying again…`);
      await sleep(pause);
      pause = Math.min(pause * 2, 10000);
    }
  }
}

function applyFeed(feed, live) {
  state.lastSeq = Math.max(state.lastSeq, feed.last_seq);
  if (JSON.stringify(feed.reply_keyboard) !== JSON.stringify(state.replyKeyboard)) {
    state.replyKeyboard = feed.reply_keyboard;
    renderReplyKeyboard();
  }
  const stick = state.pinned;
  let botSpoke = false;
  let studentSpoke = false;
  for (const entry of feed.entries) {
    const known = state.entries.get(entry.entry_id);
    if (known && known.version >= entry.version) continue;
    state.entries.set(entry.entry_id, entry);
    if (entry.type === "message") {
      placeEntry(entry, entry.deleted ? null : messageNode(entry));
      botSpoke ||= entry.direction === "out";
      studentSpoke ||= entry.direction === "in" && !known;
    } else if (entry.type === "blocked" || entry.type === "unblocked") {
      const what = entry.type === "blocked" ? "blocked" : "unblocked";
      placeEntry(entry, noticeNode(`The student ${what} the bot`));
    } else if (live && entry.type === "callback" && entry.answer?.text) {
      toast(entry.answer.text); // Telegram shows a button's answer as a passing notice
    } else if (live && entry.type === "chat_action" && entry.direction === "out") {
      showTyping(entry.action);
    }
  }
  if (botSpoke) endTyping();
  if (live && botSpoke) refreshStudentsSoon();
  if (stick || studentSpoke) scrollToEnd();
}

function placeEntry(entry, node) {
  const old = state.nodes.get(entry.entry_id);
  if (!node) {
    old?.remove();
    state.nodes.delete(entry.entry_id);
    return;
  }
  node.dataset.firstSeq = String(entry.first_seq);
  state.nodes.set(entry.entry_id, node);
  if (old) {
    old.replaceWith(node);
    return;
  }
  // Nearly always the newest: look for its place from the end.
  let after = ui.messages.lastElementChild;
  while (after && Number(after.dataset.firstSeq) > entry.first_seq) {
    after = after.previousElementSibling;
  }
  if (after) after.after(node);
  else ui.messages.prepend(node);
}

function nearEnd() {
  const t = ui.timeline;
  return t.scrollHeight - t.scrollTop - t.clientHeight < 80;
}

function scrollToEnd() {
  ui.timeline.scrollTop = ui.timeline.scrollHeight;
  state.pinned = true;
}

ui.timeline.addEventListener("scroll", () => (state.pinned = nearEnd()), { passive: true });
// A rotated phone, a reply keyboard appearing: the end stays in view.
new ResizeObserver(() => state.pinned && scrollToEnd()).observe(ui.timeline);

function showTyping(action) {
  const doing = !action || action === "typing" ? "typing" : action.replaceAll("_", " ");
  ui.status.textContent = `${doing}…`;
  clearTimeout(state.typingTimer);
  state.typingTimer = setTimeout(endTyping, TYPING_MS);
}

function endTyping() {
  clearTimeout(state.typingTimer);
  renderHeader();
}

function toast(text) {
  show(ui.toast, text);
  clearTimeout(state.toastTimer);
  state.toastTimer = setTimeout(() => show(ui.toast, ""), 4000);
}

// --- drawing messages ----------------------------------------------------------------------------

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function time(unixSeconds) {
  const when = new Date(unixSeconds * 1000);
  return when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function size(bytes) {
  if (bytes >= 1048576) return `${(bytes / 1048576).toFixed(1)} MB`;
  if (bytes >= 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${bytes} B`;
}

// Icons are drawn, not emoji: a machine without an emoji font would show empty boxes.
const SVG_NS = "http://www.w3.org/2000/svg";
const ICONS = {
  file: [
    ["path", { d: "M14 2H6a2 2 0 0 0-2 2v16a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V8z" }],
    ["path", { d: "M14 2v6h6M8 13h8M8 17h5" }],
  ],
  phone: [
    ["rect", { x: "6", y: "2", width: "12", height: "20", rx: "2" }],
    ["path", { d: "M11 18h2" }],
  ],
};

function icon(name) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", "sim-icon");
  svg.setAttribute("aria-hidden", "true");
  for (const [tag, attributes] of ICONS[name]) {
    const shape = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attributes)) shape.setAttribute(key, value);
    svg.append(shape);
  }
  return svg;
}

function noticeNode(text) {
  const item = element("li", "sim-notice");
  item.append(element("span", "", text));
  return item;
}

function messageNode(entry) {
  const fromBot = entry.direction === "out";
  const item = element("li", `sim-msg ${fromBot ? "sim-msg-bot" : "sim-msg-student"}`);
  item.dataset.messageId = String(entry.message_id);
  const bubble = element("div", "sim-bubble");
  if (entry.media) bubble.append(mediaNode(entry.media));
  if (entry.contact) bubble.append(contactNode(entry.contact));
  const body = entry.text ?? entry.caption;
  if (body) {
    const text = element("div", "sim-text");
    if (fromBot && typeof entry.html === "string") {
      text.innerHTML = entry.html; // safe: built and escaped by the emulator (see the top)
    } else {
      text.textContent = body;
    }
    bubble.append(text);
  }
  const meta = element("span", "sim-meta", (entry.edited ? "edited " : "") + time(entry.date));
  bubble.append(meta);
  item.append(bubble);
  const rows = fromBot ? entry.reply_markup?.inline_keyboard : null;
  if (Array.isArray(rows) && rows.length) item.append(inlineKeyboard(entry.message_id, rows));
  return item;
}

function mediaNode(media) {
  // Only our own file proxy: a URL from anywhere else is not shown.
  const url = typeof media.url === "string" && media.url.startsWith(FILES) ? media.url : null;
  if (!url) return element("span", "sim-file", `[${media.kind}]`);
  if (media.kind === "photo") {
    const link = element("a", "sim-photo");
    link.href = url;
    link.target = "_blank";
    link.rel = "noopener";
    const image = element("img");
    image.src = url;
    image.alt = "Photo";
    image.loading = "lazy";
    image.addEventListener("load", () => state.pinned && scrollToEnd(), { once: true });
    link.append(image);
    return link;
  }
  if (media.kind === "voice") {
    const audio = element("audio", "sim-voice");
    audio.controls = true;
    audio.preload = "none";
    audio.src = url;
    return audio;
  }
  const link = element("a", "sim-file");
  link.href = url;
  link.append(icon("file"));
  link.append(element("span", "sim-file-name", media.file_name || "Document"));
  link.append(element("small", "muted", size(media.file_size || 0)));
  return link;
}

function contactNode(contact) {
  const card = element("div", "sim-contact-card");
  card.append(icon("phone"));
  const name = [contact.first_name, contact.last_name].filter(Boolean).join(" ");
  const text = element("span");
  text.append(element("strong", "", name || "Contact"), element("small", "", contact.phone_number));
  card.append(text);
  return card;
}

function inlineKeyboard(messageId, rows) {
  const keyboard = element("div", "sim-inline-keyboard");
  for (const row of rows) {
    const line = element("div", "sim-keyboard-row");
    for (const button of row) {
      if (typeof button.url === "string" && /^https?:\/\//i.test(button.url)) {
        const link = element("a", "sim-key", `${button.text} ↗`);
        link.href = button.url;
        link.target = "_blank";
        link.rel = "noopener noreferrer";
        line.append(link);
        continue;
      }
      const key = element("button", "sim-key", button.text);
      key.type = "button";
      if (typeof button.callback_data === "string") {
        key.addEventListener("click", () => press(keyboard, messageId, button.callback_data));
      } else {
        key.disabled = true;
        key.title = "The simulator cannot press this kind of button.";
      }
      line.append(key);
    }
    keyboard.append(line);
  }
  return keyboard;
}

// --- what the student does -----------------------------------------------------------------------

function studentPath(suffix) {
  return `/users/${state.current.telegram_user_id}/${suffix}`;
}

async function act(work) {
  if (!state.current) {
    chatError("action", "Pick a test student first.");
    return false;
  }
  try {
    await work();
    chatError("action", "");
    return true;
  } catch (error) {
    chatError("action", error.message);
    return false;
  }
}

async function press(keyboard, messageId, data) {
  keyboard.classList.add("sim-busy");
  await act(() => call("POST", studentPath("callback"), { json: { message_id: messageId, data } }));
  keyboard.classList.remove("sim-busy");
}

async function sendText(text) {
  return act(() => call("POST", studentPath("messages"), { json: { text } }));
}

ui.composer.addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = ui.text.value;
  if (!text.trim()) return;
  if (await sendText(text)) ui.text.value = "";
  ui.text.focus();
});

// The reply keyboard: buttons that send their text, or share the student's phone number.
function renderReplyKeyboard() {
  const markup = state.replyKeyboard;
  ui.replyKeyboard.replaceChildren();
  ui.replyKeyboard.hidden = !markup?.keyboard?.length;
  ui.text.placeholder = markup?.input_field_placeholder || "Message";
  if (ui.replyKeyboard.hidden) return;
  for (const row of markup.keyboard) {
    const line = element("div", "sim-keyboard-row");
    for (const raw of row) {
      const button = typeof raw === "string" ? { text: raw } : raw;
      const key = element("button", "sim-key", button.text);
      key.type = "button";
      if (button.request_contact) {
        key.addEventListener("click", openContactForm);
      } else if (Object.keys(button).some((key) => /^(request_|web_app)/.test(key))) {
        key.disabled = true;
        key.title = "The simulator cannot send this kind of answer.";
      } else {
        key.addEventListener("click", () => sendText(button.text));
      }
      line.append(key);
    }
    ui.replyKeyboard.append(line);
  }
}

// A test student has no phone, so the administrator types the number to share.
function openContactForm() {
  const input = ui.contactForm.elements.phone_number;
  if (!input.value) {
    const digits = String(state.current.telegram_user_id).slice(-8).padStart(8, "0");
    input.value = `+2547${digits}`;
  }
  ui.contactForm.hidden = false;
  input.focus();
  input.select();
}

function closeContactForm() {
  ui.contactForm.hidden = true;
  ui.contactForm.reset();
}

ui.contactCancel.addEventListener("click", closeContactForm);

ui.contactForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const phone = ui.contactForm.elements.phone_number.value.trim();
  if (!phone) return;
  const shared = await act(() =>
    call("POST", studentPath("contact"), { json: { phone_number: phone } }),
  );
  if (shared) closeContactForm();
});

// Attachments: the message box's text, if any, becomes the caption.
const ACCEPT = { photo: "image/*", voice: "audio/*", document: "" };
let attachKind = "document";

function toggleAttachMenu(open) {
  ui.attachMenu.hidden = !open;
  ui.attach.setAttribute("aria-expanded", String(open));
}

ui.attach.addEventListener("click", () => toggleAttachMenu(ui.attachMenu.hidden));
ui.attachMenu.addEventListener("keydown", (event) => {
  if (event.key === "Escape") {
    toggleAttachMenu(false);
    ui.attach.focus();
  }
});
document.addEventListener("click", (event) => {
  if (!event.target.closest(".sim-attach")) toggleAttachMenu(false);
});
for (const option of ui.attachMenu.querySelectorAll("button[data-kind]")) {
  option.addEventListener("click", () => {
    attachKind = option.dataset.kind;
    ui.file.accept = ACCEPT[attachKind];
    toggleAttachMenu(false);
    ui.file.value = "";
    ui.file.click();
  });
}

ui.file.addEventListener("change", async () => {
  const file = ui.file.files?.[0];
  if (!file) return;
  const form = new FormData();
  form.append("kind", attachKind);
  form.append("file", file, file.name);
  const caption = ui.text.value.trim();
  if (caption) form.append("caption", caption);
  if (await act(() => call("POST", studentPath("media"), { form }))) ui.text.value = "";
  ui.file.value = "";
});

// --- start ---------------------------------------------------------------------------------------

async function start() {
  await loadStudents();
  const wanted = Number(new URLSearchParams(location.hash.slice(1)).get("student"));
  if (Number.isSafeInteger(wanted) && wanted > 0) await pickStudent(wanted);
}

start();
