// The composer: only the fields of the chosen kind are shown (without JavaScript all are,
// each labelled with its kind); htmx posts the draft for its preview as it is typed.
"use strict";

function showKindFields() {
  const kind = document.getElementById("kind");
  if (!kind) return;
  const chosen = kind.value === "silent" ? "silent" : kind.value;
  for (const part of document.querySelectorAll(".kind-fields")) {
    part.hidden = !part.dataset.kinds.split(" ").includes(chosen);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll(".js-hidden")) button.hidden = true;
  const kind = document.getElementById("kind");
  if (kind) kind.addEventListener("change", showKindFields);
  showKindFields();
});
