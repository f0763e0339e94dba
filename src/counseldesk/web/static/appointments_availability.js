// A counselor's availability: the weekly working hours (several ranges a day, one slot length),
// absences, and for administrators the office's closed days. Adding an absence or a closed day
// that collides with booked appointments lists them: each can be rescheduled or canceled with a
// message to the student, or all canceled at once with the same message.

import { $, api, h, toast } from "./support_common.js";
import {
  ACTIVE,
  BASE,
  dayLabel,
  reschedulePicker,
  statusBadge,
  uniqueId,
  whenText,
} from "./appointments.js";

const root = $("#availability");
const counselorId = Number(root.dataset.counselorId);
const me = Number(root.dataset.me);
const timeZone = root.dataset.timezone;
const today = root.dataset.today;
const toasts = $("#toasts");

const hoursForm = $("#hours-form");
const weekBox = $("#week-hours");
const slotInput = $("#slot-minutes");
const hoursError = $("#hours-error");
const hoursStatus = $("#hours-status");
const saveButton = $("#hours-save");
const WEEKDAYS = JSON.parse(weekBox.dataset.weekdays);

function showError(element, text) {
  element.textContent = text || "";
  element.hidden = !text;
}

// --- weekly hours -------------------------------------------------------------------------------

const pad = (n) => String(n).padStart(2, "0");
const minutesOf = (hhmm) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));
const hhmm = (minutes) => `${pad(Math.floor(minutes / 60))}:${pad(minutes % 60)}`;

function rangeRow(weekday, range) {
  const name = WEEKDAYS[weekday];
  const fromId = uniqueId("from");
  const toId = uniqueId("to");
  const row = h("div", { class: "hours-range" },
    h("label", { class: "visually-hidden", for: fromId }, `${name} from`),
    h("input", { type: "time", id: fromId, class: "range-start", value: range.start, step: 300, required: true }),
    h("span", { class: "range-to", "aria-hidden": "true" }, "to"),
    h("label", { class: "visually-hidden", for: toId }, `${name} until`),
    h("input", { type: "time", id: toId, class: "range-end", value: range.end, step: 300, required: true }),
    h("button", {
      type: "button",
      class: "button button-small remove-range",
      "aria-label": `Remove these ${name} hours`,
      title: "Remove",
      onclick: () => {
        const box = row.parentElement;
        row.remove();
        showDayState(box);
        box.closest("fieldset").querySelector(".add-range").focus();
        changed();
      },
    }, "×"));
  return row;
}

function showDayState(box) {
  box.querySelector(".not-working").hidden = box.querySelectorAll(".hours-range").length > 0;
}

function dayFieldset(weekday, ranges) {
  const box = h("div", { class: "weekday-ranges" }, h("p", { class: "not-working" }, "Not working"));
  for (const range of ranges) box.append(rangeRow(weekday, range));
  const add = h("button", {
    type: "button",
    class: "link-button add-range",
    onclick: () => {
      const ends = [...box.querySelectorAll(".range-end")].map((input) => input.value).filter(Boolean);
      // After the last range, or a usual working day when there is none.
      const start = ends.length ? Math.min(23 * 60, minutesOf(ends.sort().at(-1)) + 60) : 9 * 60;
      const end = ends.length ? Math.min(23 * 60 + 55, start + 180) : 17 * 60;
      const row = rangeRow(weekday, { start: hhmm(start), end: hhmm(end) });
      box.insertBefore(row, add);
      showDayState(box);
      row.querySelector("input").focus();
      changed();
    },
  }, `+ Add ${WEEKDAYS[weekday]} hours`);
  box.append(add);
  showDayState(box);
  return h("fieldset", { class: "weekday", dataset: { weekday } }, h("legend", {}, WEEKDAYS[weekday]), box);
}

function showWeek(availability) {
  slotInput.value = availability.slot_minutes;
  weekBox.replaceChildren(...WEEKDAYS.map((_, weekday) => dayFieldset(weekday, availability.days[String(weekday)] || [])));
  weekBox.setAttribute("aria-busy", "false");
  saveButton.disabled = false;
}

function changed() {
  hoursStatus.textContent = "";
}

// The week as the API takes it, or an error message naming the first problem.
function readWeek() {
  const slot = Number(slotInput.value);
  const min = Number(slotInput.min);
  const max = Number(slotInput.max);
  if (!Number.isInteger(slot) || slot < min || slot > max) {
    return { error: `The slot length is a whole number of minutes from ${min} to ${max}.`, focus: slotInput };
  }
  const days = {};
  for (const fieldset of weekBox.querySelectorAll("fieldset")) {
    const weekday = Number(fieldset.dataset.weekday);
    const name = WEEKDAYS[weekday];
    const ranges = [];
    for (const row of fieldset.querySelectorAll(".hours-range")) {
      const start = row.querySelector(".range-start");
      const end = row.querySelector(".range-end");
      if (!start.value || !end.value) return { error: `${name}: give both times of each range.`, focus: start.value ? end : start };
      if (end.value <= start.value) return { error: `${name}: ${end.value} is not after ${start.value}.`, focus: end };
      ranges.push({ start: start.value, end: end.value, input: start });
    }
    ranges.sort((a, b) => a.start.localeCompare(b.start));
    for (let i = 1; i < ranges.length; i += 1) {
      if (ranges[i].start < ranges[i - 1].end) {
        return { error: `${name}: ${ranges[i - 1].start}–${ranges[i - 1].end} and ${ranges[i].start}–${ranges[i].end} overlap.`, focus: ranges[i].input };
      }
    }
    days[weekday] = ranges.map(({ start, end }) => ({ start, end }));
  }
  return { body: { counselor_id: counselorId, slot_minutes: slot, days } };
}

async function loadHours() {
  try {
    showWeek(await api(`${BASE}/availability/${counselorId}`));
  } catch (error) {
    weekBox.setAttribute("aria-busy", "false");
    showError(hoursError, error.message);
  }
}

hoursForm.addEventListener("input", changed);
hoursForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  showError(hoursError, "");
  hoursStatus.textContent = "";
  const week = readWeek();
  if (week.error) {
    showError(hoursError, week.error);
    week.focus.focus();
    return;
  }
  saveButton.disabled = true;
  saveButton.textContent = "Saving…";
  try {
    showWeek(await api(`${BASE}/availability/${counselorId}`, { method: "PUT", body: week.body }));
    hoursStatus.textContent = "Saved. Students can book the new hours now.";
  } catch (error) {
    showError(hoursError, error.message);
  } finally {
    saveButton.disabled = false;
    saveButton.textContent = "Save working hours";
  }
});

// --- appointments that collide with an absence or a closed day -----------------------------------

// The list of collisions under an absence or a closed day. `cancelAll(reason)` cancels what is
// still active and answers the canceled appointments (absences have an endpoint for it; closed
// days cancel one by one).
function conflictPanel({ container, title, conflicts, cancelAll }) {
  const messageId = uniqueId("conflict-message");
  const message = h("textarea", { id: messageId, rows: 3, maxlength: 500, required: true,
    placeholder: "For example: I am away at a training that day. Please book another time — sorry for the change." });
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const summary = h("p", { role: "status" });
  const items = new Map(); // id -> {appointment, li, outcome, actions, area}

  const needMessage = () => {
    const text = message.value.trim();
    if (text.length >= 3) return text;
    showError(error, "Write the message to the students first (at least 3 characters): it goes with the cancellation.");
    message.focus();
    return null;
  };

  const settle = (appointment, text) => {
    const item = items.get(appointment.id);
    item.appointment = appointment;
    item.actions.replaceChildren();
    item.area.replaceChildren();
    item.when.textContent = `${whenText(appointment)} · ${appointment.counselor.full_name}`;
    item.badge.replaceWith((item.badge = statusBadge(appointment.status)));
    item.outcome.textContent = text;
    item.outcome.hidden = false;
    refresh();
  };

  const refresh = () => {
    const open = [...items.values()].filter((item) => ACTIVE.has(item.appointment.status) && item.outcome.hidden);
    summary.textContent = open.length
      ? `${open.length} still to settle.`
      : "All settled. Each student has been told on Telegram.";
    bulk.hidden = open.length === 0;
    messageLabel.hidden = open.length === 0;
  };

  const list = h("ul", { class: "conflict-list" });
  for (const appointment of conflicts) {
    const outcome = h("p", { class: "conflict-outcome", hidden: true });
    const area = h("div", {});
    const actions = h("div", { class: "conflict-actions" });
    const when = h("span", {}, `${whenText(appointment)} · ${appointment.counselor.full_name}`);
    const badge = statusBadge(appointment.status);
    const li = h("li", { class: "conflict-item", dataset: { id: appointment.id } },
      h("div", { class: "conflict-line" },
        h("span", { class: "conflict-who" }, h("strong", {}, appointment.student.full_name), when),
        badge,
        actions),
      outcome,
      area);
    const item = { appointment, li, outcome, actions, area, when, badge };
    items.set(appointment.id, item);

    const reschedule = h("button", { type: "button", class: "button button-small" }, "Reschedule");
    const cancel = h("button", { type: "button", class: "button button-small button-danger" }, "Cancel");
    reschedule.addEventListener("click", () => {
      if (area.firstChild) {
        area.replaceChildren();
        return;
      }
      area.replaceChildren(reschedulePicker({
        appointment: item.appointment,
        timeZone,
        onDone: (updated) => settle(updated, `Moved to ${whenText(updated)}. The student is told.`),
        onClose: () => {
          area.replaceChildren();
          reschedule.focus();
        },
      }));
      area.querySelector("select").focus();
    });
    cancel.addEventListener("click", async () => {
      showError(error, "");
      const reason = needMessage();
      if (!reason) return;
      cancel.disabled = true;
      try {
        const updated = await api(`${BASE}/${item.appointment.id}/cancel`, { method: "POST", body: { reason } });
        settle(updated, "Canceled. The student is told, with your message.");
      } catch (problem) {
        showError(error, problem.message);
        cancel.disabled = false;
      }
    });
    actions.append(reschedule, cancel);
    list.append(li);
  }

  const bulk = h("button", { type: "button", class: "button button-danger" }, "Cancel all with this message");
  bulk.addEventListener("click", async () => {
    showError(error, "");
    const reason = needMessage();
    if (!reason) return;
    bulk.disabled = true;
    try {
      const canceled = await cancelAll(reason, [...items.values()]
        .filter((item) => ACTIVE.has(item.appointment.status) && item.outcome.hidden)
        .map((item) => item.appointment));
      for (const appointment of canceled) {
        if (items.has(appointment.id)) settle(appointment, "Canceled. The student is told, with your message.");
      }
    } catch (problem) {
      for (const appointment of problem.canceled || []) {
        if (items.has(appointment.id)) settle(appointment, "Canceled. The student is told, with your message.");
      }
      showError(error, problem.message);
    } finally {
      bulk.disabled = false;
    }
  });
  const dismiss = h("button", { type: "button", class: "button", onclick: () => container.replaceChildren() }, "Close");
  const messageLabel = h("label", { class: "conflict-message", for: messageId }, h("span", {}, "Message to the students"), message);

  const headingId = uniqueId("conflicts");
  const panel = h("section", { class: "conflicts", "aria-labelledby": headingId },
    h("h3", { id: headingId, tabindex: "-1" }, title),
    h("p", { class: "small" }, "Reschedule each, or cancel: every student is told on Telegram, a cancellation with your message."),
    list,
    messageLabel,
    error,
    h("div", { class: "picker-actions" }, bulk, dismiss),
    summary);
  container.replaceChildren(panel);
  refresh();
  panel.querySelector("h3").focus();
}

function collisionTitle(count, what) {
  return `${count} booked appointment${count === 1 ? "" : "s"} ${count === 1 ? "falls" : "fall"} on ${what}`;
}

// --- absences -----------------------------------------------------------------------------------

const absenceForm = $("#absence-form");
const absenceList = $("#absence-list");

function absenceDays(absence) {
  return absence.starts_on === absence.ends_on
    ? dayLabel(absence.starts_on, true)
    : `${dayLabel(absence.starts_on)} – ${dayLabel(absence.ends_on, true)}`;
}

function showAbsences(items) {
  absenceList.replaceChildren(...items.map((absence) =>
    h("li", { dataset: { id: absence.id } },
      h("span", { class: "item-main" },
        h("strong", {}, absenceDays(absence)),
        h("span", {}, absence.reason || "No reason given")),
      h("button", {
        type: "button",
        class: "button button-small",
        "aria-label": `Remove the absence ${absenceDays(absence)}`,
        onclick: async (event) => {
          const button = event.currentTarget;
          button.disabled = true;
          try {
            await api(`${BASE}/absences/${absence.id}`, { method: "DELETE" });
            toast(toasts, `Absence ${absenceDays(absence)} removed: those days can be booked again.`);
            await loadAbsences();
            absenceForm.elements.starts_on.focus();
          } catch (error) {
            button.disabled = false;
            toast(toasts, error.message, { level: "error" });
          }
        },
      }, "Remove"))));
  $("#absence-empty").hidden = items.length > 0;
}

async function loadAbsences() {
  try {
    const answer = await api(`${BASE}/absences?${new URLSearchParams({ counselor_id: counselorId, from: today })}`);
    showAbsences(answer.items);
    showError($("#absence-list-error"), "");
  } catch (error) {
    showError($("#absence-list-error"), error.message);
  }
}

absenceForm.elements.starts_on.addEventListener("change", () => {
  const { starts_on: first, ends_on: last } = absenceForm.elements;
  last.min = first.value || today;
  if (!last.value || last.value < first.value) last.value = first.value;
});

absenceForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const errorBox = $("#absence-error");
  showError(errorBox, "");
  const { starts_on: first, ends_on: last, reason } = absenceForm.elements;
  if (!first.value || !last.value) {
    showError(errorBox, "Give the first and the last day away.");
    (first.value ? last : first).focus();
    return;
  }
  if (last.value < first.value) {
    showError(errorBox, "The last day cannot be before the first.");
    last.focus();
    return;
  }
  const submit = absenceForm.querySelector('button[type="submit"]');
  submit.disabled = true;
  try {
    const created = await api(`${BASE}/absences`, {
      method: "POST",
      body: { counselor_id: counselorId, starts_on: first.value, ends_on: last.value, reason: reason.value.trim() },
    });
    absenceForm.reset();
    await loadAbsences();
    const active = created.conflicts.filter((a) => ACTIVE.has(a.status));
    if (active.length) {
      conflictPanel({
        container: $("#absence-conflicts"),
        title: collisionTitle(active.length, absenceDays(created.absence)),
        conflicts: active,
        cancelAll: async (message) => (await api(`${BASE}/absences/${created.absence.id}/cancel-conflicts`, {
          method: "POST",
          body: { reason: message },
        })).canceled,
      });
    } else {
      $("#absence-conflicts").replaceChildren();
      toast(toasts, `Absence added: ${absenceDays(created.absence)}. No booked appointments fall on it.`);
    }
  } catch (error) {
    showError(errorBox, error.message);
  } finally {
    submit.disabled = false;
  }
});

// --- closed days (administrators) ----------------------------------------------------------------

const closedForm = $("#closed-form");

async function loadClosedDays() {
  try {
    const answer = await api(`${BASE}/closed-days?${new URLSearchParams({ from: today })}`);
    $("#closed-list").replaceChildren(...answer.items.map((closed) =>
      h("li", {},
        h("span", { class: "item-main" }, h("strong", {}, dayLabel(closed.day, true)), h("span", {}, closed.reason || "No reason given")),
        h("button", {
          type: "button",
          class: "button button-small",
          "aria-label": `Open the office again on ${dayLabel(closed.day, true)}`,
          onclick: async (event) => {
            event.currentTarget.disabled = true;
            try {
              await api(`${BASE}/closed-days/${closed.day}`, { method: "DELETE" });
              await loadClosedDays();
              closedForm.elements.day.focus();
            } catch (error) {
              toast(toasts, error.message, { level: "error" });
            }
          },
        }, "Remove"))));
    $("#closed-empty").hidden = answer.items.length > 0;
    showError($("#closed-list-error"), "");
  } catch (error) {
    showError($("#closed-list-error"), error.message);
  }
}

if (closedForm) {
  closedForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const errorBox = $("#closed-error");
    showError(errorBox, "");
    const { day, reason } = closedForm.elements;
    if (!day.value) {
      showError(errorBox, "Pick the day the office is closed.");
      day.focus();
      return;
    }
    const submit = closedForm.querySelector('button[type="submit"]');
    submit.disabled = true;
    try {
      const created = await api(`${BASE}/closed-days`, { method: "POST", body: { day: day.value, reason: reason.value.trim() } });
      closedForm.reset();
      await loadClosedDays();
      const active = created.conflicts.filter((a) => ACTIVE.has(a.status));
      if (active.length) {
        conflictPanel({
          container: $("#closed-conflicts"),
          title: collisionTitle(active.length, dayLabel(created.closed_day.day, true)),
          conflicts: active,
          // No bulk endpoint for closed days: one by one, stopping at the first refusal (the
          // ones canceled before it travel on the error, so the list still shows them).
          cancelAll: async (message, open) => {
            const canceled = [];
            for (const appointment of open) {
              try {
                canceled.push(await api(`${BASE}/${appointment.id}/cancel`, { method: "POST", body: { reason: message } }));
              } catch (error) {
                error.canceled = canceled;
                throw error;
              }
            }
            return canceled;
          },
        });
      } else {
        $("#closed-conflicts").replaceChildren();
        toast(toasts, `The office is closed on ${dayLabel(created.closed_day.day, true)}. No booked appointments fall on it.`);
      }
    } catch (error) {
      showError(errorBox, error.message);
    } finally {
      submit.disabled = false;
    }
  });
}

// --- start --------------------------------------------------------------------------------------

const picker = $("#counselor-picker");
if (picker) {
  picker.addEventListener("change", () => {
    const id = Number(picker.value);
    location.href = id === me ? "/appointments/availability" : `/appointments/availability?counselor_id=${id}`;
  });
}
loadHours();
loadAbsences();
if (closedForm) loadClosedDays();
