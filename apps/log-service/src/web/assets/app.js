// log-service's web view: one script for every page, drawing from the REST and Jaeger APIs.
// Every value from the store goes into the page as text (textContent), never as markup.

const main = document.getElementById("main");
const TRACE_ID = /^[0-9a-fA-F]{32}$/;
// Above this many rows (spans and their log lines) the waterfall draws only the rows in view,
// so a trace of any size is on screen at once and never freezes the tab.
const VIRTUAL_ABOVE = 500;
// Rows drawn beyond each edge of the view, so a scroll shows drawn rows before the next frame.
const OVERSCAN_ROWS = 20;
const LEVELS = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];

// ---- plumbing ------------------------------------------------------------------------------

/** Builds an element; string children become text nodes, attributes are set as properties. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key in node && key !== "list") node[key] = value;
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function show(...nodes) {
  main.replaceChildren(...nodes.flat().filter((n) => n !== null && n !== undefined && n !== false));
}

const access = {
  get tenant() { return localStorage.getItem("tenant") || new URLSearchParams(location.search).get("tenant") || ""; },
  get key() { return localStorage.getItem("apiKey") || ""; },
};

function headers() {
  const h = {};
  if (access.tenant) h["X-Tenant-ID"] = access.tenant;
  if (access.key) h.Authorization = `Bearer ${access.key}`;
  return h;
}

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

/** GETs `path` as JSON; a failure carries the status and the API's own message. */
async function api(path) {
  const response = await fetch(path, { headers: headers() });
  let body = null;
  try { body = await response.json(); } catch { body = null; }
  if (!response.ok) {
    const message = body?.error?.message || body?.errors?.[0]?.msg || `HTTP ${response.status}`;
    throw new ApiError(response.status, message);
  }
  return body;
}

/** Keeps `tenant` and `key` in the browser (an empty value forgets it) and redraws the page. */
function useAccess(tenant, key) {
  const set = (name, value) => (value ? localStorage.setItem(name, value) : localStorage.removeItem(name));
  set("tenant", tenant.trim());
  set("apiKey", key.trim());
  location.reload();
}

/** The prompt a 401 shows: a key field, focused, that keeps the key and redraws the page. */
function keyPrompt() {
  const input = el("input", { id: "prompt-key", name: "key", type: "password", autocomplete: "off", required: true, size: 32 });
  const form = el("form", { id: "key-prompt", class: "key-prompt", onsubmit: (e) => {
    e.preventDefault();
    useAccess(access.tenant, input.value);
  } }, el("label", {}, "API key ", input), el("button", { type: "submit" }, "Use key"));
  queueMicrotask(() => input.focus());
  return form;
}

/** What a failed load shows: a key prompt for 401, the refusal for 403, the API's message otherwise. */
function failure(error, what) {
  if (error.status === 401) {
    return el("section", { class: "notice", id: "needs-key" },
      el("h2", {}, access.key ? "This API key is not accepted" : "An API key is needed"),
      el("p", {}, error.message),
      keyPrompt(),
      el("p", { class: "muted" }, "The key is kept in this browser only and sent to log-service as Authorization: Bearer. For an admin key, choose the tenant in the bar above."));
  }
  if (error.status === 403) {
    return el("section", { class: "notice" },
      el("h2", {}, "This key may not read that"),
      el("p", {}, error.message),
      el("p", {}, "Enter another key (and the tenant, for an admin key) in the bar above and press Use."));
  }
  if (error.status === 404) {
    return el("section", { class: "notice" }, el("h2", {}, `${what} not found`), el("p", {}, error.message));
  }
  return el("section", { class: "notice error" }, el("h2", {}, `Could not load ${what}`), el("p", {}, error.message));
}

/** An RFC 3339 time with up to nanoseconds, as microseconds since the epoch. */
function micros(text) {
  const match = /\.(\d+)/.exec(text);
  const whole = Date.parse(text.replace(/\.\d+/, ""));
  const fraction = match ? Number(match[1].slice(0, 6).padEnd(6, "0")) : 0;
  return whole * 1000 + fraction;
}

function shortTime(text) {
  const d = new Date(text);
  return isNaN(d) ? text : d.toLocaleTimeString([], { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
}

function ms(value) {
  if (value === null || value === undefined) return "–";
  return value < 10 ? `${value.toFixed(2)} ms` : `${value.toFixed(1)} ms`;
}

/** A stable hue per service, so one service has one colour on every page. */
function hue(name) {
  let h = 0;
  for (const c of name) h = (h * 31 + c.charCodeAt(0)) % 360;
  return h;
}

function serviceBadge(name) {
  return el("span", { class: "service", style: `--hue:${hue(name)}` }, name);
}

function traceLink(id) {
  return el("a", { class: "mono", href: `/trace/${id}` }, id);
}

/** The search page filtered to `service` from a minute before to a minute after `at`. */
function logsAround(service, at) {
  const t = Date.parse(at);
  const q = new URLSearchParams({
    service,
    from: new Date(t - 60_000).toISOString(),
    to: new Date(t + 60_000).toISOString(),
  });
  return `/?${q}`;
}

// ---- search --------------------------------------------------------------------------------

const FILTERS = [["service", "service"], ["level", "level"], ["from", "start_time"], ["to", "end_time"], ["q", "search"], ["trace_id", "trace_id"]];

function filterQuery(params) {
  const q = new URLSearchParams();
  for (const [page, apiName] of FILTERS) {
    const value = params.get(page);
    if (value) q.set(apiName, apiName.endsWith("_time") ? new Date(value).toISOString() : value);
  }
  return q;
}

function localInput(value) {
  if (!value) return "";
  const d = new Date(value);
  if (isNaN(d)) return "";
  const off = d.getTimezoneOffset() * 60_000;
  return new Date(d - off).toISOString().slice(0, 19);
}

function logRow(log) {
  return el("tr", { class: `level-${log.level}`, dataset: { id: log.id } },
    el("td", { class: "time mono" }, shortTime(log.timestamp)),
    el("td", {}, el("span", { class: `level level-${log.level}` }, log.level)),
    el("td", {}, el("a", { href: logsAround(log.service_name, log.timestamp), title: "this service's logs around this time" }, serviceBadge(log.service_name))),
    el("td", { class: "message" }, log.message),
    el("td", { class: "trace" }, log.trace_id ? traceLink(log.trace_id) : ""));
}

async function searchPage() {
  const params = new URLSearchParams(location.search);
  const form = el("form", { class: "filters", role: "search", onsubmit: (e) => {
    e.preventDefault();
    const data = new FormData(form);
    const text = String(data.get("q") || "").trim();
    if (TRACE_ID.test(text)) { location.href = `/trace/${text.toLowerCase()}`; return; }
    const q = new URLSearchParams();
    for (const [key, value] of data) if (String(value).trim()) q.set(key, String(value).trim());
    location.search = q.toString();
  } });
  const services = el("select", { name: "service", id: "f-service" }, el("option", { value: "" }, "any"));
  form.append(
    el("label", { class: "grow" }, "Text or trace id", el("input", { name: "q", id: "f-q", type: "search", value: params.get("q") || "", placeholder: "words, or paste a trace id" })),
    el("label", {}, "Service", services),
    el("label", {}, "Level", el("select", { name: "level", id: "f-level" }, el("option", { value: "" }, "any"),
      LEVELS.map((l) => el("option", { value: l, selected: params.get("level") === l }, l)))),
    el("label", {}, "From", el("input", { name: "from", type: "datetime-local", step: 1, value: localInput(params.get("from")) })),
    el("label", {}, "To", el("input", { name: "to", type: "datetime-local", step: 1, value: localInput(params.get("to")) })),
    el("label", {}, "Trace id", el("input", { name: "trace_id", class: "mono", size: 14, value: params.get("trace_id") || "" })),
    el("button", { type: "submit" }, "Search"));
  const live = el("input", { type: "checkbox", id: "live" });
  const status = el("span", { class: "muted", id: "status" }, "Loading…");
  const rows = el("tbody", { id: "logs" });
  const table = el("table", { class: "logs" },
    el("thead", {}, el("tr", {}, el("th", {}, "Time"), el("th", {}, "Level"), el("th", {}, "Service"), el("th", {}, "Message"), el("th", {}, "Trace"))),
    rows);
  const pager = el("nav", { class: "pager", "aria-label": "Pages" });
  show(el("h1", {}, "Logs"), form, el("div", { class: "toolbar" }, el("label", {}, live, " Live"), status), table, pager);

  api("/api/v1/logs/services").then((body) => {
    for (const name of body.services || []) services.append(el("option", { value: name, selected: params.get("service") === name }, name));
  }).catch(() => {});

  const page = Math.max(1, Number(params.get("page")) || 1);
  const query = filterQuery(params);
  query.set("page", page);
  query.set("page_size", 50);
  try {
    const body = await api(`/api/v1/logs?${query}`);
    rows.replaceChildren(...body.logs.map(logRow));
    const filtered = [...params.keys()].some((k) => k !== "page" && k !== "tenant");
    if (body.total === 0 && !filtered) {
      table.replaceWith(el("section", { class: "notice", id: "empty" },
        el("h2", {}, "No logs yet"),
        el("p", {}, "Place a first order and its logs and trace appear here:"),
        el("pre", {}, "curl -X POST localhost:3000/create-order\n# or\ntracehop order")));
    }
    const atLeast = body.total_relation === "gte" ? "+" : "";
    status.textContent = `${body.total.toLocaleString("en")}${atLeast} ${body.total === 1 ? "log" : "logs"}, newest first`;
    const pages = Math.max(1, Math.ceil(body.total / body.page_size));
    const to = (n) => { const q = new URLSearchParams(params); q.set("page", n); return `/?${q}`; };
    pager.replaceChildren(
      page > 1 ? el("a", { href: to(page - 1), rel: "prev" }, "← Newer") : el("span"),
      el("span", { class: "muted" }, `page ${page} of ${pages}`),
      page < pages ? el("a", { href: to(page + 1), rel: "next" }, "Older →") : el("span"));
  } catch (error) {
    table.replaceWith(failure(error, "the logs"));
    status.textContent = "";
  }

  let controller = null;
  live.addEventListener("change", () => {
    if (live.checked) {
      controller = new AbortController();
      follow(filterQuery(params), rows, status, controller.signal);
    } else if (controller) {
      controller.abort();
      status.textContent = "live tail stopped";
    }
  });
}

/** Reads the SSE stream with fetch (EventSource cannot send the tenant and key headers). */
async function follow(query, rows, status, signal) {
  status.textContent = "live: waiting for logs…";
  try {
    const response = await fetch(`/api/v1/logs/stream?${query}`, { headers: headers(), signal });
    if (!response.ok) throw new ApiError(response.status, `HTTP ${response.status}`);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let received = 0;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = /^event: ?(.*)$/m.exec(frame)?.[1];
        const data = frame.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
        if (event === "log" && data) {
          rows.prepend(logRow(JSON.parse(data)));
          while (rows.children.length > 500) rows.lastChild.remove();
          received += 1;
          status.textContent = `live: ${received} new`;
        } else if (event === "lagged") {
          status.textContent = `live: fell behind, ${data} logs skipped`;
        }
      }
    }
    status.textContent = "live tail ended";
  } catch (error) {
    if (!signal.aborted) status.textContent = `live tail failed: ${error.message}`;
  }
}

// ---- trace ---------------------------------------------------------------------------------

/**
 * Groups `items` by the span id `spanOf` gives each, in their order; `loose` holds those whose
 * span is not among `byId` (none, or one outside the trace).
 */
function groupBySpan(items, spanOf, byId) {
  const groups = new Map();
  const loose = [];
  for (const item of items) {
    const id = spanOf(item);
    if (id && byId.has(id)) {
      if (!groups.has(id)) groups.set(id, []);
      groups.get(id).push(item);
    } else {
      loose.push(item);
    }
  }
  return { groups, loose };
}

/** Orders the spans depth-first under their parents; a span whose parent is missing is a root. */
function spanTree(spans) {
  const byId = new Map(spans.map((s) => [s.span_id, s]));
  const { groups: children, loose: roots } = groupBySpan(spans, (s) => s.parent_span_id, byId);
  const byStart = (a, b) => a.start - b.start;
  const ordered = [];
  const stack = roots.sort(byStart).reverse().map((s) => [s, 0]);
  while (stack.length) {
    const [span, depth] = stack.pop();
    span.depth = depth;
    ordered.push(span);
    const kids = (children.get(span.span_id) || []).sort(byStart);
    for (let i = kids.length - 1; i >= 0; i--) stack.push([kids[i], depth + 1]);
  }
  return { ordered, byId };
}

function attributeTable(attributes) {
  const entries = Object.entries(attributes || {});
  if (!entries.length) return el("p", { class: "muted" }, "no attributes");
  return el("table", { class: "attributes" }, el("tbody", {},
    entries.map(([k, v]) => el("tr", {}, el("th", { scope: "row", class: "mono" }, k), el("td", { class: "mono" }, typeof v === "string" ? v : JSON.stringify(v))))));
}

function spanDetails(span, byId) {
  const events = span.events || [];
  const links = span.links || [];
  return el("section", { class: "details", id: "span-details", "aria-label": "Span details" },
    el("h2", {}, `${span.service}: ${span.name}`),
    el("dl", {},
      el("dt", {}, "Kind"), el("dd", {}, span.kind),
      el("dt", {}, "Status"), el("dd", {}, span.status + (span.status_message ? ` (${span.status_message})` : "")),
      el("dt", {}, "Duration"), el("dd", {}, ms(span.duration_ms)),
      el("dt", {}, "Span id"), el("dd", { class: "mono" }, span.span_id),
      el("dt", {}, "Parent"), el("dd", { class: "mono" }, span.parent_span_id || "none (root)")),
    el("h3", {}, "Attributes"), attributeTable(span.attributes),
    events.length ? [el("h3", {}, "Events"), el("ul", {}, events.map((e) => el("li", {}, el("strong", {}, e.name), " ", el("span", { class: "muted" }, shortTime(e.timestamp || "")), attributeTable(e.attributes))))] : null,
    links.length ? [el("h3", {}, "Links"), el("ul", {}, links.map((l) => {
      const target = byId.get(l.span_id);
      return el("li", {}, target ? `${target.service}: ${target.name} ` : "", el("span", { class: "mono" }, l.span_id));
    }))] : null);
}

async function tracePage(traceId) {
  if (!TRACE_ID.test(traceId)) {
    show(el("section", { class: "notice error" }, el("h2", {}, "Not a trace id"),
      el("p", {}, "A trace id is 32 hexadecimal digits, as in a log line's trace_id.")));
    return;
  }
  traceId = traceId.toLowerCase();
  show(el("h1", {}, "Trace ", el("span", { class: "mono" }, traceId)), el("p", { class: "muted" }, "Loading…"));
  let body;
  try {
    body = await api(`/api/v1/traces/${traceId}`);
  } catch (error) {
    show(el("h1", {}, "Trace ", el("span", { class: "mono" }, traceId)), failure(error, "Trace"),
      el("p", {}, el("a", { href: "/" }, "Search the logs")));
    return;
  }
  const started = performance.now();
  const spans = body.spans || [];
  const logs = body.logs || [];
  for (const span of spans) {
    span.start = micros(span.start_time);
    span.end = micros(span.end_time);
  }
  const { ordered, byId } = spanTree(spans);
  const t0 = Math.min(...spans.map((s) => s.start));
  const total = Math.max(1, Math.max(...spans.map((s) => s.end)) - t0);
  const { groups: logsBySpan, loose } = groupBySpan(logs, (l) => l.span_id, byId);
  const services = [...new Set(spans.map((s) => s.service))];
  const errors = spans.filter((s) => s.status === "ERROR").length;

  // The waterfall's rows in drawing order: each span, then the log lines it wrote.
  const items = [];
  ordered.forEach((span, order) => {
    span.order = order;
    span.item = items.length;
    items.push({ span });
    for (const log of logsBySpan.get(span.span_id) || []) items.push({ span, log });
  });
  const virtual = items.length > VIRTUAL_ABOVE;
  const waterfall = el("div", { class: `waterfall${virtual ? " virtual" : ""}`, role: "tree", "aria-label": "Spans" });
  const rowsParent = virtual ? el("div", { class: "sizer", role: "none" }) : waterfall;
  if (virtual) waterfall.append(rowsParent);
  const detailsSlot = el("div", { id: "details-slot" });
  let selected = null;
  const select = (span) => {
    selected = span.span_id;
    waterfall.querySelectorAll(".span.selected").forEach((r) => r.classList.remove("selected"));
    waterfall.querySelector(`.span[data-order="${span.order}"]`)?.classList.add("selected");
    detailsSlot.replaceChildren(spanDetails(span, byId));
  };
  // Set once the rows are measured, for a virtual waterfall: each item's top, and a redraw.
  let tops = null;
  let draw = () => {};
  /** Moves the focus to the span `order`, drawing it first when the waterfall is virtual. */
  const focusSpan = (order) => {
    const span = ordered[Math.max(0, Math.min(ordered.length - 1, order))];
    if (virtual) {
      const top = tops[span.item];
      const height = tops[span.item + 1] - top;
      if (top < waterfall.scrollTop) waterfall.scrollTop = top;
      else if (top + height > waterfall.scrollTop + waterfall.clientHeight) waterfall.scrollTop = top + height - waterfall.clientHeight;
      draw();
    }
    waterfall.querySelector(`.span[data-order="${span.order}"]`)?.focus();
  };
  const spanRow = (span) => {
    const left = ((span.start - t0) / total) * 100;
    const width = Math.max(0.3, ((span.end - span.start) / total) * 100);
    const linked = (span.links || []).map((l) => byId.get(l.span_id)).filter(Boolean);
    return el("div", {
      class: `span${span.status === "ERROR" ? " error" : ""}${span.span_id === selected ? " selected" : ""}`, role: "treeitem", tabIndex: 0,
      "aria-level": span.depth + 1,
      dataset: { spanId: span.span_id, parent: span.parent_span_id || "", service: span.service, depth: span.depth, order: span.order },
      onclick: () => select(span),
      onkeydown: (e) => {
        const moves = { ArrowDown: span.order + 1, ArrowUp: span.order - 1, Home: 0, End: ordered.length - 1 };
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); select(span); }
        if (e.key in moves) { e.preventDefault(); focusSpan(moves[e.key]); }
      },
    },
      el("div", { class: "label", style: `padding-left:${Math.min(span.depth, 30) * 14}px` },
        serviceBadge(span.service), " ", el("span", { class: "name" }, span.name), " ",
        el("span", { class: "kind" }, span.kind.toLowerCase()),
        linked.length ? el("span", {
          class: "link-mark", dataset: { linked: linked.map((l) => l.span_id).join(" ") },
          title: `linked to ${linked.map((l) => `${l.service}: ${l.name}`).join(", ")}`,
        }, ` ⇠ ${linked.map((l) => l.service).join(", ")}`) : null),
      el("div", { class: "lane" },
        el("div", { class: "bar", style: `left:${left}%;width:${width}%;--hue:${hue(span.service)}` }),
        // The duration sits after the bar, else before it, else (a bar across the whole lane)
        // inside its right end.
        left + width <= 85
          ? el("span", { class: "duration", style: `left:${left + width}%` }, ms(span.duration_ms))
          : left > 15
            ? el("span", { class: "duration", style: `right:${100 - left}%` }, ms(span.duration_ms))
            : el("span", { class: "duration inside", style: `right:${100 - left - width}%` }, ms(span.duration_ms))));
  };
  const logLine = (span, log) => el("div", { class: `span-log level-${log.level}`, style: `padding-left:${Math.min(span.depth, 30) * 14 + 24}px` },
    el("span", { class: "time mono" }, shortTime(log.timestamp)), " ",
    el("span", { class: `level level-${log.level}` }, log.level), " ",
    el("span", { class: "message" }, log.message), " ",
    el("a", { href: logsAround(log.service_name, log.timestamp), class: "around" }, `${log.service_name} logs around`));
  const itemRow = (item) => (item.log ? logLine(item.span, item.log) : spanRow(item.span));

  const dag = el("section", { class: "dag", "aria-label": "Error DAG" });
  const plural = (n, one) => `${n} ${one}${n === 1 ? "" : "s"}`;
  const axis = el("div", { class: "axis" }, el("span", {}, "0"), el("span", {}, ms(total / 2000)), el("span", {}, ms(total / 1000)));
  show(
    el("h1", {}, "Trace ", el("span", { class: "mono", id: "trace-id" }, traceId)),
    el("p", { class: "summary" }, `${plural(spans.length, "span")} across ${plural(services.length, "service")}, ${ms(total / 1000)}`,
      errors ? el("span", { class: "error-text" }, `, ${errors} with errors`) : "", `, ${plural(logs.length, "log line")}`),
    axis, waterfall, detailsSlot,
    loose.length ? [el("h2", {}, "Log lines outside any span"), el("table", { class: "logs" }, el("tbody", {}, loose.map(logRow)))] : null,
    dag);

  if (!virtual) {
    waterfall.append(...items.map(itemRow));
  } else {
    // Only the rows in view of the waterfall's own scroll box are in the page. A span row and a
    // log row (one line, cut with an ellipsis) each have one height at a given width, measured
    // on a sample of each, so every row's top is known without drawing it.
    const drawn = new Map();
    const measure = () => {
      const sample = ordered[0];
      const probe = [spanRow(sample), logLine(sample, { level: "INFO", timestamp: sample.start_time, message: "probe", service_name: sample.service })];
      rowsParent.replaceChildren(...probe);
      const [spanHeight, logHeight] = probe.map((row) => row.getBoundingClientRect().height);
      rowsParent.replaceChildren();
      drawn.clear();
      tops = new Float64Array(items.length + 1);
      for (let i = 0; i < items.length; i++) tops[i + 1] = tops[i] + (items[i].log ? logHeight : spanHeight);
      rowsParent.style.height = `${tops[items.length]}px`;
      // The scroll bar narrows the lanes: the axis above narrows with them.
      axis.style.paddingRight = `${waterfall.offsetWidth - waterfall.clientWidth}px`;
    };
    /** The last item whose top is at or above `y`. */
    const itemAt = (y) => {
      let lo = 0;
      let hi = items.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (tops[mid] <= y) lo = mid; else hi = mid - 1;
      }
      return lo;
    };
    draw = () => {
      const top = waterfall.scrollTop;
      const from = Math.max(0, itemAt(top) - OVERSCAN_ROWS);
      const to = Math.min(items.length, itemAt(top + waterfall.clientHeight) + 1 + OVERSCAN_ROWS);
      for (const [i, row] of drawn) {
        if (i < from || i >= to) { row.remove(); drawn.delete(i); }
      }
      for (let i = from; i < to; i++) {
        if (drawn.has(i)) continue;
        const row = itemRow(items[i]);
        row.style.top = `${tops[i]}px`;
        rowsParent.append(row);
        drawn.set(i, row);
      }
    };
    measure();
    draw();
    let queued = false;
    waterfall.addEventListener("scroll", () => {
      if (queued) return;
      queued = true;
      requestAnimationFrame(() => { queued = false; draw(); });
    });
    window.addEventListener("resize", () => { measure(); draw(); });
  }
  // Script time to the rows in the page, then to the first frame painted with them.
  document.body.dataset.renderMs = String(Math.round(performance.now() - started));
  requestAnimationFrame(() => setTimeout(() => {
    document.body.dataset.paintMs = String(Math.round(performance.now() - started));
  }));

  try {
    const graph = await api(`/api/v1/traces/${traceId}/dag`);
    const failed = graph.nodes.filter((n) => n.error);
    dag.replaceChildren(el("h2", {}, "Error DAG"),
      failed.length
        ? el("ol", {}, failed.map((n) => el("li", { class: "error-text" }, `${n.service}: ${n.name} (${ms(n.duration_ms)}, ${n.level})`)))
        : el("p", { class: "muted" }, `no errors in ${graph.nodes.length} spans`));
  } catch {
    dag.replaceChildren();
  }
}

// ---- services ------------------------------------------------------------------------------

const WINDOWS = [["15m", 15], ["1h", 60], ["6h", 360], ["24h", 1440], ["7d", 10080]];

async function servicesPage() {
  const params = new URLSearchParams(location.search);
  const window = WINDOWS.find(([k]) => k === params.get("window")) || WINDOWS[1];
  const end = new Date();
  const start = new Date(end - window[1] * 60_000);
  const picker = el("select", { id: "window", onchange: (e) => { location.search = `window=${e.target.value}`; } },
    WINDOWS.map(([k]) => el("option", { value: k, selected: k === window[0] }, k)));
  const body = el("div", {}, el("p", { class: "muted" }, "Loading…"));
  const traces = el("section", { id: "traces", "aria-live": "polite" });
  show(el("h1", {}, "Services"), el("div", { class: "toolbar" }, el("label", {}, "Window ", picker)), body, traces);
  const listTraces = async (service, failedOnly) => {
    const q = new URLSearchParams({ service, start: start.getTime() * 1000, end: end.getTime() * 1000, limit: 20 });
    if (failedOnly) q.set("tags", JSON.stringify({ error: "true" }));
    try {
      const found = (await api(`/api/traces?${q}`)).data || [];
      const rows = found.map((t) => ({ id: t.traceID, duration: Math.max(...t.spans.map((s) => s.duration)) / 1000 }));
      if (!failedOnly) rows.sort((a, b) => b.duration - a.duration);
      traces.replaceChildren(el("h2", {}, `${failedOnly ? "Failed" : "Slowest"} traces of ${service}`),
        rows.length ? el("ul", {}, rows.map((r) => el("li", {}, traceLink(r.id), " ", ms(r.duration)))) : el("p", { class: "muted" }, "none in this window"));
    } catch (error) {
      traces.replaceChildren(failure(error, "traces"));
    }
  };
  try {
    const summary = await api(`/api/v1/services/summary?${new URLSearchParams({ start: start.toISOString(), end: end.toISOString() })}`);
    const list = summary.services || [];
    if (!list.length) {
      body.replaceChildren(el("p", {}, "No spans in this window. Place an order: curl -X POST localhost:3000/create-order"));
      return;
    }
    body.replaceChildren(el("table", { class: "services" },
      el("thead", {}, el("tr", {}, ["Service", "Requests", "Errors", "p50", "p99", ""].map((h) => el("th", {}, h)))),
      el("tbody", {}, list.map((s) => el("tr", {},
        el("td", {}, serviceBadge(s.service)),
        el("td", { class: "num" }, s.requests),
        el("td", { class: `num${s.errors ? " error-text" : ""}` }, s.errors),
        el("td", { class: "num" }, ms(s.p50_ms)),
        el("td", { class: "num" }, ms(s.p99_ms)),
        el("td", { class: "actions" },
          el("a", { href: `/?${new URLSearchParams({ service: s.service, from: start.toISOString(), to: end.toISOString() })}` }, "logs"), " ",
          el("button", { type: "button", onclick: () => listTraces(s.service, false) }, "slowest"), " ",
          el("button", { type: "button", onclick: () => listTraces(s.service, true) }, "failed")))))));
  } catch (error) {
    body.replaceChildren(failure(error, "the services summary"));
  }
}

// ---- alerts --------------------------------------------------------------------------------

/** Whether Alertmanager has a rule's alert: the outcome of its last delivery. */
function deliveryCell(delivery, delivering) {
  if (!delivery || delivering === false) return el("span", { class: "muted" }, "not configured");
  if (delivery.state === "delivered") {
    return el("span", { class: "delivery-delivered", title: `accepted by Alertmanager at ${delivery.at}` }, "delivered ", el("span", { class: "muted" }, shortTime(delivery.at)));
  }
  if (delivery.state === "failed") {
    return el("span", { class: "delivery-failed", title: delivery.error || "" }, "failed ", el("span", { class: "muted" }, shortTime(delivery.at)),
      el("div", { class: "delivery-error" }, delivery.error || ""));
  }
  return el("span", { class: "muted" }, "not sent");
}

async function alertsPage() {
  show(el("h1", {}, "Log alert rules"), el("p", { class: "muted" }, "Loading…"));
  try {
    const body = await api("/api/v1/alerts");
    const rules = body.rules || [];
    show(el("h1", {}, "Log alert rules"),
      body.delivering === false ? el("p", { class: "muted" }, "No Alertmanager is configured (ALERTMANAGER_URL): rules are evaluated, no alert is sent.") : null,
      rules.length ? el("table", { class: "alerts" },
        el("thead", {}, el("tr", {}, ["Rule", "State", "Last value", "Window", "Severity", "Example trace", "Fired at", "Alertmanager"].map((h) => el("th", {}, h)))),
        el("tbody", {}, rules.map((r) => el("tr", { dataset: { rule: r.name, state: r.state, delivery: r.delivery?.state || "" } },
          el("td", {}, el("strong", {}, r.name), r.enabled ? "" : el("span", { class: "muted" }, " (disabled)"),
            el("div", { class: "muted" }, [r.service, r.min_level && `≥ ${r.min_level}`, r.query && `"${r.query}"`].filter(Boolean).join(" · "))),
          el("td", {}, el("span", { class: `state state-${r.state}` }, r.state)),
          el("td", { class: "num" }, `${r.last_value_relation === "gte" ? "≥ " : ""}${r.last_value ?? "–"} / ${r.threshold}`),
          el("td", {}, `${r.window_seconds} s, for ${r.for_seconds} s`),
          el("td", {}, r.severity),
          el("td", {}, r.last_trace_id ? traceLink(r.last_trace_id) : "–"),
          el("td", {}, r.fired_at ? shortTime(r.fired_at) : "–"),
          el("td", { class: "delivery" }, deliveryCell(r.delivery, body.delivering)))))) :
        el("p", {}, "No rules. Create one with POST /api/v1/alerts or ALERT_RULES_FILE."));
  } catch (error) {
    show(el("h1", {}, "Log alert rules"), failure(error, "the alert rules"));
  }
}

// ---- start ---------------------------------------------------------------------------------

/**
 * Turns the tenant field into a picker of the stored tenants when there is more than one the
 * caller may see; a caller who may not list them keeps the text field.
 */
async function tenantPicker(form) {
  let tenants;
  try {
    tenants = (await api("/api/v1/tenants")).tenants || [];
  } catch {
    return;
  }
  if (tenants.length < 2) return;
  const current = access.tenant || "default";
  if (!tenants.includes(current)) tenants = [current, ...tenants];
  const picker = el("select", { id: "tenant", name: "tenant", onchange: () => form.requestSubmit() },
    tenants.map((t) => el("option", { value: t, selected: t === current }, t)));
  form.tenant.replaceWith(picker);
}

function start() {
  const form = document.getElementById("access");
  form.tenant.value = access.tenant;
  form["api-key"].value = access.key;
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    useAccess(form.tenant.value, form["api-key"].value);
  });
  tenantPicker(form);
  const path = location.pathname;
  const page = path.startsWith("/trace/") ? "" : path === "/" ? "search" : path.slice(1);
  document.querySelectorAll("nav a").forEach((a) => a.toggleAttribute("aria-current", a.dataset.page === page));
  if (path.startsWith("/trace/")) tracePage(decodeURIComponent(path.slice(7)));
  else if (path === "/services") servicesPage();
  else if (path === "/alerts") alertsPage();
  else searchPage();
}

start();
