// Evidence upload: drop several files onto the ticket page's upload form. Without
// JavaScript the form's multiple file input does the same; with it, a drop fills that
// input and submits the form (the server keeps every file byte for byte) once a kind is
// chosen; dropped before that, the files wait in the input until the person picks one.
(function () {
  "use strict";
  var zone = document.getElementById("evidence-drop");
  var input = document.getElementById("evidence-files");
  var form = document.getElementById("evidence-form");
  var chosen = document.getElementById("evidence-chosen");
  if (!zone || !input || !form) { return; }

  function show(files) {
    if (!chosen) { return; }
    chosen.textContent = "";
    for (var i = 0; i < files.length; i++) {
      var li = document.createElement("li");
      li.textContent = files[i].name + " (" + files[i].size + " bytes)";
      chosen.appendChild(li);
    }
  }

  ["dragenter", "dragover"].forEach(function (name) {
    zone.addEventListener(name, function (event) {
      event.preventDefault();
      zone.classList.add("dragging");
    });
  });
  zone.addEventListener("dragleave", function () { zone.classList.remove("dragging"); });
  zone.addEventListener("drop", function (event) {
    event.preventDefault();
    zone.classList.remove("dragging");
    var files = event.dataTransfer && event.dataTransfer.files;
    if (!files || !files.length) { return; }
    input.files = files;
    show(files);
    if (!form.checkValidity()) {
      // No kind chosen yet: keep the files and say what is missing; Upload sends them.
      if (chosen) {
        var hint = document.createElement("li");
        hint.className = "error";
        hint.textContent = "Choose the kind of evidence, then Upload.";
        chosen.appendChild(hint);
      }
      form.reportValidity();
      return;
    }
    if (form.requestSubmit) { form.requestSubmit(); } else { form.submit(); }
  });
  input.addEventListener("change", function () { show(input.files); });
})();
