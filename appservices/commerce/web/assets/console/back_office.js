// The back-office pages' small enhancements; every page works without them.
// The packing slip's Print button prints the page (hidden without JavaScript, where the
// page says to use the browser's own print).
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button[data-print]")) {
    button.hidden = false;
    button.addEventListener("click", () => window.print());
  }
});
