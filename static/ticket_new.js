// New-ticket form: show the risk assessment and rollback plan only for environments that
// require them (prod). Without JavaScript the fields stay visible with their note.
(function () {
  "use strict";
  var form = document.getElementById("ticket-form");
  var details = document.getElementById("change-details");
  if (!form || !details) { return; }
  var prodEnvs = (form.getAttribute("data-prod-envs") || "").split(",");
  var select = form.querySelector("select[name=environment]");
  if (!select) { return; }
  function update() {
    details.hidden = prodEnvs.indexOf(select.value) === -1;
  }
  select.addEventListener("change", update);
  update();
})();
