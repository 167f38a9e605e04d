// The offline search worker: the catalog index from IndexedDB, the query parser (JS port), the model
// (transformers.js, loaded only from this server), and the server's ranking redone locally: dense
// exact scan over int8 hybrid vectors + BM25 lexical pool, the fusion features and weights the index
// carries, trend boost, MMR diversity, the same filters. Until the model is ready the text feature
// is missing (lexical + genre/mood/meta only) and results say so.
import { makeParser } from "./parser.js";
import { allItems, applyIndex, getMeta } from "./db.js";
import MiniSearch from "/vendor/minisearch-7.2.0/index.js";

export const LIBS = {
  transformers: "/vendor/transformers-4.3.2/transformers.min.js",
  ortWasm: "/vendor/onnxruntime-web-1.31.0-dev.20260914-8d85527a0/",
};
const MODEL = "all-MiniLM-L6-v2";
const STOP = new Set(("a an and are as at be by for from has have in is it its of on or that the this to was were with " +
  "me show find some something movie movies film films but no not without").split(" "));

let key = "";
let parse = null;
let index = null; // see build()
let extractor = null;
const started = performance.now();
const post = (type, data = {}) => self.postMessage({ type, ...data });

function build(header, rows) {
  const n = rows.length, dim = header.dim;
  rows.sort((a, b) => a.id - b.id);
  const q = new Int8Array(n * dim);
  const scales = new Float32Array(n);
  const textNorm = new Float32Array(n);
  const [t0, t1] = header.layout.text;
  rows.forEach((row, i) => {
    const v = new Int8Array(row.q);
    q.set(v, i * dim);
    scales[i] = row.scale;
    let s = 0;
    for (let d = t0; d < t1; d++) s += v[d] * v[d];
    textNorm[i] = Math.sqrt(s) * row.scale;
  });
  const lex = new MiniSearch({
    idField: "id",
    fields: ["title", "original_title", "keywords", "genres", "tagline", "overview", "companies", "collection"],
    extractField: (doc, field) => (Array.isArray(doc[field]) ? doc[field].join(" ") : doc[field] || ""),
    searchOptions: { boost: { title: 10, original_title: 4, keywords: 4, genres: 2, tagline: 1.5, overview: 1, companies: 3, collection: 4 } },
  });
  lex.addAll(rows.map(({ q: _q, ...meta }) => meta));
  const position = new Map(rows.map((row, i) => [row.id, i]));
  return { header, n, dim, rows, q, scales, textNorm, lex, position };
}

async function loadLocal() {
  const header = await getMeta("index");
  if (!header) return false;
  index = build(header, await allItems());
  post("index", { state: "ready", items: index.n, generation: header.generation, ms: performance.now() - started });
  return true;
}

function decode(b64) {
  const bin = atob(b64);
  const out = new Int8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = (bin.charCodeAt(i) << 24) >> 24;
  return out;
}

async function sync() {
  const have = await getMeta("index");
  const url = have ? `/catalog/index?since=${have.generation}&after=${have.watermark}` : "/catalog/index";
  const response = await fetch(url, { headers: key ? { Authorization: "Bearer " + key } : {}, cache: "no-store" });
  if (!response.ok) throw new Error("index " + response.status);
  const body = await response.json();
  if (body.unchanged) return false;
  const vectors = decode(body.vectors);
  const rows = body.items.map((item, i) => ({
    ...item, q: vectors.slice(i * body.dim, (i + 1) * body.dim).buffer, scale: body.scales[i],
  }));
  const { items: _i, vectors: _v, scales: _s, ids, ...header } = body;
  header.count = ids.length;
  await applyIndex(header, rows, ids);
  index = build(header, await allItems());
  post("index", { state: "ready", items: index.n, generation: header.generation, ms: performance.now() - started, synced: rows.length });
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

// ---- ranking (search/pipeline.py, search/fusion.py, embed/hybrid.py) ------------------------------

const unit = (v) => { let s = 0; for (const x of v) s += x * x; const n = Math.sqrt(s); return n > 0 ? v.map((x) => x / n) : v; };

function queryVector(textVec, genres, moods) {
  const h = index.header, w = h.weights, out = new Float32Array(h.dim);
  const place = ([a], vec, weight) => { const u = unit(vec); for (let i = 0; i < u.length; i++) out[a + i] = weight * u[i]; };
  if (textVec) place(h.layout.text, textVec, w.text);
  place(h.layout.genre, Float32Array.from(h.genres, (g) => (genres.includes(g) ? 1 : 0)), w.genre);
  place(h.layout.mood, Float32Array.from(h.moods, (m) => (moods.includes(m) ? 1 : 0)), w.mood);
  const meta = new Float32Array(h.layout.meta[1] - h.layout.meta[0]);
  meta[7] = 0.3; // has_overview: true, the rest unknown
  place(h.layout.meta, meta, w.meta);
  return unit(out);
}

function passes(row, eff, explicit, exclude) {
  const range = (v, lo, hi) => v !== null && v !== undefined && (lo === null || v >= lo) && (hi === null || v <= hi);
  if ((eff.year_min !== null || eff.year_max !== null) && !range(row.year, eff.year_min, eff.year_max)) return false;
  if (eff.rating_min !== null && !(range(row.vote_average, eff.rating_min, null) && range(row.vote_count, index.header.ranking.min_votes_with_rating_filter, null))) return false;
  if ((eff.runtime_min !== null || eff.runtime_max !== null) && !range(row.runtime, eff.runtime_min, eff.runtime_max)) return false;
  if (eff.media_type && row.media_type !== eff.media_type) return false;
  for (const g of explicit) if (!row.genres.includes(g)) return false;
  if (exclude.some((g) => row.genres.includes(g))) return false;
  return true;
}

function semanticText(parsed, explicit, raw) {
  const hasFilters = ["year_min", "year_max", "runtime_min", "runtime_max", "rating_min"].some((f) => parsed[f] !== null);
  if (!hasFilters && !parsed.exclude_genres.length && raw.trim()) return raw.trim();
  const genres = [...new Set([...parsed.genres, ...explicit])];
  return [...parsed.moods, ...genres, parsed.text.trim()].filter(Boolean).join(" ") || raw.trim();
}

const dot = (i, qv) => {
  const { q, dim, scales } = index;
  let s = 0;
  for (let d = 0, o = i * dim; d < dim; d++) s += q[o + d] * qv[d];
  return s * scales[i];
};

function moodStrengths(i) {
  const [a, b] = index.header.layout.mood, o = i * index.dim;
  let top = 0;
  for (let d = a; d < b; d++) top = Math.max(top, index.q[o + d]);
  const out = {};
  if (top <= 0) return out;
  index.header.moods.forEach((m, j) => { if (index.q[o + a + j] > 0) out[m] = index.q[o + a + j] / top; });
  return out;
}

function trendScore(row, halfLife, today) {
  let recency = 0;
  const released = row.release_date ? new Date(row.release_date) : row.year ? new Date(row.year, 6, 1) : null;
  if (released && !isNaN(released)) recency = 0.5 ** (Math.max(0, Math.floor((today - released) / 86400000)) / Math.max(halfLife, 1));
  const pop = Math.min(1, Math.log1p(row.popularity || 0) / Math.log1p(100));
  return 0.5 * recency + 0.5 * pop;
}

const normTitle = (s) => s.toLowerCase().normalize("NFKD").replace(/[^\p{L}\p{N}]+/gu, " ").trim();

function vecOf(i) {
  const { q, dim, scales } = index, out = new Float32Array(dim);
  for (let d = 0; d < dim; d++) out[d] = q[i * dim + d] * scales[i];
  return out;
}

function mmr(order, scores, k, lam) {
  if (lam >= 1 || order.length <= 1) return order.slice(0, k);
  const vecs = order.map(vecOf);
  const penalty = new Float64Array(order.length).fill(-Infinity);
  const free = order.map(() => true);
  const chosen = [];
  let best = 0;
  while (chosen.length < Math.min(k, order.length)) {
    chosen.push(order[best]);
    free[best] = false;
    for (let j = 0; j < order.length; j++) {
      let s = 0; for (let d = 0; d < vecs[j].length; d++) s += vecs[j][d] * vecs[best][d];
      penalty[j] = Math.max(penalty[j], s);
    }
    let value = -Infinity, next = -1;
    for (let j = 0; j < order.length; j++) {
      if (!free[j]) continue;
      const v = lam * scores[order[j]] - (1 - lam) * penalty[j];
      if (v > value) { value = v; next = j; }
    }
    if (next < 0) break;
    best = next;
  }
  return chosen;
}

async function search({ q, k = 24, genre = [], filters = {}, likes = [], today }) {
  const t0 = performance.now();
  const now = today ? new Date(today) : new Date();
  const parsed = parse(q || "", now);
  const explicit = genre;
  const pick = (f) => (filters[f] !== undefined && filters[f] !== null && filters[f] !== "" ? Number(filters[f]) : parsed[f]);
  const eff = { year_min: pick("year_min"), year_max: pick("year_max"), rating_min: pick("rating_min"),
    runtime_min: pick("runtime_min"), runtime_max: pick("runtime_max"), media_type: filters.type || parsed.media_type };
  const R = index.header.ranking, W = R.fusion;
  const text = semanticText(parsed, explicit, parsed.raw || "");
  const textVec = extractor && text ? await embed(text) : null;
  const wanted = parsed.genres.length ? parsed.genres : explicit;
  const qv = queryVector(textVec, wanted, parsed.moods);
  const allowed = [];
  const dense = new Float32Array(index.n).fill(-Infinity);
  for (let i = 0; i < index.n; i++) {
    if (!passes(index.rows[i], eff, explicit, parsed.exclude_genres)) continue;
    allowed.push(i);
    dense[i] = dot(i, qv);
  }
  const size = Math.min(Math.max(k * R.search_oversample, 50), 2000);
  const denseTop = allowed.slice().sort((a, b) => dense[b] - dense[a]).slice(0, size);
  const words = [...wanted, parsed.text].join(" ");
  const terms = [...new Set((words.toLowerCase().match(/[\p{L}\p{N}]+/gu) || []).filter((w) => !STOP.has(w)))].slice(0, 32);
  const lexical = terms.length ? index.lex.search(terms.join(" "), { combineWith: "OR", prefix: false, fuzzy: false }).slice(0, R.lexical_pool) : [];
  const pool = new Map(denseTop.map((i, rank) => [i, { i, denseRank: rank, lexRank: null, lexScore: 0 }]));
  lexical.forEach((hit, rank) => {
    const i = index.position.get(hit.id);
    if (i === undefined) return;
    if (!pool.has(i) && !passes(index.rows[i], eff, explicit, parsed.exclude_genres)) return;
    const c = pool.get(i) || { i, denseRank: null };
    c.lexRank = rank; c.lexScore = hit.score;
    pool.set(i, c);
  });
  const cands = [...pool.values()];
  const bestLex = Math.max(0, ...cands.map((c) => c.lexScore)) || 1;
  const rankF = (r) => (r === null ? 0 : 1 / (1 + r / R.rank_scale));
  const rawTitle = normTitle(parsed.raw || "");
  const likedVecs = likes.map((id) => index.position.get(id)).filter((i) => i !== undefined).map(vecOf);
  let profile = null;
  if (likedVecs.length) profile = unit(likedVecs.reduce((acc, v) => acc.map((x, d) => x + v[d]), new Float32Array(index.dim)));
  const scores = new Float64Array(index.n);
  for (const c of cands) {
    const row = index.rows[c.i], hasPlot = !!row.overview;
    let textSim = 0;
    if (textVec && hasPlot && index.textNorm[c.i] > 0) {
      const [a, b] = index.header.layout.text;
      let s = 0; for (let d = a; d < b; d++) s += index.q[c.i * index.dim + d] * textVec[d - a];
      textSim = (s * index.scales[c.i]) / index.textNorm[c.i];
    }
    c.textSim = textSim;
    const genreShare = wanted.length ? wanted.filter((g) => row.genres.includes(g)).length / wanted.length : 0;
    const strengths = moodStrengths(c.i);
    const mood = parsed.moods.length ? parsed.moods.reduce((s, m) => s + (strengths[m] || 0), 0) / parsed.moods.length : 0;
    const votes = Math.min(1, Math.log1p(row.vote_count || 0) / Math.log1p(10000));
    const quality = row.vote_average && row.vote_count ? Math.max(-1, Math.min(1, (row.vote_average - 6.5) / 2)) * Math.min(1, row.vote_count / 500) : 0;
    const title = rawTitle && normTitle(row.title) === rawTitle ? 1 : 0;
    let s = W.text * (hasPlot ? textSim : 0) + W.dense_rank * (hasPlot ? rankF(c.denseRank) : 0) + W.lexical * (c.lexScore / bestLex) +
      W.lexical_rank * rankF(c.lexRank) + W.title * title + W.genre * genreShare + W.mood * mood + W.quality * quality + W.votes * votes;
    s += R.trend_weight * trendScore(row, R.trend_half_life_days, now);
    if (profile) { let p = 0; const v = vecOf(c.i); for (let d = 0; d < v.length; d++) p += v[d] * profile[d]; c.profile = p; s += 0.5 * p; }
    scores[c.i] = s;
  }
  const order = cands.map((c) => c.i).sort((a, b) => scores[b] - scores[a]);
  const head = order.slice(0, Math.max(k * 4, 40));
  const lo = Math.min(...head.map((i) => scores[i])), hi = Math.max(...head.map((i) => scores[i]));
  const rel = new Float64Array(index.n);
  for (const i of head) rel[i] = hi > lo ? (scores[i] - lo) / (hi - lo) : 1;
  const chosen = mmr(head, rel, k, R.diversity_lambda);
  const byI = new Map(cands.map((c) => [c.i, c]));
  const results = chosen.map((i) => {
    const row = index.rows[i], c = byI.get(i);
    const reasons = [];
    if (c.textSim >= 0.3) reasons.push("plot matches your words");
    for (const g of wanted) if (row.genres.includes(g)) reasons.push(`matches genre ${g}`);
    if (c.lexScore > 0) reasons.push("words of your query in its description");
    if (c.profile !== undefined && c.profile > 0.5) reasons.push("close to what you liked");
    const { q: _q, scale: _s, ...item } = row;
    return { ...item, score: scores[i], reasons };
  });
  return {
    query: parsed, results, took_ms: performance.now() - t0, local: true,
    mode: textVec ? "semantic" : "lexical", reranked_by_profile: !!profile,
  };
}

self.onmessage = async (event) => {
  const { type, id } = event.data;
  try {
    if (type === "init") {
      key = event.data.key || "";
      parse = makeParser(event.data.tables);
      const local = await loadLocal();
      if (!local) post("index", { state: "empty" });
      if (event.data.online) sync().catch((err) => post("index", { state: index ? "ready" : "error", error: String(err), items: index ? index.n : 0, generation: index ? index.header.generation : null }));
      loadModel().catch((err) => post("model", { state: "error", error: String(err) }));
    } else if (type === "sync") {
      key = event.data.key || key;
      await sync();
      post("reply", { id, ok: true });
    } else if (type === "search") {
      if (!index) throw new Error("the catalog index is not on this device yet");
      post("reply", { id, ok: true, result: await search(event.data.request) });
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
