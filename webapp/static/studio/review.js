// Review queue: the keyboard on the item page, and the verifier-vs-people panel on the run page.
(function () {
  "use strict";

  // ------------------------------------------------------------------ item page keyboard
  // 1/2/3 choose a label, Enter submits, J next, K previous, N writes a note, Esc leaves the note.
  function itemPage(root) {
    var form = document.getElementById("label-form");
    var note = document.getElementById("note");
    var hint = document.getElementById("label-hint");
    var submitting = false;

    function choose(key) {
      if (!form) return;
      form.querySelectorAll(".choices label").forEach(function (label) {
        var on = label.dataset.key === key;
        label.classList.toggle("selected", on);
        if (on) label.querySelector("input").checked = true;
      });
      if (hint) hint.textContent = "";
      if (choices) choices.classList.remove("needs-choice");
    }

    var choices = form ? form.querySelector(".choices") : null;
    var stay = document.getElementById("stay");

    function needChoice() {
      if (hint) hint.textContent = "Choose 1, 2 or 3 first.";
      if (choices) choices.classList.add("needs-choice");
    }

    // Enter submits and opens the next item; Shift+Enter submits and stays on this one.
    function submit(stayHere) {
      if (!form || submitting) return;
      if (!form.querySelector("input[name=label]:checked")) { needChoice(); return; }
      submitting = true;
      if (stay) stay.value = stayHere ? "1" : "";
      if (form.requestSubmit) form.requestSubmit(); else form.submit();
    }

    function go(url) { if (url) window.location.assign(url); }

    if (form) {
      form.querySelectorAll(".choices input").forEach(function (input) {
        input.addEventListener("change", function () { choose(input.closest("label").dataset.key); });
      });
      form.addEventListener("submit", function (event) {
        if (!form.querySelector("input[name=label]:checked")) {
          event.preventDefault();
          submitting = false;
          needChoice();
        }
      });
    }

    document.addEventListener("keydown", function (event) {
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      var typing = event.target && (event.target.tagName === "TEXTAREA" ||
        (event.target.tagName === "INPUT" && event.target.type === "text"));
      if (typing) {
        if (event.key === "Enter" && event.target.tagName === "TEXTAREA" && event.shiftKey) return;  // a new line in the note
        if (event.key === "Enter") { event.preventDefault(); submit(false); }
        else if (event.key === "Escape") { event.target.blur(); }
        return;
      }
      switch (event.key) {
        case "1": case "2": case "3": event.preventDefault(); choose(event.key); break;
        case "Enter": event.preventDefault(); submit(event.shiftKey); break;
        case "j": case "J": event.preventDefault(); go(root.dataset.nextUrl); break;
        case "k": case "K": event.preventDefault(); go(root.dataset.prevUrl); break;
        case "n": case "N": if (note) { event.preventDefault(); note.focus(); } break;
      }
    });
    // Keys pressed before this script ran did nothing; the flag says they now do (browser tests wait on it).
    root.dataset.keyboard = "on";
  }

  // The "queue done" page: J checks again, K goes back to the last item.
  function emptyPage(root) {
    document.addEventListener("keydown", function (event) {
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      if (event.key === "j" || event.key === "J") window.location.reload();
      if ((event.key === "k" || event.key === "K") && root.dataset.prevUrl) window.location.assign(root.dataset.prevUrl);
    });
    root.dataset.keyboard = "on";
  }

  // ------------------------------------------------------------------ run page panel
  var SERIES = [
    ["accuracy", "accuracy", "#3355cc"],
    ["precision", "precision", "#1b7f3b"],
    ["recall", "recall", "#8a5cc2"],
    ["false_accept_rate", "false-accept rate", "#b3261e"],
  ];

  function pct(x) { return x === null || x === undefined ? "–" : (100 * x).toFixed(1) + "%"; }

  function summaryTable(data) {
    var o = data.overall, u = data.unbiased;
    function row(name, s) {
      return "<tr><td>" + name + "</td><td>" + s.n + "</td>" + SERIES.map(function (k) {
        var m = s[k[0]];
        return "<td>" + pct(m.value) + " <small>[" + pct(m.low) + ", " + pct(m.high) + "]</small></td>";
      }).join("") + "<td>" + (s.kappa.value === null ? "–" : s.kappa.value.toFixed(2)) + " <small>(" + s.kappa.n + ")</small></td>" +
        "<td>" + s.no_truth.ties + " / " + s.no_truth.all_unsure + "</td></tr>";
    }
    return "<table class='grid'><thead><tr><th></th><th>judgments</th>" +
      SERIES.map(function (k) { return "<th>" + k[1] + "</th>"; }).join("") +
      "<th>kappa</th><th>ties / all unsure</th></tr></thead><tbody>" +
      row("all reviewed", o) + row("random share", u) + "</tbody></table>" +
      "<p class='muted' id='review-queue-counts'>" + queueCounts(data.queue) + " Intervals are Wilson 95%.</p>";
  }

  // "7 waiting, 1 labelled, 8 in all": waiting has no label yet, labelled has at least one (some of
  // those may wait for a second annotator), and the two add up to the items queued.
  function queueCounts(q) {
    var waiting = q.items - q.labelled, complete = q.items - q.pending, second = q.labelled - complete;
    return "Queue: " + waiting + " waiting, " + q.labelled + " labelled, " + q.items + " in all" +
      (second > 0 ? " (" + second + " labelled once, waiting for a second annotator)." : ".");
  }

  function chart(el, data) {
    if (!window.Plotly || !data.buckets.length) {
      el.innerHTML = "<p class='muted'>No labelled judgments yet.</p>";
      return;
    }
    var x = data.buckets.map(function (b) { return (b.step_min + b.step_max) / 2; });
    var traces = SERIES.map(function (k) {
      var v = data.buckets.map(function (b) { return b[k[0]].value; });
      return {
        x: x, y: v, name: k[1], mode: "lines+markers", line: { color: k[2] },
        text: data.buckets.map(function (b) { return "steps " + b.step_min + "–" + b.step_max + ", n=" + b.n; }),
        error_y: {
          type: "data", symmetric: false, color: k[2], thickness: 1,
          array: data.buckets.map(function (b, i) { var m = b[k[0]]; return m.high === null ? null : m.high - v[i]; }),
          arrayminus: data.buckets.map(function (b, i) { var m = b[k[0]]; return m.low === null ? null : v[i] - m.low; }),
        },
      };
    });
    traces.push({
      x: [Math.min.apply(null, x), Math.max.apply(null, x)], y: [data.alarm.threshold, data.alarm.threshold],
      name: "false-accept alarm", mode: "lines", line: { color: "#b3261e", dash: "dot" },
    });
    window.Plotly.newPlot(el, traces, {
      margin: { t: 10, r: 10, b: 40, l: 50 }, xaxis: { title: "training step" },
      yaxis: { range: [0, 1.02], tickformat: ".0%" }, legend: { orientation: "h" },
    }, { displaylogo: false, responsive: true });
  }

  function runPanel(root) {
    fetch(root.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        if (data.error) throw new Error(data.error);
        document.getElementById("review-summary").innerHTML = summaryTable(data);
        chart(document.getElementById("review-chart"), data);
      })
      .catch(function (err) {
        document.getElementById("review-summary").textContent = "Could not load review metrics: " + err.message;
      });
  }

  var item = document.getElementById("review-item");
  if (item) itemPage(item);
  var empty = document.getElementById("review-empty");
  if (empty) emptyPage(empty);
  var panel = document.getElementById("review-metrics");
  if (panel && !panel.dataset.loaded) { panel.dataset.loaded = "1"; runPanel(panel); }
})();
