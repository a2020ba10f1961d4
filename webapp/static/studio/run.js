// The run page's live edge: a websocket to ws/runs/<id>/ that applies state changes, new metrics
// and new samples, and after a reconnect asks for everything after the last seq it has.
// Other scripts (the dashboard charts) subscribe with SpellRun.subscribe(fn): fn(event) per event.
(function () {
  "use strict";
  const page = document.getElementById("run-page");
  if (!page) return;
  const runId = page.dataset.run;
  const eventsUrl = page.dataset.eventsUrl;
  let lastSeq = parseInt(page.dataset.lastSeq, 10);
  let state = page.dataset.state;
  const listeners = [];
  const MAX_SAMPLE_ROWS = 50;
  let retry = 1000;

  window.SpellRun = {
    runId: runId,
    subscribe: function (fn) { listeners.push(fn); },
    lastSeq: function () { return lastSeq; },
  };

  function text(value) { return value === null || value === undefined ? "—" : String(value); }
  function cut(value, n) { const s = text(value); return s.length > n ? s.slice(0, n) + "…" : s; }
  // A metric value as the tables show it (webapp/runs/dashboard.format_number; dashboard.js fmt).
  function fmt(v) {
    if (typeof v !== "number" || !isFinite(v)) return v === null || v === undefined || typeof v === "number" ? "—" : String(v);
    if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString("en-US");
    if (Number.isInteger(v)) return String(v);
    return String(Number(v.toPrecision(3)));
  }

  // The header's curriculum badge (#run-stage): from a `stage` event (stage, max_context, stages)
  // or a metrics event's curriculum group, whichever came last.
  function setStage(stage, maxContext, total) {
    const badge = document.getElementById("run-stage");
    if (!badge || typeof stage !== "number") return;
    if (typeof total === "number") badge.dataset.total = total;
    const shownTotal = Math.max(parseInt(badge.dataset.total, 10) || 0, stage + 1);
    badge.dataset.stage = stage;
    document.getElementById("run-stage-number").textContent = stage + 1;
    document.getElementById("run-stage-total").textContent = shownTotal;
    document.getElementById("run-stage-context").textContent = fmt(maxContext);
    badge.hidden = false;
  }

  function setMetric(name, step, value) {
    const body = document.querySelector("#metrics-table tbody");
    const empty = body.querySelector("tr.empty");
    if (empty) empty.remove();
    let row = body.querySelector('tr[data-name="' + CSS.escape(name) + '"]');
    if (!row) {
      row = document.createElement("tr");
      row.dataset.name = name;
      row.innerHTML = "<td></td><td></td><td></td>";
      const rows = Array.from(body.children);
      const next = rows.find(function (r) { return r.dataset.name > name; });
      body.insertBefore(row, next || null);
    }
    row.children[0].textContent = name;
    row.children[1].textContent = step;
    row.children[2].textContent = fmt(value);
    row.children[2].title = value === null || value === undefined ? "" : String(value);
  }

  function flatten(payload, prefix, out) {
    for (const [key, value] of Object.entries(payload || {})) {
      if (value !== null && typeof value === "object" && !Array.isArray(value)) flatten(value, prefix + key + ".", out);
      else if (typeof value === "number" || value === null) out[prefix + key] = value;
    }
    return out;
  }

  function addSample(event) {
    const body = document.querySelector("#samples-table tbody");
    const empty = body.querySelector("tr.empty");
    if (empty) empty.remove();
    const list = Array.isArray(event.payload.samples) ? event.payload.samples : [event.payload];
    list.forEach(function (s) {
      const row = document.createElement("tr");
      if (s.disagreement) row.className = "disagreement";
      [event.step, s.task, cut(s.question, 300), cut(s.reference || s.answer, 200), cut(s.response, 300),
       s.verdict !== undefined ? s.verdict : s.majority, fmt(s.rule_score)].forEach(function (v) {
        const td = document.createElement("td");
        td.textContent = text(v);
        row.appendChild(td);
      });
      body.insertBefore(row, body.firstChild);
    });
    while (body.children.length > MAX_SAMPLE_ROWS) body.removeChild(body.lastChild);
  }

  function applyEvent(event) {
    if (event.seq <= lastSeq) return;  // already shown (backfill and live overlap)
    lastSeq = event.seq;
    if (event.superseded) return;
    const prefix = { metrics: "", eval: "eval.", stage: "stage." }[event.type];
    if (prefix !== undefined) {
      const values = flatten(event.payload, prefix, {});
      for (const [name, value] of Object.entries(values)) setMetric(name, event.step, value);
      if (event.type === "stage") setStage(event.payload.stage, event.payload.max_context,
                                           Array.isArray(event.payload.stages) ? event.payload.stages.length : undefined);
      else if (event.type === "metrics" && event.payload.curriculum) setStage(event.payload.curriculum.stage, event.payload.curriculum.max_context);
    } else if (event.type === "sample") {
      addSample(event);
    } else if (event.type === "log" || event.type === "error") {
      const log = document.getElementById("run-log");
      log.textContent += "\n[" + event.type + "] step " + event.step + ": " + text(event.payload.message);
    }
    // A step is done when its metrics arrive; other events name the step in progress.
    if (event.type === "metrics") {
      document.getElementById("run-step").textContent = event.step;
      if (progressPhase !== "eval" && progressStep !== null && progressStep <= event.step) applyProgress("");
    }
    listeners.forEach(function (fn) { try { fn(event); } catch (e) { console.error(e); } });
  }

  let progressStep = null, progressPhase = null;  // what the progress line describes

  function applyProgress(line, step, phase) {
    progressStep = step === undefined ? null : step;
    progressPhase = phase === undefined ? null : phase;
    const el = document.getElementById("run-progress");
    if (!el) return;
    el.textContent = line || "";
    el.hidden = !line;
  }

  function applyState(message) {
    const el = document.getElementById("run-state");
    el.textContent = message.state.charAt(0) + message.state.slice(1).toLowerCase();
    el.className = "status " + message.state.toLowerCase();
    document.getElementById("run-attempt").textContent = message.attempt;
    document.getElementById("run-action").textContent = message.requested_action ? "(" + message.requested_action + " requested)" : "";
    if (message.progress_line !== undefined) {
      const latest = Object.values(message.progress || {}).sort(function (a, b) { return (a.time || 0) - (b.time || 0); }).pop();
      applyProgress(message.progress_line, latest ? latest.step : undefined, latest ? latest.phase : undefined);
    }
    if (message.error) {
      const box = document.getElementById("run-error");
      box.hidden = false;
      box.querySelector("pre").textContent = message.error;
    }
    if (message.state !== state) {
      state = message.state;
      // The controls depend on the state: reload them (after the last events have arrived).
      setTimeout(function () { window.location.reload(); }, 1500);
    }
  }

  async function backfill() {
    for (;;) {
      const response = await fetch(eventsUrl + "?after=" + lastSeq, { credentials: "same-origin" });
      if (!response.ok) return;
      const data = await response.json();
      data.events.forEach(applyEvent);
      if (!data.more) return;
    }
  }

  function connect() {
    const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + window.location.host + "/ws/runs/" + runId + "/?after=" + lastSeq);
    socket.onopen = function () { retry = 1000; };
    socket.onmessage = function (message) {
      const data = JSON.parse(message.data);
      if (data.kind === "events") {
        data.events.forEach(applyEvent);
        if (data.more) backfill();
      } else if (data.kind === "state") {
        applyState(data);
      } else if (data.kind === "progress" && state === "RUNNING") {
        applyProgress(data.line, data.step, data.phase);
      }
    };
    socket.onclose = function (e) {
      if (e.code === 4401 || e.code === 4403) return;  // logged out or no access: no retry
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 30000);
    };
  }

  connect();
})();
