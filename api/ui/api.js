// Talking to the service: the bearer token (session storage only), JSON calls, errors in words, jobs.

const TOKEN_KEY = "llmp.token";
const JOB_WAIT = "wait=3"; // let the API answer at once when the check is quick, else poll the job
const POLL_LIMIT_MS = 180_000;

// --- the token -------------------------------------------------------------------------------------

/** Move a token from the URL fragment (`/ui/#token=...`) into session storage and drop the fragment,
 *  so it is neither kept in the address bar and history nor ever part of a URL sent to the server. */
export function takeTokenFromFragment() {
  const hash = location.hash.replace(/^#/, "");
  if (!hash) return;
  const token = new URLSearchParams(hash).get("token");
  if (token === null) return;
  if (token.trim()) sessionStorage.setItem(TOKEN_KEY, token.trim());
  history.replaceState(history.state, "", location.pathname + location.search);
}

export function storedToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function storeToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token.trim());
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** The JWT's claims, decoded without verification (the server verifies; this only labels the page). */
export function decodeToken(token) {
  const parts = (token || "").split(".");
  if (parts.length !== 3) return null;
  try {
    const b64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
    const padded = b64 + "=".repeat((4 - (b64.length % 4)) % 4);
    const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return claims && typeof claims === "object" ? claims : null;
  } catch {
    return null;
  }
}

// --- calls -----------------------------------------------------------------------------------------

/** An answer that is not 2xx, with the API's words: `message` for a person, `fields` per input. */
export class ApiError extends Error {
  constructor(status, body, headers) {
    const error = body && typeof body === "object" && body.error && typeof body.error === "object" ? body.error : {};
    super(describeError(status, error));
    this.summary = error.message ? sentence(error.message) : this.message; // without the field reasons
    this.status = status;
    this.code = error.code || (status ? "http_" + status : "network_error");
    this.fields = error.fields && typeof error.fields === "object" ? error.fields : {};
    this.result = error.result || null; // a check result (check_failed, discovery_failed)
    this.job = error.job || null;
    this.retryAfter = headers ? headers.get("Retry-After") : null;
  }
}

function describeError(status, error) {
  if (!status) return "The service did not answer. Check the connection and try again.";
  let text = error.message || `The service answered ${status} without an explanation.`;
  const fields = error.fields && typeof error.fields === "object" ? Object.entries(error.fields) : [];
  if (fields.length) text += " " + fields.map(([name, reason]) => `${fieldLabel(name)}: ${sentence(reason)}`).join(" ");
  return text;
}

function sentence(text) {
  return /[.!?]$/.test(String(text)) ? String(text) : `${text}.`;
}

const FIELD_LABELS = { api_key: "API key", api_version: "API version", endpoint: "Endpoint", model: "Model",
                       name: "Name", kind: "Provider", body: "Request" };

export function fieldLabel(name) {
  return FIELD_LABELS[name] || name;
}

let onUnauthorized = () => {};

/** Called with the error when the API answers 401 (expired or refused token). */
export function setUnauthorizedHandler(handler) {
  onUnauthorized = handler;
}

export async function call(method, path, { body, prefer } = {}) {
  const headers = { Accept: "application/json" };
  const token = storedToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (prefer) headers.Prefer = prefer;
  let response;
  try {
    response = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store", credentials: "omit", redirect: "error",
    });
  } catch {
    throw new ApiError(0, null, null);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data, response.headers);
    if (response.status === 401) onUnauthorized(error);
    throw error;
  }
  return { status: response.status, data, headers: response.headers };
}

// --- jobs ------------------------------------------------------------------------------------------

const JOB_FAILURES = {
  provider_changed: "The provider was changed while it was being checked; nothing was applied. Check it again.",
  provider_deleted: "The provider was deleted while it was being checked.",
  credentials_unavailable: "The stored API key cannot be decrypted; enter the key again.",
  worker_lost: "The worker running this check was lost; nothing was changed. Try again.",
  broker_unavailable: "The job queue was not reachable; nothing was changed.",
  conflict: "Concurrent changes kept this from applying; try again.",
};

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Start a call that may run as a job (test, activate, checked update) and follow it to its end.
 *  `onProgress(status)` hears "starting", then the job's "queued"/"running" while it is polled.
 *  Returns the final answer's body: a check result (test) or a record (activate, update). */
export async function runJob(method, path, { body, onProgress = () => {} } = {}) {
  onProgress("starting");
  const first = await call(method, path, { body, prefer: JOB_WAIT });
  if (first.status !== 202) return first.data;
  const jobPath = `/jobs/${encodeURIComponent(first.data.job_id)}`;
  const started = Date.now();
  let delay = 400;
  let status = first.data.status;
  while (Date.now() - started < POLL_LIMIT_MS) {
    onProgress(status);
    await sleep(delay);
    delay = Math.min(delay * 1.5, 2000);
    const { data: job } = await call("GET", jobPath);
    status = job.status;
    if (status === "succeeded" || status === "failed") return finishedJob(job);
  }
  throw new ApiError(504, { error: { code: "job_pending", message:
    "The check is still running. Reload the page in a minute to see its outcome." } });
}

async function finishedJob(job) {
  if (job.status === "succeeded") {
    if (job.type === "test") return job.result;
    const { data } = await call("GET", `/llm-providers/${encodeURIComponent(job.provider_id)}`);
    return data;
  }
  if (job.outcome === "check_failed" && job.result && job.result.error) {
    throw new ApiError(422, { error: { code: "check_failed", message: job.result.error.message, result: job.result } });
  }
  const message = JOB_FAILURES[job.outcome] || `The job failed (${job.outcome || "unknown reason"}).`;
  throw new ApiError(job.outcome === "conflict" || job.outcome?.startsWith("provider_") ? 409 : 503,
                     { error: { code: job.outcome || "job_failed", message, job } });
}
