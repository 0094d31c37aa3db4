// Copy buttons beside read-only fields (the calendar's feed links). Without JavaScript the
// buttons stay hidden and the field is there to select and copy by hand.
(function () {
  "use strict";
  var buttons = document.querySelectorAll("button[data-copy]");
  Array.prototype.forEach.call(buttons, function (button) {
    var field = document.getElementById(button.getAttribute("data-copy"));
    if (!field) { return; }
    var item = button.closest("li") || button.parentNode;
    var status = item.querySelector(".copy-status");
    function say(text) { if (status) { status.textContent = text; } }
    field.addEventListener("focus", function () { field.select(); });
    button.addEventListener("click", function () {
      field.focus();
      field.select();
      var done = function () { say("Copied."); button.textContent = "Copied"; };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(field.value).then(done, function () {
          say("Select the link and copy it (Ctrl+C or ⌘C).");
        });
      } else {
        say("Select the link and copy it (Ctrl+C or ⌘C).");
      }
    });
    button.hidden = false;
  });
})();
