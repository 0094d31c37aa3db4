// Live Terraform logs. The page follows the ticket from run to run (plan, apply, check),
// appending output as it arrives, and reloads once nothing runs any more so it shows the
// final state. Without JavaScript the page refreshes itself while a run is active.
(function () {
  "use strict";
  var pre = document.getElementById("live-log");
  if (!pre) { return; }
  pre.scrollTop = pre.scrollHeight;  // the end of a log (the plan, the error) matters most
  if (pre.getAttribute("data-active") !== "1") { return; }
  var url = pre.getAttribute("data-log-url");
  var run = pre.getAttribute("data-run");
  var offset = parseInt(pre.getAttribute("data-offset") || "0", 10);
  var title = document.getElementById("run-title");
  var runStatus = document.getElementById("run-status");
  var ticketStatus = document.getElementById("ticket-status");

  function atBottom() { return pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40; }
  function append(text) {
    var stick = atBottom();
    pre.appendChild(document.createTextNode(text));
    if (stick) { pre.scrollTop = pre.scrollHeight; }
  }

  function poll() {
    fetch(url + "?offset=" + offset, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (data) {
        if (data.text) { append(data.text); }
        offset = data.offset;
        if (runStatus) { runStatus.textContent = data.status_label || data.status; }
        if (ticketStatus && ticketStatus.getAttribute("data-status") !== data.ticket_status) {
          ticketStatus.setAttribute("data-status", data.ticket_status);
          var badge = ticketStatus.querySelector(".status");
          if (badge) {
            badge.textContent = data.ticket_status_label;
            badge.className = "status status-" + data.ticket_status;
          }
        }
        if (data.active) { setTimeout(poll, 1000); return; }
        var next = data.latest_run;
        // A run's own page (data-follow="run") stays on its run.
        if (next && String(next.id) !== String(run) && pre.getAttribute("data-follow") !== "run") {
          // The run ended and the ticket moved on to another one: stream that next.
          append("\n── " + next.title + " ──\n");
          run = String(next.id); url = next.log_url; offset = 0;
          pre.setAttribute("data-log-url", url);
          if (title) { title.textContent = next.title; }
          setTimeout(poll, 300);
          return;
        }
        // Nothing runs any more: show the final state (plan summary, approvals, status).
        setTimeout(function () { window.location.reload(); }, 300);
      })
      .catch(function () { setTimeout(poll, 3000); });
  }
  pre.scrollTop = pre.scrollHeight;
  setTimeout(poll, 500);
})();
