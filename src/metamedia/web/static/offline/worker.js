// The offline search worker: the catalog index from IndexedDB (synced from /catalog/index), the
// query parser (JS port), the model (transformers.js, loaded only from this server) and the ranking
// of rank.js. Until the model is ready the text feature is missing (lexical, genre, mood and meta
// only) and results say so.
import { makeParser } from "./parser.js";
import { readIndex, writeIndex } from "./db.js";
import { buildIndex, mergeIndex, rankSearch } from "./rank.js";
import sqlite3InitModule from "/vendor/sqlite-wasm-3.41.2/sqlite3.mjs";

export const LIBS = {
  transformers: "/vendor/transformers-4.3.2/transformers.min.js",
  ortWasm: "/vendor/onnxruntime-web-1.31.0-dev.20260914-8d85527a0/",
};
const MODEL = "all-MiniLM-L6-v2";

let key = "";
let parse = null;
let index = null; // see build()
let extractor = null;
const started = performance.now();
const post = (type, data = {}) => self.postMessage({ type, ...data });

let sqliteReady = null;
const sqlite = () => (sqliteReady ||= sqlite3InitModule({ print: () => {}, printErr: () => {} }));

async function loadLocal() {
  const t0 = performance.now();
  const held = await readIndex();
  if (!held) return false;
  const t1 = performance.now();
  index = buildIndex(held.header, held.rows, new Int8Array(held.vectors), held.scales, await sqlite(), held.fts);
  post("index", { state: "ready", items: index.n, generation: held.header.generation, ms: performance.now() - started,
    read_ms: t1 - t0, build_ms: performance.now() - t1 });
  return true;
}

function decode(b64) {
  const bin = atob(b64);
  const out = new Int8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = (bin.charCodeAt(i) << 24) >> 24;
  return out;
}

async function sync() {
  const have = index ? index.header : null;
  const url = have ? `/catalog/index?since=${have.generation}&after=${have.watermark}` : "/catalog/index";
  const response = await fetch(url, { headers: key ? { Authorization: "Bearer " + key } : {}, cache: "no-store" });
  if (!response.ok) throw new Error("index " + response.status);
  const body = await response.json();
  if (body.unchanged) return false;
  const { rows, q, scales } = mergeIndex(index, body, decode(body.vectors));
  const { items: _i, vectors: _v, scales: _s, ids, ...header } = body;
  header.count = ids.length;
  const next = buildIndex(header, rows, q, scales, await sqlite());
  await writeIndex({ header, rows, vectors: q.buffer, scales, fts: next.lex.bytes() });
  index = next;
  post("index", { state: "ready", items: index.n, generation: header.generation, ms: performance.now() - started, synced: body.items.length });
  return true;
}

async function loadModel() {
  const { env, pipeline } = await import(LIBS.transformers);
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = "/models/";
  env.useBrowserCache = false; // the service worker caches /models/ once; no second copy
  env.backends.onnx.wasm.wasmPaths = LIBS.ortWasm;
  env.backends.onnx.wasm.numThreads = 1; // no SharedArrayBuffer (no cross-origin isolation)
  extractor = await pipeline("feature-extraction", MODEL, { dtype: "fp32", device: "wasm" });
  await embed("warm up");
  post("model", { state: "ready", ms: performance.now() - started });
}

async function embed(text) {
  const out = await extractor(text, { pooling: "mean", normalize: true });
  return Float32Array.from(out.data);
}

self.onmessage = async (event) => {
  const { type, id } = event.data;
  try {
    if (type === "init") {
      key = event.data.key || "";
      parse = makeParser(event.data.tables);
      // The model's files and its WebAssembly load while the index is read (I/O and compilation overlap).
      const model = loadModel().catch((err) => post("model", { state: "error", error: String(err) }));
      const local = await loadLocal();
      if (!local) post("index", { state: "empty" });
      if (event.data.online) sync().catch((err) => post("index", { state: index ? "ready" : "error", error: String(err), items: index ? index.n : 0, generation: index ? index.header.generation : null }));
      await model;
    } else if (type === "sync") {
      key = event.data.key || key;
      post("reply", { id, ok: true, result: await sync() });
    } else if (type === "search") {
      if (!index) throw new Error("the catalog index is not on this device yet");
      post("reply", { id, ok: true, result: await rankSearch(index, parse, async (text) => (extractor && text ? embed(text) : null), event.data.request) });
    } else if (type === "parse") {
      post("reply", { id, ok: true, result: event.data.queries.map((q) => parse(q, new Date(event.data.today))) });
    } else if (type === "embed") {
      if (!extractor) throw new Error("model not ready");
      const out = [];
      for (const t of event.data.texts) out.push(Array.from(await embed(t)));
      post("reply", { id, ok: true, result: out });
    }
  } catch (err) {
    post("reply", { id, ok: false, error: String(err && err.message ? err.message : err) });
  }
};
