// The admin page: Settings → AI → LLM Providers. Sign-in, the providers, their checks and activation,
// the platform-defaults switch, and the audit log. Members see everything read-only.

import { ApiError, call, decodeToken, forgetToken, runJob, setUnauthorizedHandler, storedToken, storeToken,
         takeTokenFromFragment } from "./api.js";
import { $, h, keepingFocus } from "./dom.js";
import { confirmDialog, wireCancelButtons } from "./dialogs.js";
import { openProviderForm, setupProviderForm } from "./form.js";
import { activationBody, auditRow, checkVerdict, progressText, providerCard, resultBlock } from "./views.js";

const ORG_ROLES = ["owner", "admin", "member"];
const AUDIT_PAGE = 20;

const state = {
  claims: null,
  catalog: null,
  providers: [],
  activeId: null,
  results: new Map(), // provider id -> the last progress line or verdict shown on its card
  busy: new Set(), // provider ids with a call in flight
  auditCursor: null,
  names: new Map(), // provider id -> name, kept after a provider is deleted (for the audit log)
  formReady: false,
};

const canManage = () => state.claims !== null && ["owner", "admin"].includes(state.claims.role);
const specOf = (kind) => state.catalog?.kinds.find((k) => k.kind === kind);

// --- messages ---------------------------------------------------------------------------------------

function announce(message) {
  $("#page-error").hidden = true;
  const status = $("#page-status");
  status.textContent = message;
  status.hidden = !message;
}

function showPageError(error) {
  if (!(error instanceof ApiError)) throw error;
  if (error.status === 401) return; // the sign-in form says it
  $("#page-status").hidden = true;
  const banner = $("#page-error");
  banner.textContent = error.message;
  banner.hidden = false;
}

// --- sign-in ----------------------------------------------------------------------------------------

function showSignIn(message = "") {
  $("#app").hidden = true;
  $("#identity").hidden = true;
  $("#signin").hidden = false;
  $("#page-status").hidden = true;
  $("#page-error").hidden = true;
  $("#signin-error").textContent = message;
  $("#token-input").setAttribute("aria-invalid", message ? "true" : "false");
  $("#token-input").focus();
}

async function onSignIn(event) {
  event.preventDefault();
  const token = $("#token-input").value.trim();
  $("#token-input").value = "";
  if (!token) return showSignIn("Paste a bearer token to sign in.");
  storeToken(token);
  await enter(token);
}

function signOut() {
  forgetToken();
  location.replace(location.pathname);
}

async function enter(token) {
  const claims = decodeToken(token);
  let problem = null;
  if (!claims) problem = "That is not a bearer token: a token is three parts separated by dots.";
  else if (typeof claims.exp === "number" && claims.exp * 1000 <= Date.now()) {
    problem = "This token has expired. Sign in with a new one.";
  } else if (!ORG_ROLES.includes(claims.role) || !claims.org) {
    problem = `This page is for an organization's owners, admins and members; the token's role is ${claims.role}.`;
  }
  if (problem) {
    forgetToken();
    return showSignIn(problem);
  }
  state.claims = claims;
  $("#identity-text").replaceChildren("Organization ", h("strong", {}, claims.org), " · ",
    h("span", { class: "role" }, claims.role), claims.sub ? h("span", { class: "muted sub" }, ` (${claims.sub})`) : null);
  $("#identity").hidden = false;
  $("#signin").hidden = true;
  $("#app").hidden = false;
  $("#add-provider").hidden = !canManage();
  $("#readonly-note").hidden = canManage();
  $("#audit-section").hidden = !canManage();
  try {
    state.catalog = (await call("GET", "/llm-providers/catalog")).data;
    if (canManage() && !state.formReady) {
      setupProviderForm(state.catalog, afterSave);
      state.formReady = true;
    }
    await refresh();
  } catch (error) {
    showPageError(error);
  }
}

// --- loading and rendering ---------------------------------------------------------------------------

async function refresh() {
  const { data } = await call("GET", "/llm-providers");
  state.providers = data.items;
  state.activeId = data.active_provider_id;
  for (const provider of state.providers) state.names.set(provider.id, provider.name);
  render();
  if (canManage()) await loadAudit(false);
}

function render() {
  keepingFocus(() => {
    renderMode();
    renderProviders();
  });
}

function renderMode() {
  const active = state.providers.find((p) => p.id === state.activeId);
  const onDefaults = !active;
  const toggle = $("#defaults-switch");
  toggle.setAttribute("aria-checked", String(onDefaults));
  toggle.disabled = onDefaults || !canManage();
  $("#now-using").replaceChildren(onDefaults
    ? h("span", {}, "Now using: ", h("strong", {}, "the platform defaults"))
    : h("span", {}, "Now using: ", h("strong", {}, active.name), ` (${specOf(active.kind)?.label || active.kind}, `
      + `${active.model})`));
  $("#defaults-help").textContent = onDefaults
    ? (canManage() ? "AI features use the platform's own provider. Activate one of your providers below to use it instead."
      : "AI features use the platform's own provider.")
    : (canManage() ? `Turn this on to go back to the platform's provider; ${active.name} stays saved.`
      : `AI features use ${active.name}.`);
}

function renderProviders() {
  const list = $("#providers");
  list.setAttribute("aria-busy", "false");
  if (!state.providers.length) {
    list.replaceChildren(h("p", { class: "empty" }, canManage()
      ? "No providers yet. Add your own OpenAI, Anthropic, Gemini, Azure OpenAI or OpenAI-compatible provider."
      : "No providers yet."));
    return;
  }
  list.replaceChildren(...state.providers.map((provider) => providerCard(provider, {
    spec: specOf(provider.kind),
    canManage: canManage(),
    result: state.results.get(provider.id),
    busy: state.busy.has(provider.id),
    on: { test, activate, edit: openProviderForm, remove },
  })));
}

function setResult(id, result) {
  state.results.set(id, result);
  const box = document.getElementById(`result-${id}`);
  if (box) box.replaceChildren(resultBlock(result));
}

function setBusy(id, busy) {
  if (busy) state.busy.add(id);
  else state.busy.delete(id);
  const card = document.querySelector(`[data-provider-id="${CSS.escape(id)}"]`);
  if (!card) return;
  card.setAttribute("aria-busy", String(busy));
  for (const button of card.querySelectorAll("button[data-action]")) {
    button.disabled = busy || (button.dataset.action === "delete" && card.classList.contains("is-active"));
  }
}

// --- actions -----------------------------------------------------------------------------------------

/** Run one card's job (test, activate): progress on the card, then the verdict, then fresh data. */
async function onCard(provider, verb, work, success, failTitle) {
  announce("");
  const action = document.activeElement?.dataset?.id === provider.id ? document.activeElement.dataset.action : null;
  setBusy(provider.id, true);
  setResult(provider.id, { state: "progress", title: progressText(verb, "starting") });
  try {
    const answer = await work((status) => setResult(provider.id, { state: "progress", title: progressText(verb, status) }));
    setResult(provider.id, success(answer));
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.result) {
      const verdict = checkVerdict(error.result, "", failTitle);
      verdict.detail = `${verdict.detail} Nothing was changed.`;
      setResult(provider.id, verdict);
    } else {
      setResult(provider.id, { state: "error", title: failTitle, detail: error.message });
    }
  } finally {
    setBusy(provider.id, false);
  }
  try {
    await refresh();
  } catch (error) {
    showPageError(error);
  }
  if (action) focusAction(provider.id, action);
}

/** Focus a card's `action` button again (its buttons were disabled while busy), or its first button. */
function focusAction(id, action) {
  const buttons = [...document.querySelectorAll(`button[data-id="${CSS.escape(id)}"]:not(:disabled)`)];
  const target = buttons.find((b) => b.dataset.action === action) || buttons[0];
  if (target) target.focus();
}

function test(provider) {
  return onCard(provider, "Testing",
    (onProgress) => runJob("POST", `/llm-providers/${encodeURIComponent(provider.id)}/test`, { onProgress }),
    (check) => checkVerdict(check), "Test failed");
}

async function activate(provider) {
  const confirmed = await confirmDialog({
    title: `Activate ${provider.name}?`,
    body: activationBody(provider, specOf(provider.kind), state.catalog),
    confirmLabel: "Check and activate",
  });
  if (!confirmed) return;
  await onCard(provider, "Activating",
    (onProgress) => runJob("POST", `/llm-providers/${encodeURIComponent(provider.id)}/activate`, { onProgress }),
    (record) => ({ state: "ok", title: `${record.name} is now active`,
                   detail: "The live check passed; every AI feature of the organization now uses it." }),
    "Not activated");
}

async function remove(provider) {
  const confirmed = await confirmDialog({
    title: `Delete ${provider.name}?`,
    body: "The provider and its saved key are removed for good. This cannot be undone.",
    confirmLabel: "Delete provider",
    danger: true,
  });
  if (!confirmed) return;
  try {
    await call("DELETE", `/llm-providers/${encodeURIComponent(provider.id)}`);
    state.results.delete(provider.id);
    announce(`Deleted ${provider.name}.`);
    await refresh();
    $("#providers-title").focus();
  } catch (error) {
    showPageError(error);
  }
}

async function onDefaultsSwitch() {
  const active = state.providers.find((p) => p.id === state.activeId);
  if (!active || !canManage()) return;
  const confirmed = await confirmDialog({
    title: "Use the platform defaults?",
    body: `AI features will use the platform's own provider instead of ${active.name}. ${active.name} stays `
      + "saved, and you can activate it again at any time.",
    confirmLabel: "Use platform defaults",
  });
  if (!confirmed) return;
  try {
    await call("POST", "/llm-providers/deactivate");
    state.results.delete(active.id); // "is now active" no longer holds
    announce("The organization now uses the platform defaults.");
    await refresh();
    $("#defaults-switch").focus();
  } catch (error) {
    showPageError(error);
  }
}

async function afterSave(message, record) {
  if (record) state.results.delete(record.id);
  announce(message);
  try {
    await refresh();
  } catch (error) {
    showPageError(error);
  }
}

// --- audit -------------------------------------------------------------------------------------------

async function loadAudit(more) {
  const query = new URLSearchParams({ limit: String(AUDIT_PAGE) });
  if (more && state.auditCursor) query.set("before", String(state.auditCursor));
  const { data } = await call("GET", `/llm-providers/audit?${query}`);
  for (const entry of data.items) {
    const name = entry.details?.name;
    if (entry.provider_id && typeof name === "string" && !state.names.has(entry.provider_id)) {
      state.names.set(entry.provider_id, name);
    }
  }
  const current = new Set(state.providers.map((p) => p.id));
  const rows = data.items.map((entry) => auditRow(entry, (id) => {
    const name = state.names.get(id);
    if (current.has(id)) return name;
    return name ? `${name} (deleted)` : `a deleted provider (${id.slice(0, 8)})`;
  }));
  const body = $("#audit-table tbody");
  if (more) body.append(...rows);
  else body.replaceChildren(...rows);
  state.auditCursor = data.next_cursor;
  $("#audit-more").hidden = !data.next_cursor;
  $("#audit-empty").hidden = body.children.length > 0;
  $("#audit-wrap").hidden = body.children.length === 0;
}

async function loadMoreAudit() {
  const button = $("#audit-more");
  button.disabled = true;
  try {
    await loadAudit(true);
  } catch (error) {
    showPageError(error);
  } finally {
    button.disabled = false;
    (button.hidden ? $("#audit-wrap") : button).focus();
  }
}

// --- start -------------------------------------------------------------------------------------------

function start() {
  takeTokenFromFragment();
  wireCancelButtons();
  setUnauthorizedHandler((error) => {
    forgetToken();
    showSignIn(`${error.message} Sign in again.`);
  });
  $("#signin-form").addEventListener("submit", onSignIn);
  $("#sign-out").addEventListener("click", signOut);
  $("#add-provider").addEventListener("click", () => openProviderForm());
  $("#defaults-switch").addEventListener("click", onDefaultsSwitch);
  $("#audit-more").addEventListener("click", loadMoreAudit);
  const token = storedToken();
  if (token) enter(token);
  else showSignIn();
}

start();
