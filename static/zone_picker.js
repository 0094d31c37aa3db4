// The settings page's zone picker: a search box that narrows the zone list (common zones
// first) to the names that match, and picks the first match. Without JavaScript the list
// is a plain select (type the first letters to jump).
(function () {
  "use strict";
  var box = document.getElementById("zone-search-box");
  var search = document.getElementById("zone-search");
  var select = search && document.getElementById(search.getAttribute("aria-controls"));
  var count = document.getElementById("zone-search-count");
  if (!box || !search || !select) { return; }
  var options = Array.prototype.slice.call(select.options);
  function norm(text) { return text.toLowerCase().replace(/[_\s]+/g, " "); }
  search.addEventListener("input", function () {
    var words = norm(search.value).split(" ").filter(Boolean);
    var first = null, shown = 0, seen = {};
    options.forEach(function (option) {
      var text = norm(option.value + " " + option.textContent);
      var match = words.every(function (w) { return text.indexOf(w) !== -1; });
      // A zone listed among the common ones too is shown once.
      var duplicate = seen[option.value] && words.length > 0;
      option.hidden = !match || duplicate;
      option.disabled = option.hidden;
      if (match && !duplicate) {
        seen[option.value] = true;
        shown += 1;
        if (!first) { first = option; }
      }
    });
    Array.prototype.forEach.call(select.querySelectorAll("optgroup"), function (group) {
      group.hidden = !Array.prototype.some.call(group.children, function (o) { return !o.hidden; });
    });
    if (first && words.length) { select.value = first.value; }
    if (count) { count.textContent = words.length ? shown + " zone" + (shown === 1 ? "" : "s") + " match" + (shown === 1 ? "es" : "") : ""; }
  });
  search.addEventListener("keydown", function (e) {
    if (e.key === "Enter") { e.preventDefault(); select.focus(); }
  });
  box.hidden = false;
})();
