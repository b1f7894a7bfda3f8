// The service's public REST API, with the API key of this browser session.
// The key lives in sessionStorage only: it is gone when the tab closes.

const KEY_ITEM = "tagsys.apiKey";

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

// Requests still under way when the user signs out are aborted, and none starts after.
let inFlight = new AbortController();

export function signedIn() {
  return sessionStorage.getItem(KEY_ITEM) !== null;
}

export function signIn(key) {
  sessionStorage.setItem(KEY_ITEM, key);
}

export function signOut() {
  sessionStorage.removeItem(KEY_ITEM);
  inFlight.abort();
  inFlight = new AbortController();
}

function headers(body) {
  const found = { Accept: "application/json" };
  const key = sessionStorage.getItem(KEY_ITEM);
  if (key) found["X-API-Key"] = key;
  if (body !== undefined) found["Content-Type"] = "application/json";
  return found;
}

async function parse(response) {
  const text = await response.text();
  if (!text) return {};
  try {
    return JSON.parse(text);
  } catch {
    return { success: false, error: { code: "bad_response", message: text.slice(0, 300) } };
  }
}

/** One call; resolves with the JSON body of a 2xx, rejects with an ApiError otherwise. */
export async function call(method, path, body) {
  if (!signedIn()) throw new ApiError(0, "signed_out", "signed out");
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: headers(body),
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      signal: inFlight.signal,
    });
  } catch (exc) {
    if (exc.name === "AbortError") throw new ApiError(0, "signed_out", "signed out");
    throw new ApiError(0, "network", `the service cannot be reached (${exc.message})`);
  }
  const data = await parse(response);
  if (response.ok) return data;
  const error = data.error || {};
  const failure = new ApiError(
    response.status,
    error.code || "http_error",
    error.message || `${response.status} ${response.statusText}`,
    error.details,
  );
  if (response.status === 401) window.dispatchEvent(new CustomEvent("tagsys:unauthorized"));
  throw failure;
}

export const get = (path) => call("GET", path);
export const post = (path, body) => call("POST", path, body ?? {});
export const put = (path, body) => call("PUT", path, body);
export const patch = (path, body) => call("PATCH", path, body);
export const del = (path) => call("DELETE", path);

export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/** Run `tasks` (functions returning promises) at most `limit` at a time. */
export async function pooled(tasks, limit = 4) {
  const results = new Array(tasks.length);
  let next = 0;
  async function worker() {
    while (next < tasks.length) {
      const index = next;
      next += 1;
      try {
        results[index] = await tasks[index]();
      } catch (exc) {
        results[index] = exc;
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  return results;
}
