// prodromal dashboard: small SVG charts drawn here, nothing loaded from the network.
// A chart is a time axis of local days (integers, days since 1970-01-01) and layers drawn on it.
(function () {
"use strict";

const SVGNS = "http://www.w3.org/2000/svg";
const DAY_MS = 86400000;
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

function el(name, attrs, parent) {
  const e = document.createElementNS(SVGNS, name);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}

function dayDate(d) { return new Date(d * DAY_MS); }
function fmtDay(d) {
  const t = dayDate(d);
  return `${t.getUTCDate()} ${MONTHS[t.getUTCMonth()]} ${t.getUTCFullYear()}`;
}
function isoDay(d) { return dayDate(d).toISOString().slice(0, 10); }

function niceTicks(lo, hi, n) {
  if (!(hi > lo)) { hi = lo + 1; }
  const raw = (hi - lo) / Math.max(1, n);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const steps = [0.1, 0.2, 0.25, 0.5, 1, 2, 2.5, 5, 10].map(m => m * mag);
  let k = steps.findIndex(s => s >= raw);
  if (k < 0) k = steps.length - 1;
  for (;; k--) {  // at least three labelled ticks, so a flat signal still has a readable scale
    const step = steps[k], out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) out.push(+v.toFixed(10));
    if (out.length >= 3 || k === 0) return out;
  }
}

function fmtNum(v) {
  if (v === null || v === undefined) return "–";
  const a = Math.abs(v);
  if (a >= 10000) return (v / 1000).toFixed(0) + "k";
  if (a >= 1000) return (v / 1000).toFixed(1) + "k";
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

// A time chart. opts: {days, x0, x1, height, title, unit, layers: [...], marks: {alerts, labels}}
// layer kinds: line {y, color, dash, width, name}, band {lo, hi, color}, bars {y, color},
//              hline {value, color, dash, name}, points {y, color}
class TimeChart {
  constructor(container, opts) {
    this.o = Object.assign({ height: 150, left: 52, right: 16, top: 26, bottom: 24 }, opts);
    this.container = container;
    this.draw();
  }

  yRange() {
    let lo = Infinity, hi = -Infinity;
    const see = v => { if (v !== null && v !== undefined && isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); } };
    for (const L of this.o.layers) {
      for (const key of ["y", "lo", "hi"]) if (L[key]) L[key].forEach(see);
      if (L.kind === "hline") see(L.value);
      if (L.kind === "bars") see(0);
    }
    if (this.o.yMin !== undefined) lo = Math.min(lo, this.o.yMin);
    if (this.o.yMax !== undefined) hi = Math.max(hi, this.o.yMax);
    if (!isFinite(lo)) return null;
    const pad = (hi - lo) * 0.08 || 1;
    return [lo - (this.o.yMin !== undefined && lo >= this.o.yMin ? 0 : pad), hi + pad];
  }

  draw() {
    const o = this.o;
    const width = Math.max(320, this.container.clientWidth || 800);
    const yr = this.yRange();
    if (!yr) {  // a one-line strip: the signal was never recorded for this participant
      const svg = el("svg", { class: "chart chart-empty", width, height: 30, viewBox: `0 0 ${width} 30`, role: "img",
                              "aria-label": o.title, "data-chart": o.key || "" });
      const t = el("text", { x: o.left, y: 19, class: "chart-title" }, svg);
      t.textContent = o.title + (o.unit ? ` (${o.unit})` : "");
      el("text", { x: o.left + t.textContent.length * 7.4 + 18, y: 19, class: "nodata" }, svg).textContent =
        "no data recorded for this signal";
      this.container.appendChild(svg);
      return;
    }
    const H = o.height;
    const svg = el("svg", { class: "chart", width, height: H, viewBox: `0 0 ${width} ${H}`, role: "img",
                            "aria-label": o.title, "data-chart": o.key || "" });
    this.svg = svg;
    el("text", { x: o.left, y: 15, class: "chart-title" }, svg).textContent = o.title + (o.unit ? ` (${o.unit})` : "");
    const pw = width - o.left - o.right, ph = H - o.top - o.bottom;
    const X = d => o.left + ((d - o.x0 + 0.5) / (o.x1 - o.x0 + 1)) * pw;
    const dayW = pw / (o.x1 - o.x0 + 1);
    this.X = X;
    el("rect", { x: o.left, y: o.top, width: pw, height: ph, class: "plot-bg" }, svg);
    // alerts and labels first, so the data draws over them
    const marks = o.marks || {};
    for (const a of marks.alerts || []) {
      if (a.day < o.x0 || a.day > o.x1) continue;
      const r = el("rect", { x: X(a.day) - dayW / 2, y: o.top, width: Math.max(2, dayW), height: ph,
                             class: `alert-mark alert-${a.level}` }, svg);
      el("title", {}, r).textContent = `${a.level} alert ${fmtDay(a.day)}: ${a.reasons || ""}`;
    }
    // x axis: month starts (or weeks when the range is short)
    const span = o.x1 - o.x0;
    for (let d = o.x0; d <= o.x1; d++) {
      const t = dayDate(d);
      const tick = span > 70 ? t.getUTCDate() === 1 : span > 20 ? t.getUTCDay() === 1 : true;
      if (!tick) continue;
      el("line", { x1: X(d), x2: X(d), y1: o.top, y2: o.top + ph, class: "grid" }, svg);
      if (o.xLabels !== false) {
        el("text", { x: X(d), y: H - 8, class: "tick", "text-anchor": "middle" }, svg).textContent =
          span > 70 ? `${MONTHS[t.getUTCMonth()]} ${t.getUTCFullYear()}` : `${t.getUTCDate()} ${MONTHS[t.getUTCMonth()]}`;
      }
    }
    const [y0, y1] = yr;
    const Y = v => o.top + ph - ((v - y0) / (y1 - y0)) * ph;
    this.Y = Y;
    const ticks = niceTicks(y0, y1, Math.max(3, Math.floor(ph / 28)));
    const step = ticks.length > 1 ? ticks[1] - ticks[0] : 1;
    const dec = step >= 1 ? 0 : step >= 0.1 ? 1 : 2;
    for (const t of ticks) {
      el("line", { x1: o.left, x2: o.left + pw, y1: Y(t), y2: Y(t), class: "grid" }, svg);
      el("text", { x: o.left - 6, y: Y(t) + 4, class: "tick", "text-anchor": "end" }, svg).textContent =
        Math.abs(t) >= 1000 ? fmtNum(t) : t.toFixed(dec);
    }
    const days = o.days;
    const seg = (ys) => {  // polyline segments, broken at missing days
      const parts = []; let cur = [];
      for (let i = 0; i < days.length; i++) {
        const v = ys[i];
        const gap = i > 0 && days[i] - days[i - 1] > 1;
        if (v === null || v === undefined || gap) { if (cur.length) parts.push(cur); cur = []; }
        if (v !== null && v !== undefined) cur.push([X(days[i]), Y(v)]);
      }
      if (cur.length) parts.push(cur);
      return parts;
    };
    for (const L of o.layers) {
      if (L.kind === "band") {
        const pts = days.map((d, i) => [d, L.lo[i], L.hi[i]]).filter(p => p[1] !== null && p[2] !== null);
        let run = [];
        const flush = () => {
          if (run.length) {
            const up = run.map(p => `${X(p[0])},${Y(p[2])}`), dn = run.slice().reverse().map(p => `${X(p[0])},${Y(p[1])}`);
            el("polygon", { points: up.concat(dn).join(" "), class: "band", fill: L.color }, svg);
          }
          run = [];
        };
        for (const p of pts) { if (run.length && p[0] - run[run.length - 1][0] > 1) flush(); run.push(p); }
        flush();
      } else if (L.kind === "bars") {
        days.forEach((d, i) => {
          const v = L.y[i];
          if (v === null || v === undefined) return;
          el("rect", { x: X(d) - dayW * 0.4, y: Math.min(Y(v), Y(0)), width: Math.max(1, dayW * 0.8),
                       height: Math.abs(Y(0) - Y(v)), fill: L.color, class: "bar" }, svg);
        });
      } else if (L.kind === "line") {
        for (const part of seg(L.y)) {
          el("polyline", { points: part.map(p => p.join(",")).join(" "), fill: "none", stroke: L.color,
                           "stroke-width": L.width || 2, "stroke-dasharray": L.dash || "", class: "line" }, svg);
          if (part.length === 1) el("circle", { cx: part[0][0], cy: part[0][1], r: 2.5, fill: L.color }, svg);
        }
      } else if (L.kind === "hline") {
        el("line", { x1: o.left, x2: o.left + pw, y1: Y(L.value), y2: Y(L.value), stroke: L.color,
                     "stroke-dasharray": L.dash || "6 4", "stroke-width": 1.5, class: "hline" }, svg);
        const leftSide = (L.side || "right") === "left";
        el("text", { x: leftSide ? o.left + 4 : o.left + pw - 4, y: Y(L.value) - 4, class: "hline-label",
                     "text-anchor": leftSide ? "start" : "end", fill: L.color }, svg).textContent = L.name;
      } else if (L.kind === "points") {
        days.forEach((d, i) => {
          const v = L.y[i];
          if (v === null || v === undefined) return;
          el("circle", { cx: X(d), cy: Y(v), r: L.r || 4, fill: L.color, stroke: "#fff", "stroke-width": 1.5,
                         class: L.cls || "" }, svg);
        });
      }
    }
    let nLab = 0;
    for (const lab of (marks.labels || []).slice().sort((a, b) => a.day - b.day)) {
      if (lab.day < o.x0 || lab.day > o.x1) continue;
      const x = X(lab.day) - dayW / 2;
      const ly = o.top + 11 + 13 * nLab++;
      el("line", { x1: x, x2: x, y1: o.top - 2, y2: o.top + ph, class: `label-mark label-${lab.event}` }, svg);
      if (o.showLabelText !== false) {
        el("text", { x: x + 4, y: ly, class: `label-text label-${lab.event}` }, svg).textContent =
          lab.event === "symptom_onset" ? "symptom onset" : lab.event;
      }
    }
    // legend
    let lx = o.left + 8 + (o.title.length + (o.unit ? o.unit.length + 3 : 0)) * 7.2 + 16;
    for (const L of o.layers) {
      if (!L.name || L.kind === "hline") continue;
      el("rect", { x: lx, y: 7, width: 12, height: L.kind === "line" ? 3 : 10, y0: 0, fill: L.color,
                   transform: L.kind === "line" ? "translate(0,3)" : "", opacity: L.kind === "band" ? 0.6 : 1 }, svg);
      const t = el("text", { x: lx + 16, y: 16, class: "legend" }, svg);
      t.textContent = L.name;
      lx += 16 + L.name.length * 6.6 + 14;
    }
    this.addHover(svg, pw, ph);
    this.container.appendChild(svg);
  }

  addHover(svg, pw, ph) {
    const o = this.o;
    const cursor = el("line", { y1: o.top, y2: o.top + ph, class: "cursor", visibility: "hidden" }, svg);
    const tip = el("text", { y: o.top + ph - 6, class: "hover-text", visibility: "hidden" }, svg);
    const overlay = el("rect", { x: o.left, y: o.top, width: pw, height: ph, fill: "transparent" }, svg);
    overlay.addEventListener("mousemove", ev => {
      const box = svg.getBoundingClientRect();
      const px = ev.clientX - box.left;
      const d = Math.round(o.x0 - 0.5 + ((px - o.left) / pw) * (o.x1 - o.x0 + 1));
      const i = o.days.indexOf(d);
      cursor.setAttribute("x1", this.X(d)); cursor.setAttribute("x2", this.X(d));
      cursor.setAttribute("visibility", "visible");
      const vals = o.layers.filter(L => L.name && L.y).map(L => `${L.name} ${i >= 0 ? fmtNum(L.y[i]) : "–"}`);
      tip.textContent = `${fmtDay(d)}${i < 0 ? ": no data" : ": " + vals.join(", ")}`;
      const right = this.X(d) > o.left + pw * 0.6;
      tip.setAttribute("x", this.X(d) + (right ? -6 : 6));
      tip.setAttribute("text-anchor", right ? "end" : "start");
      tip.setAttribute("visibility", "visible");
    });
    overlay.addEventListener("mouseleave", () => { cursor.setAttribute("visibility", "hidden"); tip.setAttribute("visibility", "hidden"); });
  }
}

window.ProdromalCharts = { TimeChart, fmtDay, isoDay, fmtNum, el };
})();
