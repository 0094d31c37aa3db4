// The monitoring countdown on the ticket page: the server renders the remaining time; this
// counts it down every second (from the remaining seconds, so the viewer's clock is moot).
(function () {
  "use strict";
  var el = document.getElementById("monitoring-countdown");
  if (!el) return;
  var remaining = parseInt(el.getAttribute("data-remaining"), 10);
  if (isNaN(remaining)) return;
  var end = Date.now() + remaining * 1000;
  function pad(n) { return n < 10 ? "0" + n : String(n); }
  function tick() {
    var left = Math.max(0, Math.round((end - Date.now()) / 1000));
    var h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
    el.textContent = h ? h + ":" + pad(m) + ":" + pad(s) : m + ":" + pad(s);
    if (left === 0) {
      el.classList.add("countdown-over");
      window.clearInterval(timer);
    }
  }
  var timer = window.setInterval(tick, 1000);
  tick();
})();
