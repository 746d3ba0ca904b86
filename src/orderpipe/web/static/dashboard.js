/* orderpipe dashboard: one page over the read-only API (docs/api.md). No build step.
 * The whole view lives in the URL (range, from, to, cat, prev, sort, dir, batch), so a view can
 * be bookmarked and shared. /api/version is polled; a new version reloads the data in place.
 *
 * Money is exact: the API is asked for money as strings ("479.47") and the page adds cents as
 * BigInt, never as binary floats. A range longer than the API answers at once (3,660 days;
 * "All" is every date that has KPIs, however old or far ahead) is asked for in parts. */
(() => {
  "use strict";

  const DAY = 86400000;
  const POLL_MS = 2000;
  const POLL_TIMEOUT_MS = 5000; // a poll without an answer by then has failed: the page says offline
  const READ_TIMEOUT_MS = 30000;
  const MAX_SPAN = 3660; // the most days one KPI answer of the API covers
  const BATCHES = 200; // the latest runs the page marks on its charts and lists
  const FIRST_DAY = "0001-01-01";
  const LAST_DAY = "9999-12-31";
  const PRESETS = { "7d": 7, "30d": 30, "90d": 90 };
  const RANGES = ["7d", "30d", "90d", "mtd", "all", "custom"];
  const SORTS = ["name", "revenue", "change", "pct"];
  const count = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
  const signIn = window.orderpipeSignIn; // sign-in.js: fetch() with the user's token, where one is needed
  const $ = (selector) => document.querySelector(selector);
  const $$ = (selector) => Array.from(document.querySelectorAll(selector));

  let view = null;
  let data = null;
  let charts = [];
  let renders = 0;
  let loads = 0; // the latest load wins: an earlier one that answers late is dropped
  let version = null; // the API's version the page has seen last (its ETag)
  let stale = true; // the data shown may be older than `version`: read it again at the next poll
  let online = null; // did the last poll get an answer? null before the first
  let updated = null; // when the data shown was read
  let pollFailed = false; // the error shown is a poll's

  // -- dates (calendar days as YYYY-MM-DD, 0001-01-01 to 9999-12-31; arithmetic in UTC) --------
  /** The date of a UTC instant, or null outside the calendar the API knows (years 1 to 9999). */
  function isoDate(ms) {
    if (!Number.isFinite(ms)) return null;
    const d = new Date(ms);
    const year = d.getUTCFullYear();
    return year >= 1 && year <= 9999 ? d.toISOString().slice(0, 10) : null;
  }
  const dayMs = (date) => Date.parse(`${date}T00:00:00Z`);
  const addDays = (date, n) => (date === null ? null : isoDate(dayMs(date) + n * DAY));
  const daysBetween = (a, b) => Math.round((dayMs(b) - dayMs(a)) / DAY);
  const validDate = (s) => typeof s === "string" && /^\d{4}-\d{2}-\d{2}$/.test(s) && isoDate(dayMs(s)) === s;
  function today() {
    const now = new Date();
    return isoDate(Date.UTC(now.getFullYear(), now.getMonth(), now.getDate()));
  }

  // -- the view in the URL ------------------------------------------------------------------------
  function readView() {
    const q = new URLSearchParams(location.search);
    const range = RANGES.includes(q.get("range")) ? q.get("range") : "all";
    const sort = SORTS.includes(q.get("sort")) ? q.get("sort") : "revenue";
    return {
      range,
      from: validDate(q.get("from")) ? q.get("from") : null,
      to: validDate(q.get("to")) ? q.get("to") : null,
      cat: q.get("cat") || null,
      prev: q.get("prev") !== "0",
      sort,
      dir: q.get("dir") === "asc" ? "asc" : "desc",
      batch: /^[0-9a-f]{8,64}$/.test(q.get("batch") || "") ? q.get("batch") : null,
    };
  }

  function writeView(changes, reload = true) {
    view = { ...view, ...changes };
    const q = new URLSearchParams();
    q.set("range", view.range);
    if (view.range === "custom") {
      if (view.from) q.set("from", view.from);
      if (view.to) q.set("to", view.to);
    }
    if (view.cat) q.set("cat", view.cat);
    if (!view.prev) q.set("prev", "0");
    if (view.sort !== "revenue") q.set("sort", view.sort);
    if (view.dir !== "desc") q.set("dir", view.dir);
    if (view.batch) q.set("batch", view.batch);
    const url = `${location.pathname}?${q}`;
    if (url !== location.pathname + location.search) history.pushState(null, "", url);
    if (reload) load(); else render();
  }

  /** The period shown and the one before it (same length; none when it would start before the
   * calendar's first day); null bounds for "all". */
  function period() {
    const end = today();
    let from = null;
    let to = null;
    if (view.range in PRESETS) { to = end; from = addDays(end, 1 - PRESETS[view.range]); }
    else if (view.range === "mtd") { to = end; from = `${end.slice(0, 8)}01`; }
    else if (view.range === "custom") { from = view.from; to = view.to; }
    if (from && to && from > to) [from, to] = [to, from];
    if (!from || !to) return { from: null, to: null, prevFrom: null, prevTo: null };
    const length = daysBetween(from, to) + 1;
    const prevFrom = addDays(from, -length);
    const prevTo = addDays(from, -1);
    if (prevFrom === null || prevTo === null) return { from, to, prevFrom: null, prevTo: null };
    return { from, to, prevFrom, prevTo };
  }

  // -- the API ------------------------------------------------------------------------------------
  async function api(path) {
    const response = await signIn.fetch(path, { headers: { Accept: "application/json" }, timeout: READ_TIMEOUT_MS });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.error || `the server answered ${response.status} ${response.statusText}`);
    return body;
  }

  /** The ranges to ask for to cover `from`..`to` (null: no bound): the range itself when one
   * answer covers it, else the spans of the dates that have KPIs (/api/kpis/dates, each at most
   * MAX_SPAN days), cut to the range. */
  function parts(from, to, spans) {
    if (short(from, to)) return [[from, to]];
    const lo = from || FIRST_DAY;
    const hi = to || LAST_DAY;
    return spans.filter((s) => s.to >= lo && s.from <= hi).map((s) => [s.from < lo ? lo : s.from, s.to > hi ? hi : s.to]);
  }

  const short = (from, to) => Boolean(from && to) && daysBetween(from, to) < MAX_SPAN;

  /** The rows of `ranges`, each followed page by page: an answer over the API's size bound holds
   * its first whole dates and names the rest in `next`. Every page carries the version it was
   * read at (its ETag up to the dot); pages of different versions mean the KPIs changed while
   * they were read, so the data is marked stale and read again at the next poll. */
  async function kpiRows(path, ranges, versions) {
    const chains = await Promise.all(ranges.map(async ([a, b]) => {
      let rows = [];
      let next = { from: a, to: b };
      while (next) {
        const response = await signIn.fetch(`${path}?from=${next.from}&to=${next.to}&money=string`, { headers: { Accept: "application/json" }, timeout: READ_TIMEOUT_MS });
        const body = await response.json().catch(() => ({}));
        if (!response.ok) throw new Error(body.error || `the server answered ${response.status} ${response.statusText}`);
        versions.add((response.headers.get("ETag") || "").split(".")[0]);
        rows = rows.concat(body.rows);
        next = body.next;
      }
      return rows;
    }));
    return chains.flat();
  }

  /** The latest `wanted` runs, newest first, page by page: an answer over the API's size bound
   * holds the newest whole runs that fit and names where the rest begins in `next` (`before` the
   * last run shown), so runs recorded meanwhile neither shift nor repeat the ones still to come. */
  async function batchRuns(wanted) {
    let runs = [];
    let next = {};
    while (next && runs.length < wanted) {
      const before = next.before ? `&before=${encodeURIComponent(next.before)}` : "";
      const body = await api(`/api/batches?limit=${wanted - runs.length}${before}`);
      runs = runs.concat(body.runs);
      next = body.next;
    }
    return runs;
  }

  async function load() {
    const p = period();
    const asked = ++loads;
    const lo = p.prevFrom || p.from;
    try {
      const spans = short(lo, p.to) ? [] : (await api("/api/kpis/dates")).spans;
      const ranges = parts(lo, p.to, spans);
      const versions = new Set();
      const [daily, categories, batches] = await Promise.all([
        kpiRows("/api/kpis/daily", ranges, versions),
        kpiRows("/api/kpis/category", ranges, versions),
        batchRuns(BATCHES),
      ]);
      if (asked !== loads) return;
      data = { period: p, daily, categories, batches, spans };
      stale = versions.size > 1;
      updated = new Date();
      $("#error").hidden = true;
      stamp();
      render();
      if (view.batch) showBatch(view.batch);
    } catch (error) {
      if (asked !== loads) return;
      stale = true; // read again at the next poll that gets an answer
      if (error instanceof TypeError || error.name === "TimeoutError") setOnline(false);
      showError(`Could not read the KPIs: ${error.message}`);
    }
  }

  function showError(message) {
    $("#error").textContent = message;
    $("#error").hidden = false;
  }

  /** Asks /api/version every POLL_MS; a new version (or data that could not be read) reloads.
   * A poll that fails (no server, no answer within POLL_TIMEOUT_MS, an error status) shows
   * "offline" and the next one tries again; the first that gets an answer shows "live". */
  async function poll() {
    try {
      const headers = version ? { "If-None-Match": version } : {};
      const response = await signIn.fetch("/api/version", { headers, cache: "no-store", timeout: POLL_TIMEOUT_MS });
      if (response.status !== 200 && response.status !== 304) {
        const body = await response.json().catch(() => ({}));
        pollFailed = true; // the server is there but refuses (a token missing, a store it cannot read): say why
        showError(`The server answered ${response.status}: ${body.error || response.statusText}`);
        throw new Error(`the server answered ${response.status}`);
      }
      if (pollFailed) { pollFailed = false; $("#error").hidden = true; }
      if (response.status === 200) {
        const tag = response.headers.get("ETag");
        if (tag !== version) { version = tag; stale = true; }
      }
      setOnline(true);
      if (stale) await load();
    } catch (error) {
      setOnline(false);
    } finally {
      setTimeout(poll, POLL_MS);
    }
  }

  function setOnline(on) {
    online = on;
    stamp();
  }

  function stamp() {
    const words = [];
    if (updated) words.push(`Last updated ${updated.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" })}`);
    if (online === true) words.push("live");
    if (online === false) words.push("offline, retrying");
    $("#stamp").textContent = words.join(" · ");
    $("#stamp").classList.toggle("offline", online === false);
  }

  // -- numbers: money in exact cents (BigInt), counts as numbers -------------------------------------
  /** "479.47" (the API's money as a string) → 47947n. */
  function cents(text) {
    const m = /^(-?)(\d+)(?:\.(\d*))?$/.exec(String(text));
    if (!m) throw new Error(`${text} is not an amount of money`);
    const c = BigInt(m[2]) * 100n + BigInt(`${m[3] || ""}00`.slice(0, 2));
    return m[1] ? -c : c;
  }

  /** n / d rounded half to even, as every amount of orderpipe is (d > 0). */
  function divide(n, d) {
    let q = n / d;
    const r = n % d;
    const twice = 2n * (r < 0n ? -r : r);
    if (twice > d || (twice === d && q % 2n !== 0n)) q += n < 0n ? -1n : 1n;
    return q;
  }

  const abs = (x) => (x < 0 ? -x : x); // a Number or a BigInt

  /** 4503599627370497n → "45,035,996,273,704.97" */
  function showMoney(c) {
    const size = abs(c);
    return `${c < 0n ? "-" : ""}${count.format(size / 100n)}.${String(size % 100n).padStart(2, "0")}`;
  }

  const percent = (x) => `${(x * 100).toFixed(1)}%`;

  /** Per-day values of the view (all orders, or one category): date → {cents, orders, returned}. */
  function days(from, to) {
    const byDate = new Map();
    const inside = (d) => (!from || d >= from) && (!to || d <= to);
    if (view.cat) {
      for (const r of data.categories) {
        if (r.category === view.cat && inside(r.order_date)) {
          byDate.set(r.order_date, { cents: cents(r.daily_revenue), orders: r.orders, returned: r.returned_orders });
        }
      }
    } else {
      for (const r of data.daily) {
        if (inside(r.order_date)) {
          byDate.set(r.order_date, { cents: cents(r.total_revenue), orders: r.total_orders, returned: r.returned_orders });
        }
      }
    }
    return byDate;
  }

  /** The sums of a period, in the same form as one day's values. */
  function totals(byDate) {
    const sum = { present: byDate.size > 0, cents: 0n, orders: 0, returned: 0 };
    for (const v of byDate.values()) { sum.cents += v.cents; sum.orders += v.orders; sum.returned += v.returned; }
    return sum;
  }

  /** Each KPI of a day or a period: `exact` its value (money a BigInt of cents), `show` the text,
   * `plot` a number for the charts (drawing needs no more than a float's precision). */
  const METRICS = [
    { key: "revenue", label: "Revenue", exact: (v) => v.cents, show: showMoney, plot: (x) => Number(x) / 100, up: "good" },
    { key: "orders", label: "Orders", exact: (v) => v.orders, show: (x) => count.format(x), plot: (x) => x, up: "good" },
    { key: "aov", label: "Avg order value", exact: (v) => (v.orders ? divide(v.cents, BigInt(v.orders)) : null), show: showMoney, plot: (x) => Number(x) / 100, up: "good" },
    { key: "return_rate", label: "Return rate", exact: (v) => (v.orders ? v.returned / v.orders : null), show: percent, plot: (x) => x, up: "bad", percent: true },
  ];

  // -- rendering --------------------------------------------------------------------------------------
  function render() {
    if (!data) return;
    const p = data.period;
    let from = p.from;
    let to = p.to;
    const current = days(from, to);
    if (!from) { // "all": the dates the data spans
      const dates = [...current.keys()].sort();
      from = dates[0] || null;
      to = dates[dates.length - 1] || null;
    }
    const previous = p.prevFrom ? days(p.prevFrom, p.prevTo) : new Map();
    const now = totals(current);
    const before = totals(previous);
    const compare = view.prev && p.prevFrom;

    $$(".ranges button").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.range === view.range)));
    $("#from").value = from || "";
    $("#to").value = to || "";
    $("#prev").checked = view.prev;
    $("#filter").hidden = !view.cat;
    $("#filter-name").textContent = view.cat || "";
    exportLink(from, to);
    $("#period").textContent = from
      ? `${view.cat ? `${view.cat}, ` : ""}${from} to ${to}${compare ? ` · compared with ${p.prevFrom} to ${p.prevTo}` : ""}`
      : "";
    empty(now.present, from, to);

    for (const m of METRICS) {
      const tile = $(`.tile[data-kpi="${m.key}"]`);
      const a = m.exact(now);
      const b = m.exact(before);
      tile.querySelector(".value").textContent = a === null || !now.present ? "–" : m.show(a);
      const delta = tile.querySelector(".delta");
      delta.className = "delta";
      delta.textContent = "";
      if (p.prevFrom && now.present && before.present && a !== null && b !== null) {
        const change = a - b; // a BigInt for money, a number otherwise
        const pct = Number(b) !== 0 ? (Number(change) / Math.abs(Number(b))) * 100 : null;
        const sign = change > 0 ? "+" : change < 0 ? "−" : "±";
        const shown = m.percent ? `${(Math.abs(change) * 100).toFixed(1)} pt` : m.show(abs(change));
        delta.textContent = `${sign}${shown}${pct === null ? "" : ` (${sign}${Math.abs(pct).toFixed(1)}%)`} vs previous`;
        if (change > 0 || change < 0) delta.classList.add((change > 0) === (m.up === "good") ? "good" : "bad");
      } else if (p.prevFrom && now.present) {
        delta.textContent = "no data in the previous period";
      }
      sparkline(tile.querySelector(".spark"), from, to, current, m);
    }
    drawCharts(from, to, current, previous, compare);
    categoryTable(p);
    batchList();
    renders += 1;
    document.body.dataset.renders = String(renders);
  }

  /** Export CSV: the API's CSV asked for in parts (spans of at most MAX_SPAN days, each followed
   * page by page through its `Link: rel="next"`) and joined (one header) into a file made here. */
  function exportLink(from, to) {
    const link = $("#export");
    const base = view.cat ? `/api/kpis/category?format=csv&name=${encodeURIComponent(view.cat)}` : "/api/kpis/daily?format=csv";
    link.href = from ? `${base}&from=${from}&to=${to}` : base;
    link.dataset.parts = from ? JSON.stringify(short(from, to) ? [[from, to]] : parts(from, to, data.spans)) : "";
    link.dataset.name = `${view.cat ? "category" : "daily"}-kpis-${from}-${to}.csv`;
    link.dataset.base = base;
  }

  async function exportInParts(event) {
    const link = $("#export");
    if (!link.dataset.parts && !signIn.on) return; // the link itself: nothing to ask in parts, no token to send
    event.preventDefault();
    try {
      const ranges = link.dataset.parts ? JSON.parse(link.dataset.parts) : [null];
      const texts = await Promise.all(ranges.map(async (range) => {
        const pages = [];
        let url = new URL(range ? `${link.dataset.base}&from=${range[0]}&to=${range[1]}` : link.dataset.base, location.href);
        while (url) {
          const response = await signIn.fetch(url, { timeout: READ_TIMEOUT_MS });
          if (!response.ok) throw new Error(`the server answered ${response.status}`);
          pages.push(await response.text());
          const next = /<([^>]*)>;\s*rel="next"/.exec(response.headers.get("Link") || "");
          url = next ? new URL(next[1], response.url) : null;
        }
        return pages.map((text, i) => (i === 0 ? text : text.slice(text.indexOf("\n") + 1))).join("");
      }));
      const lines = texts.map((text, i) => (i === 0 ? text : text.slice(text.indexOf("\n") + 1)));
      const url = URL.createObjectURL(new Blob(lines, { type: "text/csv" }));
      const save = element("a");
      save.href = url;
      save.download = link.dataset.name;
      document.body.append(save);
      save.click();
      save.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
    } catch (error) {
      showError(`Could not export the CSV: ${error.message}`);
    }
  }

  function empty(present, from, to) {
    const box = $("#empty");
    const anything = data.daily.length > 0 || data.batches.length > 0;
    box.hidden = present;
    $("#tiles").hidden = !present;
    $("#charts").hidden = !present;
    if (present) return;
    if (!anything) {
      $("#empty-title").textContent = "No KPIs yet";
      $("#empty-text").textContent =
        "Process a file of orders and this page fills in by itself (it checks for new data every 2 seconds):";
    } else {
      $("#empty-title").textContent = view.cat ? `No ${view.cat} orders in this range` : "No orders in this range";
      $("#empty-text").textContent = `${from ? `Nothing between ${from} and ${to}. ` : ""}Pick a longer range or All, or add data:`;
    }
  }

  function sparkline(svg, from, to, byDate, metric) {
    const points = [];
    const length = Math.max(1, daysBetween(from, to));
    for (const d of [...byDate.keys()].sort()) {
      const v = metric.exact(byDate.get(d));
      if (v !== null) points.push([(daysBetween(from, d) / length) * 100, metric.plot(v)]);
    }
    svg.replaceChildren();
    if (points.length < 2) return;
    const ys = points.map(([, y]) => y);
    const lo = Math.min(...ys);
    const hi = Math.max(...ys);
    const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    line.setAttribute("points", points.map(([x, y]) => `${x.toFixed(2)},${(hi === lo ? 12 : 22 - ((y - lo) / (hi - lo)) * 20).toFixed(2)}`).join(" "));
    svg.append(line);
  }

  function color(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  /** Where a batch sits on the order-date axis: an accepted one at the newest date it brought,
   * any other (it brought no dates) at the day it was processed. */
  function batchDate(run) {
    if (run.dates && run.dates.length) return run.dates[run.dates.length - 1];
    return run.finished_at.slice(0, 10);
  }

  /** The days a chart of `from`..`to` has points on: both ends, each day with a value, and after
   * a day with a value the next one when it has none (its empty point breaks the line there). As
   * many as the days with data, however long the range. */
  function chartDates(from, to, dates) {
    const inside = new Set(dates.filter((d) => d >= from && d <= to));
    const all = new Set([from, to, ...inside]);
    for (const d of inside) {
      const next = addDays(d, 1);
      if (next !== null && next <= to && !inside.has(next)) all.add(next);
    }
    return [...all].sort();
  }

  /** Labels for a chart's axis ticks: the first of `formats` that keeps every label apart
   * (8%, 10% or 10.0%, 10.2%; 75K, 80K or 1,002, 1,004 where 1K, 1K would repeat). */
  function tickLabels(ticks, formats) {
    for (const format of formats) {
      const labels = ticks.map(format);
      if (new Set(labels).size === labels.length) return labels;
    }
    return ticks.map(formats[formats.length - 1]);
  }

  const DIGITS = Array.from({ length: 13 }, (_, digits) => digits);
  const numberFormat = (options) => {
    const format = new Intl.NumberFormat("en-US", options);
    return (x) => format.format(Math.abs(x) < 1e-12 ? 0 : x);
  };
  const NUMBER_TICKS = [0, 1].map((digits) => numberFormat({ notation: "compact", maximumFractionDigits: digits }))
    .concat(DIGITS.map((digits) => numberFormat({ minimumFractionDigits: digits, maximumFractionDigits: digits })));
  const PERCENT_TICKS = DIGITS.map((digits) => (x) => `${(Math.abs(x) < 1e-12 ? 0 : x * 100).toFixed(digits)}%`);

  // Tick steps: whole days and longer on the date axis (a day's KPIs have no hours), from one day
  // to 2,500 years (the calendar spans 0001 to 9999); whole numbers for counts.
  const D = 86400;
  const DATE_STEPS = [1, 2, 3, 4, 5, 7, 10, 14, 15].map((n) => n * D)
    .concat([1, 2, 3, 4, 6].map((n) => n * 30 * D))
    .concat([1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500].map((n) => n * 365 * D));
  const COUNT_STEPS = Array.from({ length: 16 }, (_, k) => [1, 2, 5].map((n) => n * 10 ** k)).flat();

  function drawCharts(from, to, current, previous, compare) {
    const box = $("#charts");
    charts.forEach((c) => c.destroy());
    charts = [];
    box.replaceChildren();
    if (!from || typeof uPlot === "undefined") return;
    const offset = data.period.prevFrom ? daysBetween(data.period.prevFrom, from) : 0;
    const shifted = data.period.prevFrom ? [...previous.keys()].map((d) => addDays(d, offset)) : [];
    const dates = chartDates(from, to, [...current.keys(), ...shifted]);
    const xs = dates.map((d) => dayMs(d) / 1000);
    const nowDays = dates.map((d) => current.get(d) || null);
    const thenDays = dates.map((d) => (data.period.prevFrom ? previous.get(addDays(d, -offset)) || null : null));
    const marks = data.batches.filter((b) => batchDate(b) >= from && batchDate(b) <= to);
    const width = Math.max(260, (box.clientWidth || 600) / (box.clientWidth > 900 ? 2 : 1) - 24);
    for (const m of METRICS) {
      const series = (list) => list.map((v) => {
        const x = v === null ? null : m.exact(v);
        return x === null ? null : m.plot(x);
      });
      const legend = (list) => (u, raw, i, idx) => {
        const x = idx === null || list[idx] === null ? null : m.exact(list[idx]);
        return x === null ? "–" : m.show(x);
      };
      const card = document.createElement("div");
      card.className = "chart";
      card.dataset.kpi = m.key;
      const title = document.createElement("h2");
      title.textContent = m.label + (view.cat ? ` · ${view.cat}` : "");
      card.append(title);
      box.append(card);
      const chart = new uPlot({
        width,
        height: 190,
        tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
        scales: { x: { time: true } },
        legend: { show: true },
        cursor: { drag: { x: false, y: false } },
        axes: [
          { stroke: color("--muted"), grid: { stroke: color("--line") }, ticks: { stroke: color("--line") }, incrs: DATE_STEPS },
          {
            stroke: color("--muted"), grid: { stroke: color("--line") }, ticks: { stroke: color("--line") },
            ...(m.key === "orders" ? { incrs: COUNT_STEPS } : {}),
            size: (u, values) => (values ? Math.max(40, 14 + 7 * Math.max(0, ...values.map((v) => String(v).length))) : 56),
            values: (u, ticks) => tickLabels(ticks, m.percent ? PERCENT_TICKS : NUMBER_TICKS),
          },
        ],
        series: [
          { label: "day", value: (u, ts) => (ts === null ? "–" : isoDate(ts * 1000)) },
          { label: "this period", stroke: color("--accent"), width: 2, value: legend(nowDays) },
          { label: "previous", stroke: color("--prev"), width: 1.5, dash: [6, 4], show: Boolean(compare), value: legend(thenDays) },
        ],
        hooks: {
          draw: [(u) => { if (u.lane) placeLane(u); }, (u) => {
            const ctx = u.ctx;
            for (const b of marks) {
              const x = Math.round(u.valToPos(dayMs(batchDate(b)) / 1000, "x", true));
              ctx.save();
              ctx.strokeStyle = color(b.status === "accepted" ? "--accepted" : "--rejected");
              ctx.globalAlpha = 0.5;
              ctx.setLineDash([2, 3]);
              ctx.beginPath();
              ctx.moveTo(x, u.bbox.top);
              ctx.lineTo(x, u.bbox.top + u.bbox.height);
              ctx.stroke();
              ctx.restore();
            }
          }],
        },
      }, [xs, series(nowDays), series(thenDays)], card);
      charts.push(chart);
      if (m.key === "revenue") { lane(chart, marks); placeLane(chart); }
    }
  }

  // The batches under the revenue chart: a dot per file at its date. Dots that would touch go
  // into rows above one another (a rejected or failed file first, nearest the axis); what does
  // not fit in LANE_ROWS rows is counted on a "+N" button that lists those files.
  const DOT = 10;
  const ROW = 12;
  const LANE_ROWS = 4;
  const WORST_FIRST = { failed: 0, rejected: 0, retracted: 1, duplicate: 1, dismissed: 1, accepted: 2 };

  function lane(chart, marks) {
    const strip = document.createElement("div");
    strip.className = "lane";
    strip.setAttribute("aria-label", "batches");
    chart.root.insertBefore(strip, chart.root.querySelector(".u-legend"));
    chart.lane = strip;
    chart.marks = marks;
  }

  function placeLane(u) {
    const strip = u.lane;
    strip.replaceChildren();
    const spots = u.marks
      .map((b) => ({ b, x: u.over.offsetLeft + u.valToPos(dayMs(batchDate(b)) / 1000, "x") }))
      .sort((p, q) => p.x - q.x || (WORST_FIRST[p.b.status] ?? 0) - (WORST_FIRST[q.b.status] ?? 0));
    const ends = [];
    const more = [];
    for (const spot of spots) {
      let row = 0;
      while (row < LANE_ROWS && ends[row] !== undefined && ends[row] > spot.x - DOT - 2) row += 1;
      if (row === LANE_ROWS) {
        const last = more[more.length - 1];
        if (last && spot.x - last.x < 34) last.runs.push(spot.b); else more.push({ x: spot.x, runs: [spot.b] });
        continue;
      }
      ends[row] = spot.x;
      const a = document.createElement("a");
      a.href = `?${batchQuery(spot.b.batch_id)}`;
      a.className = spot.b.status;
      a.dataset.day = batchDate(spot.b);
      a.title = `${spot.b.status}: ${spot.b.file} (${spot.b.rows} rows)`;
      a.setAttribute("aria-label", a.title);
      a.style.left = `${spot.x}px`;
      a.style.top = `${2 + row * ROW}px`;
      a.addEventListener("click", (event) => { event.preventDefault(); writeView({ batch: spot.b.batch_id }, false); showBatch(spot.b.batch_id); });
      strip.append(a);
    }
    const rows = Math.max(1, ends.length) + (more.length ? 1 : 0);
    for (const group of more) {
      const button = element("button", `+${group.runs.length}`, "more");
      button.type = "button";
      if (group.runs.some((b) => b.status === "rejected" || b.status === "failed")) button.classList.add("bad");
      button.title = `${group.runs.length} more files`;
      button.style.left = `${group.x - DOT / 2}px`;
      button.style.top = `${2 + (rows - 1) * ROW}px`;
      button.addEventListener("click", () => showBatches(group.runs));
      strip.append(button);
    }
    strip.style.height = `${rows * ROW + 6}px`;
  }

  function batchQuery(id) {
    const q = new URLSearchParams(location.search);
    q.set("batch", id);
    return q.toString();
  }

  function categoryTable(p) {
    const rows = new Map();
    const row = (name) => {
      if (!rows.has(name)) rows.set(name, { name, now: { c: 0n, orders: 0, returned: 0 }, then: { c: 0n, orders: 0, returned: 0 } });
      return rows.get(name);
    };
    for (const r of data.categories) {
      const inNow = !p.from || (r.order_date >= p.from && r.order_date <= p.to);
      const inThen = p.prevFrom && r.order_date >= p.prevFrom && r.order_date <= p.prevTo;
      if (!inNow && !inThen) continue;
      const side = row(r.category)[inNow ? "now" : "then"];
      side.c += cents(r.daily_revenue);
      side.orders += r.orders;
      side.returned += r.returned_orders;
    }
    const list = [...rows.values()].filter((r) => r.now.orders > 0 || r.then.orders > 0).map((r) => {
      const change = p.prevFrom ? r.now.c - r.then.c : null;
      const pct = p.prevFrom && r.then.c !== 0n ? (Number(change) / Number(r.then.c)) * 100 : null;
      return { ...r, revenue: r.now.c, change, pct };
    });
    const key = view.sort;
    const sign = view.dir === "asc" ? 1 : -1;
    const order = (x, y) => (x === null ? (y === null ? 0 : -1) : y === null ? 1 : x < y ? -1 : x > y ? 1 : 0);
    list.sort((a, b) => {
      if (key === "name") return sign * a.name.localeCompare(b.name);
      return sign * order(a[key], b[key]) || a.name.localeCompare(b.name);
    });
    $$("#categories th button").forEach((b) => {
      if (b.dataset.sort === key) b.dataset.dir = view.dir; else delete b.dataset.dir;
    });
    const body = $("#categories tbody");
    body.replaceChildren();
    for (const r of list) {
      const tr = document.createElement("tr");
      tr.dataset.category = r.name;
      if (r.name === view.cat) tr.className = "selected";
      const cells = [
        r.name,
        showMoney(r.revenue),
        r.change === null ? "–" : `${r.change > 0n ? "+" : r.change < 0n ? "−" : ""}${showMoney(abs(r.change))}`,
        r.pct === null ? "–" : `${r.pct > 0 ? "+" : r.pct < 0 ? "−" : ""}${Math.abs(r.pct).toFixed(1)}%`,
        count.format(r.now.orders),
        r.now.orders ? showMoney(divide(r.now.c, BigInt(r.now.orders))) : "–",
        r.now.orders ? percent(r.now.returned / r.now.orders) : "–",
      ];
      cells.forEach((text, i) => {
        const td = document.createElement("td");
        if (i === 0) {
          const button = document.createElement("button");
          button.type = "button";
          button.textContent = text;
          td.append(button);
        } else {
          td.className = "num";
          td.textContent = text;
        }
        tr.append(td);
      });
      tr.addEventListener("click", () => writeView({ cat: view.cat === r.name ? null : r.name }, false));
      body.append(tr);
    }
  }

  /** One line of a batch: its status, its file (a link to its details), rows and when. */
  function batchLine(b) {
    const li = document.createElement("li");
    const pill = element("span", b.status, `pill ${b.status}`);
    const a = element("a", b.file);
    a.href = `?${batchQuery(b.batch_id)}`;
    a.addEventListener("click", (event) => { event.preventDefault(); writeView({ batch: b.batch_id }, false); showBatch(b.batch_id); });
    const when = element("span", `${b.rows} rows · ${new Date(b.finished_at).toLocaleString()}`, "muted");
    li.append(pill, a, when);
    return li;
  }

  /** The latest batches, and above them what the newest one said (at relational grain, its
   * message ends with what waits for a header or a line: the dashboard's one word on that). */
  function batchList() {
    const list = $("#batches");
    list.replaceChildren(...data.batches.slice(0, 10).map(batchLine));
    if (!data.batches.length) list.append(element("li", "No file processed yet.", "muted"));
    const newest = data.batches[0];
    const said = newest ? newest.message : "";
    $("#latest").textContent = !said || said.startsWith(`${newest.file}:`) ? said : `${newest.file}: ${said}`;
  }

  function element(tag, text, className) {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (className) e.className = className;
    return e;
  }

  /** The files behind a "+N" button of the batch lane, each a link to its details. */
  function showBatches(runs) {
    const dialog = $("#batch");
    const list = element("ul", undefined, "batches");
    list.append(...runs.map(batchLine));
    $("#batch-body").replaceChildren(element("h2", `${runs.length} files`), list);
    if (!dialog.open) dialog.showModal();
  }

  async function showBatch(id) {
    const dialog = $("#batch");
    const body = $("#batch-body");
    body.replaceChildren(element("p", "Loading…", "muted"));
    if (!dialog.open) dialog.showModal();
    try {
      const batch = await api(`/api/batches/${id}`);
      const last = batch.runs[batch.runs.length - 1];
      body.replaceChildren(
        element("h2", last.file),
        element("p", `${last.status} · ${last.rows} rows · ${last.dates.length ? `${last.dates[0]} to ${last.dates[last.dates.length - 1]}` : "no dates"} · batch ${batch.batch_id.slice(0, 12)}`),
        element("p", last.message, "muted"),
      );
      if (batch.report && batch.report.errors.length) {
        body.append(element("h2", "Why it was rejected"));
        const table = element("table");
        const head = element("tr");
        ["rule", "count", "first lines"].forEach((h) => head.append(element("th", h)));
        table.append(head);
        for (const issue of batch.report.errors) {
          const tr = element("tr");
          const rule = element("td");
          rule.append(element("strong", issue.code), element("div", issue.hint, "muted small"));
          const lines = element("td");
          for (const s of issue.samples) {
            lines.append(element("div", `line ${s.line}${s.column ? `, ${s.column}` : ""}: ${s.message}`));
          }
          tr.append(rule, element("td", count.format(issue.count), "num"), lines);
          table.append(tr);
        }
        body.append(table);
      }
      const raw = element("a", "the batch as JSON");
      raw.href = `/api/batches/${batch.batch_id}`;
      body.append(element("p"), raw);
    } catch (error) {
      body.replaceChildren(element("p", `Could not read batch ${id}: ${error.message}`));
    }
  }

  // -- wiring ------------------------------------------------------------------------------------------
  function wire() {
    $$(".ranges button").forEach((b) => b.addEventListener("click", () => writeView({ range: b.dataset.range })));
    const custom = () => {
      const from = $("#from").value;
      const to = $("#to").value;
      if (validDate(from) && validDate(to)) writeView({ range: "custom", from, to });
    };
    $("#from").addEventListener("change", custom);
    $("#to").addEventListener("change", custom);
    $("#prev").addEventListener("change", () => writeView({ prev: $("#prev").checked }, false));
    $("#clear-filter").addEventListener("click", () => writeView({ cat: null }, false));
    $("#export").addEventListener("click", exportInParts);
    $$("#categories th button").forEach((b) => b.addEventListener("click", () => {
      const same = view.sort === b.dataset.sort;
      writeView({ sort: b.dataset.sort, dir: same && view.dir === "desc" ? "asc" : "desc" }, false);
    }));
    $("#batch").addEventListener("close", () => { if (view.batch) writeView({ batch: null }, false); });
    window.addEventListener("popstate", () => { view = readView(); load(); });
    matchMedia("(prefers-color-scheme: dark)").addEventListener("change", render);
    let timer = null;
    window.addEventListener("resize", () => { clearTimeout(timer); timer = setTimeout(render, 150); });
  }

  view = readView();
  wire();
  signIn.ready.then(poll); // its first answer loads the data
})();
