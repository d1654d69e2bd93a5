// Admin UI of the webhook gateway. Plain JavaScript, no build step, nothing from a CDN: it is
// compiled into the gateway binary and talks only to the public API under /api/v1 with the token
// pasted at login (kept in this tab's sessionStorage). Text from the API is always inserted as
// text, never as HTML: webhook bodies can hold anything.
"use strict";

const TOKEN_KEY = "gateway.token";
const main = document.getElementById("main");
const flash = document.getElementById("flash");
const busy = document.getElementById("busy");
let pending = 0;
let refreshTimer = null;

// ---- tiny DOM helper -------------------------------------------------------------------------
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}
const fmtTime = (t) => (t ? new Date(t).toLocaleString() : "—");
const pill = (text, cls) => h("span", { class: `pill ${cls || ""}` }, text);
const statusPill = (s) =>
  pill(s, { succeeded: "ok", active: "ok", pending: "warn", dead: "bad", failed: "bad", disabled: "bad", success: "ok", failure: "bad" }[s] || "");
const empty = (text) => h("p", { class: "empty" }, text);
const pretty = (v) => h("pre", { tabindex: "0" }, typeof v === "string" ? v : JSON.stringify(v, null, 2));

// ---- API -------------------------------------------------------------------------------------
class Problem extends Error {
  constructor(p) {
    super(p.detail || p.title || "request failed");
    this.problem = p;
  }
}

function setBusy(delta) {
  pending += delta;
  busy.hidden = pending <= 0;
  document.body.setAttribute("aria-busy", pending > 0 ? "true" : "false");
}

async function api(method, path, body) {
  const headers = { authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY) || ""}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  setBusy(1);
  try {
    let res;
    try {
      res = await fetch(`/api/v1${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (e) {
      throw new Problem({ title: "The gateway cannot be reached", detail: "Check that it is running and try again." });
    }
    const text = await res.text();
    const data = text ? JSON.parse(text) : null;
    if (!res.ok) {
      // A token that expired or was revoked mid-session: back to the login page (the login page
      // itself shows the problem instead).
      if (res.status === 401 && !document.getElementById("nav").hidden) {
        sessionStorage.removeItem(TOKEN_KEY);
        location.hash = "#/login";
      }
      throw new Problem(data || { title: `HTTP ${res.status}`, status: res.status });
    }
    return data;
  } finally {
    setBusy(-1);
  }
}

// Problems in plain words: the detail, then each field and what is wrong with it.
function showProblem(e) {
  flash.replaceChildren();
  const p = e.problem || { title: "Something went wrong", detail: String(e.message || e) };
  const box = h("div", { class: "problem" },
    h("strong", {}, p.title || "Error"), " ", p.detail || "",
    p.errors && p.errors.length ? h("ul", {}, p.errors.map((f) => h("li", {}, h("code", {}, f.field), ": ", f.message))) : null,
    p.code ? h("div", { class: "muted" }, `code: ${p.code}`) : null);
  flash.append(box);
}
function notice(text) {
  flash.replaceChildren(h("div", { class: "notice" }, text));
}

// Runs an action with a visible busy state on its button; problems are shown, never thrown.
async function act(button, fn) {
  const label = button ? button.textContent : null;
  if (button) { button.disabled = true; button.setAttribute("aria-busy", "true"); button.textContent = "Working…"; }
  // A new user action replaces the last message; background loads leave it visible.
  if (button) flash.replaceChildren();
  try {
    return await fn();
  } catch (e) {
    showProblem(e);
    return undefined;
  } finally {
    if (button) { button.disabled = false; button.removeAttribute("aria-busy"); button.textContent = label; }
  }
}

function formData(form) {
  const out = {};
  for (const el of form.elements) {
    if (!el.name) continue;
    if (el.type === "checkbox") out[el.name] = el.checked;
    else if (el.value.trim() !== "") out[el.name] = el.value.trim();
  }
  return out;
}

function field(label, name, attrs = {}) {
  const input = attrs.textarea ? h("textarea", { name, ...attrs, textarea: null }) : h("input", { name, ...attrs });
  return h("label", {}, label, input);
}

function copyButton(text, what) {
  return h("button", {
    type: "button", class: "secondary", "aria-label": `Copy ${what}`,
    onclick: async (ev) => {
      try { await navigator.clipboard.writeText(text); ev.target.textContent = "Copied"; }
      catch { ev.target.textContent = "Select and copy"; }
      setTimeout(() => { ev.target.textContent = "Copy"; }, 1500);
    },
  }, "Copy");
}

// A secret the API shows once: with a copy button and a warning.
function showOnce(title, secret) {
  return h("div", { class: "once", role: "status" },
    h("strong", {}, title), h("p", {}, "Shown once: copy it now; the gateway will not show it again."),
    h("div", { class: "row" }, h("code", { class: "mono", "data-secret": "" }, secret), copyButton(secret, title)));
}

function table(headers, rows, emptyText) {
  if (!rows.length) return empty(emptyText);
  return h("div", { class: "table-wrap" },
    h("table", {}, h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, rows)));
}

// A list with "Load more" following the API's next_cursor.
function pagedList(load, render, headers, emptyText) {
  const box = h("div", {});
  let cursor = null;
  let tbody = null;
  const more = h("button", { type: "button", class: "secondary", hidden: true, onclick: (e) => act(e.target, next) }, "Load more");
  async function next() {
    const page = await load(cursor);
    if (!tbody) {
      if (!page.data.length) { box.replaceChildren(empty(emptyText)); return; }
      tbody = h("tbody", {});
      box.replaceChildren(h("div", { class: "table-wrap" },
        h("table", {}, h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))), tbody)), more);
    }
    page.data.forEach((item) => tbody.append(render(item)));
    cursor = page.next_cursor;
    more.hidden = !cursor;
  }
  act(null, next);
  return box;
}

const qs = (params) => {
  const p = Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== "");
  return p.length ? `?${p.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join("&")}` : "";
};
const enc = encodeURIComponent;

// ---- views -----------------------------------------------------------------------------------
function page(title, ...content) {
  document.title = `${title} · Webhook gateway`;
  const h1 = h("h1", {}, title);
  main.replaceChildren(h1, ...content);
  main.focus();
}

function loginView() {
  document.getElementById("nav").hidden = true;
  const form = h("form", {
    class: "card", onsubmit: async (ev) => {
      ev.preventDefault();
      const token = form.elements.token.value.trim();
      sessionStorage.setItem(TOKEN_KEY, token);
      const ok = await act(form.querySelector("button"), () => api("GET", "/tenants?limit=1"));
      if (ok) location.hash = "#/";
      else sessionStorage.removeItem(TOKEN_KEY);
    },
  },
  h("p", {}, "Paste an API token. Create one on the server with ",
    h("code", {}, "gateway token create --role admin"), "; it stays in this browser tab only."),
  field("API token", "token", { type: "password", autocomplete: "off", required: true, id: "token" }),
  h("p", {}, h("button", { type: "submit" }, "Log in")));
  page("Log in", form);
}

function chart(buckets) {
  const W = 720, H = 220, P = 30;
  const series = [
    ["events", "Webhooks stored", "#1d5fd1"],
    ["delivered", "Deliveries succeeded", "#1f7a3a"],
    ["failed", "Attempts failed", "#b3261e"],
    ["backlog", "Backlog", "#8a5a00"],
  ];
  const max = Math.max(1, ...buckets.flatMap((b) => series.map(([k]) => b[k])));
  const x = (i) => P + (i * (W - 2 * P)) / Math.max(1, buckets.length - 1);
  const y = (v) => H - P - (v * (H - 2 * P)) / max;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("role", "img");
  const total = (k) => buckets.reduce((s, b) => s + b[k], 0);
  svg.setAttribute("aria-label", `Per minute over ${buckets.length} minutes: ${total("events")} webhooks, ${total("delivered")} deliveries, ${total("failed")} failed attempts; backlog now ${buckets.length ? buckets[buckets.length - 1].backlog : 0}`);
  const line = (x1, y1, x2, y2, color) => {
    const l = document.createElementNS(ns, "line");
    Object.entries({ x1, y1, x2, y2, stroke: color, "stroke-width": 1 }).forEach(([k, v]) => l.setAttribute(k, v));
    return l;
  };
  svg.append(line(P, H - P, W - P, H - P, "#aab2bd"), line(P, P, P, H - P, "#aab2bd"));
  const label = (tx, ty, text) => {
    const t = document.createElementNS(ns, "text");
    t.setAttribute("x", tx); t.setAttribute("y", ty); t.setAttribute("font-size", "11"); t.setAttribute("fill", "#5b6472");
    t.textContent = text;
    return t;
  };
  svg.append(label(2, P + 4, String(max)), label(2, H - P, "0"));
  if (buckets.length) {
    svg.append(label(P, H - 8, new Date(buckets[0].at).toLocaleTimeString()));
    svg.append(label(W - P - 60, H - 8, new Date(buckets[buckets.length - 1].at).toLocaleTimeString()));
  }
  for (const [k, , color] of series) {
    const pl = document.createElementNS(ns, "polyline");
    pl.setAttribute("fill", "none");
    pl.setAttribute("stroke", color);
    pl.setAttribute("stroke-width", "2");
    pl.setAttribute("points", buckets.map((b, i) => `${x(i)},${y(b[k])}`).join(" "));
    svg.append(pl);
  }
  return h("div", { class: "chart" },
    h("div", { class: "legend" }, series.map(([, name, color]) => h("span", { class: `legend-${color.slice(1)}` }, name))),
    svg);
}

async function dashboardView() {
  const body = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  page("Dashboard", body);
  const minutes = h("select", { id: "minutes", onchange: () => load() },
    [15, 60, 360, 1440].map((m) => h("option", { value: m, selected: m === 60 }, `last ${m < 60 ? m + " min" : m / 60 + " h"}`)));
  async function load() {
    let s;
    try {
      s = await api("GET", `/stats?minutes=${minutes.value}`);
    } catch (e) {
      if (e.problem && e.problem.code === "forbidden") {
        body.replaceChildren(empty("The dashboard covers every tenant, so it needs an admin token. Your tenant's events and deliveries are under Tenants."));
        clearInterval(refreshTimer);
      } else showProblem(e);
      return;
    }
    const sum = (k) => s.buckets.reduce((a, b) => a + b[k], 0);
    const attempts = sum("delivered") + sum("failed");
    body.replaceChildren(
      h("div", { class: "row" }, h("label", {}, "Window", minutes)),
      h("div", { class: "kpis" },
        h("div", { class: "kpi" }, "Webhooks stored", h("b", {}, sum("events"))),
        h("div", { class: "kpi" }, "Deliveries succeeded", h("b", {}, sum("delivered"))),
        h("div", { class: "kpi" }, "Attempts failed", h("b", { class: sum("failed") ? "bad" : "" }, sum("failed"))),
        h("div", { class: "kpi" }, "Success rate", h("b", {}, attempts ? `${((100 * sum("delivered")) / attempts).toFixed(1)} %` : "—")),
        h("div", { class: "kpi" }, "Backlog now", h("b", { class: s.backlog ? "warn" : "" }, s.backlog))),
      h("h2", {}, "Per minute"),
      chart(s.buckets),
      sum("events") === 0 ? empty("No webhooks in this window. Onboard a tenant under Tenants and point its provider at the webhook URL shown there.") : "");
  }
  await load();
  refreshTimer = setInterval(load, 10000);
}

function tenantsView() {
  const list = h("div", {});
  const search = h("form", {
    class: "inline", role: "search", onsubmit: (ev) => { ev.preventDefault(); render(); },
  }, field("Search by name", "name", { type: "search", id: "tenant-search" }),
  h("label", {}, "Status", h("select", { name: "status" }, h("option", { value: "" }, "any"), h("option", { value: "active" }, "active"), h("option", { value: "disabled" }, "disabled"))),
  h("button", { type: "submit", class: "secondary" }, "Search"));
  const create = h("form", {
    class: "card inline", "aria-label": "Create a tenant",
    onsubmit: async (ev) => {
      ev.preventDefault();
      const t = await act(create.querySelector("button"), () => api("POST", "/tenants", formData(create)));
      if (t) location.hash = `#/tenants/${t.id}`;
    },
  }, field("Slug", "slug", { required: true, placeholder: "acme-health", id: "new-slug" }),
  field("Name", "name", { required: true, placeholder: "Acme Health", id: "new-name" }),
  field("Customer id (optional)", "customer_id", { id: "new-customer" }),
  h("button", { type: "submit" }, "Create tenant"));
  function render() {
    const f = formData(search);
    list.replaceChildren(pagedList(
      (cursor) => api("GET", `/tenants${qs({ ...f, cursor })}`),
      (t) => h("tr", {}, h("td", {}, h("a", { href: `#/tenants/${t.id}` }, t.name)), h("td", {}, h("code", {}, t.slug)),
        h("td", {}, t.customer_id || "—"), h("td", {}, statusPill(t.status)), h("td", {}, fmtTime(t.created_at))),
      ["Name", "Slug", "Customer id", "Status", "Created"],
      "No tenants match. Create one with the form above."));
  }
  page("Tenants", h("h2", {}, "New tenant"), create, search, list);
  render();
}

const TABS = [["connections", "Connections"], ["endpoints", "Endpoints"], ["events", "Events"], ["deliveries", "Deliveries"], ["actions", "Provider actions"]];

async function tenantView(id, tab, rest, detail) {
  const t = await act(null, () => api("GET", `/tenants/${enc(id)}`));
  if (!t) return;
  const header = h("div", { class: "card" });
  function renderHeader() {
    const edit = h("form", {
      class: "inline", "aria-label": "Edit tenant",
      onsubmit: async (ev) => {
        ev.preventDefault();
        const body = formData(edit);
        if (!body.customer_id) body.customer_id = null;
        const u = await act(edit.querySelector("button[type=submit]"), () => api("PATCH", `/tenants/${t.id}`, body));
        if (u) { Object.assign(t, u); notice("Saved."); renderHeader(); }
      },
    }, field("Name", "name", { value: t.name, required: true }),
    field("Customer id", "customer_id", { value: t.customer_id || "" }),
    h("button", { type: "submit" }, "Save"),
    h("button", {
      type: "button", class: t.status === "active" ? "danger" : "secondary",
      onclick: async (ev) => {
        const next = t.status === "active" ? "disabled" : "active";
        const u = await act(ev.target, () => api("PATCH", `/tenants/${t.id}`, { status: next }));
        if (u) { Object.assign(t, u); notice(next === "disabled" ? "Tenant disabled: its webhooks are now refused (403)." : "Tenant enabled."); renderHeader(); }
      },
    }, t.status === "active" ? "Disable tenant" : "Enable tenant"));
    header.replaceChildren(h("p", {}, h("code", {}, t.id), " · ", h("code", {}, t.slug), " · ", statusPill(t.status)), edit);
  }
  renderHeader();
  const tabs = h("nav", { class: "tabs", "aria-label": "Tenant sections" },
    TABS.map(([k, name]) => h("a", { href: `#/tenants/${t.id}/${k}`, "aria-current": k === tab ? "page" : null }, name)));
  const body = h("section", {});
  page(t.name, header, tabs, body);
  if (tab === "events" && detail) return eventDetail(t, body, detail);
  if (tab === "deliveries" && detail) return deliveryDetail(t, body, detail);
  if (tab === "subjects") return timelineView(t, body, detail);
  const views = { connections: connectionsTab, endpoints: endpointsTab, events: eventsTab, deliveries: deliveriesTab, actions: actionsTab };
  await (views[tab] || connectionsTab)(t, body, rest);
}

// The providers, as the gateway's catalog lists them: every form and label below comes from it.
let catalogCache = null;
async function catalog() {
  if (!catalogCache) catalogCache = await api("GET", "/providers");
  return catalogCache;
}

async function connectionsTab(t, body) {
  body.replaceChildren();
  for (const p of await catalog()) {
    const box = h("div", { class: "card", id: `conn-${p.name}` });
    body.append(box);
    let conn = null;
    try { conn = await api("GET", `/tenants/${t.id}/providers/${p.name}`); } catch (e) { if (!e.problem || e.problem.status !== 404) showProblem(e); }
    renderConnection(t, p, conn, box);
  }
}

// One input for a credential field of the catalog; secrets are never shown, only their hint.
function credentialInput(f, conn) {
  const attrs = { id: `${f.name}-${Math.random().toString(36).slice(2, 8)}` };
  if (f.kind === "choice") {
    return h("label", {}, f.label, h("select", { name: f.name, ...attrs },
      h("option", { value: "" }, "unchanged"), f.choices.map((c) => h("option", { value: c }, c))));
  }
  if (f.secret) return field(f.label, f.name, { ...attrs, type: "password", autocomplete: "off", placeholder: conn?.secret_hint ? `set (${conn.secret_hint})` : "" });
  if (f.kind === "cidr_list") return field(`${f.label} (comma separated)`, f.name, { ...attrs, value: (conn?.ip_allowlist || []).join(", ") });
  return field(f.label, f.name, { ...attrs, value: conn?.[f.name] || "" });
}

function renderConnection(t, p, conn, box) {
  const provider = p.name, title = p.display_name;
  const keys = p.credential_fields.find((f) => f.kind === "keys");
  const reload = async () => renderConnection(t, p, await api("GET", `/tenants/${t.id}/providers/${provider}`), box);
  const put = async (btn, body) => {
    const c = await act(btn, () => api("PUT", `/tenants/${t.id}/providers/${provider}`, body));
    if (c) { notice(`${title} connection saved.`); renderConnection(t, p, c, box); }
  };
  const keyForm = h("form", {
    class: "inline", "aria-label": `Add a ${title} key`,
    onsubmit: async (ev) => {
      ev.preventDefault();
      const v = keyForm.elements.key.value.trim();
      if (!conn) {
        await put(keyForm.querySelector("button"), { [keys.name]: [v] });
        return;
      }
      const k = await act(keyForm.querySelector("button"), () => api("POST", `/tenants/${t.id}/providers/${provider}/keys`, { [p.add_key_field]: v }));
      if (k) { notice("Key added. Both keys verify until you remove the old one."); await reload(); }
    },
  }, p.key_kind === "rsa_public_key"
    ? field(keys.label, "key", { textarea: true, required: true, id: `${provider}-key`, placeholder: "-----BEGIN PUBLIC KEY-----" })
    : field(keys.label, "key", { type: "password", required: true, id: `${provider}-key`, autocomplete: "off" }),
  h("button", { type: "submit" }, conn ? "Add key" : "Connect with this key"));

  const credForm = h("form", {
    class: "inline", "aria-label": `${title} API credentials`,
    onsubmit: async (ev) => {
      ev.preventDefault();
      const body = formData(credForm);
      for (const f of p.credential_fields) {
        if (f.kind === "cidr_list" && body[f.name] !== undefined) body[f.name] = body[f.name].split(",").map((s) => s.trim()).filter(Boolean);
      }
      await put(credForm.querySelector("button"), body);
    },
  }, p.credential_fields.filter((f) => f.kind !== "keys").map((f) => credentialInput(f, conn)),
  h("button", { type: "submit", class: "secondary" }, "Save credentials"));

  if (!conn) {
    box.replaceChildren(h("h2", {}, title), h("p", { class: "muted" }, p.summary), empty(`Not connected. Add a key (${keys.label}) to connect.`), keyForm);
    return;
  }
  const urls = conn.webhook_urls || {};
  box.replaceChildren(
    h("h2", {}, title),
    h("p", {}, "Webhook URL to give the provider:"),
    h("div", { class: "row" }, h("code", { class: "mono" }, urls.path), copyButton(urls.path, `${title} webhook URL`)),
    urls.customer_id ? h("div", { class: "row" }, h("code", { class: "mono" }, urls.customer_id), copyButton(urls.customer_id, `${title} customer id URL`)) : null,
    h("h2", {}, "Verification keys"),
    table(["Kind", "Hint", "Added", ""], (conn.keys || []).map((k) => h("tr", {},
      h("td", {}, k.kind), h("td", {}, h("code", {}, k.fingerprint || k.hint || "")), h("td", {}, fmtTime(k.created_at)),
      h("td", {}, h("button", {
        type: "button", class: "danger", "aria-label": `Remove key ${k.hint || k.id}`,
        onclick: async (ev) => { if (await act(ev.target, () => api("DELETE", `/tenants/${t.id}/providers/${provider}/keys/${k.id}`)) !== undefined) await reload(); },
      }, "Remove")))), "No keys: webhooks cannot be verified until you add one."),
    keyForm,
    h("h2", {}, "API credentials"), credForm,
    p.actions.length ? [h("h2", {}, "Actions toward the provider"),
      h("ul", {}, p.actions.map((a) => h("li", {}, h("strong", {}, a.label), ` — ${a.description} `, h("code", {}, `${a.method} ${a.path}`))))] : null);
}

async function endpointsTab(t, body) {
  const list = h("div", {});
  const shown = h("div", {});
  const filter = h("select", { id: "endpoint-filter", onchange: () => render() },
    h("option", { value: "" }, "all"), h("option", { value: "enabled" }, "enabled"), h("option", { value: "disabled" }, "disabled"));
  const create = h("form", {
    class: "card inline", "aria-label": "Add an endpoint",
    onsubmit: async (ev) => {
      ev.preventDefault();
      const f = formData(create);
      if (f.event_types) f.event_types = f.event_types.split(",").map((s) => s.trim()).filter(Boolean);
      const e = await act(create.querySelector("button[type=submit]"), () => api("POST", `/tenants/${t.id}/endpoints`, endpointOptionValues(f)));
      if (e) { shown.replaceChildren(showOnce("Signing secret", e.signing_secret)); create.reset(); render(); }
    },
  }, field("URL", "url", { type: "url", placeholder: "https://dispatch.example.com/hooks (push endpoints)", id: "endpoint-url" }),
  field("Description", "description", {}), field("Event types (comma separated, optional)", "event_types", { placeholder: "transport.*" }),
  h("label", {}, "Payload", h("select", { name: "payload_mode", id: "endpoint-payload-mode" },
    h("option", { value: "full" }, "full (patient data included)"),
    h("option", { value: "minimal" }, "minimal (ids, status, links; no patient data)"))),
  endpointOptionFields(),
  h("button", { type: "submit" }, "Add endpoint"));
  async function render() {
    const page = await act(null, () => api("GET", `/tenants/${t.id}/endpoints?limit=200`));
    if (!page) return;
    const rows = page.data.filter((e) => !filter.value || (filter.value === "enabled") === e.enabled);
    list.replaceChildren(table(["URL", "State", "Failing since", ""], rows.map((e) => endpointRow(t, e, shown, render)),
      page.data.length ? "No endpoint matches this filter." : "No endpoints yet. Add the URL where this tenant wants its normalized events."));
  }
  body.replaceChildren(h("h2", {}, "Endpoints"), create, shown, h("div", { class: "row" }, h("label", {}, "Show", filter)), list);
  await render();
}

function endpointRow(t, e, shown, render) {
  const path = `/tenants/${t.id}/endpoints/${e.id}`;
  return h("tr", {},
    h("td", {}, h("code", {}, e.url), e.description ? h("div", { class: "muted" }, e.description) : null, h("div", { class: "muted mono" }, e.id),
      h("div", { class: "muted" }, `payload: ${e.payload_mode}`), endpointDelivery(t, e, shown)),
    h("td", {}, e.enabled ? pill("enabled", "ok") : pill("disabled", "bad"), e.disabled_reason ? h("div", { class: "muted" }, e.disabled_reason) : null),
    h("td", {}, fmtTime(e.failing_since)),
    h("td", {}, h("div", { class: "row" },
      h("button", { type: "button", class: "secondary", onclick: async (ev) => { if (await act(ev.target, () => api("PATCH", path, { enabled: !e.enabled }))) render(); } }, e.enabled ? "Disable" : "Enable"),
      h("button", { type: "button", class: "secondary", onclick: async (ev) => { const r = await act(ev.target, () => api("POST", `${path}/rotate-secret`, {})); if (r) shown.replaceChildren(showOnce("New signing secret", r.signing_secret), h("p", { class: "muted" }, `Old secrets keep signing until ${fmtTime(r.previous_secrets_expire_at)}.`)); } }, "Rotate secret"),
      h("button", { type: "button", class: "secondary", onclick: async (ev) => { const r = await act(ev.target, () => api("POST", `${path}/test`)); if (r) shown.replaceChildren(h("div", { class: r.success ? "notice" : "problem" }, r.success ? `Test event delivered (HTTP ${r.status_code}, ${r.duration_ms} ms).` : `Test event failed: ${r.error || "HTTP " + r.status_code}`)); } }, "Send test event"),
      h("button", { type: "button", class: "secondary", onclick: async (ev) => { const since = new Date(Date.now() - 24 * 3600e3).toISOString(); const r = await act(ev.target, () => api("POST", `${path}/recover`, { since })); if (r) notice(`${r.recovered} failed deliveries of the last 24 h queued again.`); } }, "Recover last 24 h"),
      h("a", { href: `#/tenants/${t.id}/deliveries?endpoint_id=${e.id}` }, "Deliveries"))));
}

async function eventsTab(t, body, rest) {
  const params = new URLSearchParams(rest || "");
  const list = h("div", {});
  const form = h("form", {
    class: "inline", role: "search", "aria-label": "Filter events",
    onsubmit: (ev) => { ev.preventDefault(); render(); },
  }, h("label", {}, "Provider", h("select", { name: "provider" }, h("option", { value: "" }, "any"), (await catalog()).map((p) => h("option", { value: p.name }, p.display_name)))),
  field("Type (prefix*)", "type", { placeholder: "transport.*", value: params.get("type") || "" }),
  field("Status", "status", { value: params.get("status") || "" }),
  field("Subject", "subject", { value: params.get("subject") || "" }),
  h("button", { type: "submit", class: "secondary" }, "Filter"));
  function render() {
    const f = formData(form);
    list.replaceChildren(pagedList((cursor) => api("GET", `/tenants/${t.id}/events${qs({ ...f, cursor })}`),
      (e) => h("tr", {}, h("td", {}, h("a", { href: `#/tenants/${t.id}/events/${e.id}` }, e.type)),
        h("td", {}, h("a", { href: `#/tenants/${t.id}/subjects/${enc(e.subject)}` }, e.subject)),
        h("td", {}, e.status, e.stale ? [" ", pill("stale", "warn")] : null), h("td", {}, e.provider), h("td", {}, fmtTime(e.received_at))),
      ["Type", "Subject (timeline)", "Status", "Provider", "Received"],
      "No events yet. They appear here as soon as the provider posts to this tenant's webhook URL."));
  }
  body.replaceChildren(h("h2", {}, "Events"), form, list);
  render();
}

// Patient and address fields stay hidden until someone asks for them: the page loads the
// minimal view (not an access to patient data); "Reveal patient data" loads the full event,
// which the gateway writes to the access log.
async function eventDetail(t, body, id) {
  const path = `/tenants/${t.id}/events/${enc(id)}`;
  const e = await act(null, () => api("GET", `${path}?view=minimal`));
  if (!e) return;
  const deliveries = await act(null, () => api("GET", `/tenants/${t.id}/deliveries?event_id=${enc(id)}`));
  const payload = h("div", {});
  const reveal = h("button", {
    type: "button", class: "secondary",
    onclick: async (ev) => {
      const full = await act(ev.target, () => api("GET", path));
      if (!full || !full.raw) return;
      payload.replaceChildren(h("div", { class: "split" },
        h("div", {}, h("h2", {}, "Normalized (sent to endpoints)"), pretty(full.normalized)),
        h("div", {}, h("h2", {}, "Raw webhook"), pretty(tryJson(full.raw.body)), h("h2", {}, "Headers"), pretty(full.raw.headers), h("h2", {}, "Verification"), pretty(full.raw.verification))));
    },
  }, "Reveal patient data");
  if (e.purged_at) payload.replaceChildren(h("p", { class: "muted" }, "Payload purged ", fmtTime(e.purged_at), " at the end of this tenant's retention period; the event's record and deliveries remain."));
  else payload.replaceChildren(h("h2", {}, "Normalized, patient and address fields hidden"), pretty(e.normalized),
    h("p", {}, reveal, " ", h("span", { class: "muted" }, "Revealing is recorded in the access log.")));
  body.replaceChildren(
    h("h2", {}, `${e.type} · `, h("a", { href: `#/tenants/${t.id}/subjects/${enc(e.subject)}` }, `timeline of ${e.subject}`)),
    h("p", {}, h("code", {}, e.id), " · received ", fmtTime(e.received_at), " · ", e.provider, e.stale ? [" ", pill("stale", "warn")] : null),
    payload,
    h("h2", {}, "Deliveries"),
    deliveryTable(t, deliveries ? deliveries.data : []));
}

function tryJson(s) { try { return JSON.parse(s); } catch { return s; } }

function deliveryTable(t, rows) {
  return table(["Delivery", "Status", "Attempts", "Last answer", "Next attempt", ""], rows.map((d) => h("tr", {},
    h("td", {}, h("a", { href: `#/tenants/${t.id}/deliveries/${d.id}` }, h("code", {}, d.id))),
    h("td", {}, statusPill(d.status)), h("td", {}, d.attempts),
    h("td", {}, d.last_status_code ? `HTTP ${d.last_status_code}` : d.last_error || "—"),
    h("td", {}, d.status === "pending" ? fmtTime(d.next_attempt_at) : "—"),
    h("td", {}, redeliverButton(t, d)))), "No deliveries: no enabled endpoint matched this event.");
}

function redeliverButton(t, d, after) {
  return h("button", {
    type: "button", class: "secondary", "aria-label": `Redeliver ${d.id}`,
    onclick: async (ev) => {
      const r = await act(ev.target, () => api("POST", `/tenants/${t.id}/deliveries/${d.id}/redeliver`));
      if (r) { notice("Queued for delivery now."); if (after) after(); else route(); }
    },
  }, "Redeliver");
}

function deliveriesTab(t, body, rest) {
  const params = new URLSearchParams(rest || "");
  const list = h("div", {});
  const form = h("form", {
    class: "inline", role: "search", "aria-label": "Filter deliveries",
    onsubmit: (ev) => { ev.preventDefault(); render(); },
  }, h("label", {}, "Status", h("select", { name: "status" }, ["", "pending", "succeeded", "dead"].map((s) => h("option", { value: s }, s || "any")))),
  field("Endpoint id", "endpoint_id", { value: params.get("endpoint_id") || "" }),
  field("Event id", "event_id", { value: params.get("event_id") || "" }),
  h("button", { type: "submit", class: "secondary" }, "Filter"));
  function render() {
    const f = formData(form);
    list.replaceChildren(pagedList((cursor) => api("GET", `/tenants/${t.id}/deliveries${qs({ ...f, cursor })}`),
      (d) => h("tr", {}, h("td", {}, h("a", { href: `#/tenants/${t.id}/deliveries/${d.id}` }, h("code", {}, d.id))),
        h("td", {}, statusPill(d.status)), h("td", {}, d.attempts), h("td", {}, d.last_status_code ? `HTTP ${d.last_status_code}` : d.last_error || "—"),
        h("td", {}, h("a", { href: `#/tenants/${t.id}/events/${d.event_id}` }, "event")), h("td", {}, redeliverButton(t, d))),
      ["Delivery", "Status", "Attempts", "Last answer", "Event", ""],
      "No deliveries match. Deliveries appear when events reach an enabled endpoint."));
  }
  body.replaceChildren(h("h2", {}, "Deliveries"), form, list);
  render();
}

async function deliveryDetail(t, body, id) {
  const d = await act(null, () => api("GET", `/tenants/${t.id}/deliveries/${enc(id)}`));
  if (!d) return;
  body.replaceChildren(
    h("h2", {}, "Delivery ", h("code", {}, d.id)),
    h("p", {}, statusPill(d.status), ` · ${d.attempts} attempt(s) · `, h("a", { href: `#/tenants/${t.id}/events/${d.event_id}` }, "event"), " · ", redeliverButton(t, d)),
    h("h2", {}, "Attempts"),
    table(["#", "At", "Result", "Duration", "Error", "Response"], (d.attempt_log || []).map((a) => h("tr", {},
      h("td", {}, a.attempt), h("td", {}, fmtTime(a.at)),
      h("td", {}, a.success ? pill(`HTTP ${a.status_code}`, "ok") : pill(a.status_code ? `HTTP ${a.status_code}` : a.error_class || "failed", "bad")),
      h("td", {}, `${a.duration_ms} ms`), h("td", {}, a.error || "—"), h("td", {}, a.response_snippet ? h("code", {}, a.response_snippet) : "—"))),
    "Not attempted yet."));
}

function actionsTab(t, body) {
  body.replaceChildren(h("h2", {}, "Provider actions"),
    pagedList((cursor) => api("GET", `/tenants/${t.id}/actions${qs({ cursor })}`),
      (a) => h("tr", {}, h("td", {}, a.action), h("td", {}, a.subject ? h("a", { href: `#/tenants/${t.id}/subjects/${enc(a.subject)}` }, a.subject) : "—"),
        h("td", {}, statusPill(a.outcome), a.provider_status ? ` HTTP ${a.provider_status}` : ""), h("td", {}, a.message || "—"), h("td", {}, a.actor), h("td", {}, fmtTime(a.created_at))),
      ["Action", "Subject", "Outcome", "Message", "By", "At"],
      "No provider actions yet. They are made through the API; each provider's are listed under Connections."));
}

async function timelineView(t, body, subject) {
  subject = decodeURIComponent(subject || "");
  const tl = await act(null, () => api("GET", `/tenants/${t.id}/subjects/${enc(subject)}/timeline`));
  if (!tl) return;
  const items = [
    ...tl.events.map((e) => ({ at: e.received_at, kind: "event", e })),
    ...tl.actions.map((a) => ({ at: a.created_at, kind: "action", a })),
  ].sort((x, y) => (x.at < y.at ? -1 : 1));
  const list = h("ol", { class: "timeline" }, items.map((it) => {
    if (it.kind === "action") {
      const a = it.a;
      return h("li", { class: "card" }, h("span", { class: "when" }, fmtTime(a.created_at)),
        h("strong", {}, `Action: ${a.action}`), " ", statusPill(a.outcome), a.provider_status ? ` HTTP ${a.provider_status}` : "",
        a.message ? h("div", { class: "muted" }, a.message) : null, h("div", { class: "muted" }, `by ${a.actor}`));
    }
    const e = it.e;
    const detail = h("div", {});
    return h("li", { class: "card" }, h("span", { class: "when" }, fmtTime(e.received_at)),
      h("strong", {}, `Webhook: ${e.type}`), " ", e.status, e.stale ? [" ", pill("stale", "warn")] : null, " ",
      h("button", {
        type: "button", class: "secondary", "aria-expanded": "false",
        onclick: async (ev) => {
          const open = ev.target.getAttribute("aria-expanded") === "true";
          ev.target.setAttribute("aria-expanded", open ? "false" : "true");
          if (open) { detail.replaceChildren(); return; }
          const full = await act(ev.target, () => api("GET", `/tenants/${t.id}/events/${e.id}`));
          if (full && full.purged_at) detail.replaceChildren(h("p", { class: "muted" }, "Payload purged ", fmtTime(full.purged_at), "."));
          else if (full) detail.replaceChildren(h("div", { class: "split" }, h("div", {}, h("h2", {}, "Normalized"), pretty(full.normalized)), h("div", {}, h("h2", {}, "Raw"), pretty(tryJson(full.raw.body)))));
        },
      }, "Reveal normalized and raw"), " ", h("a", { href: `#/tenants/${t.id}/events/${e.id}` }, "details"), detail);
  }));
  body.replaceChildren(h("h2", {}, `Timeline of ${subject}`), items.length ? list : empty("Nothing recorded for this subject yet."));
}

function tokensView() {
  const shown = h("div", {});
  const list = h("div", {});
  const create = h("form", {
    class: "card inline", "aria-label": "Create a token",
    onsubmit: async (ev) => {
      ev.preventDefault();
      const f = formData(create);
      if (f.role !== "tenant") delete f.tenant;
      const tok = await act(create.querySelector("button"), () => api("POST", "/tokens", f));
      if (tok) { shown.replaceChildren(showOnce(`Token "${tok.name}"`, tok.token)); create.reset(); render(); }
    },
  }, field("Name", "name", { required: true, id: "token-name" }),
  h("label", {}, "Role", h("select", { name: "role" }, h("option", { value: "tenant" }, "tenant"), h("option", { value: "admin" }, "admin"))),
  field("Tenant (id or slug, for tenant tokens)", "tenant", {}),
  field("Expires in (e.g. 90d)", "expires_in", {}),
  h("button", { type: "submit" }, "Create token"));
  function render() {
    list.replaceChildren(pagedList((cursor) => api("GET", `/tokens${qs({ cursor })}`),
      (k) => h("tr", {}, h("td", {}, k.name), h("td", {}, k.role), h("td", {}, k.tenant_id ? h("code", {}, k.tenant_id) : "—"),
        h("td", {}, fmtTime(k.expires_at)), h("td", {}, k.revoked_at ? pill("revoked", "bad") : pill("active", "ok")),
        h("td", {}, k.revoked_at ? "" : h("button", { type: "button", class: "danger", onclick: async (ev) => { if (await act(ev.target, () => api("DELETE", `/tokens/${k.id}`)) !== undefined) render(); } }, "Revoke"))),
      ["Name", "Role", "Tenant", "Expires", "State", ""], "No tokens."));
  }
  page("Tokens", create, shown, list);
  render();
}

function auditView() {
  const list = h("div", {});
  const form = h("form", {
    class: "inline", role: "search", "aria-label": "Filter the audit log",
    onsubmit: (ev) => { ev.preventDefault(); render(); },
  }, field("Tenant id", "tenant_id", {}), field("Action", "action", {}),
  h("label", {}, "Outcome", h("select", { name: "outcome" }, ["", "success", "failure"].map((s) => h("option", { value: s }, s || "any")))),
  h("button", { type: "submit", class: "secondary" }, "Filter"));
  function render() {
    list.replaceChildren(pagedList((cursor) => api("GET", `/audit${qs({ ...formData(form), cursor })}`),
      (a) => h("tr", {}, h("td", {}, fmtTime(a.at)), h("td", {}, a.actor_name), h("td", {}, a.action), h("td", {}, h("code", {}, `${a.method} ${a.path}`)),
        h("td", {}, a.target || "—"), h("td", {}, statusPill(a.outcome), ` ${a.status}`)),
      ["At", "Who", "Action", "Request", "Target", "Outcome"], "Nothing in the audit log matches."));
  }
  page("Audit log", form, list);
  render();
}

// ---- routing ---------------------------------------------------------------------------------
async function route() {
  if (refreshTimer) { clearInterval(refreshTimer); refreshTimer = null; }
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const parts = path.split("/").filter(Boolean);
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token || parts[0] === "login") { loginView(); return; }
  document.getElementById("nav").hidden = false;
  for (const a of document.querySelectorAll("nav a")) {
    const target = a.getAttribute("href").replace(/^#\/?/, "");
    a.setAttribute("aria-current", (target === "" ? parts.length === 0 : parts[0] === target) ? "page" : "false");
  }
  if (parts[0] === "tenants" && parts[1]) {
    const tab = parts[2] || "connections";
    return tenantView(parts[1], tab, query, parts.slice(3).join("/") || null).catch(showProblem);
  }
  const views = { tenants: tenantsView, tokens: tokensView, audit: auditView, alerts: alertsView };
  try { await (views[parts[0]] || dashboardView)(); } catch (e) { showProblem(e); }
}

document.getElementById("logout").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  location.hash = "#/login";
});
window.addEventListener("hashchange", () => { flash.replaceChildren(); route(); });
route();
