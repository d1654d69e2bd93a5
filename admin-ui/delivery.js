// Delivery guarantees in the admin UI: an endpoint's kind and options (pull, handshake,
// heartbeat, supersede), where its sequence stands, endpoint tokens for pull readers, and the
// operators' alerts. Loaded before app.js, whose helpers (h, api, act, page, ...) it calls.
"use strict";

// The create form's fields for the delivery options.
function endpointOptionFields() {
  return [
    h("label", {}, "Kind", h("select", { name: "kind", id: "endpoint-kind" },
      h("option", { value: "push" }, "push (the gateway POSTs to the URL)"),
      h("option", { value: "pull" }, "pull (the receiver reads through the API; no URL)"))),
    h("label", { class: "check" }, h("input", { type: "checkbox", name: "handshake", id: "endpoint-handshake" }), " Handshake before patient data"),
    field("Heartbeat every N minutes (optional)", "heartbeat_minutes", { type: "number", min: "1", max: "1440", id: "endpoint-heartbeat" }),
    h("label", { class: "check" }, h("input", { type: "checkbox", name: "supersede", id: "endpoint-supersede" }), " Supersede older failed deliveries"),
  ];
}

// The create form's body as the API wants it.
function endpointOptionValues(f) {
  if (f.kind === "pull") { delete f.url; delete f.handshake; delete f.supersede; delete f.heartbeat_minutes; }
  if (f.heartbeat_minutes) f.heartbeat_minutes = Number(f.heartbeat_minutes);
  if (f.handshake === false) delete f.handshake;
  if (f.supersede === false) delete f.supersede;
  return f;
}

// What the endpoints list shows under an endpoint: kind, options, its sequence.
function endpointDelivery(t, e, shown) {
  const seq = h("div", { class: "muted", "data-sequence": e.id }, "sequence: …");
  api("GET", `/tenants/${t.id}/endpoints/${e.id}/cursor`).then((c) => {
    seq.textContent = e.kind === "pull"
      ? `sequence: ${c.last_seq} · cursor ${c.cursor} · backlog ${c.backlog}${c.lag_seconds != null ? ` · lag ${Math.round(c.lag_seconds)} s` : ""} · last read ${fmtTime(c.read_at)}`
      : `sequence: ${c.last_seq}`;
  }).catch(() => { seq.textContent = "sequence: unavailable"; });
  const options = [e.kind === "pull" ? "pull" : null, e.handshake ? "handshake" : null,
    e.heartbeat_minutes ? `heartbeat ${e.heartbeat_minutes} min` : null, e.supersede ? "supersede" : null].filter(Boolean);
  return [
    h("div", { class: "muted" }, `kind: ${e.kind}`, options.length > 1 || (options.length && e.kind !== "pull") ? ` · ${options.join(" · ")}` : ""),
    e.handshake && !e.verified_at && e.enabled ? pill("awaiting handshake", "warn") : null,
    seq,
    e.kind === "pull" ? h("button", {
      type: "button", class: "secondary",
      onclick: async (ev) => {
        const r = await act(ev.target, () => api("POST", `/tenants/${t.id}/endpoints/${e.id}/tokens`, { name: `reader of ${e.id}` }));
        if (r) shown.replaceChildren(showOnce("Reader token (reads this endpoint's events only)", r.token),
          h("p", { class: "muted" }, "The reader polls ", h("code", {}, `GET ${e.url}?wait=30s`), " and commits with ", h("code", {}, "PUT …/cursor"), "."));
      },
    }, "New reader token") : null,
  ];
}

// The operators' alerts.
function alertsView() {
  const list = h("div", {});
  const kinds = ["", "endpoint_failing", "endpoint_disabled", "delivery_dead", "backlog", "oldest_pending", "verification_failures"];
  const form = h("form", {
    class: "inline", role: "search", "aria-label": "Filter alerts",
    onsubmit: (ev) => { ev.preventDefault(); render(); },
  }, h("label", {}, "Kind", h("select", { name: "kind" }, kinds.map((k) => h("option", { value: k }, k || "any")))),
  field("Tenant id", "tenant_id", {}),
  h("button", { type: "submit", class: "secondary" }, "Filter"));
  function render() {
    list.replaceChildren(pagedList((cursor) => api("GET", `/alerts${qs({ ...formData(form), cursor })}`),
      (a) => h("tr", {}, h("td", {}, fmtTime(a.created_at)), h("td", {}, pill(a.kind, "warn")), h("td", {}, a.summary),
        h("td", {}, a.tenant_id ? h("a", { href: `#/tenants/${a.tenant_id}/endpoints` }, h("code", {}, a.tenant_id)) : "—"),
        h("td", {}, a.status === "sent" ? pill("sent", "ok") : a.status === "failed" ? pill("failed", "bad") : pill("pending", "warn"),
          a.last_error ? h("div", { class: "muted" }, a.last_error) : null)),
      ["At", "Kind", "What", "Tenant", "To the operator"], "No alerts. Failing endpoints, dead deliveries, backlogs and bursts of failed verifications show here."));
  }
  page("Alerts", form, list);
  render();
}
