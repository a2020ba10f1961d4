// The run form: the preset selector fills every knob with that preset's values and picks a queue
// that fits it (the data comes from the view: #preset-values); the error summary's links open the
// collapsed section of their field and focus it. Without JS the form still works: "Load preset
// values" reloads with the preset, and the summary's links are plain anchors.
(function () {
  "use strict";
  var form = document.getElementById("run-form");
  if (!form) return;
  var dataNode = document.getElementById("preset-values");
  var values = dataNode ? JSON.parse(JSON.parse(dataNode.textContent)) : {};
  var loader = form.elements["preset"];
  var queueNote = document.getElementById("queue-note");

  function applyPreset() {
    var preset = values[loader.value] || {};
    Object.keys(preset).forEach(function (name) {
      var value = preset[name];
      if (name === "_queue_note") { if (queueNote) queueNote.textContent = value; return; }
      var input = form.elements[name];
      if (!input || input instanceof RadioNodeList) return;
      if (input.type === "checkbox") input.checked = !!value;
      else input.value = value === null ? "" : value;
    });
  }
  if (loader) {
    loader.addEventListener("change", applyPreset);
    var button = document.getElementById("load-preset");
    if (button) button.style.display = "none";
  }

  // ---- open / close every collapsed section at once
  var openAll = document.getElementById("open-all-sections");
  if (openAll) {
    openAll.hidden = false;
    openAll.addEventListener("click", function () {
      var sections = form.querySelectorAll("details.section");
      var anyClosed = Array.prototype.some.call(sections, function (d) { return !d.open; });
      sections.forEach(function (d) { d.open = anyClosed; });
      openAll.textContent = anyClosed ? "Close all sections" : "Open all sections";
    });
  }

  // ---- the error summary: focus the field (opening its section first)
  function focusTarget(id) {
    var el = document.getElementById(id);
    if (!el) return false;
    var details = el.closest("details");
    if (details) details.open = true;
    if (el.matches("fieldset, details")) el = el.querySelector("input, select, textarea") || el;
    el.focus();
    if (el.scrollIntoView) el.scrollIntoView({ block: "center" });
    return true;
  }
  var summary = document.getElementById("error-summary");
  if (summary) {
    summary.addEventListener("click", function (event) {
      var link = event.target.closest("a[data-focus]");
      if (link && focusTarget(link.dataset.focus)) event.preventDefault();
    });
    summary.focus();
  }
})();
