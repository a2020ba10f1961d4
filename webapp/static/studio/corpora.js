// Corpora pages: upload progress, ingest progress (polls a small JSON endpoint), plotly charts.
(function () {
  "use strict";

  // Upload with a progress bar: the form is sent by XHR so the bytes sent can be shown; the
  // server's answer (a redirect to the corpus, or the form with its errors) replaces the page.
  var form = document.getElementById("upload-form");
  if (form && window.XMLHttpRequest && window.FormData) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var bar = document.getElementById("upload-progress");
      var fill = bar && bar.firstElementChild;
      var button = form.querySelector("button[type=submit]");
      if (button) { button.disabled = true; button.textContent = "Uploading…"; }
      if (bar) { bar.hidden = false; }
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action || window.location.href);
      xhr.upload.addEventListener("progress", function (e) {
        if (e.lengthComputable && fill) { fill.style.width = (100 * e.loaded / e.total).toFixed(1) + "%"; }
      });
      xhr.addEventListener("load", function () {
        // The XHR followed the redirect already (and consumed its flash message): show that page
        // as it came, under its own address.
        if (xhr.responseURL && xhr.responseURL !== window.location.href) {
          window.history.replaceState(null, "", xhr.responseURL);
        }
        document.open(); document.write(xhr.responseText); document.close();
      });
      xhr.addEventListener("error", function () {
        if (button) { button.disabled = false; button.textContent = "Upload"; }
        alert("The upload failed (network error). Nothing was stored; try again.");
      });
      xhr.send(new FormData(form));
    });
  }

  // Ingest progress: poll until finished, then reload to show the stats.
  var box = document.getElementById("ingest-progress");
  if (box && box.dataset.statusUrl) {
    var fillBar = box.querySelector(".progress > div");
    var stage = box.querySelector(".stage");
    var count = box.querySelector(".count");
    var labelsNode = document.getElementById("stage-labels");
    var stageLabels = labelsNode ? JSON.parse(labelsNode.textContent) : {};
    var embedBox = document.getElementById("embed-progress");
    var embedBar = document.getElementById("embed-bar");
    var embedCount = embedBox && embedBox.querySelector(".embed-count");
    var poll = function () {
      fetch(box.dataset.statusUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
        .then(function (s) {
          if (fillBar) { fillBar.style.width = (100 * (s.overall || 0)).toFixed(1) + "%"; }
          if (stage && s.stage) { stage.textContent = stageLabels[s.stage] || s.stage; }
          if (count) { count.textContent = s.total ? "(" + s.done + " / " + s.total + ")" : ""; }
          // The embedding stage has its own bar: documents embedded of all.
          if (embedBox) {
            embedBox.hidden = s.stage !== "embed";
            if (s.stage === "embed" && embedBar) {
              embedBar.max = s.total || 1; embedBar.value = s.done || 0;
              embedBar.textContent = s.done + " / " + s.total;
              if (embedCount) { embedCount.textContent = s.done + " / " + s.total; }
            }
          }
          if (s.finished) { window.location.reload(); } else { window.setTimeout(poll, 1000); }
        })
        .catch(function () { window.setTimeout(poll, 3000); });
    };
    poll();
  }

  // Charts: figures are embedded as JSON (json_script); plotly.js is served locally.
  var draw = function (targetId, dataId, onClick) {
    var target = document.getElementById(targetId);
    var data = document.getElementById(dataId);
    if (!target || !data || !window.Plotly) { return; }
    var figure = JSON.parse(data.textContent);
    window.Plotly.newPlot(target, figure.data, figure.layout, { responsive: true, displaylogo: false });
    if (onClick) { target.on("plotly_click", onClick); }
  };
  draw("length-histogram", "length-histogram-data");
  draw("cluster-chart", "cluster-chart-data", function (event) {
    var point = event.points && event.points[0];
    if (point && point.customdata !== undefined) {
      window.location.assign(window.location.pathname.replace(/\/$/, "") + "/sets/" + point.customdata + "/");
    }
  });
})();
