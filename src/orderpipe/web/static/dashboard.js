/* orderpipe dashboard: one page over the read-only API (docs/api.md). No build step.
 * The whole view lives in the URL (range, from, to, cat, prev, sort, dir, batch), so a view can
 * be bookmarked and shared. /api/version is polled; a new version reloads the data in place. */
(() => {
  "use strict";

  const DAY = 86400000;
  const POLL_MS = 2000;
  const PRESETS = { "7d": 7, "30d": 30, "90d": 90 };
  const RANGES = ["7d", "30d", "90d", "mtd", "all", "custom"];
  const SORTS = ["name", "revenue", "change", "pct"];
  const money = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  const count = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
  const compact = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 });
  const $ = (selector) => document.querySelector(selector);
  const $$ = (selector) => Array.from(document.querySelectorAll(selector));

  let view = null;
  let data = null;
  let etag = null;
  let charts = [];
  let renders = 0;

  // -- dates (calendar days as YYYY-MM-DD; arithmetic in UTC, where every day has 24 h) -------
  const isoDate = (ms) => new Date(ms).toISOString().slice(0, 10);
  const dayMs = (date) => Date.parse(`${date}T00:00:00Z`);
  const addDays = (date, n) => isoDate(dayMs(date) + n * DAY);
  const daysBetween = (a, b) => Math.round((dayMs(b) - dayMs(a)) / DAY);
  const validDate = (s) => typeof s === "string" && /^\d{4}-\d{2}-\d{2}$/.test(s) && !Number.isNaN(dayMs(s));
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

  /** The period shown and the one before it (same length); null bounds for "all". */
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
    return { from, to, prevFrom: addDays(from, -length), prevTo: addDays(from, -1) };
  }

  // -- the API ------------------------------------------------------------------------------------
  async function api(path) {
    const response = await fetch(path, { headers: { Accept: "application/json" } });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || response.statusText);
    return body;
  }

  async function load() {
    const p = period();
    const range = p.from ? `from=${p.prevFrom}&to=${p.to}` : "";
    try {
      const [daily, categories, batches] = await Promise.all([
        api(`/api/kpis/daily?${range}`),
        api(`/api/kpis/category?${range}`),
        api("/api/batches?limit=200"),
      ]);
      data = { period: p, daily: daily.rows, categories: categories.rows, batches: batches.runs, apiRange: daily };
      $("#error").hidden = true;
      stamp();
      render();
      if (view.batch) showBatch(view.batch);
    } catch (error) {
      showError(`Could not read the KPIs: ${error.message}`);
    }
  }

  function showError(message) {
    $("#error").textContent = message;
    $("#error").hidden = false;
  }

  async function poll() {
    try {
      const headers = etag ? { "If-None-Match": etag } : {};
      const response = await fetch("/api/version", { headers });
      if (response.status === 200) {
        const changed = etag !== null;
        etag = response.headers.get("ETag");
        if (changed) await load();
      }
    } catch (error) {
      /* the server is away for a moment: try again at the next poll */
    }
  }

  function stamp() {
    const time = new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
    $("#stamp").textContent = `Last updated ${time} · live`;
  }

  // -- numbers --------------------------------------------------------------------------------------
  const cents = (value) => Math.round(Number(value) * 100);

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

  function totals(byDate) {
    let c = 0; let orders = 0; let returned = 0;
    for (const v of byDate.values()) { c += v.cents; orders += v.orders; returned += v.returned; }
    return {
      present: byDate.size > 0,
      revenue: c / 100,
      orders,
      aov: orders ? Math.round(c / orders) / 100 : null,
      return_rate: orders ? returned / orders : null,
    };
  }

  const METRICS = [
    { key: "revenue", label: "Revenue", value: (v) => v.cents / 100, show: (x) => money.format(x), up: "good" },
    { key: "orders", label: "Orders", value: (v) => v.orders, show: (x) => count.format(x), up: "good" },
    { key: "aov", label: "Avg order value", value: (v) => (v.orders ? v.cents / v.orders / 100 : null), show: (x) => money.format(x), up: "good" },
    { key: "return_rate", label: "Return rate", value: (v) => (v.orders ? v.returned / v.orders : null), show: (x) => `${(x * 100).toFixed(1)}%`, up: "bad" },
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
    $("#export").href = exportLink(from, to);
    $("#period").textContent = from
      ? `${view.cat ? `${view.cat}, ` : ""}${from} to ${to}${compare ? ` · compared with ${p.prevFrom} to ${p.prevTo}` : ""}`
      : "";
    empty(now.present, from, to);

    for (const m of METRICS) {
      const tile = $(`.tile[data-kpi="${m.key}"]`);
      tile.querySelector(".value").textContent = now[m.key] === null || !now.present ? "–" : m.show(now[m.key]);
      const delta = tile.querySelector(".delta");
      delta.className = "delta";
      delta.textContent = "";
      if (p.prevFrom && now.present && before.present && now[m.key] !== null && before[m.key] !== null) {
        const change = now[m.key] - before[m.key];
        const pct = before[m.key] ? (change / Math.abs(before[m.key])) * 100 : null;
        const sign = change > 0 ? "+" : change < 0 ? "−" : "±";
        const shown = m.key === "return_rate" ? `${(Math.abs(change) * 100).toFixed(1)} pt` : m.show(Math.abs(change));
        delta.textContent = `${sign}${shown}${pct === null ? "" : ` (${sign}${Math.abs(pct).toFixed(1)}%)`} vs previous`;
        if (change !== 0) delta.classList.add((change > 0) === (m.up === "good") ? "good" : "bad");
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

  function exportLink(from, to) {
    const range = from ? `&from=${from}&to=${to}` : "";
    return view.cat
      ? `/api/kpis/category?format=csv&name=${encodeURIComponent(view.cat)}${range}`
      : `/api/kpis/daily?format=csv${range}`;
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

  function dateList(from, to) {
    const list = [];
    if (!from) return list;
    for (let d = from; d <= to; d = addDays(d, 1)) list.push(d);
    return list;
  }

  function sparkline(svg, from, to, byDate, metric) {
    const values = dateList(from, to).map((d) => (byDate.has(d) ? metric.value(byDate.get(d)) : null));
    const known = values.filter((v) => v !== null);
    svg.replaceChildren();
    if (known.length < 2) return;
    const lo = Math.min(...known);
    const hi = Math.max(...known);
    const points = [];
    values.forEach((v, i) => {
      if (v === null) return;
      const x = values.length === 1 ? 50 : (i / (values.length - 1)) * 100;
      const y = hi === lo ? 12 : 22 - ((v - lo) / (hi - lo)) * 20;
      points.push(`${x.toFixed(2)},${y.toFixed(2)}`);
    });
    const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    line.setAttribute("points", points.join(" "));
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

  function drawCharts(from, to, current, previous, compare) {
    const box = $("#charts");
    charts.forEach((c) => c.destroy());
    charts = [];
    box.replaceChildren();
    if (!from || typeof uPlot === "undefined") return;
    const dates = dateList(from, to);
    const xs = dates.map((d) => dayMs(d) / 1000);
    const length = dates.length;
    const offset = data.period.prevFrom ? daysBetween(data.period.prevFrom, from) : length;
    const marks = data.batches.filter((b) => batchDate(b) >= from && batchDate(b) <= to);
    const width = Math.max(260, (box.clientWidth || 600) / (box.clientWidth > 900 ? 2 : 1) - 24);
    for (const m of METRICS) {
      const now = dates.map((d) => (current.has(d) ? m.value(current.get(d)) : null));
      const then = dates.map((d) => {
        const back = addDays(d, -offset);
        return previous.has(back) ? m.value(previous.get(back)) : null;
      });
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
          { stroke: color("--muted"), grid: { stroke: color("--line") }, ticks: { stroke: color("--line") } },
          {
            stroke: color("--muted"), grid: { stroke: color("--line") }, ticks: { stroke: color("--line") }, size: 56,
            values: (u, ticks) => ticks.map((t) => (m.key === "return_rate" ? `${(t * 100).toFixed(0)}%` : compact.format(t))),
          },
        ],
        series: [
          { label: "day", value: (u, ts) => (ts === null ? "–" : isoDate(ts * 1000)) },
          { label: "this period", stroke: color("--accent"), width: 2, value: (u, v) => (v === null ? "–" : m.show(v)) },
          { label: "previous", stroke: color("--prev"), width: 1.5, dash: [6, 4], show: Boolean(compare), value: (u, v) => (v === null ? "–" : m.show(v)) },
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
      }, [xs, now, then], card);
      charts.push(chart);
      if (m.key === "revenue") { lane(card, chart, marks); placeLane(chart); }
    }
  }

  /** Links to the batches under the revenue chart, placed on its date axis once it is drawn. */
  function lane(card, chart, marks) {
    const strip = document.createElement("div");
    strip.className = "lane";
    strip.setAttribute("aria-label", "batches");
    chart.root.insertBefore(strip, chart.root.querySelector(".u-legend"));
    chart.lane = strip;
    for (const b of marks) {
      const a = document.createElement("a");
      a.href = `?${batchQuery(b.batch_id)}`;
      a.className = b.status;
      a.dataset.day = batchDate(b);
      a.title = `${b.status}: ${b.file} (${b.rows} rows)`;
      a.addEventListener("click", (event) => { event.preventDefault(); writeView({ batch: b.batch_id }, false); showBatch(b.batch_id); });
      strip.append(a);
    }
  }

  function placeLane(u) {
    for (const a of u.lane.children) {
      a.style.left = `${u.over.offsetLeft + u.valToPos(dayMs(a.dataset.day) / 1000, "x")}px`;
    }
  }

  function batchQuery(id) {
    const q = new URLSearchParams(location.search);
    q.set("batch", id);
    return q.toString();
  }

  function categoryTable(p) {
    const rows = new Map();
    const row = (name) => {
      if (!rows.has(name)) rows.set(name, { name, now: { c: 0, orders: 0, returned: 0 }, then: { c: 0, orders: 0, returned: 0 } });
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
      const change = p.prevFrom ? (r.now.c - r.then.c) / 100 : null;
      const pct = p.prevFrom && r.then.c ? ((r.now.c - r.then.c) / r.then.c) * 100 : null;
      return { ...r, revenue: r.now.c / 100, change, pct };
    });
    const key = view.sort;
    const sign = view.dir === "asc" ? 1 : -1;
    list.sort((a, b) => {
      if (key === "name") return sign * a.name.localeCompare(b.name);
      const x = a[key] === null ? -Infinity : a[key];
      const y = b[key] === null ? -Infinity : b[key];
      return sign * (x - y) || a.name.localeCompare(b.name);
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
        money.format(r.revenue),
        r.change === null ? "–" : `${r.change > 0 ? "+" : r.change < 0 ? "−" : ""}${money.format(Math.abs(r.change))}`,
        r.pct === null ? "–" : `${r.pct > 0 ? "+" : r.pct < 0 ? "−" : ""}${Math.abs(r.pct).toFixed(1)}%`,
        count.format(r.now.orders),
        r.now.orders ? money.format(Math.round(r.now.c / r.now.orders) / 100) : "–",
        r.now.orders ? `${((r.now.returned / r.now.orders) * 100).toFixed(1)}%` : "–",
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

  function batchList() {
    const list = $("#batches");
    list.replaceChildren();
    for (const b of data.batches.slice(0, 10)) {
      const li = document.createElement("li");
      const pill = document.createElement("span");
      pill.className = `pill ${b.status}`;
      pill.textContent = b.status;
      const a = document.createElement("a");
      a.href = `?${batchQuery(b.batch_id)}`;
      a.textContent = b.file;
      a.addEventListener("click", (event) => { event.preventDefault(); writeView({ batch: b.batch_id }, false); showBatch(b.batch_id); });
      const when = document.createElement("span");
      when.className = "muted";
      when.textContent = `${b.rows} rows · ${new Date(b.finished_at).toLocaleString()}`;
      li.append(pill, a, when);
      list.append(li);
    }
    if (!data.batches.length) {
      const li = document.createElement("li");
      li.className = "muted";
      li.textContent = "No file processed yet.";
      list.append(li);
    }
  }

  function element(tag, text, className) {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (className) e.className = className;
    return e;
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
  load();
  poll();
  setInterval(poll, POLL_MS);
})();
