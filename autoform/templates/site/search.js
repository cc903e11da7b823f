// Client-side search over window.AUTOFORM_SEARCH (static/search-data.js, the same data as search.json).
(function () {
  "use strict";
  var data = window.AUTOFORM_SEARCH || [];
  var input = document.getElementById("q"), list = document.getElementById("results");
  if (!input || !list) return;
  var hay = data.map(function (u) {
    return [u.kind, u.number, u.label, u.title, u.text, u.book].join(" ").toLowerCase();
  });
  input.addEventListener("input", function () {
    var words = input.value.toLowerCase().split(/\s+/).filter(Boolean), shown = 0;
    list.textContent = "";
    if (!words.length) return;
    for (var i = 0; i < data.length && shown < 50; i++) {
      if (!words.every(function (w) { return hay[i].indexOf(w) >= 0; })) continue;
      var u = data[i], li = document.createElement("li"), a = document.createElement("a");
      var badge = document.createElement("span"), hint = document.createElement("span");
      a.href = u.url;
      a.textContent = (u.kind.charAt(0).toUpperCase() + u.kind.slice(1) + " " + u.number).trim() +
        (u.title ? " (" + u.title + ")" : "");
      badge.className = "badge status-" + (u.status === "defined" ? "proved" : u.status);
      badge.textContent = u.status;
      hint.className = "hint";
      hint.textContent = u.book + (u.label ? " \u00b7 " + u.label : "");
      li.append(a, " ", badge, hint);
      list.appendChild(li);
      shown++;
    }
    if (!shown) { var li = document.createElement("li"); li.textContent = "No match."; list.appendChild(li); }
  });
})();
