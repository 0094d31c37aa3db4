// The ticket page's plan: filter the resource changes by action. Without JavaScript the
// filters stay hidden and every change is listed.
(function () {
  "use strict";
  var bar = document.getElementById("plan-filters");
  if (!bar) { return; }
  var buttons = Array.prototype.slice.call(bar.querySelectorAll("button[data-filter]"));
  var groups = Array.prototype.slice.call(document.querySelectorAll("#plan-changes .change-group"));
  function show(filter) {
    buttons.forEach(function (b) {
      b.setAttribute("aria-pressed", b.getAttribute("data-filter") === filter ? "true" : "false");
    });
    groups.forEach(function (g) {
      g.hidden = filter !== "all" && g.getAttribute("data-action") !== filter;
    });
  }
  buttons.forEach(function (b) {
    b.addEventListener("click", function () { show(b.getAttribute("data-filter")); });
  });
  bar.hidden = false;
})();
