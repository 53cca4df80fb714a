// Upload page: drag and drop onto the file field and a list of the chosen files.
// Progressive enhancement only: without JavaScript the plain multipart form works the same.
(function () {
  "use strict";
  // After an upload, move the focus to the result so screen readers announce it.
  var result = document.getElementById("h-ergebnis");
  if (result) { result.focus(); }
  var zone = document.querySelector("[data-dropzone]");
  if (!zone) { return; }
  var input = zone.querySelector("input[type=file]");
  var list = zone.querySelector("[data-file-list]");
  var maxBytes = parseInt(zone.getAttribute("data-max-bytes") || "0", 10);

  function show() {
    list.textContent = "";
    Array.prototype.forEach.call(input.files, function (file) {
      var item = document.createElement("li");
      var size = Math.max(1, Math.round(file.size / 1024)) + " KB";
      item.textContent = file.name + " (" + size + ")";
      if (maxBytes && file.size > maxBytes) {
        item.textContent += " – zu groß, wird nicht angenommen";
        item.className = "too-big";
      }
      list.appendChild(item);
    });
  }

  function stop(event) {
    event.preventDefault();
    event.stopPropagation();
  }

  input.addEventListener("change", show);
  ["dragenter", "dragover"].forEach(function (name) {
    zone.addEventListener(name, function (event) { stop(event); zone.classList.add("dragging"); });
  });
  ["dragleave", "drop"].forEach(function (name) {
    zone.addEventListener(name, function (event) { stop(event); zone.classList.remove("dragging"); });
  });
  zone.addEventListener("drop", function (event) {
    var dropped = event.dataTransfer && event.dataTransfer.files;
    if (!dropped || !dropped.length || typeof DataTransfer === "undefined") { return; }
    var merged = new DataTransfer();
    Array.prototype.forEach.call(input.files, function (file) { merged.items.add(file); });
    Array.prototype.forEach.call(dropped, function (file) { merged.items.add(file); });
    input.files = merged.files;
    show();
  });
})();
