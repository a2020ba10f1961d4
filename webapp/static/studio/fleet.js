// The fleet page: polls /fleet/workers.json and refreshes states, heartbeat ages and GPU sparklines.
(function () {
  "use strict";
  var root = document.getElementById("fleet");
  if (!root) return;
  var feed = root.dataset.feed;
  var interval = Math.max(1, parseFloat(root.dataset.interval || "5")) * 1000;
  var hosts = (root.dataset.hosts || "").split(" ").filter(Boolean).sort().join(" ");

  function points(values) {
    var length = 60, width = 120, height = 24, step = width / (length - 1);
    values = values.slice(-length);
    var offset = length - values.length;
    return values.map(function (v, i) {
      v = typeof v === "number" ? Math.min(Math.max(v, 0), 100) : 0;
      return ((offset + i) * step).toFixed(1) + "," + (height - v / 100 * height).toFixed(1);
    }).join(" ");
  }

  function bytes(n) {
    var units = ["B", "KB", "MB", "GB", "TB"], i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return n.toFixed(1) + " " + units[i];
  }

  function set(el, field, text) {
    var node = el.querySelector('[data-field="' + field + '"]');
    if (node) node.textContent = text;
  }

  function refresh(data) {
    var seen = data.workers.map(function (w) { return w.hostname; }).sort().join(" ");
    if (seen !== hosts) { window.location.reload(); return; }  // a worker joined or left
    data.workers.forEach(function (w) {
      var card = document.getElementById("worker-" + w.id);
      if (!card) return;
      var state = card.querySelector('[data-field="state"]');
      if (state && state.textContent !== w.state_label) { window.location.reload(); return; }
      set(card, "age", w.heartbeat_age_s === null ? "?" : w.heartbeat_age_s);
      w.gpus.forEach(function (g) {
        var row = card.querySelector('[data-gpu="' + g.index + '"]');
        if (!row) return;
        set(row, "memory", bytes(g.memory_used) + " / " + bytes(g.memory_total));
        set(row, "utilization", (g.utilization === null ? "–" : g.utilization) + " %");
        set(row, "temperature", (g.temperature === null ? "–" : g.temperature) + " °C");
        var line = row.querySelector("polyline");
        if (line) line.setAttribute("points", points(g.history));
      });
    });
  }

  function poll() {
    fetch(feed, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data) refresh(data); })
      .catch(function () {})
      .finally(function () { setTimeout(poll, interval); });
  }
  setTimeout(poll, interval);
})();
