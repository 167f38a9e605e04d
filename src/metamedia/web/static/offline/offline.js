// The page's side of offline discovery: the service worker, the search worker, whether the server is
// reachable, and the feedback outbox (IndexedDB, idempotency keys, drained when the server is back).
import { outboxAdd, outboxAll, outboxDelete } from "./db.js";

export const status = {
  online: true, // the server answered the last request
  index: "loading", // loading | empty | ready | error
  items: 0,
  generation: null,
  model: "loading", // loading | ready | error
  cached: false, // shell, libraries and model are in the service worker's cache
  outbox: 0,
  timings: {}, // ms since navigation start: shell, index (local lexical ready), model
};
const listeners = new Set();
export function onStatus(fn) { listeners.add(fn); return () => listeners.delete(fn); }
function changed() {
  const el = document.documentElement;
  el.dataset.offline = status.online ? "no" : "yes";
  el.dataset.index = status.index;
  el.dataset.model = status.model;
  el.dataset.cached = status.cached ? "yes" : "no";
  el.dataset.outbox = String(status.outbox);
  for (const fn of listeners) fn({ ...status });
}

let worker = null;
let seq = 0;
const pending = new Map();
let sessionKey = () => "";

function call(type, data) {
  const id = ++seq;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    worker.postMessage({ type, id, ...data });
  });
}

export const localSearch = (request) => call("search", { request });
export const localParse = (queries, today) => call("parse", { queries, today });
export const localEmbed = (texts) => call("embed", { texts });
// Fetch what changed in the catalog since the index on the device (nothing when the generation is the same).
export const syncIndex = () => call("sync", { key: sessionKey() });

const MODEL_FILE = "/models/all-MiniLM-L6-v2/onnx/model.onnx";

async function checkCached() {
  if (!("caches" in self)) return;
  const hit = await caches.match(MODEL_FILE);
  status.cached = !!hit && status.model === "ready";
  if (status.cached) {
    const estimate = await navigator.storage.estimate().catch(() => ({}));
    status.timings.bytes_cached = estimate.usage || null;
  }
  changed();
}

async function registerServiceWorker() {
  if (!("serviceWorker" in navigator)) return;
  await navigator.serviceWorker.register("/sw.js", { scope: "/" });
  await navigator.serviceWorker.ready;
  if (!navigator.serviceWorker.controller) {
    await new Promise((resolve) => navigator.serviceWorker.addEventListener("controllerchange", resolve, { once: true }));
  }
  // The shell and the modules this page already loaded: cached now, so a reload works offline.
  const urls = ["/", ...performance.getEntriesByType("resource").map((e) => e.name)
    .filter((u) => new URL(u).origin === location.origin && new URL(u).pathname.startsWith("/static/"))];
  navigator.serviceWorker.controller.postMessage({ type: "precache", urls });
}

export async function startOffline({ key, online }) {
  if (worker || startOffline.started) return;
  startOffline.started = true;
  sessionKey = key;
  status.online = online;
  status.timings.shell = performance.now();
  changed();
  try {
    await registerServiceWorker();
  } catch (err) {
    console.warn("service worker not registered", err);
  }
  let tables;
  try {
    tables = await (await fetch("/static/offline/parser-tables.json")).json();
  } catch (err) { // neither the server nor the cache has it: no local search in this session
    status.index = "error";
    changed();
    return;
  }
  worker = new Worker("/static/offline/worker.js", { type: "module" });
  worker.onmessage = (event) => {
    const msg = event.data;
    if (msg.type === "reply") {
      const p = pending.get(msg.id);
      pending.delete(msg.id);
      if (p) (msg.ok ? p.resolve(msg.result) : p.reject(new Error(msg.error)));
    } else if (msg.type === "index") {
      status.index = msg.state;
      status.items = msg.items || 0;
      status.generation = msg.generation ?? null;
      if (msg.state === "ready" && status.timings.index === undefined) {
        status.timings.index = performance.now();
        status.timings.index_read = msg.read_ms;
        status.timings.index_build = msg.build_ms;
      }
      changed();
    } else if (msg.type === "model") {
      status.model = msg.state;
      if (msg.state === "ready") status.timings.model = performance.now();
      changed();
      checkCached();
    }
  };
  worker.postMessage({ type: "init", key: key(), tables, online });
  refreshOutbox();
  setInterval(() => { if (!status.online || status.outbox) probe(); }, 2000);
  setInterval(() => { if (status.online) syncIndex().catch(() => undefined); }, 60000); // catalog edits reach the device
  window.addEventListener("online", probe);
}

// ---- reachability --------------------------------------------------------------------------------

export function markReachable(ok) {
  if (status.online === ok) return;
  status.online = ok;
  changed();
  if (ok) { drain(); if (worker) worker.postMessage({ type: "sync", key: sessionKey() }); }
}

async function probe() {
  try {
    const r = await fetch("/ready", { cache: "no-store" });
    markReachable(r.ok);
  } catch {
    markReachable(false);
  }
  if (status.online && status.outbox) drain();
}

// ---- outbox --------------------------------------------------------------------------------------

async function refreshOutbox() {
  status.outbox = (await outboxAll()).length;
  changed();
}

// Every interaction is written to the outbox first (acknowledged = stored on this device), then sent.
// The idempotency key is chosen once, so a resend after a lost answer is stored once by the server.
export async function queueInteraction(userPath, body) {
  const entry = { key: body.idempotency_key, path: userPath + "/interactions", body, created: Date.now() };
  await outboxAdd(entry);
  await refreshOutbox();
  const sent = await drain();
  return sent.get(entry.key) || { queued: true, ...body };
}

let draining = null;
export function drain() {
  if (!draining) draining = drainOnce().finally(() => { draining = null; });
  return draining;
}

async function drainOnce() {
  const sent = new Map();
  for (const entry of await outboxAll()) {
    let response;
    try {
      const headers = { "Content-Type": "application/json" };
      if (sessionKey()) headers.Authorization = "Bearer " + sessionKey();
      response = await fetch(entry.path, { method: "POST", headers, body: JSON.stringify(entry.body) });
    } catch {
      markReachable(false);
      break; // the server is away: keep this and the rest for later, in order
    }
    markReachable(true);
    // Not now (server trouble, rate limit, a key to re-enter): keep it. Other 4xx can never succeed.
    if ([401, 403, 408, 429].includes(response.status) || response.status >= 500) break;
    if (response.ok) sent.set(entry.key, await response.json().catch(() => ({})));
    else console.warn("interaction refused by the server", response.status, entry.body); // 4xx: never valid
    await outboxDelete(entry.key);
  }
  await refreshOutbox();
  return sent;
}

export async function outboxLikes(user) {
  return (await outboxAll()).filter((e) => e.path.startsWith("/users/" + encodeURIComponent(user) + "/") && e.body.kind === "like")
    .map((e) => e.body.item_id);
}
