// New-ticket form: show the risk assessment and rollback plan only for environments that
// require them (prod), and preview live what the ticket will need (its risk level and its
// approvals) from the server's own rules (GET /tickets/new/preview/). Without JavaScript
// the fields stay visible with their note and the preview shows the values as loaded.
(function () {
  "use strict";
  var form = document.getElementById("ticket-form");
  if (!form) { return; }
  var details = document.getElementById("change-details");
  var prodEnvs = (form.getAttribute("data-prod-envs") || "").split(",");
  var select = form.querySelector("select[name=environment]");
  var preview = document.getElementById("ticket-preview");
  if (!select) { return; }

  function showDetails() {
    var prod = prodEnvs.indexOf(select.value) !== -1;
    if (details) { details.hidden = !prod; }
    form.classList.toggle("details-required", prod);
  }

  function text(tag, content, id) {
    var el = document.createElement(tag);
    if (id) { el.id = id; }
    el.textContent = content;
    return el;
  }

  function render(data) {
    var heading = preview.querySelector("h2");
    while (preview.lastChild && preview.lastChild !== heading) { preview.removeChild(preview.lastChild); }
    var risk = text("p", "Risk: ", "preview-risk");
    risk.appendChild(text("strong", data.risk_level || "not assessed here"));
    if (data.risk_score !== null) {
      risk.appendChild(document.createTextNode(
        " (score " + data.risk_score + ", from your answers; the plan is scored too)"));
    }
    preview.appendChild(risk);
    var rule = text("p", "Approvals: ", "preview-rule");
    rule.appendChild(text("strong", data.rule));
    preview.appendChild(rule);
    var notes = document.createElement("ul");
    notes.id = "preview-notes";
    (data.notes || []).forEach(function (note) { notes.appendChild(text("li", note)); });
    preview.appendChild(notes);
  }

  var pending = 0;
  function refresh() {
    if (!preview) { return; }
    var params = new URLSearchParams();
    form.querySelectorAll("select, input[type=checkbox]").forEach(function (el) {
      if (!el.name || el.name === "csrfmiddlewaretoken") { return; }
      if (el.type === "checkbox") { if (el.checked) { params.set(el.name, "on"); } }
      else { params.set(el.name, el.value); }
    });
    var mine = ++pending;
    fetch(preview.getAttribute("data-url") + "?" + params.toString(), {
      credentials: "same-origin", headers: { "Accept": "application/json" }
    }).then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) { if (data && mine === pending) { render(data); } })
      .catch(function () { /* the server-rendered preview stays */ });
  }

  select.addEventListener("change", showDetails);
  form.addEventListener("change", function (event) {
    var t = event.target;
    if (t && (t.tagName === "SELECT" || t.type === "checkbox")) { refresh(); }
  });
  showDetails();
  refresh();
})();
