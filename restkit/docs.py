"""``/docs``: a self-contained HTML page that reads ``/openapi.json``.

No CDN and no external assets, so it works offline.  It lists the
operations grouped by tag (native ``<details>`` elements expand them), shows
parameters, request and response schemas, and sends real requests ("try it
out").  Every piece of text from the document is inserted with
``textContent``, never as HTML.

The fragment automates it, for links and for tests:
``/docs#op=list_zoos&p.limit=5&send=1`` expands ``list_zoos``, fills the
``limit`` parameter and sends the request.
"""

from __future__ import annotations

import html
import json
import re

__all__ = ["docs_page"]

_PAGE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>
  :root { --fg:#1d2330; --muted:#5b6475; --line:#d9dee7; --bg:#f6f8fb; }
  * { box-sizing: border-box; }
  /* The header stays put and only <main> scrolls: the document itself never
     scrolls, so jumping to an operation keeps the page (and screenshots) whole. */
  html, body { height:100%; }
  body { display:flex; flex-direction:column; overflow:hidden; margin:0; font:15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color:var(--fg); background:#fff; }
  header { flex:none; padding:18px 28px; background:#1d2330; color:#fff; display:flex; gap:24px; align-items:center; flex-wrap:wrap; }
  header h1 { margin:0; font-size:22px; } header .version { color:#aab3c5; font-size:13px; }
  header label { margin-left:auto; font-size:13px; color:#cfd6e4; }
  header input { margin-left:8px; width:260px; padding:5px 8px; border-radius:4px; border:1px solid #48516a; background:#2a3142; color:#fff; }
  main { flex:1; overflow:auto; }
  main > .content { padding:12px 28px 40px; max-width:1100px; }
  #description { color:var(--muted); margin:10px 0 0; }
  h2 { font-size:18px; margin:26px 0 8px; text-transform:capitalize; }
  details.op { border:1px solid var(--line); border-radius:6px; margin:8px 0; background:var(--bg); scroll-margin-top:8px; }
  details.op[open] { background:#fff; }
  summary { cursor:pointer; padding:8px 12px; display:flex; gap:12px; align-items:center; list-style:none; }
  summary::-webkit-details-marker { display:none; }
  .method { font:bold 12px/1 ui-monospace, monospace; padding:6px 0; width:64px; text-align:center; border-radius:4px; color:#fff; }
  .get { background:#2f7de1; } .post { background:#1e9e5a; } .put { background:#c77d12; } .patch { background:#8a5cc9; } .delete { background:#d0393b; }
  code.path { font:14px ui-monospace, monospace; } .summary { color:var(--muted); }
  .lock { margin-left:auto; font-size:12px; color:var(--muted); }
  .body { padding:4px 16px 16px; }
  table { border-collapse:collapse; width:100%; margin:6px 0 12px; font-size:14px; }
  th, td { text-align:left; padding:5px 8px; border-bottom:1px solid var(--line); vertical-align:top; }
  pre { background:#f1f3f7; padding:10px; border-radius:4px; overflow:auto; font-size:13px; margin:4px 0 10px; }
  input.param { width:100%; padding:4px 6px; border:1px solid var(--line); border-radius:4px; font:13px ui-monospace, monospace; }
  textarea { width:100%; min-height:110px; font:13px ui-monospace, monospace; padding:8px; border:1px solid var(--line); border-radius:4px; }
  button.send { background:#1d2330; color:#fff; border:0; border-radius:4px; padding:7px 18px; font-weight:600; cursor:pointer; margin:6px 0; }
  .result { display:none; margin-top:10px; border-radius:6px; padding:10px 12px; }
  .result.ok { display:block; background:#e3f6ea; border:2px solid #1e9e5a; }
  .result.fail { display:block; background:#fde8e8; border:2px solid #d0393b; }
  .result .status { font-weight:700; font-size:16px; }
  .muted { color:var(--muted); font-size:13px; }
  h4 { margin:14px 0 4px; font-size:14px; }
  details.raw summary { padding:2px 0; display:block; }
  details.raw > summary::before { content:"▸ "; }
  details.raw[open] > summary::before { content:"▾ "; }
</style>
</head>
<body>
<header><div><h1 id="title">__TITLE__</h1><div class="version" id="version"></div></div>
<label>Authorization <input id="auth" placeholder="Bearer your-token" autocomplete="off"></label></header>
<main id="main"><div class="content"><p id="description"></p><div id="ops">Loading the API document…</div></div></main>
<script>
"use strict";
const SPEC_URL = __SPEC_URL__;
const BASE = __BASE__;
let SPEC = null;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value; else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

function resolve(schema, depth) {
  if (!schema || typeof schema !== "object") return schema;
  if (depth > 6) return {};
  if (schema.$ref) {
    const name = schema.$ref.split("/").pop();
    return resolve((SPEC.components.schemas || {})[name] || {}, depth + 1);
  }
  const out = Array.isArray(schema) ? [] : {};
  for (const [key, value] of Object.entries(schema)) out[key] = resolve(value, depth + 1);
  return out;
}

function example(schema, depth) {
  schema = resolve(schema, 0) || {};
  if (depth > 5) return null;
  if (schema.examples && schema.examples.length) return schema.examples[0];
  if (schema.default !== undefined) return schema.default;
  if (schema.enum) return schema.enum[0];
  if (schema.anyOf) return example(schema.anyOf.find(s => s.type !== "null") || schema.anyOf[0], depth + 1);
  switch (schema.type) {
    case "object": {
      const out = {};
      for (const [name, sub] of Object.entries(schema.properties || {})) {
        if ((schema.required || []).includes(name) || depth === 0) out[name] = example(sub, depth + 1);
      }
      return out;
    }
    case "array": return [example(schema.items || {}, depth + 1)];
    case "integer": return schema.minimum !== undefined ? Math.max(schema.minimum, 1) : 1;
    case "number": return 1.5;
    case "boolean": return true;
    case "string":
      if (schema.format === "date") return "2024-01-31";
      if (schema.format === "date-time") return "2024-01-31T12:00:00Z";
      if (schema.format === "uuid") return "123e4567-e89b-12d3-a456-426614174000";
      return schema.minLength && schema.minLength > 6 ? "x".repeat(schema.minLength) : "string";
  }
  return null;
}

function isArray(schema) {
  schema = resolve(schema, 0) || {};
  return schema.type === "array" || (schema.anyOf || []).some(s => s.type === "array");
}

function refName(schema) {
  return schema && schema.$ref ? schema.$ref.split("/").pop() : null;
}

function typeText(schema) {
  if (refName(schema)) return refName(schema);
  if (schema && schema.type === "array" && refName(schema.items)) return refName(schema.items) + "[]";
  schema = resolve(schema, 0) || {};
  if (schema.enum) return schema.enum.map(v => JSON.stringify(v)).join(" | ");
  if (schema.anyOf) return schema.anyOf.map(typeText).join(" | ");
  if (schema.type === "array") return typeText(schema.items || {}) + "[]";
  let text = schema.type || "any";
  if (schema.format) text += " (" + schema.format + ")";
  return text;
}

function constraints(schema) {
  const parts = [];
  const names = { minLength: "min length", maxLength: "max length", minimum: "≥", maximum: "≤",
    exclusiveMinimum: ">", exclusiveMaximum: "<", pattern: "pattern", minItems: "min items", maxItems: "max items" };
  const flat = schema.anyOf ? Object.assign({}, ...schema.anyOf) : schema;
  for (const [key, label] of Object.entries(names)) {
    const value = flat[key];
    // bounds such as 2**63 - 1 (an int path parameter) are beyond what JavaScript numbers hold exactly
    if (value === undefined || (typeof value === "number" && Math.abs(value) > Number.MAX_SAFE_INTEGER)) continue;
    parts.push(label + " " + value);
  }
  if (schema.default !== undefined) parts.push("default " + JSON.stringify(schema.default));
  if (schema.description) parts.push(schema.description);
  return parts.join(", ");
}

function fieldsTable(schema) {
  const full = resolve(schema, 0) || {};
  if (full.type !== "object" || !full.properties) return el("div", { class: "muted" }, typeText(schema));
  const table = el("table", { class: "fields" },
    el("tr", {}, el("th", {}, "field"), el("th", {}, "type"), el("th", {}, "constraints")));
  for (const [name, sub] of Object.entries(full.properties)) {
    const required = (full.required || []).includes(name);
    table.append(el("tr", {}, el("td", {}, el("code", {}, name), required ? " *" : ""),
      el("td", {}, typeText(sub)), el("td", { class: "muted" }, constraints(sub))));
  }
  return table;
}

function operationUrl(path, inputs) {
  let url = BASE + path.replace(/\{([^}]+)\}/g, (_, name) => encodeURIComponent(inputs.path[name] || ""));
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(inputs.query)) {
    if (value === "") continue;
    // an array parameter takes comma-separated values, sent as repeated keys (?tag=a&tag=b)
    const values = inputs.array[name] ? value.split(",").map(v => v.trim()) : [value];
    for (const one of values) query.append(name, one);
  }
  const qs = query.toString();
  return qs ? url + "?" + qs : url;
}

async function send(op, form, result) {
  const inputs = { path: {}, query: {}, header: {}, array: {} };
  for (const input of form.querySelectorAll("input.param")) {
    inputs[input.dataset.in][input.dataset.name] = input.value;
    if (input.dataset.array) inputs.array[input.dataset.name] = true;
  }
  const headers = { "Accept": "application/json" };
  for (const [name, value] of Object.entries(inputs.header)) if (value) headers[name] = value;
  const auth = document.getElementById("auth").value.trim();
  if (auth) headers["Authorization"] = auth;
  const init = { method: op.method.toUpperCase(), headers };
  const textarea = form.querySelector("textarea");
  if (textarea) { headers["Content-Type"] = "application/json"; init.body = textarea.value; }
  result.replaceChildren(el("div", { class: "muted" }, "Sending…"));
  result.className = "result ok";
  const url = operationUrl(op.path, inputs);
  try {
    const response = await fetch(url, init);
    const text = await response.text();
    let shown = text;
    try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { /* not JSON */ }
    const headerLines = [...response.headers.entries()].map(([k, v]) => k + ": " + v).join("\n");
    result.className = "result " + (response.ok ? "ok" : "fail");
    result.replaceChildren(
      el("div", { class: "status", "data-status": String(response.status) }, response.status + " " + response.statusText),
      el("div", { class: "muted" }, init.method + " " + url),
      el("details", { class: "raw" }, el("summary", { class: "muted" }, "Response headers"),
        el("pre", { class: "response-headers" }, headerLines)),
      el("h4", {}, "Response body"), el("pre", { class: "response-body" }, shown || "(empty)"));
    result.firstChild.scrollIntoView({ block: "nearest" });  // the status line; the operation stays in view
  } catch (error) {
    result.className = "result fail";
    result.replaceChildren(el("div", { class: "status" }, "Request failed: " + error));
  }
}

// Operations with a security requirement are marked with the schemes they need.
function lock(op) {
  const names = (op.security || []).flatMap(requirement => Object.keys(requirement));
  return names.length ? el("span", { class: "lock", title: "needs " + names.join(" or ") }, "\u{1F512} " + names.join(" or ")) : null;
}

function renderOperation(path, method, op) {
  op = { ...op, path, method };
  const body = el("div", { class: "body" });
  if (op.description) body.append(el("p", {}, op.description));
  const form = el("form", { class: "try" });
  const params = op.parameters || [];
  if (params.length) {
    const rows = params.map(p => el("tr", {},
      el("td", {}, el("code", {}, p.name), p.required ? " *" : ""), el("td", {}, p.in),
      el("td", {}, typeText(p.schema), constraints(p.schema || {}) ? el("div", { class: "muted" }, constraints(p.schema || {})) : null),
      el("td", {}, el("input", { class: "param", "data-in": p.in, "data-name": p.name,
        ...(isArray(p.schema) ? { "data-array": "1" } : {}),
        value: p.in === "path" ? String(example(p.schema, 1) ?? "") : "",
        placeholder: isArray(p.schema) ? "comma-separated values"
          : p.schema && p.schema.default !== undefined ? "default " + JSON.stringify(p.schema.default) : "" }))));
    form.append(el("h4", {}, "Parameters"),
      el("table", {}, el("tr", {}, el("th", {}, "name"), el("th", {}, "in"), el("th", {}, "type"), el("th", {}, "value")), ...rows));
  }
  if (op.requestBody) {
    const schema = op.requestBody.content["application/json"].schema;
    form.append(el("h4", {}, "Request body (application/json)"), fieldsTable(schema),
      el("details", { class: "raw" }, el("summary", { class: "muted" }, "JSON Schema"),
        el("pre", { class: "schema" }, JSON.stringify(resolve(schema, 0), null, 2))));
    const textarea = el("textarea", { name: "body" });
    textarea.value = JSON.stringify(example(schema, 0), null, 2);
    form.append(el("h4", {}, "Body to send"), textarea);
  }
  const result = el("div", { class: "result" });
  const button = el("button", { class: "send", type: "submit" }, "Try it out: send");
  form.append(button);
  form.addEventListener("submit", event => { event.preventDefault(); send(op, form, result); });
  body.append(form, result);
  const responses = el("table", {}, el("tr", {}, el("th", {}, "status"), el("th", {}, "description"), el("th", {}, "schema")));
  for (const [status, response] of Object.entries(op.responses || {})) {
    const content = response.content ? Object.entries(response.content)[0] : null;
    const schema = content && content[1].schema ? typeText(content[1].schema) + " (" + content[0] + ")" : "no body";
    responses.append(el("tr", {}, el("td", {}, status), el("td", {}, response.description || ""),
      el("td", {}, el("code", {}, schema))));
  }
  body.append(el("h4", {}, "Responses"), responses);
  return el("details", { class: "op", id: "op-" + op.operationId, "data-operation": op.operationId },
    el("summary", {}, el("span", { class: "method " + method }, method.toUpperCase()),
      el("code", { class: "path" }, path), el("span", { class: "summary" }, op.summary || ""), lock(op)), body);
}

function render() {
  document.getElementById("title").textContent = SPEC.info.title;
  document.getElementById("version").textContent = "version " + SPEC.info.version + " · OpenAPI " + SPEC.openapi;
  document.getElementById("description").textContent = SPEC.info.description || "";
  document.title = SPEC.info.title + " · docs";
  const groups = new Map();
  for (const [path, item] of Object.entries(SPEC.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const tag = (op.tags || ["default"])[0];
      if (!groups.has(tag)) groups.set(tag, []);
      groups.get(tag).push(renderOperation(path, method, op));
    }
  }
  const ops = document.getElementById("ops");
  ops.replaceChildren();
  for (const [tag, nodes] of groups) ops.append(el("section", { "data-tag": tag }, el("h2", {}, tag), ...nodes));
}

function automate() {
  const args = new URLSearchParams(location.hash.slice(1));
  const id = args.get("op");
  if (!id) return;
  const details = document.getElementById("op-" + id);
  if (!details) return;
  details.open = true;
  for (const [key, value] of args) {
    if (key.startsWith("p.")) {
      const input = details.querySelector('input.param[data-name="' + CSS.escape(key.slice(2)) + '"]');
      if (input) input.value = value;
    }
  }
  if (args.get("auth")) document.getElementById("auth").value = args.get("auth");
  // Bring the operation to the top unless it already starts in the upper half of the view.
  const view = document.getElementById("main").getBoundingClientRect();
  const top = details.getBoundingClientRect().top;
  if (top < view.top || top > view.top + view.height / 2) details.scrollIntoView();
  if (args.get("send") === "1") details.querySelector("button.send").click();
}

fetch(SPEC_URL, { headers: { "Accept": "application/json" } })
  .then(response => response.json())
  .then(spec => { SPEC = spec; render(); automate(); })
  .catch(error => { document.getElementById("ops").textContent = "Could not load " + SPEC_URL + ": " + error; });
</script>
</body>
</html>
"""


_PLACEHOLDER = re.compile(r"__(?:TITLE|SPEC_URL|BASE)__")


def docs_page(title: str, spec_url: str, base: str = "") -> str:
    """The HTML of the docs page for the document at ``spec_url``."""

    def js(value: str) -> str:
        return json.dumps(value).replace("<", "\\u003c")

    values = {"__TITLE__": html.escape(title), "__SPEC_URL__": js(spec_url), "__BASE__": js(base)}
    # One pass, so a title that contains "__BASE__" stays text.
    return _PLACEHOLDER.sub(lambda found: values[found[0]], _PAGE)
