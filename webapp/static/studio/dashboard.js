// The live dashboard. Run page: charts backfilled from /runs/<id>/series.json (min/max downsampled
// on the server), then extended with Plotly.extendTraces from the run's websocket events; health
// alarms re-read from alarms.json as metrics arrive; the question / answer / verdict stream with
// filters and a step slider. Compare page: several runs overlaid on the same charts.
//
// The websocket itself belongs to run.js (window.SpellRun): it reconnects with exponential backoff
// and ?after=<last seq>, and hands every new event to SpellRun.subscribe(fn) exactly once. The
// charts skip events already covered by series.json (its last_seq) and queue the ones that arrive
// before the backfill is drawn.
(function () {
  "use strict";

  const MAX_LIVE_POINTS = 20000;  // per trace: older points scroll out (a reload re-downsamples)
  const MAX_TRIPLE_ROWS = 200;
  const ALARM_REFRESH_MS = 2000;
  const DASHES = ["solid", "dot", "dash", "dashdot", "longdash", "longdashdot"];
  const PREFIX = { metrics: "", eval: "eval.", stage: "stage." };

  function text(v) { return v === null || v === undefined || v === "" ? "—" : String(v); }
  function cut(v, n) { const s = text(v); return s.length > n ? s.slice(0, n) + "…" : s; }
  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(function (kv) {
      if (kv[0] === "text") node.textContent = kv[1]; else node.setAttribute(kv[0], kv[1]);
    });
    (children || []).forEach(function (c) { node.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return node;
  }
  function flatten(payload, prefix, out) {
    Object.entries(payload || {}).forEach(function (kv) {
      const value = kv[1];
      if (value !== null && typeof value === "object" && !Array.isArray(value)) flatten(value, prefix + kv[0] + ".", out);
      else if (value === null || typeof value === "number") out[prefix + kv[0]] = value;
    });
    return out;
  }
  function patternRe(p) {
    return new RegExp("^" + p.split(".").map(function (part) {
      return part === "*" ? "[^.]+" : part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    }).join("\\.") + "$");
  }
  function layoutFor(chart) {
    const layout = {
      title: { text: chart.title, font: { size: 14 } }, margin: { l: 50, r: chart.y2_title ? 55 : 15, t: 35, b: 60 },
      xaxis: { title: { text: "step", standoff: 4 } }, yaxis: { title: { text: chart.y } },
      legend: { orientation: "h", y: -0.28, font: { size: 10 } }, showlegend: true, uirevision: "keep",
    };
    if (chart.y2_title) layout.yaxis2 = { title: { text: chart.y2_title }, overlaying: "y", side: "right" };
    return layout;
  }
  function traceFor(chart, name, axis, steps, values, extra) {
    const t = Object.assign({
      type: "scatter", mode: chart.markers ? "lines+markers" : "lines", name: name, x: steps || [], y: values || [],
      yaxis: axis === "y2" ? "y2" : "y", connectgaps: false, hovertemplate: "%{y}<extra>" + name + " step %{x}</extra>",
    }, extra || {});
    if (chart.stacked) t.stackgroup = "one";
    if (axis === "y2") t.line = Object.assign({ dash: "dot" }, t.line || {});
    return t;
  }
  const PLOT_CONFIG = { responsive: true, displaylogo: false };

  // ---------------------------------------------------------------- run page: charts and alarms

  function runDashboard(root) {
    const status = document.getElementById("dash-status");
    const grid = document.getElementById("dash-charts");
    const charts = [];  // {chart, div, plotted, index: {name: trace index}, patterns: [[re, axis]]}
    const placed = {};  // metric name -> chart entry or null (on no chart)
    let covered = null;  // seq the backfill covers; null until it is drawn
    const pending = [];

    function chartFor(name) {
      if (name in placed) return placed[name];
      placed[name] = null;
      for (const c of charts) {
        for (const p of c.patterns) {
          if (p[0].test(name)) { placed[name] = { entry: c, axis: p[1] }; return placed[name]; }
        }
      }
      return null;
    }

    function addTrace(entry, name, axis, steps, values) {
      const trace = traceFor(entry.chart, name, axis, steps, values);
      if (!entry.plotted) {
        entry.div.hidden = false;
        Plotly.newPlot(entry.div, [trace], layoutFor(entry.chart), PLOT_CONFIG);
        entry.plotted = true;
      } else {
        Plotly.addTraces(entry.div, trace);
      }
      entry.index[name] = Object.keys(entry.index).length;
    }

    function draw(data) {
      data.charts.forEach(function (chart) {
        const div = el("div", { class: "dash-chart", id: "chart-" + chart.key, "data-chart": chart.key });
        div.hidden = true;
        grid.appendChild(div);
        const entry = {
          chart: chart, div: div, plotted: false, index: {},
          patterns: chart.patterns.map(function (p) { return [patternRe(p), "y"]; })
            .concat(chart.y2_patterns.map(function (p) { return [patternRe(p), "y2"]; })),
        };
        charts.push(entry);
        const traces = chart.traces.filter(function (t) { return data.series[t.name]; });
        if (traces.length) {
          entry.plotted = true;
          div.hidden = false;
          Plotly.newPlot(div, traces.map(function (t) {
            const s = data.series[t.name];
            return traceFor(chart, t.name, t.axis, s.steps, s.values);
          }), layoutFor(chart), PLOT_CONFIG);
          traces.forEach(function (t, i) { entry.index[t.name] = i; placed[t.name] = { entry: entry, axis: t.axis }; });
        }
      });
      const downsampled = Object.values(data.series).some(function (s) { return s.downsampled; });
      status.textContent = Object.keys(data.series).length
        ? "Live" + (downsampled ? " · long series shown as min/max of " + data.max_points + " buckets" : "")
        : "No metrics yet: the charts appear with the first step.";
      status.dataset.lastSeq = data.last_seq;
    }

    function applyValues(step, values) {
      const perChart = new Map();
      Object.entries(values).forEach(function (kv) {
        const where = chartFor(kv[0]);
        if (!where) return;
        const entry = where.entry;
        if (!(kv[0] in entry.index)) { addTrace(entry, kv[0], where.axis, [step], [kv[1]]); return; }
        if (!perChart.has(entry)) perChart.set(entry, { x: [], y: [], idx: [] });
        const u = perChart.get(entry);
        u.x.push([step]); u.y.push([kv[1]]); u.idx.push(entry.index[kv[0]]);
      });
      perChart.forEach(function (u, entry) {
        Plotly.extendTraces(entry.div, { x: u.x, y: u.y }, u.idx, MAX_LIVE_POINTS);
      });
      if (perChart.size || Object.keys(values).length) status.textContent = status.textContent.replace(/^No metrics yet.*/, "Live");
    }

    let alarmTimer = null, alarmAt = 0;
    function renderAlarms(list) {
      const box = document.getElementById("dash-alarms");
      box.textContent = "";
      list.forEach(function (a) {
        box.appendChild(el("div", { class: "alarm", role: "alert", "data-code": a.code }, [
          el("h3", { text: a.title }), el("p", { text: a.message }),
        ]));
      });
    }
    function refreshAlarms() {
      const wait = Math.max(0, alarmAt + ALARM_REFRESH_MS - Date.now());
      if (alarmTimer) return;
      alarmTimer = setTimeout(function () {
        alarmTimer = null; alarmAt = Date.now();
        fetch(root.dataset.alarmsUrl, { credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.json() : null; })
          .then(function (d) { if (d) renderAlarms(d.alarms); })
          .catch(function () {});
      }, wait);
    }

    function onEvent(event) {
      if (covered === null) { pending.push(event); return; }
      if (event.seq <= covered || event.superseded) return;
      const prefix = PREFIX[event.type];
      if (prefix === undefined) return;
      applyValues(event.step, flatten(event.payload, prefix, {}));
      if (event.type === "metrics") refreshAlarms();
    }

    function backfill(attempt) {
      fetch(root.dataset.seriesUrl, { credentials: "same-origin" })
        .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
        .then(function (data) {
          draw(data);
          renderAlarms(data.alarms);
          covered = data.last_seq;
          pending.splice(0).forEach(onEvent);
        })
        .catch(function (e) {
          status.textContent = "Could not load the charts (" + e.message + "); retrying…";
          setTimeout(function () { backfill(attempt + 1); }, Math.min(30000, 1000 * Math.pow(2, attempt)));
        });
    }

    return { onEvent: onEvent, start: function () { backfill(0); } };
  }

  // ---------------------------------------------------------------- run page: the triple stream

  function tripleStream(root) {
    const form = document.getElementById("triple-filters");
    const body = document.querySelector("#triples-table tbody");
    const more = document.getElementById("triples-more");
    const statusEl = document.getElementById("triples-status");
    const slider = document.getElementById("triple-step");
    const sliderValue = document.getElementById("triple-step-value");
    const live = document.getElementById("triple-live");
    const sampleBase = root.dataset.sampleBase;
    let nextBefore = 0, loading = 0;

    function filters() {
      const f = {};
      ["task", "role", "verdict"].forEach(function (k) { if (form.elements[k].value) f[k] = form.elements[k].value; });
      ["disagreement", "split_votes"].forEach(function (k) { if (form.elements[k].checked) f[k] = "1"; });
      if (!live.checked) f.step = slider.value;
      return f;
    }

    function disagreement(t) {
      if (typeof t.disagreement === "boolean") return t.disagreement;
      const m = typeof t.majority === "number" ? t.majority : parseFloat(t.majority);
      return !isNaN(m) && m >= 0 && (t.rule_score === 0 || t.rule_score === 1) && m !== t.rule_score;
    }
    function split(t) {
      if (typeof t.split_votes === "boolean") return t.split_votes;
      const valid = new Set((t.votes || []).filter(function (v) { return v !== null && v !== -1; }).map(String));
      return valid.size > 1;
    }
    function matches(t, step, f) {
      if (f.step !== undefined && String(step) !== String(f.step)) return false;
      if (f.task && t.task !== f.task) return false;
      if (f.verdict && t.verdict !== f.verdict && String(t.majority) !== f.verdict) return false;
      if (f.role === "questioner" && t.response) return false;
      if (f.role === "responder" && !t.response) return false;
      if (f.role === "verifier" && (!t.verdict || t.verdict === "SKIPPED")) return false;
      if (f.disagreement && !disagreement(t)) return false;
      if (f.split_votes && !split(t)) return false;
      return true;
    }

    function row(t, step, href) {
      const rewards = t.rewards || {};
      const flags = [];
      if (disagreement(t)) flags.push(el("span", { class: "flag", text: "rule ≠ verifier" }));
      if (split(t)) flags.push(el("span", { class: "flag", text: "split" }));
      if (t.questioner_status && t.questioner_status !== "valid") flags.push(el("span", { class: "flag", text: t.questioner_status }));
      const votes = (t.votes || []).map(function (v) { return v === 1 ? "Y" : v === 0 ? "N" : "?"; }).join("");
      const tr = el("tr", { class: disagreement(t) ? "disagreement" : "" }, [
        el("td", { text: text(step) }), el("td", { text: text(t.task) }),
        el("td", { class: "text", text: cut(t.question, 400) }), el("td", { class: "text", text: cut(t.reference || t.answer, 200) }),
        el("td", { class: "text", text: cut(t.response, 400) }),
        el("td", {}, [text(t.verdict || t.majority) + (votes ? " (" + votes + ")" : "")].concat(flags.length ? [" "] : []).concat(flags)),
        el("td", { text: text(t.rule_score) }),
        el("td", { text: [rewards.questioner, rewards.responder, rewards.verifier].map(function (r) {
          return typeof r === "number" ? r.toFixed(2) : "—"; }).join(" / ") }),
        el("td", {}, [el("a", { href: href, text: "open" })]),
      ]);
      return tr;
    }

    function load(reset) {
      const f = filters();
      if (reset) { nextBefore = 0; body.textContent = ""; }
      if (nextBefore) f.before_id = nextBefore;
      const token = ++loading;
      statusEl.textContent = "Loading…";
      fetch(root.dataset.triplesUrl + "?" + new URLSearchParams(f), { credentials: "same-origin" })
        .then(function (r) { return r.json().then(function (d) { if (!r.ok) throw new Error(d.error || r.status); return d; }); })
        .then(function (d) {
          if (token !== loading) return;
          d.samples.forEach(function (s) { body.appendChild(row(s, s.step, sampleBase + s.id + "/")); });
          nextBefore = d.next_before_id;
          more.hidden = !d.more;
          statusEl.textContent = body.children.length ? "" : "No triples match.";
        })
        .catch(function (e) { statusEl.textContent = "Could not load triples: " + e.message; });
    }

    function onEvent(event) {
      if (event.type === "metrics" || event.type === "sample") {
        const max = Math.max(parseInt(slider.max, 10) || 0, event.step);
        slider.max = max;
        if (live.checked) { slider.value = max; sliderValue.textContent = max; }
      }
      if (event.type !== "sample" || event.superseded) return;
      const f = filters();
      if (!live.checked && String(event.step) !== String(f.step)) return;
      const list = Array.isArray(event.payload.samples) ? event.payload.samples : [event.payload];
      list.forEach(function (t, i) {
        if (!matches(t, event.step, f)) return;
        const tr = row(t, event.step, sampleBase + "seq/" + event.seq + "/" + i + "/");
        tr.dataset.seq = event.seq;
        body.insertBefore(tr, body.firstChild);
      });
      while (body.children.length > MAX_TRIPLE_ROWS) body.removeChild(body.lastChild);
      if (body.children.length) statusEl.textContent = "";
    }

    form.addEventListener("change", function (e) {
      if (e.target === slider) live.checked = false;
      sliderValue.textContent = slider.value;
      load(true);
    });
    slider.addEventListener("input", function () { sliderValue.textContent = slider.value; });
    more.addEventListener("click", function () { load(false); });
    return { onEvent: onEvent, start: function () { load(true); } };
  }

  // ---------------------------------------------------------------- compare page

  function comparePage(data) {
    const grid = document.getElementById("compare-charts");
    const palette = ["#3355cc", "#d9480f", "#2b8a3e", "#862e9c", "#c2255c", "#0b7285"];
    data.forEach(function (chart) {
      const div = el("div", { class: "dash-chart", id: "compare-" + chart.key });
      grid.appendChild(div);
      const metrics = [];
      const traces = chart.traces.map(function (t) {
        if (metrics.indexOf(t.metric) < 0) metrics.push(t.metric);
        return traceFor(chart, t.label, t.axis, t.steps, t.values, {
          line: { color: palette[t.color % palette.length], dash: DASHES[metrics.indexOf(t.metric) % DASHES.length] },
          legendgroup: "run-" + t.run,
        });
      });
      Plotly.newPlot(div, traces, layoutFor(chart), PLOT_CONFIG);
    });
  }

  // ---------------------------------------------------------------- start

  function init() {
    const compareData = document.getElementById("compare-data");
    if (compareData) { comparePage(JSON.parse(compareData.textContent)); return; }
    const root = document.getElementById("dashboard");
    if (!root) return;
    const dash = runDashboard(root);
    const stream = tripleStream(root);
    if (window.SpellRun) {
      window.SpellRun.subscribe(function (event) { dash.onEvent(event); stream.onEvent(event); });
    }
    dash.start();
    stream.start();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
