// prodromal dashboard: cohort overview and participant view (data from /api/*, same origin only).
(function () {
"use strict";

const { TimeChart, fmtDay, isoDay, fmtNum } = window.ProdromalCharts;
const LEVEL = { 0: "green", 1: "yellow", 2: "red" };
const COLORS = { rhr: "#c0392b", band: "#b8c2cc", base: "#7f8c8d", hrv: "#2e86de", resp: "#16a085", temp: "#d35400",
                 steps: "#8e9aaf", score: "#6c3483", yellow: "#e6b800", red: "#d63031", capture: "#5d9c59" };
const $ = sel => document.querySelector(sel);
let cohort = null;

async function api(path) {
  const r = await fetch(path, { credentials: "same-origin" });
  if (!r.ok) {
    let msg = `${r.status}`;
    try { msg = (await r.json()).error || msg; } catch (e) { /* not JSON */ }
    throw new Error(msg);
  }
  return r.json();
}

function showError(e) {
  const box = $("#error");
  box.textContent = `Cannot load data: ${e.message || e}`;
  box.hidden = false;
}

function text(tag, content, cls) {
  const e = document.createElement(tag);
  if (content !== undefined && content !== null) e.textContent = content;
  if (cls) e.className = cls;
  return e;
}

function chip(level, nodata) {
  if (nodata) return text("span", "no data", "chip chip-none");
  return text("span", level === 2 ? "red" : level === 1 ? "yellow" : "no alert", `chip chip-${LEVEL[level] || "none"}`);
}

function strip(levels, capture, lastDay) {
  const box = text("span", null, "strip");
  const n = levels.length;
  levels.forEach((lv, i) => {
    const c = capture[i];
    let cls = "none", what = "no data";
    if (lv !== null && lv !== undefined) {
      cls = lv > 0 ? LEVEL[lv] : (c !== null && c !== undefined && c < 0.5 ? "low" : "green");
      what = lv > 0 ? `${LEVEL[lv]} alert` : (cls === "low" ? "no alert, little data" : "no alert");
    } else if (c !== null && c !== undefined && c > 0) {
      cls = "low"; what = "data, not scored";
    }
    const s = text("span", null, `cell cell-${cls}`);
    s.title = `${fmtDay(lastDay - (n - 1 - i))}: ${what}${c !== null && c !== undefined ? `, ${Math.round(c * 100)} % of minutes with HR` : ""}`;
    box.appendChild(s);
  });
  return box;
}

function captureBar(v) {
  const box = text("span", null, "capbar");
  if (v === null || v === undefined) { box.appendChild(text("span", "–", "capnum")); return box; }
  const bar = text("span", null, "capfill");
  bar.style.width = `${Math.round(Math.min(1, v) * 100)}%`;
  bar.classList.add(v < 0.3 ? "cap-bad" : v < 0.6 ? "cap-mid" : "cap-good");
  const outer = text("span", null, "capouter");
  outer.appendChild(bar);
  box.appendChild(outer);
  box.appendChild(text("span", `${Math.round(v * 100)} %`, "capnum"));
  return box;
}

function renderTiles(c) {
  const tiles = $("#tiles");
  tiles.innerHTML = "";
  const ps = c.participants;
  const stale = p => p.last_day === null || p.last_day < c.last_day - 1;
  const counts = [
    ["Participants", ps.length, ""],
    ["Red now", ps.filter(p => !stale(p) && p.state === 2).length, "red"],
    ["Yellow now", ps.filter(p => !stale(p) && p.state === 1).length, "yellow"],
    ["No data (last 2 nights)", ps.filter(stale).length, "none"],
    ["Alert days, last 7 nights", c.alerts.filter(a => a.day > c.last_day - 7).length, ""],
  ];
  for (const [label, n, cls] of counts) {
    const t = text("div", null, `tile tile-${cls || "plain"}`);
    t.appendChild(text("div", String(n), "tile-n"));
    t.appendChild(text("div", label, "tile-label"));
    tiles.appendChild(t);
  }
}

function renderCohort(c) {
  $("#recent-n").textContent = c.recent_days;
  renderTiles(c);
  const body = $("#participant-list tbody");
  body.innerHTML = "";
  const order = p => (p.last_day === null || p.last_day < c.last_day - 1 ? -1 : p.state || 0);
  const ps = c.participants.slice().sort((a, b) => order(b) - order(a) || a.id.localeCompare(b.id));
  for (const p of ps) {
    const tr = document.createElement("tr");
    tr.dataset.pid = p.id;
    tr.className = "clickable";
    const a = text("a", p.id, "pid");
    a.href = `#p=${encodeURIComponent(p.id)}`;
    const td0 = document.createElement("td"); td0.appendChild(a); tr.appendChild(td0);
    const stale = p.last_day === null || p.last_day < c.last_day - 1;
    const td1 = document.createElement("td"); td1.appendChild(chip(p.state, stale)); tr.appendChild(td1);
    const td2 = document.createElement("td"); td2.appendChild(strip(p.recent_levels, p.recent_capture, c.last_day)); tr.appendChild(td2);
    const td3 = document.createElement("td"); td3.appendChild(captureBar(p.capture_7d)); tr.appendChild(td3);
    tr.appendChild(text("td", String(p.alert_days), "num"));
    tr.appendChild(text("td", p.last_alert_day !== null ? fmtDay(p.last_alert_day) : "–"));
    tr.appendChild(text("td", p.onset_day !== null ? fmtDay(p.onset_day) : (p.diagnosis_day !== null ? `dx ${fmtDay(p.diagnosis_day)}` : "–")));
    tr.addEventListener("click", ev => { if (ev.target.tagName !== "A") location.hash = `p=${encodeURIComponent(p.id)}`; });
    body.appendChild(tr);
  }
  // alerts per night across the cohort
  const box = $("#cohort-alert-chart");
  box.innerHTML = "";
  const first = Math.min(...c.participants.filter(p => p.last_day !== null).map(p => p.last_day - p.days + 1), c.last_day);
  const days = []; const yel = []; const red = [];
  for (let d = first; d <= c.last_day; d++) { days.push(d); yel.push(0); red.push(0); }
  for (const al of c.alerts) {
    const i = al.day - first;
    if (i < 0 || i >= days.length) continue;
    if (al.level === "red") red[i] += 1; else yel[i] += 1;
  }
  const total = yel.map((v, i) => v + red[i]);
  new TimeChart(box, { key: "cohort-alerts", title: "Participants alerting per night", unit: "", days, x0: first, x1: c.last_day, height: 170,
    layers: [{ kind: "bars", y: total, color: COLORS.yellow, name: "yellow" }, { kind: "bars", y: red, color: COLORS.red, name: "red" }],
    marks: { labels: [] }, yMin: 0 });
  const ab = $("#alert-table tbody");
  ab.innerHTML = "";
  const shown = 30;
  $("#alert-count").textContent = c.alerts.length > shown ? `(latest ${shown} of ${c.alerts.length})` : `(${c.alerts.length})`;
  for (const al of c.alerts.slice(0, shown)) {
    const tr = document.createElement("tr");
    tr.appendChild(text("td", fmtDay(al.day)));
    const td = document.createElement("td");
    const a = text("a", al.id); a.href = `#p=${encodeURIComponent(al.id)}`; td.appendChild(a); tr.appendChild(td);
    const tdl = document.createElement("td"); tdl.appendChild(chip(al.level === "red" ? 2 : 1)); tr.appendChild(tdl);
    tr.appendChild(text("td", fmtNum(al.score), "num"));
    tr.appendChild(text("td", al.reasons, "reasons"));
    ab.appendChild(tr);
  }
}

function series(p, k) { return p.series[k] || p.days.map(() => null); }
function bandOf(p, k, n) {
  const b = series(p, k + "_base"), s = series(p, k + "_spread");
  return [b.map((v, i) => (v === null || s[i] === null ? null : v - n * s[i])), b.map((v, i) => (v === null || s[i] === null ? null : v + n * s[i]))];
}

function renderParticipant(p) {
  $("#p-title").textContent = `Participant ${p.id}`;
  const facts = $("#p-facts");
  facts.innerHTML = "";
  const lv = series(p, "level");
  const last = lv.length ? lv[lv.length - 1] : null;
  const put = (k, v) => { const f = text("span", null, "fact"); f.appendChild(text("b", k)); f.append(" "); if (v instanceof Node) f.appendChild(v); else f.append(v); facts.appendChild(f); };
  const lastDay = p.days.length ? p.days[p.days.length - 1] : null;
  put(lastDay !== null ? `Last night scored (${fmtDay(lastDay)}):` : "Now:", chip(last, last === null));
  put("Nights recorded:", String(p.days.length));
  put("Alert nights:", String(p.alerts.length));
  for (const l of p.labels) put(l.event === "symptom_onset" ? "Symptom onset:" : "Diagnosis:", fmtDay(l.day));
  put("Detector:", p.model || "?");
  const box = $("#p-charts");
  box.innerHTML = "";
  if (!p.days.length) { box.appendChild(text("p", "No nights recorded for this participant yet.", "nodata-block")); return; }
  const x0 = p.days[0], x1 = p.days[p.days.length - 1];
  const alerts = p.alerts.map(a => ({ day: a.day, level: a.level, reasons: a.reasons }));
  const marks = { alerts, labels: p.labels };
  const alertY = (k) => p.days.map((d, i) => (lv[i] > 0 ? series(p, k)[i] : null));
  const base = { days: p.days, x0, x1, marks };
  const charts = [
    { key: "rhr", title: "Resting heart rate at night", unit: "bpm", height: 220, layers: [
      { kind: "band", lo: bandOf(p, "rhr_ns_bpm", 2)[0], hi: bandOf(p, "rhr_ns_bpm", 2)[1], color: COLORS.band, name: "baseline ± 2 SD" },
      { kind: "line", y: series(p, "rhr_ns_bpm_base"), color: COLORS.base, dash: "4 3", width: 1.5, name: "baseline" },
      { kind: "line", y: series(p, "rhr_ns_bpm"), color: COLORS.rhr, name: "resting HR" },
      { kind: "points", y: alertY("rhr_ns_bpm"), color: COLORS.red, cls: "alert-point" }] },
    { key: "hrv", title: "Heart rate variability (RMSSD)", unit: "ms", layers: [
      { kind: "band", lo: bandOf(p, "hrv_rmssd_ms", 2)[0], hi: bandOf(p, "hrv_rmssd_ms", 2)[1], color: COLORS.band, name: "baseline ± 2 SD" },
      { kind: "line", y: series(p, "hrv_rmssd_ms"), color: COLORS.hrv, name: "RMSSD" }] },
    { key: "resp", title: "Respiratory rate at night", unit: "breaths/min", layers: [
      { kind: "band", lo: bandOf(p, "resp_rpm", 2)[0], hi: bandOf(p, "resp_rpm", 2)[1], color: COLORS.band, name: "baseline ± 2 SD" },
      { kind: "line", y: series(p, "resp_rpm"), color: COLORS.resp, name: "respiratory rate" }] },
    { key: "temp", title: "Skin temperature at night", unit: "°C", layers: [
      { kind: "band", lo: bandOf(p, "temp_c", 2)[0], hi: bandOf(p, "temp_c", 2)[1], color: COLORS.band, name: "baseline ± 2 SD" },
      { kind: "line", y: series(p, "temp_c"), color: COLORS.temp, name: "temperature" }] },
    { key: "steps", title: "Steps per day", unit: "", layers: [
      { kind: "bars", y: series(p, "steps"), color: COLORS.steps, name: "steps" },
      { kind: "line", y: series(p, "steps_base"), color: COLORS.base, dash: "4 3", width: 1.5, name: "usual" }], yMin: 0 },
    { key: "score", title: `Detector score (${p.model || "?"})`, unit: "", layers: [
      { kind: "line", y: series(p, "score"), color: COLORS.score, name: "score" },
      ...(p.thresholds || []).map((t, i) => ({ kind: "hline", value: t, color: i === 0 ? COLORS.yellow : COLORS.red,
                                              name: `${i === 0 ? "yellow" : "red"} threshold ${fmtNum(t)}`, side: i === 0 ? "left" : "right" })),
      { kind: "points", y: alertY("score"), color: COLORS.red, cls: "alert-point" }] },
    { key: "capture", title: "Data capture (minutes with heart rate)", unit: "%", height: 110, layers: [
      { kind: "bars", y: series(p, "hr_capture").map(v => (v === null ? null : v * 100)), color: COLORS.capture, name: "HR capture" }],
      yMin: 0, yMax: 100 },
  ];
  for (const c of charts) {
    const wrap = text("div", null, "chart-box");
    box.appendChild(wrap);
    new TimeChart(wrap, Object.assign({}, base, c, { showLabelText: c.key === "rhr" }));
  }
  const tb = $("#p-alerts tbody");
  tb.innerHTML = "";
  if (!p.alerts.length) { const tr = document.createElement("tr"); const td = text("td", "No alerts."); td.colSpan = 4; tr.appendChild(td); tb.appendChild(tr); }
  for (const a of p.alerts.slice().sort((x, y) => y.day - x.day)) {
    const tr = document.createElement("tr");
    tr.appendChild(text("td", fmtDay(a.day)));
    const td = document.createElement("td"); td.appendChild(chip(a.level === "red" ? 2 : 1)); tr.appendChild(td);
    tr.appendChild(text("td", fmtNum(a.score), "num"));
    tr.appendChild(text("td", a.reasons, "reasons"));
    tb.appendChild(tr);
  }
}

async function route() {
  const m = location.hash.match(/^#p=(.+)$/);
  $("#error").hidden = true;
  try {
    if (!cohort) cohort = await api("api/cohort");
    if (m) {
      const pid = decodeURIComponent(m[1]);
      $("#participant-select").value = pid;
      const p = await api(`api/participant?id=${encodeURIComponent(pid)}`);
      $("#cohort-view").hidden = true;
      $("#participant-view").hidden = false;
      renderParticipant(p);
      document.title = `${p.id} · prodromal`;
    } else {
      $("#participant-select").value = "";
      $("#participant-view").hidden = true;
      $("#cohort-view").hidden = false;
      renderCohort(cohort);
      document.title = `${cohort.cohort} · prodromal`;
    }
    document.body.dataset.ready = m ? "participant" : "cohort";
  } catch (e) { showError(e); }
}

async function init() {
  try {
    cohort = await api("api/cohort");
  } catch (e) { showError(e); return; }
  $("#cohort-name").textContent = `${cohort.cohort} · ${cohort.model}`;
  $("#source").textContent = cohort.source;
  const sel = $("#participant-select");
  for (const p of cohort.participants) { const o = text("option", p.id); o.value = p.id; sel.appendChild(o); }
  sel.addEventListener("change", () => { location.hash = sel.value ? `p=${encodeURIComponent(sel.value)}` : ""; });
  window.addEventListener("hashchange", route);
  let t = null;
  window.addEventListener("resize", () => { clearTimeout(t); t = setTimeout(route, 200); });
  route();
}

init();
})();
