"use strict";
// The host side of MCP Apps (protocol 2026-01-26): JSON-RPC 2.0 over postMessage with the window that framed us.
// Every vendor string reaches the page as a DOM text node (el() below): never as HTML.
const PROTOCOL_VERSION = "2026-01-26";
const REQUEST_SECONDS = 70; // past the server's 50 s call deadline and the usual 60 s host limit
const host = (() => {
  let nextId = 1;
  const waiting = new Map();
  const handlers = new Map();
  const post = (message) => window.parent.postMessage({ jsonrpc: "2.0", ...message }, "*");
  window.addEventListener("message", (event) => {
    const msg = event.data;
    if (event.source !== window.parent || !msg || msg.jsonrpc !== "2.0") return;
    if (msg.method === undefined) {
      const call = waiting.get(msg.id);
      if (!call) return;
      waiting.delete(msg.id);
      if (msg.error) call.reject(new Error(msg.error.message || "the host refused the request"));
      else call.resolve(msg.result || {});
      return;
    }
    const handler = handlers.get(msg.method);
    if (msg.id === undefined) {
      if (handler) handler(msg.params || {});
    } else if (handler || msg.method === "ping") {
      Promise.resolve(handler ? handler(msg.params || {}) : {}).then((result) => post({ id: msg.id, result: result || {} }));
    } else {
      post({ id: msg.id, error: { code: -32601, message: "Method not found" } });
    }
  });
  return {
    on: (method, fn) => handlers.set(method, fn),
    notify: (method, params) => post({ method, params: params || {} }),
    request: (method, params) =>
      new Promise((resolve, reject) => {
        const id = nextId++;
        waiting.set(id, { resolve, reject });
        post({ id, method, params });
        setTimeout(() => {
          if (waiting.delete(id)) reject(new Error("no answer from the host in " + REQUEST_SECONDS + " s"));
        }, REQUEST_SECONDS * 1000);
      }),
  };
})();

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child !== undefined && child !== null && child !== false) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

// A vendor value as text: strings as they are, anything else as JSON.
function text(value) {
  if (typeof value === "string") return value;
  return value === undefined || value === null ? "" : JSON.stringify(value);
}

function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

// The first count that is a whole number of at least 0 (Retell's, then the recount), else 0.
function count(...candidates) {
  const found = candidates.find((value) => Number.isInteger(value) && value >= 0);
  return found === undefined ? 0 : found;
}

const KNOWN_STATUSES = ["pass", "fail", "error"];
function badge(status) {
  const name = text(status) || "unknown";
  return el("span", { class: "badge s-" + (KNOWN_STATUSES.includes(name) ? name : "other") }, name);
}

// A batch's counts as a bar and its legend: `parts` has the pass / fail / error counts that are known (none, when the
// runs were not counted by status), and what the total leaves over is `otherWord`.
function countsBar(parts, total, otherWord) {
  const counted = Object.values(parts).reduce((sum, value) => sum + value, 0);
  parts = { ...parts, other: Math.max(0, total - counted) };
  const words = { pass: "passed", fail: "failed", error: "errored", other: otherWord || "not finished" };
  const said = Object.keys(parts).filter((key) => key !== "other" || parts.other).map((key) => parts[key] + " " + words[key]);
  const bar = el("div", { class: "bar", role: "img", "aria-label": said.join(", ") + " of " + total });
  const legend = el("div", { class: "legend" });
  for (const key of Object.keys(parts)) {
    if (!parts[key] && key === "other") continue;
    if (parts[key]) {
      const segment = el("span", { class: "s-" + key, "data-count": parts[key] });
      segment.style.flexGrow = String(parts[key]);
      bar.append(segment);
    }
    legend.append(el("span", { class: "s-" + key, "data-kind": key }, el("b", {}, String(parts[key])), " " + words[key]));
  }
  legend.append(el("span", { class: "muted" }, "of " + total));
  return [bar, legend];
}

function notice(title, detail, ...more) {
  return el("div", { class: "box notice", role: "status" }, el("strong", {}, title), detail ? el("p", {}, detail) : null, more);
}

function firstText(result) {
  const first = Array.isArray(result.content) ? result.content.find((block) => block && block.type === "text") : null;
  return first && typeof first.text === "string" ? first.text : null;
}

// A result's text block as JSON: the same object as its structured content, for a host that passes on only text.
function jsonText(result) {
  try {
    return JSON.parse(firstText(result));
  } catch (_) {
    return null;
  }
}

// The error object a failed tool call carries ({error: {code, message}}), or its plain text.
function errorOf(result) {
  const parsed = jsonText(result);
  if (isObject(parsed) && isObject(parsed.error)) return parsed.error;
  return { code: "error", message: firstText(result) || "The tool call failed." };
}

const app = document.getElementById("app");
function show(node) {
  app.replaceChildren(node); // the ResizeObserver in start() tells the host the new height
}

// Views register themselves: the first whose `matches` accepts a tool result's structured content renders it.
const views = [];
function render(result, back) {
  if (!isObject(result)) return notice("Nothing to show", "The host sent no result.");
  if (result.isError) {
    const error = errorOf(result);
    return notice("The call failed: " + text(error.code), text(error.message), back || null);
  }
  const data = isObject(result.structuredContent) ? result.structuredContent : jsonText(result);
  const view = isObject(data) ? views.find((candidate) => candidate.matches(data)) : undefined;
  return view ? view.render(data, back) : notice("Nothing to show", "This result has no view here.", back || null);
}

function applyContext(context) {
  if (!isObject(context)) return;
  const root = document.documentElement;
  if (context.theme === "light" || context.theme === "dark") root.dataset.theme = context.theme;
  const styles = isObject(context.styles) ? context.styles : {};
  if (isObject(styles.variables)) {
    for (const [name, value] of Object.entries(styles.variables)) {
      if (name.startsWith("--") && typeof value === "string") root.style.setProperty(name, value);
    }
  }
  const fonts = isObject(styles.css) ? styles.css.fonts : undefined;
  if (typeof fonts === "string" && !document.getElementById("host-fonts")) {
    document.head.append(el("style", { id: "host-fonts" }, fonts));
  }
}

let lastHeight = 0;
function reportSize() {
  const height = Math.ceil(document.documentElement.getBoundingClientRect().height);
  if (height === lastHeight) return;
  lastHeight = height;
  host.notify("ui/notifications/size-changed", { height });
}

function start() {
  document.documentElement.dataset.theme = matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  host.on("ui/notifications/tool-input", () => show(el("p", { class: "muted" }, "Waiting for the result…")));
  host.on("ui/notifications/tool-result", (result) => show(render(result)));
  host.on("ui/notifications/tool-cancelled", (params) => show(notice("The call was cancelled", text(params.reason))));
  host.on("ui/notifications/host-context-changed", applyContext);
  host.on("ui/resource-teardown", () => ({}));
  new ResizeObserver(reportSize).observe(document.documentElement);
  host
    .request("ui/initialize", {
      appInfo: { name: "retell-tela-mcp views", version: "@VERSION@" },
      appCapabilities: {},
      protocolVersion: PROTOCOL_VERSION,
    })
    .then((answer) => {
      applyContext(answer.hostContext);
      host.notify("ui/notifications/initialized");
    })
    .catch((error) => show(notice("The host did not answer", error.message)));
}
