// counseldesk: the few lines every dashboard page shares. Plain script, no build step.
"use strict";

(function () {
  // The CSRF token of this page (the server also keeps it in an HttpOnly cookie).
  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  // fetch() for the dashboard's own API: sends the session cookie and, for anything but
  // GET/HEAD, the X-CSRF-Token header the server requires.
  function apiFetch(url, options = {}) {
    const method = (options.method || "GET").toUpperCase();
    const headers = new Headers(options.headers || {});
    if (method !== "GET" && method !== "HEAD") headers.set("X-CSRF-Token", csrfToken());
    return fetch(url, { credentials: "same-origin", ...options, headers });
  }

  window.counseldesk = Object.freeze({ csrfToken, fetch: apiFetch });

  document.addEventListener("DOMContentLoaded", () => {
    const button = document.querySelector(".menu-button");
    if (!button) return;
    button.addEventListener("click", () => {
      const open = document.body.classList.toggle("nav-open");
      button.setAttribute("aria-expanded", String(open));
    });
  });
})();
