/**
 * The report page's own script, as text: it reads the embedded figures and draws each chart slot with
 * Observable Plot (SVG: sharp at any width, readable by screen readers through its aria labels, and themed by
 * currentColor in light and dark). Plain ES2017 in a string, since it runs in the browser, not in Node; the
 * browser test runs it. Charts are redrawn at the slot's width when the window is resized. The formatters are
 * the tested ones of Format.ts and canary/Stats.ts, embedded as their source.
 */
import { formatEvidence } from "../canary/Stats.js"
import { dayDomain, shortVersion } from "./Format.js"

export const CLIENT_SCRIPT = String.raw`
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var byBehavior = {};
  data.behaviors.forEach(function (b) { byBehavior[b.behavior] = b; });
  var day = function (s) { return new Date(s + "T00:00:00Z"); };
  var fmt3 = function (x) { return x == null ? "-" : x.toFixed(3); };
  ${dayDomain.toString()}
  ${shortVersion.toString()}
  ${formatEvidence.toString()}
  var generated = Date.parse(data.generatedAt);
  // Time axes span whole UTC days up to the end of the day the page was generated, a week at least: one day of
  // data is a day, and nothing is drawn past today. No axis label: the page says days are UTC, and at a phone's
  // width the label ran into the month under the last tick.
  // The last day axis drawn, written on its chart's box (data-x-domain) so that what was drawn can be checked.
  var lastDomain = null;
  function days(dates) {
    var domain = dayDomain(Math.min.apply(null, dates.map(Number)), generated);
    lastDomain = new Date(domain[0]).toISOString() + "/" + new Date(domain[1]).toISOString();
    // Up to two weeks a tick a day (Plot would tick every 12 hours); longer spans keep Plot's own ticks.
    var short = domain[1] - domain[0] <= 14 * 86400000;
    return Object.assign({ type: "utc", label: null, domain: [new Date(domain[0]), new Date(domain[1])] }, short ? { ticks: "day", tickFormat: "%b %-d" } : {});
  }

  function scores(b, width) {
    // Versions are long ids: the legend shows a short label, the tip the full id.
    var pts = b.scores.map(function (p) { return Object.assign({}, p, { date: day(p.day), label: shortVersion(p.version) }); });
    if (pts.length === 0) return null;
    var events = b.events.map(function (e) { return Object.assign({}, e, { date: new Date(e.at) }); });
    return Plot.plot({
      width: width, height: 280, marginLeft: 48,
      x: days(pts.map(function (p) { return p.date; })),
      y: { domain: [0, 1], label: "judge score (0-1)", grid: true },
      color: { legend: true, label: "pack version" },
      marks: [
        Plot.areaY(pts, { x: "date", y1: "low", y2: "high", fill: "label", z: "label", fillOpacity: 0.18, curve: "step" }),
        Plot.lineY(pts, { x: "date", y: "mean", stroke: "label", z: "label", marker: "circle" }),
        Plot.tip(pts, Plot.pointer({ x: "date", y: "mean", title: function (p) { return p.version + " " + p.day + ": " + fmt3(p.mean) + " [" + fmt3(p.low) + ", " + fmt3(p.high) + "], n " + p.n; } })),
        Plot.ruleX(events, { x: "date", stroke: "currentColor", strokeOpacity: 0.5, strokeDasharray: "4 3", title: function (e) { return e.action + " " + e.version + " " + e.at; } })
      ]
    });
  }

  function canary(b, width) {
    var c = b.canaryRun;
    if (!c || c.looks.length === 0) return null;
    var floor = 1e-3;
    // Every betting process starts with wealth 1 before its first sample.
    var rows = [{ n: 0, evidence: 1, toward: "toward promotion" }, { n: 0, evidence: 1, toward: "toward rollback" }];
    c.looks.forEach(function (l) {
      rows.push({ n: l.n, evidence: Math.max(floor, l.eUp), toward: "toward promotion" });
      rows.push({ n: l.n, evidence: Math.max(floor, l.eDown), toward: "toward rollback" });
    });
    var limits = [
      { y: c.thresholds.promote, label: "promote at " + c.thresholds.promote, toward: "toward promotion" },
      { y: c.thresholds.rollback, label: "roll back at " + c.thresholds.rollback, toward: "toward rollback" }
    ];
    var steps = [];
    c.looks.forEach(function (l, i) {
      var before = i === 0 ? null : c.looks[i - 1].percent;
      if (l.percent !== null && (i === 0 || l.percent !== before)) steps.push({ n: l.n, label: l.percent + "%" });
    });
    var top = Math.max(c.thresholds.rollback * 2, Math.max.apply(null, rows.map(function (r) { return r.evidence; })) * 1.5);
    var bottom = Math.min(0.1, Math.min.apply(null, rows.map(function (r) { return r.evidence; })));
    return Plot.plot({
      width: width, height: 280, marginLeft: 56,
      x: { label: "canary samples scored", grid: true, tickFormat: "d" },
      y: { type: "log", domain: [bottom, top], label: "evidence (wealth, log scale)", grid: true, tickFormat: "~g" },
      color: { legend: true, domain: ["toward promotion", "toward rollback"], range: ["#1a7f37", "#cf222e"] },
      marks: [
        Plot.ruleY(limits, { y: "y", stroke: "toward", strokeDasharray: "6 4" }),
        // Promotion's label under its line, rollback's over its own: on a log scale 20 and 40 are close.
        Plot.text(limits.slice(0, 1), { y: "y", text: "label", frameAnchor: "left", dy: 9, fill: "toward" }),
        Plot.text(limits.slice(1), { y: "y", text: "label", frameAnchor: "left", dy: -7, fill: "toward" }),
        Plot.ruleY([1], { stroke: "currentColor", strokeOpacity: 0.3 }),
        // Where the canary's share of requests changed: the evidence beside the traffic it was earned on.
        Plot.ruleX(steps, { x: "n", stroke: "#6e7781", strokeDasharray: "2 3" }),
        Plot.text(steps, { x: "n", text: "label", frameAnchor: "top", dy: 6, dx: 3, textAnchor: "start", fill: "#6e7781" }),
        Plot.lineY(rows, { x: "n", y: "evidence", stroke: "toward", z: "toward", marker: c.looks.length <= 60 ? "circle" : null }),
        Plot.tip(rows, Plot.pointer({ x: "n", y: "evidence", title: function (r) { return r.toward + ": " + formatEvidence(r.evidence, 2) + " after " + r.n + " samples"; } }))
      ]
    });
  }

  function optimizer(b, width) {
    var run = b.optimizer.filter(function (r) { return r.heldOut.length > 0; })[0];
    if (!run) return null;
    var rows = run.heldOut.map(function (h) {
      return { label: h.label, gain: h.meanDiff, low: h.lowerBound, high: h.meanDiff + (h.meanDiff - h.lowerBound), n: h.n };
    });
    return Plot.plot({
      width: Math.min(width, 640), height: 240, marginLeft: 56,
      x: { label: "candidate", type: "band" },
      y: { label: "held-out gain over baseline (score)", grid: true },
      marks: [
        Plot.ruleY([0], { stroke: "currentColor" }),
        Plot.ruleX(rows, { x: "label", y1: "low", y2: "high", strokeWidth: 2 }),
        Plot.dot(rows, { x: "label", y: "gain", r: 5, fill: "currentColor", title: function (r) { return r.label + ": gain " + fmt3(r.gain) + ", 95% lower bound " + fmt3(r.low) + ", n " + r.n; } })
      ]
    });
  }

  function spend(_b, width) {
    var rows = data.spendDaily.map(function (d) { return Object.assign({}, d, { date: day(d.day) }); });
    if (rows.length === 0) return null;
    var budget = data.spend.dailyBudgetUsd;
    var perDay = {};
    rows.forEach(function (r) { perDay[r.day] = (perDay[r.day] || 0) + r.costUsd; });
    var top = Math.max.apply(null, Object.keys(perDay).map(function (k) { return perDay[k]; }));
    // The agent's own spend per day, where its turns carry a cost: what autotune's bars are set beside.
    var agent = data.agentDaily.filter(function (d) { return d.priced > 0; }).map(function (d) { return Object.assign({}, d, { date: day(d.day) }); });
    return Plot.plot({
      width: width, height: 260, marginLeft: 56,
      x: days(rows.map(function (r) { return r.date; }).concat(agent.map(function (a) { return a.date; }))),
      y: { label: "spend (USD)", grid: true },
      color: { legend: true, label: "stage" },
      marks: [
        Plot.rectY(rows, Plot.stackY({ x: "date", interval: "day", y: "costUsd", fill: "stage", title: function (d) { return d.day + " " + d.stage + " " + d.model + ": $" + d.costUsd.toFixed(4) + " (" + d.calls + " calls)"; } })),
        Plot.ruleY([0]),
        agent.length > 0 ? Plot.lineY(agent, { x: "date", y: "usd", stroke: "#1f2328", strokeWidth: 2 }) : null,
        agent.length > 0 ? Plot.dot(agent, { x: "date", y: "usd", fill: "#1f2328", r: 3, title: function (d) { return d.day + " the agent's own spend: $" + d.usd.toFixed(2) + " (" + d.turns + " turns)"; } }) : null,
        // The daily budget, when there is one and the bars come anywhere near it.
        budget > 0 && budget <= top * 3 ? Plot.ruleY([budget], { stroke: "#cf222e", strokeDasharray: "6 4" }) : null,
        budget > 0 && budget <= top * 3 ? Plot.text([budget], { y: function (b) { return b; }, text: function () { return "daily budget $" + budget; }, frameAnchor: "right", dy: -7, fill: "#cf222e" }) : null
      ]
    });
  }

  function judge(b, width) {
    var rows = [];
    b.judge.daily.forEach(function (d) {
      var date = day(d.day);
      if (d.unscoredShare != null) rows.push({ date: date, value: d.unscoredShare, what: "unscored share" });
      if (d.stage2Share != null) rows.push({ date: date, value: d.stage2Share, what: "stage-2 share" });
      if (d.disagreement != null) rows.push({ date: date, value: d.disagreement, what: "stage-1/stage-2 gap" });
    });
    if (rows.length === 0) return null;
    return Plot.plot({
      width: width, height: 220, marginLeft: 48,
      x: days(rows.map(function (r) { return r.date; })),
      y: { domain: [0, 1], label: "share or mean gap (0-1)", grid: true },
      color: { legend: true },
      marks: [Plot.lineY(rows, { x: "date", y: "value", stroke: "what", z: "what", marker: "circle" })]
    });
  }

  function calibration(b, width) {
    var rows = [];
    b.judge.calibration.forEach(function (c) {
      var x = (c.band - 0.5) / 5;
      if (c.reactions > 0) rows.push({ x: x, y: c.thumbsUp / c.reactions, n: c.reactions, what: "users' thumbs-up share" });
      if (c.meanGrade != null) rows.push({ x: x, y: (c.meanGrade - 1) / 4, n: c.grades, what: "your mean grade (1-5 as 0-1)" });
    });
    if (rows.length === 0) return null;
    return Plot.plot({
      width: width, height: 240, marginLeft: 48,
      x: { domain: [0, 1], label: "judge score band", grid: true },
      y: { domain: [0, 1], label: "people (0-1)", grid: true },
      color: { legend: true },
      marks: [
        Plot.line([[0, 0], [1, 1]], { stroke: "#8c959f", strokeDasharray: "4 4" }),
        Plot.line(rows, { x: "x", y: "y", stroke: "what", z: "what" }),
        Plot.dot(rows, { x: "x", y: "y", fill: "what", r: 4, title: function (d) { return d.what + ": " + d.y.toFixed(2) + " over " + d.n + " turns"; } })
      ]
    });
  }

  var charts = { scores: scores, canary: canary, optimizer: optimizer, spend: spend, judge: judge, calibration: calibration };

  function draw() {
    document.querySelectorAll("figure[data-chart]").forEach(function (fig) {
      var box = fig.querySelector(".chart");
      if (!box) return;
      var width = Math.max(300, Math.min(box.clientWidth || 640, 1100));
      lastDomain = null;
      var node = charts[fig.dataset.chart](byBehavior[fig.dataset.behavior], width);
      box.replaceChildren();
      if (node) box.appendChild(node);
      if (lastDomain) box.setAttribute("data-x-domain", lastDomain);
    });
  }

  var pending;
  window.addEventListener("resize", function () { clearTimeout(pending); pending = setTimeout(draw, 150); });
  draw();
})();
`
