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
  // A number as people read it (webapp/runs/dashboard.format_number is the server's twin):
  // 3 significant digits, whole numbers as they are, 1,000 and above as a grouped integer.
  function fmt(v) {
    if (typeof v !== "number" || !isFinite(v)) return "—";
    if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString("en-US");
    if (Number.isInteger(v)) return String(v);
    return String(Number(v.toPrecision(3)));
  }
  // What an axis holds (dashboard.py AXIS_KINDS): a fixed range for shares and rewards, from 0 for
  // counts and amounts, whole-number ticks for counts and the stage. A constant series or one
  // point gets a range around its value instead of Plotly's value ± 1.
  const KINDS = {
    share: { fixed: [0, 1] }, reward: { fixed: [-1, 1] }, count: { zero: true, integer: true },
    stage: { zero: true, integer: true }, amount: { zero: true }, free: {},
  };
  const MARKER_POINTS = 150;  // traces up to this many points show a marker on each point

  function layoutFor(chart) {
    const layout = {
      title: { text: chart.title, font: { size: 14 } }, margin: { l: 55, r: chart.y2_title ? 60 : 15, t: 35, b: 60 },
      xaxis: { title: { text: "step", standoff: 4 }, tick0: 0, dtick: 1, zeroline: false }, yaxis: { title: { text: chart.y } },
      legend: { orientation: "h", y: -0.28, font: { size: 10 } }, showlegend: true, uirevision: "keep",
      hovermode: "closest",
    };
    if (chart.stacked) { layout.barmode = "stack"; layout.bargap = 0.25; }
    if (chart.y2_title) layout.yaxis2 = { title: { text: chart.y2_title }, overlaying: "y", side: "right", showgrid: false, tickmode: "auto", zeroline: false };
    return layout;
  }
  function traceFor(chart, name, axis, steps, values, extra) {
    const y = values || [];
    const t = Object.assign({
      name: name, x: steps || [], y: y, text: y.map(fmt), yaxis: axis === "y2" ? "y2" : "y",
      hovertemplate: "%{text}<extra>" + name + " · step %{x}</extra>",
    }, extra || {});
    if (chart.stacked) {
      // Parts of a step's whole: stacked bars show from the first step (an area needs two).
      t.type = "bar"; t.textposition = "none";
      if (t.line) { t.marker = { color: t.line.color }; delete t.line; }
    } else {
      t.type = "scatter"; t.connectgaps = false; t.cliponaxis = false;
      t.mode = y.length <= MARKER_POINTS ? "lines+markers" : "lines";
      t.marker = { size: 6 };
      if (axis === "y2") t.line = Object.assign({ dash: "dot" }, t.line || {});
    }
    return t;
  }
  // The smallest of 1, 2, 5, 10, 20, 50, ... that is at least `raw`: whole-number tick steps.
  function niceInt(raw) {
    if (!(raw > 1)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    return [1, 2, 5, 10].map(function (m) { return m * p; }).find(function (v) { return v >= raw; });
  }
  function finite(values) { return values.filter(function (v) { return typeof v === "number" && isFinite(v); }); }
  // Ranges and ticks for a drawn chart from the data it holds now: x by whole steps, each y axis by
  // its kind. Only what changed is sent to Plotly.relayout.
  function axesFor(chart, data) {
    const update = {};
    const steps = finite([].concat.apply([], data.map(function (t) { return Array.from(t.x || []); })));
    if (steps.length) {
      let lo = Math.min.apply(null, steps), hi = Math.max.apply(null, steps);
      if (hi - lo < 1) { const c = lo; lo = Math.max(0, c - 1); hi = c + 1; }  // one step: its neighbours
      const pad = chart.stacked ? 0.6 : Math.max(0.2, (hi - lo) * 0.03);
      update["xaxis.range"] = [lo - pad, hi + pad];
      update["xaxis.dtick"] = niceInt((hi - lo) / 8);
    }
    let empty = true;
    [["y", chart.y_kind], ["y2", chart.y2_kind]].forEach(function (ak) {
      const traces = data.filter(function (t) { return (t.yaxis || "y") === ak[0]; });
      if (!traces.length) return;
      const kind = KINDS[ak[1]] || KINDS.free;
      let values;
      if (chart.stacked) {  // the bars' tops: each step's sum
        const sums = {};
        traces.forEach(function (t) {
          Array.from(t.x || []).forEach(function (x, i) { const v = t.y[i]; if (typeof v === "number" && isFinite(v)) sums[x] = (sums[x] || 0) + v; });
        });
        values = Object.values(sums);
      } else {
        values = finite([].concat.apply([], traces.map(function (t) { return Array.from(t.y || []); })));
      }
      if (values.length) empty = false;
      let lo = values.length ? Math.min.apply(null, values) : 0, hi = values.length ? Math.max.apply(null, values) : 1;
      if (kind.fixed) { lo = Math.min(lo, kind.fixed[0]); hi = Math.max(hi, kind.fixed[1]); }
      if (kind.zero) { lo = Math.min(lo, 0); hi = Math.max(hi, 0); }
      if (hi - lo < 1e-9 * Math.max(1, Math.abs(hi))) {  // one value (one point, or constant): a range around it
        const d = kind.integer ? 1 : (Math.abs(hi) || 1) * 0.1;
        if (kind.zero && hi === 0) { lo = 0; hi = 1; } else { lo -= d; hi += d; }
      }
      const pad = (hi - lo) * 0.05;
      const axis = ak[0] === "y" ? "yaxis" : "yaxis2";
      update[axis + ".range"] = [lo - pad, hi + pad];
      if (kind.integer) update[axis + ".dtick"] = niceInt((hi - lo) / 5);
    });
    update.annotations = empty ? [{ text: "no values yet (nothing to average)", showarrow: false, xref: "paper",
                                    yref: "paper", x: 0.5, y: 0.5, font: { color: "#888" } }] : [];
    return update;
  }
  function fitAxes(div, chart) {
    if (!div.data || div.dataset.userZoom) return;
    const update = axesFor(chart, div.data);
    const key = JSON.stringify(update);
    if (key === div.dataset.axes) return;
    div.dataset.axes = key;
    div.dataset.fitting = "1";
    Promise.resolve(Plotly.relayout(div, update)).then(function () { delete div.dataset.fitting; },
                                                       function () { delete div.dataset.fitting; });
  }
  // A person who zooms keeps the zoom (live points do not reset it); a double click (autorange)
  // hands the axes back to fitAxes.
  function watchZoom(div, chart) {
    div.on("plotly_relayout", function (e) {
      if (div.dataset.fitting) return;
      const keys = Object.keys(e || {});
      if (keys.some(function (k) { return /autorange/.test(k); })) {
        delete div.dataset.userZoom; delete div.dataset.axes;
        setTimeout(function () { fitAxes(div, chart); }, 0);
      } else if (keys.some(function (k) { return /axis2?\.range/.test(k); })) {
        div.dataset.userZoom = "1";
      }
    });
  }
  function markers(div, chart) {
    if (chart.stacked || !div.data) return;
    const want = [], idx = [];
    div.data.forEach(function (t, i) {
      const mode = t.y.length <= MARKER_POINTS ? "lines+markers" : "lines";
      if (t.mode !== mode) { want.push(mode); idx.push(i); }
    });
    if (idx.length) Plotly.restyle(div, { mode: want }, idx);
  }
  const PLOT_CONFIG = { responsive: true, displaylogo: false };

  // ---------------------------------------------------------------- run page: charts and alarms

  function runDashboard(root) {
    const status = document.getElementById("dash-status");
    const grid = document.getElementById("dash-charts");
    const page = document.getElementById("run-page");
    const charts = [];  // {chart, div, plotted, index: {name: trace index}, patterns: [[re, axis]]}
    const placed = {};  // metric name -> [{entry, axis}] (a name may be on several charts), [] on none
    let covered = null;  // seq the backfill covers; null until it is drawn
    let state = page ? page.dataset.state : "";
    let hasPoints = false, downsampled = false, maxPoints = 0;
    const pending = [];

    // "Live" only while the run runs: a finished, cancelled or failed run says so (the page reloads
    // on a state change, run.js).
    function showStatus() {
      const note = downsampled ? " · long series shown as min/max of " + maxPoints + " buckets" : "";
      let line;
      if (state === "RUNNING") line = hasPoints ? "Live" + note : "No metrics yet: the charts appear with the first step.";
      else if (state === "QUEUED") line = "Queued: the charts update live once a worker starts the run.";
      else {
        const word = { PAUSED: "Paused", SUCCEEDED: "Finished", FAILED: "Failed", CANCELLED: "Cancelled", LOST: "Lost" }[state] || state;
        line = word + (hasPoints ? ": the charts show the steps it reported" + note + "." : ": no metrics were reported.");
      }
      status.textContent = line;
      status.dataset.live = state === "RUNNING" ? "1" : "0";
      status.classList.toggle("live", state === "RUNNING" && hasPoints);
    }

    function chartsFor(name) {
      if (name in placed) return placed[name];
      placed[name] = [];
      charts.forEach(function (c) {
        const p = c.patterns.find(function (p) { return p[0].test(name); });
        if (p) placed[name].push({ entry: c, axis: p[1] });
      });
      return placed[name];
    }

    function refit(entry) {
      try { markers(entry.div, entry.chart); fitAxes(entry.div, entry.chart); } catch (e) { console.error(e); }
    }

    function addTrace(entry, name, axis, steps, values) {
      const trace = traceFor(entry.chart, name, axis, steps, values);
      if (!entry.plotted) {
        entry.div.hidden = false;
        Plotly.newPlot(entry.div, [trace], layoutFor(entry.chart), PLOT_CONFIG);
        watchZoom(entry.div, entry.chart);
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
          watchZoom(div, chart);
          traces.forEach(function (t, i) { entry.index[t.name] = i; });
          refit(entry);
        }
      });
      if (data.state) state = data.state;
      hasPoints = Object.keys(data.series).length > 0;
      downsampled = Object.values(data.series).some(function (s) { return s.downsampled; });
      maxPoints = data.max_points;
      showStatus();
      status.dataset.lastSeq = data.last_seq;
    }

    function applyValues(step, values) {
      const perChart = new Map();
      Object.entries(values).forEach(function (kv) {
        chartsFor(kv[0]).forEach(function (where) {
          const entry = where.entry;
          try {
            if (!(kv[0] in entry.index)) { addTrace(entry, kv[0], where.axis, [step], [kv[1]]); perChart.set(entry, perChart.get(entry) || null); return; }
            if (!perChart.get(entry)) perChart.set(entry, { x: [], y: [], text: [], idx: [] });
            const u = perChart.get(entry);
            u.x.push([step]); u.y.push([kv[1]]); u.text.push([fmt(kv[1])]); u.idx.push(entry.index[kv[0]]);
          } catch (e) { console.error(e); }  // one chart's trouble leaves the others drawing
        });
      });
      perChart.forEach(function (u, entry) {
        try { if (u) Plotly.extendTraces(entry.div, { x: u.x, y: u.y, text: u.text }, u.idx, MAX_LIVE_POINTS); } catch (e) { console.error(e); }
        refit(entry);
      });
      if (perChart.size && !hasPoints) { hasPoints = true; showStatus(); }
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
        el("td", { text: fmt(t.rule_score) }),
        el("td", { text: [rewards.questioner, rewards.responder, rewards.verifier].map(fmt).join(" / ") }),
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
      watchZoom(div, chart);
      fitAxes(div, chart);
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
