// Appointments: a day view (one column per counselor, or one counselor), a week view (seven
// days), and a list with filters and paging. Selecting an appointment opens a panel with the
// actions its status allows; the API tells the student about every change. Student changes
// (bookings, cancellations, moves from the bot) arrive on the live stream and are shown without
// a reload.
//
// The first part (up to "the page") is also used by the availability editor
// (appointments_availability.js): the API helpers, labels and the reschedule picker. The page
// itself starts only where its root element exists.

import { $, api, connectLive, h, officeClock, toast } from "./support_common.js";

export const BASE = "/api/dashboard/appointments";

export const STATUS_LABELS = {
  pending: "Pending",
  confirmed: "Confirmed",
  canceled: "Canceled",
  completed: "Completed",
  no_show: "No-show",
};
export const ACTIVE = new Set(["pending", "confirmed"]);

// --- dates: office-local "YYYY-MM-DD" keys, computed at noon UTC so no zone shifts the day ------

const DAY_MS = 86_400_000;
const keyToDate = (key) => new Date(Date.parse(key + "T12:00:00Z"));
const dayFormat = (options) => new Intl.DateTimeFormat("en-GB", { timeZone: "UTC", ...options });
const SHORT_DAY = dayFormat({ weekday: "short", day: "numeric", month: "short" });
const LONG_DAY = dayFormat({ weekday: "long", day: "numeric", month: "long", year: "numeric" });
const WEEKDAY = dayFormat({ weekday: "short" });
const DAY_NUMBER = dayFormat({ day: "numeric", month: "short" });

// "Thu 26 Nov", "Thursday 26 November 2026": put together from the parts, because browsers'
// locale data disagree on the comma after the weekday.
function joinParts(format, date) {
  return format.formatToParts(date).filter((p) => p.type !== "literal").map((p) => p.value).join(" ");
}

export const addDays = (key, days) => new Date(keyToDate(key).getTime() + days * DAY_MS).toISOString().slice(0, 10);
export const mondayOf = (key) => addDays(key, -((keyToDate(key).getUTCDay() + 6) % 7));
export const dayLabel = (key, long = false) => joinParts(long ? LONG_DAY : SHORT_DAY, keyToDate(key));
export const toMinutes = (hhmm) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

// The office's date and minute of the day now (the browser may be in another zone).
export function officeNow(timeZone) {
  const format = new Intl.DateTimeFormat("en-GB", {
    timeZone,
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  });
  const parts = Object.fromEntries(format.formatToParts(new Date()).map((p) => [p.type, p.value]));
  return { key: `${parts.year}-${parts.month}-${parts.day}`, minutes: Number(parts.hour) * 60 + Number(parts.minute) };
}

export function whenText(appointment) {
  return `${dayLabel(appointment.local_date)}, ${appointment.local_start}–${appointment.local_end}`;
}

export function statusBadge(status) {
  return h("span", { class: `badge appt-status appt-status-${status}` }, STATUS_LABELS[status] || status);
}

// --- the API ------------------------------------------------------------------------------------

let counselorsPromise = null;
export function activeCounselors() {
  counselorsPromise = counselorsPromise || api("/api/dashboard/counselors").catch((error) => {
    counselorsPromise = null;
    throw error;
  });
  return counselorsPromise;
}

let uniqueCounter = 0;
export const uniqueId = (prefix) => `${prefix}-${++uniqueCounter}`;

// --- the reschedule picker ----------------------------------------------------------------------

// Choose a counselor (the appointment's own by default), a day from /slots/days, then a free time
// from /slots (the appointment's own time counts as free: ignore_appointment_id), and move it.
// A 409 (taken meanwhile) shows the API's detail and its alternatives to pick from instead.
// onDone(updated appointment) after the move; onClose() when the counselor gives up.
export function reschedulePicker({ appointment, timeZone, onDone, onClose }) {
  const clock = officeClock(timeZone);
  const state = { counselorId: appointment.counselor.id, starts: [], nextStart: null, day: null, slot: null };
  const ids = { counselor: uniqueId("rs-counselor"), days: uniqueId("rs-days"), times: uniqueId("rs-times") };

  const counselorSelect = h("select", { id: ids.counselor },
    h("option", { value: appointment.counselor.id }, appointment.counselor.full_name));
  const daysBox = h("div", { class: "picker-days", id: ids.days, role: "group", "aria-label": "Days" });
  const earlier = h("button", { type: "button", class: "button button-small", disabled: true }, "‹ Earlier");
  const later = h("button", { type: "button", class: "button button-small", disabled: true }, "Later ›");
  const timesBox = h("div", { class: "picker-slots", id: ids.times, role: "group", "aria-label": "Free times" });
  const timesNote = h("p", { class: "muted small picker-note" }, "Pick a day first.");
  const alternativesBox = h("div", { class: "picker-alternatives", hidden: true });
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const submit = h("button", { type: "submit", class: "button button-primary", disabled: true }, "Pick a time");
  const close = h("button", { type: "button", class: "button" }, "Back");

  const form = h(
    "form",
    { class: "picker", "aria-label": `Reschedule ${appointment.student.full_name}` },
    h("label", { class: "field-inline", for: ids.counselor }, h("span", {}, "Counselor"), counselorSelect),
    h("p", { class: "picker-step", id: `${ids.days}-label` }, "Day"),
    daysBox,
    h("div", { class: "picker-days-nav" }, earlier, later),
    h("p", { class: "picker-step", id: `${ids.times}-label` }, "Free time"),
    timesNote,
    timesBox,
    alternativesBox,
    error,
    h("div", { class: "picker-actions" }, submit, close),
  );
  daysBox.setAttribute("aria-labelledby", `${ids.days}-label`);
  timesBox.setAttribute("aria-labelledby", `${ids.times}-label`);

  const showError = (text) => {
    error.textContent = text || "";
    error.hidden = !text;
  };

  const choose = (slot) => {
    state.slot = slot;
    for (const button of form.querySelectorAll(".slot-button")) {
      button.setAttribute("aria-pressed", String(button.dataset.start === slot.starts_at));
    }
    submit.disabled = false;
    submit.textContent = `Move to ${dayLabel(clock.dayKey(slot.starts_at))}, ${clock.time(slot.starts_at)}`;
  };

  const slotButton = (slot, withDay = false) => {
    const label = withDay ? `${dayLabel(clock.dayKey(slot.starts_at))} ${clock.time(slot.starts_at)}` : clock.time(slot.starts_at);
    return h("button", {
      type: "button",
      class: "slot-button",
      "aria-pressed": "false",
      dataset: { start: slot.starts_at },
      onclick: () => choose(slot),
    }, label);
  };

  const resetTime = () => {
    state.slot = null;
    submit.disabled = true;
    submit.textContent = "Pick a time";
  };

  async function loadTimes(day) {
    state.day = day;
    resetTime();
    for (const button of daysBox.children) button.setAttribute("aria-pressed", String(button.dataset.day === day));
    timesBox.replaceChildren();
    timesNote.hidden = false;
    timesNote.textContent = "Loading free times…";
    const query = new URLSearchParams({ date: day, counselor_id: state.counselorId, ignore_appointment_id: appointment.id });
    try {
      const answer = await api(`${BASE}/slots?${query}`);
      if (state.day !== day) return;
      timesBox.replaceChildren(...answer.items.map((slot) => slotButton(slot)));
      timesNote.hidden = answer.items.length > 0;
      timesNote.textContent = "No free time on this day.";
    } catch (problem) {
      timesNote.textContent = problem.message;
    }
  }

  async function loadDays(start) {
    const query = new URLSearchParams({ counselor_id: state.counselorId, limit: 7, ignore_appointment_id: appointment.id });
    if (start) query.set("start", start);
    daysBox.setAttribute("aria-busy", "true");
    try {
      const answer = await api(`${BASE}/slots/days?${query}`);
      state.nextStart = answer.next_start;
      daysBox.replaceChildren(
        ...answer.items.map((item) =>
          h("button", {
            type: "button",
            class: "day-button",
            "aria-pressed": "false",
            disabled: item.free === 0,
            dataset: { day: item.date },
            onclick: () => loadTimes(item.date),
          },
          h("span", { class: "day-button-name" }, WEEKDAY.format(keyToDate(item.date))),
          h("span", { class: "day-button-date" }, joinParts(DAY_NUMBER, keyToDate(item.date))),
          h("span", { class: "day-button-free" }, item.free === 0 ? "full" : `${item.free} free`)),
        ),
      );
      earlier.disabled = state.starts.length <= 1;
      later.disabled = !state.nextStart;
      if (!answer.items.length) {
        timesNote.hidden = false;
        timesNote.textContent = "No working days ahead for this counselor.";
      }
      const first = answer.items.find((item) => item.free > 0);
      if (first) await loadTimes(first.date);
      else {
        timesBox.replaceChildren();
        timesNote.hidden = false;
        timesNote.textContent = answer.items.length ? "No free time on these days." : timesNote.textContent;
        resetTime();
      }
    } catch (problem) {
      showError(problem.message);
    } finally {
      daysBox.setAttribute("aria-busy", "false");
    }
  }

  later.addEventListener("click", () => {
    if (!state.nextStart) return;
    state.starts.push(state.nextStart);
    loadDays(state.nextStart);
  });
  earlier.addEventListener("click", () => {
    state.starts.pop();
    loadDays(state.starts[state.starts.length - 1]);
  });
  counselorSelect.addEventListener("change", () => {
    state.counselorId = Number(counselorSelect.value);
    state.starts = [null];
    alternativesBox.hidden = true;
    showError("");
    loadDays(null);
  });
  close.addEventListener("click", () => onClose());
  form.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.stopPropagation();
      onClose();
    }
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!state.slot) return;
    showError("");
    submit.disabled = true;
    const chosen = state.slot;
    const counselorId = chosen.counselors && chosen.counselors.length && !chosen.counselors.some((c) => c.id === state.counselorId)
      ? chosen.counselors[0].id
      : state.counselorId;
    try {
      const updated = await api(`${BASE}/${appointment.id}/reschedule`, {
        method: "POST",
        body: { starts_at: chosen.starts_at, counselor_id: counselorId },
      });
      onDone(updated);
    } catch (problem) {
      showError(problem.message);
      const alternatives = (problem.data && problem.data.alternatives) || [];
      if (problem.status === 409 && alternatives.length) {
        loadTimes(state.day); // the time just taken drops out of the day's list
        alternativesBox.replaceChildren(
          h("p", { class: "picker-step" }, "Free times nearby"),
          h("div", { class: "picker-slots", role: "group", "aria-label": "Free times nearby" },
            ...alternatives.map((slot) => slotButton(slot, true))),
        );
        alternativesBox.hidden = false;
        alternativesBox.querySelector("button").focus();
      } else {
        submit.disabled = false;
      }
    }
  });

  activeCounselors()
    .then((counselors) => {
      for (const counselor of counselors) {
        if (counselor.id !== appointment.counselor.id) counselorSelect.append(h("option", { value: counselor.id }, counselor.full_name));
      }
    })
    .catch(() => {}); // without the list, the appointment's own counselor is still offered
  state.starts = [null];
  loadDays(null);
  return form;
}

// --- the page -----------------------------------------------------------------------------------

const root = $("#appointments");
if (root) startAppointmentsPage(root);

function startAppointmentsPage(root) {
  const me = Number(root.dataset.me);
  const timeZone = root.dataset.timezone;
  const form = $("#appts-controls");
  const counselorSelect = $("#filter-counselor");
  const calendarBox = $("#calendar");
  const calendarError = $("#calendar-error");
  const calendarView = $("#calendar-view");
  const listView = $("#list-view");
  const listBox = $("#appt-list");
  const listEmpty = $("#list-empty");
  const listError = $("#list-error");
  const moreButton = $("#load-more");
  const summary = $("#appts-summary");
  const rangeLabel = $("#range-label");
  const detail = $("#detail");
  const detailTitle = $("#detail-title");
  const detailSub = $("#detail-sub");
  const detailBody = $("#detail-body");
  const toasts = $("#toasts");
  const HOUR_PX = 56;
  const PAGE_SIZE = 20;

  // Everyone the counselor filter offers, in its order: the columns of the day view.
  const counselors = [...counselorSelect.options]
    .filter((option) => /^\d+$/.test(option.value))
    .map((option) => ({ id: Number(option.value), full_name: option.textContent }));

  const state = {
    view: "day",
    date: root.dataset.today,
    counselor: "", // "" everyone, "mine", or an id
    status: "",
    from: root.dataset.today,
    to: "",
    canceled: false,
    calendar: { start: null, days: 1, items: new Map(), closedDays: [], absences: [] },
    list: { items: new Map(), nextCursor: null, hasNext: false, total: 0, totalIsEstimate: false },
    selected: null, // the appointment in the panel
    opener: null, // what to give focus back to when the panel closes
    generation: 0,
  };
  const fresh = new Set(); // ids that just arrived live: they flash once
  const changedHere = new Map(); // id -> time of a change made on this page (no toast for it)

  // --- address and controls -------------------------------------------------------------------

  function readAddress() {
    const params = new URLSearchParams(location.search);
    const view = params.get("view");
    state.view = ["day", "week", "list"].includes(view) ? view : "day";
    const date = params.get("date");
    state.date = /^\d{4}-\d{2}-\d{2}$/.test(date || "") ? date : root.dataset.today;
    const counselor = params.get("counselor") || "";
    state.counselor = counselor === "mine" || /^\d+$/.test(counselor) ? counselor : "";
    state.status = STATUS_LABELS[params.get("status")] ? params.get("status") : "";
    state.from = params.has("from") ? params.get("from") : root.dataset.today;
    state.to = params.get("to") || "";
    state.canceled = params.get("canceled") === "1";
  }

  function writeAddress() {
    const params = new URLSearchParams();
    if (state.view !== "day") params.set("view", state.view);
    if (state.view !== "list" && state.date !== root.dataset.today) params.set("date", state.date);
    if (state.counselor) params.set("counselor", state.counselor);
    if (state.view === "list") {
      if (state.status) params.set("status", state.status);
      if (state.from !== root.dataset.today) params.set("from", state.from);
      if (state.to) params.set("to", state.to);
    }
    if (state.selected) params.set("appointment", state.selected.id);
    const query = params.toString();
    history.replaceState(null, "", query ? `?${query}` : location.pathname);
  }

  function showControls() {
    for (const radio of form.elements.view) radio.checked = radio.value === state.view;
    form.elements.date.value = state.date;
    counselorSelect.value = state.counselor;
    if (counselorSelect.value !== state.counselor) state.counselor = counselorSelect.value = "";
    form.elements.status.value = state.status;
    form.elements.from.value = state.from;
    form.elements.to.value = state.to;
    const list = state.view === "list";
    $("#list-filters").hidden = !list;
    $("#date-nav").hidden = list;
    calendarView.hidden = list;
    listView.hidden = !list;
    const step = state.view === "week" ? "week" : "day";
    $("#date-prev").setAttribute("aria-label", `Previous ${step}`);
    $("#date-next").setAttribute("aria-label", `Next ${step}`);
  }

  function readControls() {
    state.view = form.elements.view.value;
    state.date = form.elements.date.value || root.dataset.today;
    state.counselor = counselorSelect.value;
    state.status = form.elements.status.value;
    state.from = form.elements.from.value;
    state.to = form.elements.to.value;
  }

  const counselorFilterId = () => (state.counselor === "mine" ? me : state.counselor ? Number(state.counselor) : null);

  function reload() {
    showControls();
    writeAddress();
    if (state.view === "list") loadList();
    else loadCalendar();
  }

  // --- the calendar ---------------------------------------------------------------------------

  function calendarRange() {
    return state.view === "week" ? { start: mondayOf(state.date), days: 7 } : { start: state.date, days: 1 };
  }

  async function loadCalendar() {
    const generation = ++state.generation;
    const { start, days } = calendarRange();
    const query = new URLSearchParams({ start, days });
    const counselorId = counselorFilterId();
    if (counselorId) query.set("counselor_id", counselorId);
    calendarBox.setAttribute("aria-busy", "true");
    calendarError.hidden = true;
    rangeLabel.textContent = days === 1 ? dayLabel(start, true) : `${dayLabel(start)} – ${dayLabel(addDays(start, 6))} ${addDays(start, 6).slice(0, 4)}`;
    try {
      const answer = await api(`${BASE}/calendar?${query}`);
      if (generation !== state.generation) return;
      state.calendar = {
        start,
        days,
        items: new Map(answer.items.map((a) => [a.id, a])),
        closedDays: answer.closed_days || [],
        absences: answer.absences || [],
      };
      renderCalendar();
    } catch (error) {
      if (generation !== state.generation) return;
      calendarError.textContent = error.message;
      calendarError.hidden = false;
    } finally {
      if (generation === state.generation) calendarBox.setAttribute("aria-busy", "false");
    }
  }

  function inCalendar(appointment) {
    const { start, days } = state.calendar;
    if (!start || state.view === "list") return false;
    const last = addDays(start, days - 1);
    const counselorId = counselorFilterId();
    return appointment.local_date >= start && appointment.local_date <= last
      && (counselorId === null || appointment.counselor.id === counselorId);
  }

  // Side by side where they overlap: each appointment gets a lane within its cluster of
  // overlapping ones, and the cluster's lane count sets the widths.
  function layOut(items) {
    const sorted = [...items].sort((a, b) => toMinutes(a.local_start) - toMinutes(b.local_start) || a.id - b.id);
    const placed = [];
    let cluster = [];
    let clusterEnd = -1;
    const closeCluster = () => {
      const lanes = Math.max(1, ...cluster.map((p) => p.lane + 1));
      for (const p of cluster) p.lanes = lanes;
      cluster = [];
    };
    for (const appointment of sorted) {
      const start = toMinutes(appointment.local_start);
      const end = Math.max(start + 15, toMinutes(appointment.local_end) || 24 * 60);
      if (start >= clusterEnd) closeCluster();
      const taken = new Set(cluster.filter((p) => p.end > start).map((p) => p.lane));
      let lane = 0;
      while (taken.has(lane)) lane += 1;
      const entry = { appointment, start, end, lane, lanes: 1 };
      cluster.push(entry);
      placed.push(entry);
      clusterEnd = Math.max(clusterEnd, end);
    }
    closeCluster();
    return placed;
  }

  function visibleItems() {
    return [...state.calendar.items.values()].filter((a) => state.canceled || a.status !== "canceled");
  }

  function calendarColumns() {
    const { start, days } = state.calendar;
    const counselorId = counselorFilterId();
    if (days === 1 && counselorId === null) {
      const people = [...counselors];
      for (const a of state.calendar.items.values()) {
        if (!people.some((c) => c.id === a.counselor.id)) people.push(a.counselor); // deactivated since
      }
      return people.map((c) => ({ day: start, counselorId: c.id, title: c.id === me ? `${c.full_name} (you)` : c.full_name }));
    }
    if (days === 1) {
      // One counselor's day: the column says whose it is (the heading above says which day).
      const person = counselors.find((c) => c.id === counselorId);
      const name = person ? person.full_name : dayLabel(start);
      return [{ day: start, counselorId, title: counselorId === me ? `${name} (you)` : name }];
    }
    return Array.from({ length: days }, (_, i) => {
      const day = addDays(start, i);
      return { day, counselorId, title: dayLabel(day) };
    });
  }

  function offNote(column) {
    const closed = state.calendar.closedDays.find((c) => c.day === column.day);
    if (closed) return { kind: "closed", text: `Office closed${closed.reason ? ` · ${closed.reason}` : ""}` };
    const away = state.calendar.absences.filter((a) => a.starts_on <= column.day && a.ends_on >= column.day);
    if (column.counselorId !== null) {
      const mine = away.find((a) => a.counselor.id === column.counselorId);
      if (mine) return { kind: "away", text: `Away${mine.reason ? ` · ${mine.reason}` : ""}` };
      return null;
    }
    if (away.length) return { kind: "some-away", text: `Away: ${away.map((a) => a.counselor.full_name).join(", ")}` };
    return null;
  }

  function renderCalendar() {
    const focusedId = document.activeElement && document.activeElement.closest(".appt-block")?.dataset.id;
    const items = visibleItems();
    const columns = calendarColumns();
    const now = officeNow(timeZone);
    let first = 8 * 60;
    let last = 18 * 60;
    for (const a of items) {
      first = Math.min(first, toMinutes(a.local_start));
      last = Math.max(last, toMinutes(a.local_end) || 24 * 60);
    }
    const firstHour = Math.floor(first / 60);
    const lastHour = Math.min(24, Math.ceil(last / 60));
    const hours = lastHour - firstHour;
    const pixels = (minutes) => ((minutes - firstHour * 60) * HOUR_PX) / 60;
    const showCounselor = columns.every((c) => c.counselorId === null);

    const head = h("div", { class: "cal-head" }, h("div", { class: "cal-corner" }));
    const body = h("div", { class: "cal-body", style: `height:${hours * HOUR_PX}px` });
    const gutter = h("div", { class: "cal-times", "aria-hidden": "true" });
    for (let hour = firstHour; hour < lastHour; hour += 1) {
      gutter.append(h("span", { style: `top:${(hour - firstHour) * HOUR_PX}px` }, `${String(hour).padStart(2, "0")}:00`));
    }
    body.append(gutter);

    // A week marks today's column; a day view is all one day, so its heading says "Today".
    const week = state.calendar.days > 1;
    let dotDrawn = false;
    for (const column of columns) {
      const isToday = column.day === now.key;
      const markToday = isToday && week;
      const off = offNote(column);
      head.append(
        h("div", { class: `cal-col-head${markToday ? " is-today" : ""}${off && off.kind !== "some-away" ? " is-off" : ""}` },
          h("span", { class: "cal-col-title" }, column.title),
          markToday ? h("span", { class: "today-pill" }, "Today") : null,
          off ? h("span", { class: "cal-col-note" }, off.text) : null),
      );
      const columnItems = items.filter((a) => a.local_date === column.day && (column.counselorId === null || a.counselor.id === column.counselorId));
      const label = state.calendar.days === 1 && column.counselorId !== null && columns.length > 1 ? column.title : dayLabel(column.day, true);
      const col = h("div", {
        class: `cal-col${isToday ? " is-today" : ""}${markToday ? " is-today-marked" : ""}${off && off.kind !== "some-away" ? " is-off" : ""}`,
        role: "group",
        "aria-label": `${label}: ${columnItems.length ? `${columnItems.length} appointment${columnItems.length === 1 ? "" : "s"}` : "no appointments"}`,
      });
      if (off && off.kind !== "some-away") col.append(h("div", { class: `cal-off cal-off-${off.kind}` }, h("span", {}, off.text)));
      for (const { appointment: a, start, end, lane, lanes } of layOut(columnItems)) {
        const top = pixels(start);
        const height = Math.max(22, pixels(end) - top - 2);
        const who = a.counselor.id === me ? "you" : a.counselor.full_name;
        const classes = ["appt-block", `appt-block-${a.status}`];
        // Three sizes: a full block (time, student, counselor), a medium one (time and
        // student), a short one (start and student on one line).
        if (height < 40) classes.push("is-short");
        else if (height < 52) classes.push("is-medium");
        if (state.selected && state.selected.id === a.id) classes.push("is-selected");
        if (fresh.has(a.id)) classes.push("is-new");
        col.append(h("button", {
          type: "button",
          class: classes.join(" "),
          style: `top:${top}px;height:${height}px;left:calc(${(lane * 100) / lanes}% + 3px);width:calc(${100 / lanes}% - 6px)`,
          dataset: { id: a.id },
          "aria-label": `${a.local_start} to ${a.local_end}, ${a.student.full_name}, ${STATUS_LABELS[a.status]}, with ${who}`,
          title: `${a.local_start}–${a.local_end} ${a.student.full_name} (${STATUS_LABELS[a.status]})`,
          "aria-haspopup": "dialog",
          onclick: (event) => openDetail(a, event.currentTarget),
        },
        h("span", { class: "block-time" }, a.local_start, h("span", { class: "block-end" }, `–${a.local_end}`)),
        h("span", { class: "block-name" }, a.student.full_name),
        showCounselor ? h("span", { class: "block-counselor" }, a.counselor.full_name) : null));
      }
      if (isToday && now.minutes >= firstHour * 60 && now.minutes <= lastHour * 60) {
        col.append(h("div", { class: `now-line${dotDrawn ? "" : " has-dot"}`, style: `top:${pixels(now.minutes)}px`, title: `Now (${String(Math.floor(now.minutes / 60)).padStart(2, "0")}:${String(now.minutes % 60).padStart(2, "0")})` }));
      }
      if (isToday) dotDrawn = true;
      body.append(col);
    }
    const grid = h("div", {
      class: `cal cal-${state.calendar.days === 1 ? "day" : "week"}`,
      style: `--cols:${columns.length}`,
    }, head, body);
    calendarBox.replaceChildren(grid);
    const dayIsToday = !week && state.calendar.start === now.key;
    $("#range-today").hidden = !dayIsToday;
    const active = items.filter((a) => ACTIVE.has(a.status));
    const pending = active.filter((a) => a.status === "pending").length;
    summary.textContent = active.length
      ? `${active.length} appointment${active.length === 1 ? "" : "s"}${pending ? ` · ${pending} pending` : ""}`
      : state.calendar.days === 1 ? "No appointments on this day" : "No appointments this week";
    if (focusedId) calendarBox.querySelector(`.appt-block[data-id="${focusedId}"]`)?.focus();
  }

  // --- the list -------------------------------------------------------------------------------

  function listQuery(extra = {}) {
    const params = new URLSearchParams({ limit: PAGE_SIZE, order: "asc", ...extra });
    if (state.status) params.set("status", state.status);
    if (state.counselor === "mine") params.set("mine", "true");
    else if (state.counselor) params.set("counselor_id", state.counselor);
    if (state.from) params.set("from", state.from);
    if (state.to) params.set("to", state.to);
    return params.toString();
  }

  async function loadList() {
    const generation = ++state.generation;
    $("#range-today").hidden = true;
    listBox.setAttribute("aria-busy", "true");
    listError.hidden = true;
    rangeLabel.textContent = state.from && state.to ? `${dayLabel(state.from)} – ${dayLabel(state.to)}`
      : state.from ? `From ${dayLabel(state.from)}`
      : state.to ? `Until ${dayLabel(state.to)}`
      : "All dates";
    try {
      const page = await api(`${BASE}?${listQuery()}`);
      if (generation !== state.generation) return;
      state.list = { items: new Map(), nextCursor: null, hasNext: false, total: 0, totalIsEstimate: false };
      takePage(page);
    } catch (error) {
      if (generation !== state.generation) return;
      listError.textContent = error.message;
      listError.hidden = false;
    } finally {
      if (generation === state.generation) listBox.setAttribute("aria-busy", "false");
    }
  }

  function takePage(page) {
    for (const a of page.items) state.list.items.set(a.id, a);
    state.list.nextCursor = page.next_cursor;
    state.list.hasNext = page.has_next;
    state.list.total = page.total;
    state.list.totalIsEstimate = page.total_is_estimate;
    renderList();
  }

  async function loadMore() {
    if (!state.list.nextCursor) return;
    const generation = state.generation;
    moreButton.disabled = true;
    moreButton.textContent = "Loading…";
    try {
      const page = await api(`${BASE}?${listQuery({ cursor: state.list.nextCursor })}`);
      if (generation === state.generation) takePage(page);
    } catch (error) {
      toast(toasts, error.message, { level: "error" });
    } finally {
      moreButton.disabled = false;
      moreButton.textContent = "Load more";
    }
  }

  const byStart = (a, b) => Date.parse(a.starts_at) - Date.parse(b.starts_at) || a.id - b.id;

  function inList(appointment) {
    if (state.view !== "list") return false;
    if (state.status && appointment.status !== state.status) return false;
    const counselorId = counselorFilterId();
    if (counselorId !== null && appointment.counselor.id !== counselorId) return false;
    if (state.from && appointment.local_date < state.from) return false;
    if (state.to && appointment.local_date > state.to) return false;
    return true;
  }

  function listRow(a) {
    const selected = state.selected && state.selected.id === a.id;
    return h("li", { dataset: { id: a.id }, class: fresh.has(a.id) ? "is-new" : null },
      h("button", {
        type: "button",
        class: `appt-row${selected ? " is-selected" : ""}${ACTIVE.has(a.status) ? "" : " is-inactive"}`,
        "aria-haspopup": "dialog",
        onclick: (event) => openDetail(a, event.currentTarget),
      },
      h("span", { class: "row-when" },
        h("strong", {}, dayLabel(a.local_date)),
        h("span", {}, `${a.local_start}–${a.local_end}`)),
      h("span", { class: "row-main" },
        h("span", { class: "row-line" },
          h("span", { class: "row-student" }, a.student.full_name),
          h("span", { class: "row-admission" }, a.student.admission_no)),
        h("span", { class: "row-reason" }, a.reason || "No reason given")),
      h("span", { class: "row-counselor" }, a.counselor.id === me ? "You" : a.counselor.full_name),
      statusBadge(a.status)));
  }

  function renderList() {
    const focusedId = document.activeElement && document.activeElement.closest(".appt-list li")?.dataset.id;
    const items = [...state.list.items.values()].sort(byStart);
    listBox.replaceChildren(...items.map(listRow));
    listEmpty.hidden = items.length > 0;
    moreButton.hidden = !state.list.hasNext;
    const total = state.list.total.toLocaleString("en-GB");
    summary.textContent = items.length
      ? `${items.length.toLocaleString("en-GB")} of ${state.list.totalIsEstimate ? "about " : ""}${total} appointment${state.list.total === 1 ? "" : "s"}`
      : "\u00a0";
    if (focusedId) listBox.querySelector(`li[data-id="${focusedId}"] button`)?.focus();
  }

  // --- one appointment changed (here, or live) -------------------------------------------------

  function take(appointment, { created = false } = {}) {
    if (inCalendar(appointment)) state.calendar.items.set(appointment.id, appointment);
    else state.calendar.items.delete(appointment.id);
    const listed = state.list.items.has(appointment.id);
    if (inList(appointment)) {
      const items = [...state.list.items.values()].sort(byStart);
      const last = items[items.length - 1];
      // Past the last loaded row with more pages to come: it arrives with "Load more".
      if (listed || !state.list.hasNext || !last || byStart(appointment, last) < 0) {
        if (!listed && created) state.list.total += 1;
        state.list.items.set(appointment.id, appointment);
      }
    } else if (listed) {
      state.list.items.delete(appointment.id);
      state.list.total = Math.max(0, state.list.total - 1);
    }
    if (state.selected && state.selected.id === appointment.id) {
      state.selected = appointment;
      // An open form (a reason being typed, a time being picked) stays, unless the appointment
      // closed meanwhile (the student canceled it): then its actions are gone.
      if (!panelMode || !ACTIVE.has(appointment.status)) renderDetail();
    }
    if (state.view === "list") renderList();
    else renderCalendar();
  }

  // --- the detail panel -------------------------------------------------------------------------

  let panelStatus = null; // the success line under the actions, kept across re-renders
  let panelMode = null; // null, "cancel" or "reschedule"

  function openDetail(appointment, opener = null) {
    const other = !state.selected || state.selected.id !== appointment.id;
    state.selected = appointment;
    if (opener) state.opener = opener;
    if (other) {
      panelStatus = null;
      panelMode = null;
    }
    detail.hidden = false;
    root.classList.add("has-detail");
    renderDetail();
    writeAddress();
    if (state.view === "list") renderList();
    else renderCalendar();
    detailTitle.focus();
  }

  function closeDetail() {
    state.selected = null;
    panelMode = null;
    detail.hidden = true;
    root.classList.remove("has-detail");
    writeAddress();
    if (state.view === "list") renderList();
    else renderCalendar();
    const opener = state.opener && state.opener.dataset ? (state.opener.closest("[data-id]") || state.opener) : null;
    const id = opener && opener.dataset.id;
    const again = id ? root.querySelector(`[data-id="${id}"]`) : null;
    (again && (again.matches("button") ? again : again.querySelector("button")) || counselorSelect).focus();
  }

  function fact(label, value) {
    return [h("dt", {}, label), h("dd", {}, value)];
  }

  function renderDetail() {
    const a = state.selected;
    if (!a) return;
    detailTitle.textContent = a.student.full_name;
    detailSub.textContent = a.student.admission_no;
    const started = Date.now() >= Date.parse(a.starts_at);
    const facts = h("dl", { class: "detail-facts" },
      fact("Status", statusBadge(a.status)),
      fact("When", `${dayLabel(a.local_date, true)}, ${a.local_start}–${a.local_end}`),
      fact("Counselor", a.counselor.id === me ? `${a.counselor.full_name} (you)` : a.counselor.full_name),
      fact("Reason", a.reason || "No reason given"),
      a.status === "canceled"
        ? fact("Canceled", `${a.canceled_by === "student" ? "By the student" : "By the office"}${a.cancel_reason ? `: ${a.cancel_reason}` : ""}`)
        : null,
      a.reschedule_count ? fact("Moved", `${a.reschedule_count} time${a.reschedule_count === 1 ? "" : "s"}`) : null,
      fact("Booked", new Intl.DateTimeFormat("en-GB", { timeZone, dateStyle: "medium", timeStyle: "short" }).format(new Date(a.created_at))));

    const error = h("p", { class: "form-error", role: "alert", hidden: true });
    const showError = (text) => {
      error.textContent = text;
      error.hidden = !text;
    };
    const status = h("p", { class: "detail-status", role: "status" }, panelStatus || "");

    const act = async (path, done) => {
      showError("");
      for (const button of actions.querySelectorAll("button")) button.disabled = true;
      changedHere.set(a.id, Date.now());
      try {
        const updated = await api(`${BASE}/${a.id}/${path}`, { method: "POST" });
        panelStatus = done;
        panelMode = null;
        take(updated);
        detailTitle.focus(); // the button pressed is gone; stay in the panel
      } catch (problem) {
        showError(problem.message);
        for (const button of actions.querySelectorAll("button")) button.disabled = false;
      }
    };

    const button = (label, onclick, kind = "") => h("button", { type: "button", class: `button ${kind}`.trim(), onclick }, label);
    const actions = h("div", { class: "detail-actions" });
    const active = ACTIVE.has(a.status);
    if (a.status === "pending" && !started) {
      actions.append(button("Confirm", () => act("confirm", "Confirmed. The student is told on Telegram."), "button-primary"));
    }
    if (active && !started) {
      actions.append(button("Reschedule", () => openArea("reschedule")));
    }
    if (active) {
      actions.append(button("Cancel appointment", () => openArea("cancel"), "button-danger"));
    }
    if (active && started) {
      actions.append(
        button("Mark completed", () => act("complete", "Marked completed."), "button-primary"),
        button("No-show", () => act("no-show", "Marked as a no-show.")),
      );
    }
    if (!active) actions.append(h("p", { class: "muted small" }, "Nothing more to do: this appointment is closed."));

    let area = null;
    if (panelMode === "cancel" && active) area = cancelForm(a, showError);
    if (panelMode === "reschedule" && active) {
      area = h("div", { class: "detail-area" },
        h("h3", {}, "Reschedule"),
        reschedulePicker({
          appointment: a,
          timeZone,
          onDone: (updated) => {
            changedHere.set(a.id, Date.now());
            panelMode = null;
            panelStatus = `Moved to ${whenText(updated)}. The student is told on Telegram.`;
            take(updated);
            detailTitle.focus();
          },
          onClose: () => {
            panelMode = null;
            renderDetail();
            detailTitle.focus();
          },
        }));
    }
    detailBody.replaceChildren(...[facts, panelMode ? null : actions, area, error, status].filter(Boolean));
  }

  function openArea(mode) {
    panelMode = mode;
    panelStatus = null;
    renderDetail();
    detailBody.querySelector(".detail-area textarea, .detail-area select")?.focus();
  }

  function cancelForm(a, showError) {
    const id = uniqueId("cancel-reason");
    const reason = h("textarea", { id, rows: 3, required: true, minlength: 3, maxlength: 500,
      placeholder: "For example: I am unwell today. Please book another time." });
    const submit = h("button", { type: "submit", class: "button button-danger" }, "Cancel appointment");
    const keep = h("button", { type: "button", class: "button", onclick: () => { panelMode = null; renderDetail(); detailTitle.focus(); } }, "Keep it");
    const form = h("form", { class: "detail-area", "aria-label": "Cancel the appointment" },
      h("h3", {}, "Cancel"),
      h("label", { class: "field", for: id }, h("span", {}, "Reason, sent to the student")),
      reason,
      h("div", { class: "picker-actions" }, submit, keep));
    form.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.stopPropagation();
        keep.click();
      }
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      showError("");
      submit.disabled = true;
      changedHere.set(a.id, Date.now());
      try {
        const updated = await api(`${BASE}/${a.id}/cancel`, { method: "POST", body: { reason: reason.value.trim() } });
        panelMode = null;
        panelStatus = "Canceled. The student is told on Telegram, with your reason.";
        take(updated);
        detailTitle.focus();
      } catch (problem) {
        showError(problem.message);
        submit.disabled = false;
        reason.focus();
      }
    });
    return form;
  }

  // --- live -------------------------------------------------------------------------------------

  const changed = new Map(); // id -> {created, action}
  let flushTimer = null;

  function onEvent(type, data) {
    if (!type.startsWith("appointment.") || !data || !data.appointment) return;
    const id = data.appointment.id;
    const before = changed.get(id) || { created: false, actions: [] };
    before.created = before.created || type === "appointment.created";
    before.actions.push(data.action);
    changed.set(id, before);
    clearTimeout(flushTimer);
    flushTimer = setTimeout(refreshChanged, 150);
  }

  function tell(appointment, news) {
    const mine = changedHere.has(appointment.id) && Date.now() - changedHere.get(appointment.id) < 15_000;
    if (mine) return;
    const when = whenText(appointment);
    const who = appointment.student.full_name;
    if (news.created) toast(toasts, `New booking: ${who}, ${when}, with ${appointment.counselor.full_name}`);
    else if (appointment.status === "canceled" && appointment.canceled_by === "student" && news.actions.includes("canceled")) {
      toast(toasts, `${who} canceled ${when}`);
    } else if (news.actions.includes("rescheduled") && appointment.status === "pending") {
      toast(toasts, `${who} moved their appointment to ${when}`);
    }
  }

  async function refreshChanged() {
    const entries = [...changed.entries()];
    changed.clear();
    await Promise.all(entries.map(async ([id, news]) => {
      let appointment;
      try {
        appointment = await api(`${BASE}/${id}`);
      } catch {
        return; // gone or unreadable: the next full load settles it
      }
      fresh.add(id);
      setTimeout(() => fresh.delete(id), 2000);
      take(appointment, { created: news.created });
      tell(appointment, news);
    }));
  }

  function resync() {
    if (state.view === "list") loadList();
    else loadCalendar();
    if (state.selected) api(`${BASE}/${state.selected.id}`).then(take).catch(() => {});
  }

  // --- start ------------------------------------------------------------------------------------

  readAddress();
  form.addEventListener("submit", (event) => event.preventDefault());
  form.addEventListener("change", (event) => {
    if (event.target.name === "date" && !event.target.value) return;
    readControls();
    reload();
  });
  const step = (direction) => {
    state.date = addDays(state.date, direction * (state.view === "week" ? 7 : 1));
    reload();
  };
  $("#date-prev").addEventListener("click", () => step(-1));
  $("#date-next").addEventListener("click", () => step(1));
  $("#date-today").addEventListener("click", () => {
    state.date = officeNow(timeZone).key;
    reload();
  });
  moreButton.addEventListener("click", loadMore);
  $("#detail-close").addEventListener("click", closeDetail);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !detail.hidden) closeDetail();
  });
  // The "now" line moves, and a day that began while the page was open becomes today.
  setInterval(() => {
    if (state.view !== "list" && state.calendar.start) renderCalendar();
  }, 60_000);

  reload();
  const wanted = new URLSearchParams(location.search).get("appointment");
  if (/^\d+$/.test(wanted || "")) {
    api(`${BASE}/${wanted}`).then((appointment) => openDetail(appointment)).catch((error) => toast(toasts, error.message, { level: "error" }));
  }
  connectLive({ onEvent, onResync: resync, statusElement: $("#live-status") });
}
