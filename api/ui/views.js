// Rendering: provider cards, progress and verdicts, the audit log. Pure DOM building from data.

import { featureName, formatDate, h, listInWords, timeEl } from "./dom.js";

const HEALTH = {
  healthy: ["Healthy", "ok"],
  failing: ["Failing", "bad"],
  unknown: ["Health not checked", "neutral"],
};

const CODE_WORDS = {
  invalid_api_key: "the key is not accepted",
  permission_denied: "the key may not do this",
  model_not_found: "model not found",
  rate_limited: "rate limited for now",
  quota_exceeded: "quota or credit used up",
  bad_request: "request refused",
  provider_error: "the provider failed",
  timeout: "no answer in time",
  unreachable: "could not connect",
  tls_error: "TLS failed",
  endpoint_blocked: "address not allowed",
  unexpected_response: "unexpected answer",
};

export function codeInWords(code) {
  return CODE_WORDS[code] ? `${CODE_WORDS[code]} (${code})` : code;
}

/** One provider as a card. `ctx` = {spec, canManage, result, busy, on: {test, activate, edit, remove}} */
export function providerCard(provider, ctx) {
  const { spec, canManage, result, busy } = ctx;
  const id = provider.id;
  const nameId = `p-${id}-name`;
  const [healthText, healthTone] = HEALTH[provider.health?.status] || HEALTH.unknown;
  const facts = [
    ["Provider", spec ? spec.label : provider.kind],
    [provider.kind === "azure_openai" ? "Deployment" : "Model", provider.model],
    provider.endpoint ? ["Endpoint", provider.endpoint] : null,
    provider.api_version ? ["API version", provider.api_version] : null,
    ["API key", provider.key_set ? `••••${provider.key_last4}` : "not set"],
  ].filter(Boolean);
  const card = h("article", { class: "provider" + (provider.is_active ? " is-active" : ""),
                              "aria-labelledby": nameId, dataset: { providerId: id } },
    h("div", { class: "provider-head" },
      h("h3", { id: nameId }, provider.name),
      h("div", { class: "badges" },
        provider.is_active ? h("span", { class: "badge active" }, "Active") : null,
        h("span", { class: `badge health ${healthTone}` },
          healthTone === "neutral" ? null : h("span", { class: "visually-hidden" }, "Health: "), healthText))),
    h("dl", { class: "facts" }, facts.map(([term, value]) =>
      h("div", {}, h("dt", {}, term), h("dd", term === "API key" ? { class: "mono", "aria-label":
        provider.key_set ? `key ending in ${provider.key_last4}` : "not set" } : {}, value)))),
    healthLine(provider.health),
    spec && !spec.supports_tool_calling
      ? h("p", { class: "note small" }, "Tool-calling agents are not available with this provider.") : null,
    h("div", { class: "result", id: `result-${id}`, role: "status", "aria-live": "polite" },
      result ? resultBlock(result) : null),
  );
  if (canManage) card.append(actions(provider, ctx));
  return card;
}

function healthLine(health) {
  if (!health) return null;
  const parts = [];
  if (health.checked_at) parts.push("Last checked ", timeEl(health.checked_at), ".");
  else parts.push("No health check yet: health is checked regularly while a provider is active.");
  if (health.consecutive_failures > 0) {
    parts.push(` ${health.consecutive_failures} failed check${health.consecutive_failures === 1 ? "" : "s"} in a row.`);
  }
  const line = h("p", { class: "health-line small" }, parts);
  const error = health.last_error;
  if (error) {
    const text = typeof error === "string" ? error
      : [error.code ? codeInWords(error.code) + ":" : null, error.message].filter(Boolean).join(" ");
    return h("div", {}, line, h("p", { class: "health-error small" }, h("strong", {}, "Last error: "), text));
  }
  return line;
}

function actions(provider, { busy, on }) {
  const id = provider.id;
  const named = (verb) => [verb, h("span", { class: "visually-hidden" }, ` ${provider.name}`)];
  const button = (action, label, handler, extra = {}) =>
    h("button", { type: "button", dataset: { action, id }, disabled: busy || extra.disabled,
                  "aria-describedby": extra.describedby, class: extra.class,
                  onclick: () => handler(provider) }, named(label));
  const noteId = `delete-note-${id}`;
  return h("div", { class: "actions-wrap" },
    h("div", { class: "actions", role: "group", "aria-label": `Actions for ${provider.name}` },
      button("test", "Test", on.test),
      provider.is_active ? null : button("activate", "Activate", on.activate, { class: "primary" }),
      button("edit", "Edit", on.edit),
      button("delete", "Delete", on.remove, { class: "danger", disabled: provider.is_active,
                                             describedby: provider.is_active ? noteId : null })),
    provider.is_active
      ? h("p", { id: noteId, class: "small muted" },
          "The active provider cannot be deleted: activate another one or switch to the platform defaults first.")
      : null);
}

/** A progress line or a verdict: {state: "progress"|"ok"|"error", title, detail, meta}. */
export function resultBlock(result) {
  if (result.state === "progress") {
    return h("p", { class: "progress" }, h("span", { class: "spinner", "aria-hidden": "true" }), result.title);
  }
  const tone = result.state === "ok" ? "ok" : "bad";
  return h("div", { class: `verdict ${tone}` },
    h("p", { class: "verdict-title" }, h("span", { class: "verdict-icon", "aria-hidden": "true" },
      tone === "ok" ? "✓" : "!"), result.title),
    result.detail ? h("p", {}, result.detail) : null,
    result.meta ? h("p", { class: "small muted" }, result.meta) : null);
}

/** What a check result says, for a verdict block. */
export function checkVerdict(check, okTitle = "Test passed", failTitle = "Test failed") {
  if (check.ok) {
    return { state: "ok", title: okTitle,
             detail: `The provider answered in ${check.latency_ms} ms using ${check.model}.`,
             meta: `Checked ${formatDate(check.checked_at)}` };
  }
  const error = check.error || {};
  const meta = [error.code ? `Code ${error.code}` : null,
                error.provider_status ? `provider status ${error.provider_status}` : null,
                error.provider_request_id ? `request id ${error.provider_request_id}` : null].filter(Boolean);
  return { state: "error", title: `${failTitle}: ${codeInWords(error.code)}`, detail: error.message,
           meta: meta.join(" · ") };
}

export function progressText(verb, status) {
  if (status === "starting") return `${verb}: asking the provider…`;
  if (status === "queued") return `${verb}: waiting for a worker…`;
  if (status === "running") return `${verb}: the check is running…`;
  return `${verb}…`;
}

/** The activation confirmation's body: what changes, and the tool-calling warning where it applies. */
export function activationBody(provider, spec, catalog) {
  const body = [h("p", {}, `Every AI feature of this organization will use ${provider.name} (${provider.model}). `
    + "It is checked live first; if the check fails, nothing changes.")];
  if (spec && !spec.supports_tool_calling) {
    const lost = (catalog.tool_calling_features || []).map(featureName);
    body.push(h("div", { class: "warning", role: "note" },
      h("p", {}, h("strong", {}, "Warning: "),
        `${spec.label} does not support tool calling. While it is active, the ${listInWords(lost)} `
        + `${lost.length === 1 ? "is" : "are"} unavailable.`)));
  }
  return body;
}

// --- audit -----------------------------------------------------------------------------------------

const ACTIONS = { create: "Added", update: "Edited", delete: "Deleted", test: "Tested", activate: "Activated",
                  deactivate: "Switched to platform defaults" };

export function auditRow(entry, providerName) {
  const details = Object.entries(entry.details || {})
    .filter(([key]) => key !== "job_id")
    .map(([key, value]) => `${featureName(key)}: ${Array.isArray(value) ? value.join(", ") : value}`);
  const cell = (label, ...content) => h("td", { "data-label": label }, h("span", {}, ...content));
  return h("tr", {},
    cell("When", timeEl(entry.created_at)),
    cell("Who", entry.actor, h("span", { class: "muted" }, ` (${entry.actor_role})`)),
    cell("Action", ACTIONS[entry.action] || entry.action),
    cell("Provider", entry.provider_id ? providerName(entry.provider_id) : "—"),
    cell("Outcome", h("span", { class: "outcome " + (/^(ok|passed|activated|updated)(:|$)/.test(entry.outcome) ? "ok" : "bad") },
      featureName(entry.outcome).replace(":", ": "))),
    cell("Details", details.join("; ") || "—"));
}
