// The catalog's import form: the progress bar follows the file's upload (htmx sends it with
// XMLHttpRequest, whose upload progress it passes on); the report replaces it when done.
"use strict";

document.addEventListener("htmx:xhr:progress", (event) => {
  const bar = document.getElementById("import-progress");
  if (!bar || event.target.id !== "import" || !event.detail.lengthComputable) return;
  bar.hidden = false;
  bar.value = Math.round((event.detail.loaded / event.detail.total) * 100);
});

document.addEventListener("htmx:afterRequest", (event) => {
  const bar = document.getElementById("import-progress");
  if (bar && event.target.id === "import") bar.value = 100;
});
