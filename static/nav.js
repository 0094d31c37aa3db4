// The navigation on a narrow screen: collapsed behind a "Menu" button (a disclosure,
// aria-expanded). Without JavaScript the button stays hidden and the menu wraps.
(function () {
  "use strict";
  var button = document.getElementById("nav-toggle");
  var menu = document.getElementById("site-menu");
  if (!button || !menu) { return; }
  var narrow = window.matchMedia("(max-width: 760px)");
  function set(open) {
    button.setAttribute("aria-expanded", open ? "true" : "false");
    menu.hidden = !open;
  }
  function fit() {
    button.hidden = !narrow.matches;
    set(!narrow.matches);
  }
  button.addEventListener("click", function () {
    set(button.getAttribute("aria-expanded") !== "true");
  });
  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape" && narrow.matches && button.getAttribute("aria-expanded") === "true") {
      set(false);
      button.focus();
    }
  });
  if (narrow.addEventListener) { narrow.addEventListener("change", fit); }
  fit();
})();
