// Client-side search over window.AUTOFORM_SEARCH (static/search-data.js, the same data as search.json):
// names (kind and number, title, label, Lean declaration), numbers and statements. Every word typed must occur;
// a unit whose number is the query, then one whose name or label contains it, comes first. Results are built
// with textContent only, so nothing from the data is ever parsed as HTML.
(function () {
  "use strict";
  var data = window.AUTOFORM_SEARCH || [];
  var input = document.getElementById("q"), list = document.getElementById("results");
  if (!input || !list) return;
  function name(u) { return (u.kind.charAt(0).toUpperCase() + u.kind.slice(1) + " " + u.number).trim(); }
  var hay = data.map(function (u) {
    return [u.kind, u.number, u.label, u.title, u.decl || "", u.text, u.book].join(" ").toLowerCase();
  });
  var names = data.map(function (u) {
    return [name(u), u.label, u.title, u.decl || ""].join(" ").toLowerCase();
  });
  function score(i, q, words) {
    var u = data[i];
    if (u.number && (u.number.toLowerCase() === q || name(u).toLowerCase() === q)) return 0;
    if (words.every(function (w) { return names[i].indexOf(w) >= 0; })) return 1;
    return 2;
  }
  function run() {
    var q = input.value.trim().toLowerCase(), words = q.split(/\s+/).filter(Boolean);
    list.textContent = "";
    if (!words.length) return;
    var hits = [];
    for (var i = 0; i < data.length; i++) {
      if (words.every(function (w) { return hay[i].indexOf(w) >= 0; })) hits.push([score(i, q, words), i]);
    }
    hits.sort(function (a, b) { return a[0] - b[0] || a[1] - b[1]; });
    hits.slice(0, 50).forEach(function (h) {
      var u = data[h[1]], li = document.createElement("li"), a = document.createElement("a");
      var badge = document.createElement("span"), hint = document.createElement("span");
      a.href = u.url;
      a.textContent = name(u) + (u.title ? " (" + u.title + ")" : "");
      badge.className = "badge status-" + (u.status === "defined" ? "proved" : u.status);
      badge.textContent = u.status;
      hint.className = "hint";
      hint.textContent = u.book + (u.label ? " \u00b7 " + u.label : "") + (u.decl ? " \u00b7 " + u.decl : "");
      li.className = "result";
      li.append(a, " ", badge, hint);
      list.appendChild(li);
    });
    if (!hits.length) { var li = document.createElement("li"); li.textContent = "No match."; list.appendChild(li); }
    list.setAttribute("data-count", String(hits.length));
  }
  input.addEventListener("input", run);
  if (input.value) run();
})();
