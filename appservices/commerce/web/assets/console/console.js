// The console's progressive enhancement. Every page works without it; with it the shop
// switcher opens the chosen shop at once, and when an htmx request fails (a 403, an expired
// form, a server error) the page says so instead of doing nothing.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    const button = select.form.querySelector("button[type=submit]");
    if (button) button.hidden = true;
    select.addEventListener("change", () => select.form.requestSubmit());
  }
});

// The error page's title and sentence, shown in the console's alert line.
document.addEventListener("htmx:responseError", (event) => {
  const status = document.getElementById("console-status");
  if (!status) return;
  const page = new DOMParser().parseFromString(event.detail.xhr.responseText, "text/html");
  const title = page.querySelector("main h1");
  const said = page.querySelector("main [role=alert]");
  status.textContent = [title && title.textContent, said && said.textContent]
    .filter(Boolean).join(": ") || "That did not work: reload the page and try again.";
  status.hidden = false;
});

document.addEventListener("htmx:sendError", () => {
  const status = document.getElementById("console-status");
  if (!status) return;
  status.textContent = "Mercato could not be reached: check your connection and try again.";
  status.hidden = false;
});
