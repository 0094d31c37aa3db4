// Live Terraform logs: append new output as it arrives; reload when the run ends
// so the page shows what came next. Without JavaScript the page refreshes itself.
(function () {
  "use strict";
  var pre = document.getElementById("live-log");
  var status = document.getElementById("ticket-status");
  if (!pre || !status) { return; }
  var url = pre.getAttribute("data-log-url");
  var offset = parseInt(pre.getAttribute("data-offset") || "0", 10);
  var active = pre.getAttribute("data-active") === "1";
  var ticketStatus = status.getAttribute("data-status");
  if (!active) { return; }

  function atBottom() { return pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40; }

  function poll() {
    fetch(url + "?offset=" + offset, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (data) {
        if (data.text) {
          var stick = atBottom();
          pre.appendChild(document.createTextNode(data.text));
          if (stick) { pre.scrollTop = pre.scrollHeight; }
        }
        offset = data.offset;
        var runStatus = document.getElementById("run-status");
        if (runStatus) { runStatus.textContent = data.status; }
        if (!data.active || data.ticket_status !== ticketStatus) {
          // The run ended or the ticket moved on: show the new state (and any next run).
          setTimeout(function () { window.location.reload(); }, 400);
          return;
        }
        setTimeout(poll, 1000);
      })
      .catch(function () { setTimeout(poll, 3000); });
  }
  pre.scrollTop = pre.scrollHeight;
  setTimeout(poll, 500);
})();
