// The service's public API as the playground uses it: JSON calls with the API key, the one
// error shape, task events read from a fetch() stream, and downloads through a blob.
//
// The key travels only in the Authorization header (EventSource cannot send one, hence the
// stream reader below); it is kept in sessionStorage, so it is gone when the tab closes.

const KEY_STORAGE = "vss-api-key";

/** A refused or failed call: the service's message and the fields it names. */
export class ApiError extends Error {
  constructor(status, message, fields = [], type = "error") {
    super(message);
    this.status = status;
    this.fields = fields;
    this.type = type;
  }
}

export function storedKey() {
  return sessionStorage.getItem(KEY_STORAGE) || "";
}

export function storeKey(key) {
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
}

/** Paths are relative to the page, so the playground works under any route prefix. */
function urlOf(path, query = {}) {
  const url = new URL(path, document.baseURI);
  for (const [name, value] of Object.entries(query)) url.searchParams.set(name, value);
  return url;
}

function headersWith(extra = {}) {
  const key = storedKey();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : { ...extra };
}

/** The ApiError of a response that is not ok: `{"error": {type, message, fields}}`. */
async function errorOf(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: a proxy's page, say; the status says what there is to say
  }
  const error = body && body.error;
  if (error && typeof error.message === "string") {
    return new ApiError(response.status, error.message, error.fields || [], error.type);
  }
  return new ApiError(response.status, `HTTP ${response.status} ${response.statusText}`.trim());
}

/** fetch() with the key; an ApiError for anything but 2xx or an unreachable service. */
export async function call(method, path, { body, query, headers, signal } = {}) {
  const extra = { ...(headers || {}) };
  if (body !== undefined) extra["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(urlOf(path, query), {
      method,
      headers: headersWith(extra),
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: "no-store",
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, `the service cannot be reached (${error.message})`);
  }
  if (!response.ok) throw await errorOf(response);
  return response;
}

/** A JSON call: {status, headers, body} (body null for 204). */
export async function callJson(method, path, options = {}) {
  const response = await call(method, path, options);
  const body = response.status === 204 ? null : await response.json();
  return { status: response.status, headers: response.headers, body };
}

/**
 * The events of GET /api/tasks/{id}/events as {type, data} objects, parsed from the
 * text/event-stream body (fields `event` and `data`; comments and ids skipped).
 */
export async function* taskEvents(taskId, signal) {
  const response = await call("GET", `api/tasks/${encodeURIComponent(taskId)}/events`, {
    headers: { Accept: "text/event-stream" },
    signal,
  });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let type = "message";
  let data = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    // A chunk may end between the \r and \n of one line break: keep that \r for the next one.
    const end = buffer.endsWith("\r") ? buffer.length - 1 : buffer.length;
    const lines = buffer.slice(0, end).split(/\r\n|\r|\n/);
    buffer = lines.pop() + buffer.slice(end);
    for (const line of lines) {
      if (line === "") {
        if (data.length) yield { type, data: data.join("\n") };
        type = "message";
        data = [];
        continue;
      }
      if (line.startsWith(":")) continue; // a ping
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let text = colon < 0 ? "" : line.slice(colon + 1);
      if (text.startsWith(" ")) text = text.slice(1);
      if (field === "event") type = text;
      else if (field === "data") data.push(text);
    }
  }
}

/** The file name of a Content-Disposition header (filename* first, as RFC 6266 says). */
function fileNameOf(disposition) {
  if (!disposition) return null;
  const extended = /filename\*\s*=\s*UTF-8''([^;]+)/i.exec(disposition);
  if (extended) {
    try {
      return decodeURIComponent(extended[1].trim());
    } catch {
      // a malformed escape: use the plain name
    }
  }
  const plain = /filename\s*=\s*"?([^";]+)"?/i.exec(disposition);
  return plain ? plain[1] : null;
}

/** GET a file with the key and hand it to the browser as a download named by the service. */
export async function download(path, query, fallbackName) {
  const response = await call("GET", path, { query });
  const blob = await response.blob();
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = fileNameOf(response.headers.get("Content-Disposition")) || fallbackName;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
  return link.download;
}

/** The service's OpenAPI document: the one source of the request's vocabularies and limits. */
export async function loadSchema() {
  const { body } = await callJson("GET", "openapi.json");
  return new ApiSchema(body);
}

export class ApiSchema {
  constructor(document) {
    this.schemas = document.components.schemas;
  }

  /** A property of a component, the null branch of an optional field left out. */
  property(component, name) {
    const property = this.schemas[component].properties[name];
    const branches = (property.anyOf || []).filter((branch) => branch.type !== "null");
    const resolved = branches.length === 1 ? { ...property, ...branches[0] } : property;
    return resolved.$ref ? { ...resolved, ...this.ref(resolved.$ref) } : resolved;
  }

  ref(pointer) {
    return this.schemas[pointer.split("/").pop()];
  }

  /** The values of an enum component (Camera, ExportFormat, ...). */
  values(component) {
    return this.schemas[component].enum;
  }
}
