// The HTTP API as the app sees it: JSON calls with the session's key, clear errors, feedback with
// idempotency keys, and the Server-Sent Events stream read with fetch (so it can carry the key).
import { markReachable, queueInteraction } from "./offline/offline.js";

const KEY = "metamedia.key";
const USER = "metamedia.user";

export const session = {
  key: sessionStorage.getItem(KEY) || "",
  user: localStorage.getItem(USER) || "",
  me: null, // GET /me: {auth, key_id, scopes, user_id}
};

export function setKey(key) {
  session.key = key;
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

export function setUser(user) {
  session.user = user;
  if (user) localStorage.setItem(USER, user);
  else localStorage.removeItem(USER);
}

export class ApiError extends Error {
  constructor(status, message, detail) {
    super(message);
    this.status = status;
    this.detail = detail;
  }
}

function headers(json) {
  const out = {};
  if (session.key) out.Authorization = "Bearer " + session.key;
  if (json) out["Content-Type"] = "application/json";
  return out;
}

export async function api(path, { method = "GET", body, signal } = {}) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: headers(body !== undefined),
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    markReachable(false);
    throw new ApiError(0, "The server cannot be reached — is metamedia still running? Retry in a moment.");
  }
  markReachable(true);
  const type = response.headers.get("content-type") || "";
  const data = type.includes("json") ? await response.json().catch(() => null) : await response.text();
  if (!response.ok) {
    const message = (data && data.error) || `The server answered ${response.status}.`;
    throw new ApiError(response.status, message, data && data.detail);
  }
  return data;
}

export function newId(prefix = "") {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return prefix + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

const qs = (params) => {
  const out = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") continue;
    for (const v of Array.isArray(value) ? value : [value]) out.append(name, String(v));
  }
  const text = out.toString();
  return text ? "?" + text : "";
};
export { qs };

export const user = (id) => "/users/" + encodeURIComponent(id);

// One feedback action = one interaction, written to the IndexedDB outbox first and sent from there
// (now, or when the server is back). Its idempotency key is chosen once, so the server stores it once.
export const FEEDBACK = {
  like: { kind: "like", label: "Like", short: "Like" },
  dislike: { kind: "dislike", label: "Dislike", short: "Dislike" },
  not_interested: { kind: "skip", label: "Not interested", short: "Hide" },
  add_to_list: { kind: "add_to_list", label: "Add to my list", short: "+ List" },
};

export async function sendFeedback(userId, itemId, kind, extra = {}) {
  const body = { item_id: itemId, kind, idempotency_key: newId("web-"), ...extra };
  return queueInteraction(user(userId), body);
}

// Server-Sent Events over fetch: EventSource cannot send an Authorization header.
export function subscribe(kinds, onEvent) {
  const controller = new AbortController();
  let last = "";
  (async () => {
    while (!controller.signal.aborted) {
      try {
        const h = headers(false);
        if (last) h["Last-Event-ID"] = last;
        const response = await fetch("/events" + qs({ kind: kinds }), { headers: h, signal: controller.signal });
        if (!response.ok || !response.body) throw new Error("events " + response.status);
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let cut;
          while ((cut = buffer.indexOf("\n\n")) >= 0 || (cut = buffer.indexOf("\r\n\r\n")) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + (buffer[cut] === "\r" ? 4 : 2));
            const event = { id: "", event: "message", data: "" };
            for (const line of block.split(/\r?\n/)) {
              const at = line.indexOf(":");
              if (at <= 0) continue;
              const field = line.slice(0, at);
              const text = line.slice(at + 1).replace(/^ /, "");
              if (field === "data") event.data += text;
              else if (field === "id") event.id = text;
              else if (field === "event") event.event = text;
            }
            if (event.id) last = event.id;
            if (event.data) {
              try {
                onEvent(event.event, JSON.parse(event.data));
              } catch (err) {
                console.warn("bad event", err);
              }
            }
          }
        }
      } catch (err) {
        if (controller.signal.aborted) return;
      }
      await new Promise((r) => setTimeout(r, 3000));
    }
  })();
  return () => controller.abort();
}
