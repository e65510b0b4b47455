// The "Add provider" / "Edit provider" dialog, driven by the catalog: the fields each kind needs, hints,
// example models, and "Fetch models" (the models the entered or saved key can use).

import { ApiError, call, fieldLabel, runJob } from "./api.js";
import { $, h } from "./dom.js";
import { restoreFocus } from "./dialogs.js";
import { codeInWords, progressText } from "./views.js";

const FIELDS = ["kind", "name", "endpoint", "api_version", "api_key", "model"];
const DEFAULT_HINTS = {
  name: "How your team will recognise this provider.",
  model: "The model every AI feature will use. Pick a suggestion, fetch the list, or type a name.",
  api_key: "Write-only: after saving, only its last four characters are shown.",
};
const ENDPOINT_NEEDS_KEY = "Changing the endpoint requires entering the API key again, so the saved key is never "
  + "sent to a new address.";

let catalog = null;
let editing = null; // the record being edited, or null when adding
let opener = null;
let onDone = () => {};

const field = (name) => $(`#f-${name}`);

export function setupProviderForm(theCatalog, done) {
  catalog = theCatalog;
  onDone = done;
  field("kind").replaceChildren(...catalog.kinds.map((k) => h("option", { value: k.kind }, k.label)));
  field("kind").addEventListener("change", () => applyKind(field("kind").value));
  field("endpoint").addEventListener("input", updateKeyRequirement);
  field("api_key").addEventListener("input", updateKeyRequirement);
  $("#models-list").addEventListener("change", (event) => {
    if (event.target.value) field("model").value = event.target.value;
  });
  $("#fetch-models").addEventListener("click", fetchModels);
  $("#provider-form").addEventListener("submit", submit);
  $("#provider-dialog").addEventListener("close", () => {
    field("api_key").value = ""; // never keep a typed key around
    restoreFocus(opener);
  });
}

const specOf = (kind) => catalog.kinds.find((k) => k.kind === kind);

/** Open the dialog to add (provider null) or edit a provider. */
export function openProviderForm(provider = null) {
  opener = document.activeElement;
  editing = provider;
  $("#provider-form").reset();
  clearErrors();
  setProgress(null);
  $("#models-status").textContent = "";
  $("#models-pick").hidden = true;
  $("#provider-dialog-title").textContent = provider ? `Edit ${provider.name}` : "Add provider";
  $("#provider-save").textContent = provider ? "Save changes" : "Add provider";
  field("kind").disabled = Boolean(provider);
  field("kind").value = provider ? provider.kind : catalog.kinds[0].kind;
  if (provider) {
    for (const name of ["name", "model", "endpoint", "api_version"]) field(name).value = provider[name] || "";
  }
  applyKind(field("kind").value);
  $("#provider-dialog").showModal();
  (provider ? field("name") : field("kind")).focus();
}

function applyKind(kind) {
  const spec = specOf(kind);
  const needed = new Set([...spec.required_fields, ...spec.optional_fields]);
  for (const name of ["endpoint", "api_version"]) {
    const wrap = $(`[data-field="${name}"]`);
    wrap.hidden = !needed.has(name);
    field(name).required = spec.required_fields.includes(name);
  }
  for (const name of ["name", "endpoint", "api_version", "model"]) {
    $(`#f-${name}-hint`).textContent = spec.hints[name] || DEFAULT_HINTS[name] || "";
  }
  $("#f-model-label").textContent = kind === "azure_openai" ? "Deployment name" : "Model";
  const kindHint = [];
  if (spec.default_base_url) kindHint.push(`Requests go to ${spec.default_base_url}.`);
  if (spec.hints.features) kindHint.push(h("strong", { class: "warn-text" }, spec.hints.features));
  if (spec.docs_url) {
    kindHint.push(h("a", { href: spec.docs_url, target: "_blank", rel: "noopener noreferrer" },
      `${spec.label} API reference`, h("span", { class: "visually-hidden" }, " (opens in a new tab)")));
  }
  $("#f-kind-hint").replaceChildren(...kindHint.flatMap((part, i) => (i ? [" ", part] : [part])));
  $("#model-suggestions").replaceChildren(...spec.example_models.map((m) => h("option", { value: m })));
  updateKeyRequirement();
}

function endpointChanged() {
  return Boolean(editing) && !$('[data-field="endpoint"]').hidden
    && field("endpoint").value.trim() !== (editing.endpoint || "");
}

function updateKeyRequirement() {
  const keyHint = [editing ? `Write-only: the saved key (••••${editing.key_last4}) is never shown. `
    + "Leave this empty to keep it." : (specOf(field("kind").value).hints.api_key || DEFAULT_HINTS.api_key)];
  if (editing && !$('[data-field="endpoint"]').hidden) keyHint.push(ENDPOINT_NEEDS_KEY);
  $("#f-api_key-hint").textContent = keyHint.join(" ");
  field("api_key").placeholder = editing ? `Leave empty to keep ••••${editing.key_last4}` : "";
  field("api_key").required = !editing || endpointChanged();
  const warn = $("#f-api_key-warning");
  warn.hidden = !(endpointChanged() && !field("api_key").value.trim());
  warn.textContent = warn.hidden ? "" : "The endpoint changed: enter the API key again to save.";
}

function values() {
  const out = { kind: field("kind").value };
  for (const name of ["name", "model", "api_key", "endpoint", "api_version"]) {
    if (!$(`[data-field="${name}"]`).hidden) out[name] = field(name).value.trim();
  }
  return out;
}

// --- errors and progress ---------------------------------------------------------------------------

function clearErrors() {
  $("#form-error").hidden = true;
  $("#form-error").textContent = "";
  for (const name of FIELDS) {
    const error = $(`#f-${name}-error`);
    if (error) error.textContent = "";
    field(name).removeAttribute("aria-invalid");
  }
}

function showFieldErrors(fields) {
  let first = null;
  for (const [name, reason] of Object.entries(fields)) {
    const error = $(`#f-${name}-error`);
    if (!error) continue;
    error.textContent = `${fieldLabel(name)}: ${reason}` + (/[.!?]$/.test(reason) ? "" : ".");
    field(name).setAttribute("aria-invalid", "true");
    first = first || field(name);
  }
  return first;
}

function showError(error, prefix) {
  const banner = $("#form-error");
  const fields = error.fields || {};
  const allInline = Object.keys(fields).length > 0 && Object.keys(fields).every((name) => $(`#f-${name}-error`));
  banner.textContent = (prefix ? prefix + " " : "") + (allInline && error.summary ? error.summary : error.message);
  banner.hidden = false;
  const first = showFieldErrors(fields);
  (first || banner).focus();
}

function setProgress(text) {
  const progress = $("#form-progress");
  progress.replaceChildren(...(text ? [h("span", { class: "spinner", "aria-hidden": "true" }), text] : []));
  $("#provider-save").disabled = Boolean(text);
  $("#provider-form").setAttribute("aria-busy", text ? "true" : "false");
}

// --- fetch models ----------------------------------------------------------------------------------

async function fetchModels() {
  const v = values();
  const status = $("#models-status");
  const button = $("#fetch-models");
  clearErrors();
  const useSaved = editing && !v.api_key && !endpointChanged()
    && (v.api_version ?? "") === (editing.api_version || "");
  if (!useSaved && !v.api_key) {
    showFieldErrors({ api_key: editing ? "is needed again to fetch models for a changed endpoint or API version"
      : "is needed to fetch the models it can use" });
    field("api_key").focus();
    return;
  }
  button.disabled = true;
  status.textContent = "Fetching the models this key can use…";
  try {
    const body = { kind: v.kind, api_key: v.api_key };
    for (const name of ["endpoint", "api_version"]) if (v[name]) body[name] = v[name];
    const { data } = useSaved
      ? await call("GET", `/llm-providers/${encodeURIComponent(editing.id)}/models`)
      : await call("POST", "/llm-providers/discover-models", { body });
    showModels(data.models || []);
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    $("#models-pick").hidden = true;
    const check = error.result && error.result.error;
    status.textContent = check ? `Could not fetch models: ${codeInWords(check.code)}. ${check.message}`
      : `Could not fetch models: ${error.message}`;
    showFieldErrors(error.fields || {});
  } finally {
    button.disabled = false;
  }
}

function showModels(models) {
  const status = $("#models-status");
  if (!models.length) {
    status.textContent = "The provider lists no models for this key. Type the model name.";
    $("#models-pick").hidden = true;
    return;
  }
  $("#model-suggestions").replaceChildren(...models.map((m) => h("option", { value: m })));
  $("#models-list").replaceChildren(h("option", { value: "" }, "Choose a model…"),
    ...models.map((m) => h("option", { value: m, selected: m === field("model").value }, m)));
  $("#models-pick").hidden = false;
  status.textContent = `${models.length} model${models.length === 1 ? "" : "s"} available to this key. `
    + "Choose one from the list or type a name.";
}

// --- save ------------------------------------------------------------------------------------------

async function submit(event) {
  event.preventDefault();
  clearErrors();
  updateKeyRequirement();
  const v = values();
  const missing = {};
  for (const name of ["name", "model", "api_key", "endpoint", "api_version"]) {
    if (name in v && field(name).required && !v[name]) missing[name] = "is required";
  }
  if (Object.keys(missing).length) {
    showError({ message: "Fill in the required fields.", fields: missing });
    return;
  }
  try {
    if (editing) await saveChanges(v);
    else await create(v);
  } catch (error) {
    setProgress(null);
    if (!(error instanceof ApiError)) throw error;
    showError(error, error.result ? "Not saved:" : "");
  }
}

async function create(v) {
  const body = Object.fromEntries(Object.entries(v).filter(([, value]) => value !== ""));
  setProgress("Adding the provider…");
  const { data } = await call("POST", "/llm-providers", { body });
  setProgress(null);
  $("#provider-dialog").close();
  onDone(`Added ${data.name}. Test it, then activate it to use it.`, data);
}

async function saveChanges(v) {
  const body = {};
  for (const name of ["name", "model", "endpoint", "api_version"]) {
    if (name in v && v[name] !== (editing[name] || "")) body[name] = v[name];
  }
  if (v.api_key) body.api_key = v.api_key;
  if (!Object.keys(body).length) {
    $("#provider-dialog").close();
    onDone("Nothing was changed.");
    return;
  }
  const verb = editing.is_active ? "Checking the new settings before they apply" : "Saving";
  const data = await runJob("PATCH", `/llm-providers/${encodeURIComponent(editing.id)}`, {
    body, onProgress: (status) => setProgress(progressText(verb, status)) });
  setProgress(null);
  $("#provider-dialog").close();
  onDone(`Saved ${data.name}.` + (body.api_key ? ` The key now ends in ${data.key_last4}.` : ""), data);
}
