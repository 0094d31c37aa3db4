// Tell the portal the browser's time zone once, so times show in it until the person picks
// one on the settings page. Without JavaScript, times stay in UTC (the settings page works).
(function () {
  "use strict";
  var form = document.getElementById("tz-guess-form");
  if (!form || !window.Intl || !window.fetch) { return; }
  var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (!zone) { return; }
  var data = new FormData(form);
  data.set("timezone", zone);
  fetch(form.action, { method: "POST", body: data, credentials: "same-origin" })
    .then(function (r) { return r.ok ? r.json() : null; })
    .then(function (body) {
      if (body && body.timezone && body.timezone !== form.getAttribute("data-current")) {
        window.location.reload();  // re-render the times in the new zone
      }
    })
    .catch(function () { /* keep UTC */ });
}());
