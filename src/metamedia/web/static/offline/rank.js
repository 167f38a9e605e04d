// The server's search ranking redone on the device (search/pipeline.py, search/fusion.py,
// embed/hybrid.py): dense exact scan over the int8 hybrid vectors + the lexical pool of the server's FTS5 query,
// the fusion features and weights the index carries, the trend boost, MMR diversity, the same filters.
// Pure functions over an index built by buildIndex, so the worker and a test can share them.

const STOP = new Set(("a an and are as at be by for from has have in is it its of on or that the this to was were with " +
  "me show find some something movie movies film films but no not without").split(" "));

// The server's FTS5 table (store/migrations 0004), its tokenizer, its column weights and its query
// (store/lexical.py), in SQLite compiled to WebAssembly: the same bm25 scores over the same text.
const FTS_COLUMNS = ["title", "original_title", "keywords", "genres", "tagline", "overview", "companies", "collection"];
const FTS_SEARCH = "SELECT rowid, -bm25(items_fts, 10.0, 4.0, 4.0, 2.0, 1.5, 1.0, 3.0, 4.0) AS score FROM items_fts " +
  "WHERE items_fts MATCH ? ORDER BY score DESC LIMIT ?";
// Lists are stored as the server stores them (JSON with ASCII escapes), so they tokenise alike.
const asJson = (list) => (list ? JSON.stringify(list).replace(/[\u0080-\uffff]/g, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0")).replace(/","/g, '", "') : null);

function lexicalIndex(rows, sqlite3, saved) {
  const db = new sqlite3.oo1.DB(":memory:");
  if (saved && saved.length) { // the table built on a previous load: no re-tokenising
    const mem = sqlite3.wasm.allocFromTypedArray(saved);
    const rc = sqlite3.capi.sqlite3_deserialize(db.pointer, "main", mem, saved.length, saved.length,
      sqlite3.capi.SQLITE_DESERIALIZE_FREEONCLOSE | sqlite3.capi.SQLITE_DESERIALIZE_RESIZEABLE);
    if (rc !== 0) throw new Error("stored full-text index unreadable: " + rc);
  } else {
    db.exec("CREATE VIRTUAL TABLE items_fts USING fts5(" + FTS_COLUMNS.join(", ") + ", tokenize='porter unicode61 remove_diacritics 2')");
    const insert = db.prepare("INSERT INTO items_fts(rowid, " + FTS_COLUMNS.join(", ") + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
    db.exec("BEGIN");
    for (const r of rows) {
      insert.bind([r.id, r.title, r.original_title || null, asJson(r.keywords), asJson(r.genres), r.tagline || null,
        r.overview || null, r.companies && r.companies.length ? asJson(r.companies) : null, r.collection || null]).stepReset();
    }
    db.exec("COMMIT");
    insert.finalize();
  }
  return {
    search(terms, limit) {
      const match = terms.map((t) => '"' + t.replaceAll('"', '""') + '"').join(" OR ");
      return db.exec({ sql: FTS_SEARCH, bind: [match, limit], returnValue: "resultRows" }).map(([id, score]) => ({ id, score }));
    },
    bytes: () => sqlite3.capi.sqlite3_js_db_export(db.pointer),
  };
}

// rows sorted by id; q: rows.length x header.dim int8 values, row after row; scales: one per row.
// savedFts: the serialised full-text table of a previous load (built from the rows when absent).
export function buildIndex(header, rows, q, scales, sqlite3, savedFts = null) {
  const n = rows.length, dim = header.dim;
  const textNorm = new Float32Array(n);
  const [t0, t1] = header.layout.text;
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let d = t0, o = i * dim; d < t1; d++) s += q[o + d] * q[o + d];
    textNorm[i] = Math.sqrt(s) * scales[i];
  }
  const lex = lexicalIndex(rows, sqlite3, savedFts);
  const position = new Map(rows.map((row, i) => [row.id, i]));
  return { header, n, dim, rows, q, scales, textNorm, lex, position };
}

// An export (full, or the rows written since) merged into the index the device holds.
export function mergeIndex(held, body, vectors) {
  const dim = body.dim;
  const byId = new Map();
  if (held && !body.full) {
    held.rows.forEach((row, i) => byId.set(row.id, { row, q: held.q.subarray(i * dim, (i + 1) * dim), scale: held.scales[i] }));
  }
  body.items.forEach((row, i) => byId.set(row.id, { row, q: vectors.subarray(i * dim, (i + 1) * dim), scale: body.scales[i] }));
  const ids = body.ids.filter((id) => byId.has(id)).sort((a, b) => a - b);
  const q = new Int8Array(ids.length * dim);
  const scales = new Float32Array(ids.length);
  const rows = ids.map((id, i) => {
    const e = byId.get(id);
    q.set(e.q, i * dim);
    scales[i] = e.scale;
    return e.row;
  });
  return { rows, q, scales };
}

let index = null;

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

const inRange = (v, lo, hi) => v !== null && v !== undefined && (lo === null || v >= lo) && (hi === null || v <= hi);

function passes(row, eff, explicit, exclude) {
  if ((eff.year_min !== null || eff.year_max !== null) && !inRange(row.year, eff.year_min, eff.year_max)) return false;
  if (eff.rating_min !== null && !(inRange(row.vote_average, eff.rating_min, null) && inRange(row.vote_count, index.header.ranking.min_votes_with_rating_filter, null))) return false;
  if ((eff.runtime_min !== null || eff.runtime_max !== null) && !inRange(row.runtime, eff.runtime_min, eff.runtime_max)) return false;
  if (eff.media_type && row.media_type !== eff.media_type) return false;
  for (const g of explicit) if (!row.genres.includes(g)) return false;
  for (const g of exclude) if (row.genres.includes(g)) return false;
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

// The item a phrase names: the exact normalised title (search/entities.normalise_title without the roman
// numerals), ties to the most voted. The server's fuzzy matching is not ported.
function resolveTitle(phrase) {
  const want = normTitle(phrase.replaceAll("&", " and "));
  let best = null;
  for (let i = 0; i < index.n; i++) {
    const row = index.rows[i];
    if (normTitle(row.title.replaceAll("&", " and ")) !== want) continue;
    if (best === null || (row.vote_count || 0) > (index.rows[best].vote_count || 0)) best = i;
  }
  return best;
}

function searchLike(source, parsed, eff, explicit, k, diversity, t0) {
  const R = index.header.ranking, L = R.like;
  const qv = vecOf(source);
  const [a, b] = index.header.layout.text;
  const wanted = parsed.genres.length ? parsed.genres : explicit;
  const allowed = [];
  const score = new Float64Array(index.n);
  for (let i = 0; i < index.n; i++) {
    if (i === source || !passes(index.rows[i], eff, explicit, parsed.exclude_genres)) continue;
    allowed.push(i);
    score[i] = dot(i, qv);
  }
  const size = Math.min(Math.max(k * R.search_oversample, 50), 2000);
  const hits = allowed.sort((x, y) => score[y] - score[x]).slice(0, size);
  for (const i of hits) {
    const row = index.rows[i];
    let s = score[i];
    if (!row.overview) { let t = 0; for (let d = a; d < b; d++) t += index.q[i * index.dim + d] * qv[d]; s -= t * index.scales[i]; }
    if (wanted.length) s += L.genre_bonus * wanted.filter((g) => row.genres.includes(g)).length / wanted.length;
    const strengths = moodStrengths(i);
    if (parsed.moods.length) s += L.mood_bonus * parsed.moods.reduce((acc, m) => acc + (strengths[m] || 0), 0) / parsed.moods.length;
    const quality = row.vote_average && row.vote_count ? Math.max(-1, Math.min(1, (row.vote_average - 6.5) / 2)) * Math.min(1, row.vote_count / 500) : 0;
    score[i] = s + L.quality_weight * quality;
  }
  const order = hits.sort((x, y) => score[y] - score[x]);
  const chosen = mmr(order.slice(0, Math.max(k * 4, 40)), score, k, diversity ? R.diversity_lambda : 1);
  const results = chosen.map((i) => {
    const { q: _q, scale: _s, ...item } = index.rows[i];
    return { ...item, score: score[i], reasons: [`similar to ${index.rows[source].title}`] };
  });
  return { query: parsed, results, took_ms: performance.now() - t0, local: true, mode: "similar",
    similar_to_id: index.rows[source].id, reranked_by_profile: false, stages_ms: {} };
}

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

export function rankSearch(idx, parse, embedText, { q, k = 24, genre = [], filters = {}, likes = [], today, trend = true, diversity = true }) {
  index = idx;
  const t0 = performance.now();
  const now = today ? new Date(today) : new Date();
  const parsed = parse(q || "", now);
  const explicit = genre;
  const pick = (f) => (filters[f] !== undefined && filters[f] !== null && filters[f] !== "" ? Number(filters[f]) : parsed[f]);
  const eff = { year_min: pick("year_min"), year_max: pick("year_max"), rating_min: pick("rating_min"),
    runtime_min: pick("runtime_min"), runtime_max: pick("runtime_max"), media_type: filters.type || parsed.media_type };
  const R = index.header.ranking, W = R.fusion;
  if (parsed.similar_to) { // "movies like X", "X but darker": from X's own vector when X is a title here
    const source = resolveTitle(parsed.similar_to);
    if (source !== null) return Promise.resolve(searchLike(source, parsed, eff, explicit, k, diversity, t0));
  }
  const text = semanticText(parsed, explicit, parsed.raw || "");
  return embedText(text).then((textVec) => {
  index = idx;
  const wanted = parsed.genres.length ? parsed.genres : explicit;
  const tEmbedded = performance.now();
  const qv = queryVector(textVec, wanted, parsed.moods);
  const allowed = [];
  const dense = new Float32Array(index.n).fill(-Infinity);
  for (let i = 0; i < index.n; i++) {
    if (!passes(index.rows[i], eff, explicit, parsed.exclude_genres)) continue;
    allowed.push(i);
    dense[i] = dot(i, qv);
  }
  const size = Math.min(Math.max(k * R.search_oversample, 50), 2000);
  const tScan = performance.now();
  const denseTop = allowed.slice().sort((a, b) => dense[b] - dense[a]).slice(0, size);
  const words = [...wanted, parsed.text].join(" ");
  const terms = [...new Set((words.toLowerCase().match(/[\p{L}\p{N}\p{M}]+/gu) || []).filter((w) => !STOP.has(w)))].slice(0, 32);
  const tLex = performance.now();
  const lexical = terms.length ? index.lex.search(terms, R.lexical_pool) : [];
  const tRank = performance.now();
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
    if (trend) s += R.trend_weight * trendScore(row, R.trend_half_life_days, now);
    if (profile) { let p = 0; const v = vecOf(c.i); for (let d = 0; d < v.length; d++) p += v[d] * profile[d]; c.profile = p; s += 0.5 * p; }
    scores[c.i] = s;
  }
  const order = cands.map((c) => c.i).sort((a, b) => scores[b] - scores[a]);
  const head = order.slice(0, Math.max(k * 4, 40));
  const lo = Math.min(...head.map((i) => scores[i])), hi = Math.max(...head.map((i) => scores[i]));
  const rel = new Float64Array(index.n);
  for (const i of head) rel[i] = hi > lo ? (scores[i] - lo) / (hi - lo) : 1;
  const chosen = mmr(head, rel, k, diversity ? R.diversity_lambda : 1);
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
    stages_ms: { embed: tEmbedded - t0, scan: tLex - tEmbedded, lexical: tRank - tLex, rank: performance.now() - tRank },
    mode: textVec ? "semantic" : "lexical", reranked_by_profile: !!profile,
  };
  });
}

