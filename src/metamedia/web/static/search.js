// Search: the query box, the parsed intent as removable chips, facets mapped to the API's filters,
// result cards with reasons. The URL holds the whole state (/find?q=…&genre=…), so back works.
import { html, useEffect, useState } from "./vendor/preact-htm-3.1.1.module.js";
import { api, qs, session } from "./api.js";
import { localSearch, outboxLikes, status as offlineStatus } from "./offline/offline.js";
import { navigate } from "./router.js";
import { GENRES } from "./discover.js";
import { Card, Chip, Empty, ErrorBox, Loading } from "./ui.js";

const FACETS = ["genre", "year_min", "year_max", "runtime_max", "rating_min", "type"];

function stateOf(params) {
  const out = { q: params.get("q") || "", genre: params.getAll("genre") };
  for (const f of FACETS.slice(1)) out[f] = params.get(f) || "";
  return out;
}

function urlOf(state) {
  return "/find" + qs({ q: state.q, genre: state.genre, year_min: state.year_min, year_max: state.year_max,
    runtime_max: state.runtime_max, rating_min: state.rating_min, type: state.type });
}

// The parsed query as chips; removing one rewrites the query without it (numbers become facets).
function intentChips(parsed, state) {
  const chips = [];
  const rest = () => ({
    text: parsed.text, genres: [...parsed.genres], exclude: [...parsed.exclude_genres], moods: [...parsed.moods],
    media: parsed.media_type,
  });
  const rebuild = (parts, facets = {}) => {
    const words = [parts.text, ...parts.genres.map((g) => g.toLowerCase()), ...parts.moods,
      ...parts.exclude.map((g) => "no " + g.toLowerCase())].filter(Boolean);
    const next = { ...state, ...facets, q: words.join(" ") };
    if (parts.media && !next.type) next.type = parts.media;
    return next;
  };
  const numbers = {};
  for (const f of ["year_min", "year_max", "runtime_min", "runtime_max", "rating_min"]) {
    if (parsed[f] !== null && parsed[f] !== undefined && !state[f]) numbers[f] = String(parsed[f]);
  }
  const drop = (name) => { const n = { ...numbers }; delete n[name]; return n; };
  parsed.genres.forEach((g) => chips.push([`genre: ${g}`, () => { const p = rest(); p.genres = p.genres.filter((x) => x !== g); return rebuild(p, numbers); }]));
  parsed.exclude_genres.forEach((g) => chips.push([`not ${g}`, () => { const p = rest(); p.exclude = p.exclude.filter((x) => x !== g); return rebuild(p, numbers); }]));
  parsed.moods.forEach((m) => chips.push([`mood: ${m}`, () => { const p = rest(); p.moods = p.moods.filter((x) => x !== m); return rebuild(p, numbers); }]));
  if (parsed.media_type && !state.type) chips.push([`type: ${parsed.media_type}`, () => { const p = rest(); p.media = null; return rebuild(p, numbers); }]);
  const labels = { year_min: "from", year_max: "until", runtime_min: "at least (min)", runtime_max: "at most (min)", rating_min: "rating ≥" };
  for (const f of Object.keys(numbers)) {
    if (f === "runtime_min") continue;
    chips.push([`${labels[f]} ${numbers[f]}`, () => rebuild(rest(), { ...drop(f), [f]: "" })]);
  }
  if (parsed.text) chips.push([`about: “${parsed.text}”`, () => { const p = rest(); p.text = ""; return rebuild(p, numbers); }]);
  return chips;
}

export function SearchPage({ params }) {
  const state = stateOf(params);
  const [draft, setDraft] = useState(state.q);
  const [result, setResult] = useState(null);
  const [error, setError] = useState(null);
  const [loading, setLoading] = useState(false);
  const key = urlOf(state);

  useEffect(() => { setDraft(state.q); }, [state.q]);
  async function run() {
    const hasFacet = FACETS.some((f) => (Array.isArray(state[f]) ? state[f].length : state[f]));
    if (!state.q && !hasFacet) { setResult(null); setError(null); return; }
    setLoading(true);
    setError(null);
    const local = async () => localSearch({ q: state.q, k: 24, genre: state.genre, likes: await outboxLikes(session.user),
      filters: { year_min: state.year_min, year_max: state.year_max, runtime_max: state.runtime_max,
        rating_min: state.rating_min, type: state.type } });
    try {
      let body;
      if (!offlineStatus.online && offlineStatus.index === "ready") body = await local();
      else {
        try {
          body = await api("/search" + qs({ q: state.q, k: 24, genre: state.genre, year_min: state.year_min,
            year_max: state.year_max, runtime_max: state.runtime_max, rating_min: state.rating_min, type: state.type }));
        } catch (err) {
          if (err.status !== 0 || offlineStatus.index !== "ready") throw err;
          body = await local(); // the server went away mid-session
        }
      }
      setResult(body);
    } catch (err) {
      setError(err);
      setResult(null);
    } finally {
      setLoading(false);
    }
  }
  useEffect(() => { run(); }, [key]);

  const go = (next) => navigate(urlOf(next));
  const facet = (name) => (e) => go({ ...state, [name]: e.target.value });
  const chips = result ? intentChips(result.query, state) : [];
  const facetChips = [
    ...state.genre.map((g) => [`genre: ${g}`, { ...state, genre: state.genre.filter((x) => x !== g) }]),
    ...FACETS.slice(1).filter((f) => state[f]).map((f) => [`${f.replace("_", " ")}: ${state[f]}`, { ...state, [f]: "" }]),
  ];
  const years = [];
  for (let y = 2030; y >= 1900; y -= 10) years.push(y);
  return html`<div class="search-page">
    <h1 class="page-title">Search</h1>
    <form class="searchbox" role="search" onSubmit=${(e) => { e.preventDefault(); go({ ...state, q: draft.trim() }); }}>
      <label for="q" class="sr-only">Search movies and series</label>
      <input id="q" type="search" name="q" value=${draft} maxlength="500" autocomplete="off"
        placeholder="Try “funny space movies” or “dark 90s thrillers”" onInput=${(e) => setDraft(e.target.value)} />
      <button type="submit" class="primary">Search</button>
    </form>
    <div class="facets" aria-label="Filters" role="group">
      <label>Genre <select value="" onChange=${(e) => e.target.value && go({ ...state, genre: [...state.genre, e.target.value] })}>
        <option value="">Any</option>${GENRES.filter((g) => !state.genre.includes(g)).map((g) => html`<option value=${g}>${g}</option>`)}</select></label>
      <label>From <input type="number" min="1900" max="2100" step="1" inputmode="numeric" value=${state.year_min} onChange=${facet("year_min")} placeholder="year" /></label>
      <label>Until <input type="number" min="1900" max="2100" step="1" inputmode="numeric" value=${state.year_max} onChange=${facet("year_max")} placeholder="year" /></label>
      <label>Runtime <select value=${state.runtime_max} onChange=${facet("runtime_max")}>
        <option value="">Any</option>${[90, 120, 150].map((m) => html`<option value=${m}>≤ ${m} min</option>`)}</select></label>
      <label>Rating <select value=${state.rating_min} onChange=${facet("rating_min")}>
        <option value="">Any</option>${[6, 7, 8].map((r) => html`<option value=${r}>★ ${r}+</option>`)}</select></label>
      <label>Type <select value=${state.type} onChange=${facet("type")}>
        <option value="">Any</option><option value="movie">Movies</option><option value="tv">Series</option></select></label>
    </div>
    ${(chips.length || facetChips.length) ? html`<div class="intent" aria-label="Understood as">
      <span class="intent-label">Understood as</span>
      ${chips.map(([label, next]) => html`<${Chip} label=${label} onRemove=${() => go(next())} />`)}
      ${facetChips.map(([label, next]) => html`<${Chip} label=${label} title=${"Remove filter " + label} onRemove=${() => go(next)} />`)}
    </div>` : ""}
    <div aria-live="polite" aria-busy=${loading ? "true" : "false"}>
      ${loading ? html`<${Loading} label="Searching…" />`
        : error ? html`<${ErrorBox} error=${error} retry=${run} />`
        : !result ? html`<${Empty}>Describe what you feel like watching: a mood, a genre, a decade, a length.</${Empty}>`
        : !result.results.length ? html`<${Empty}>No titles match. Remove a chip or a filter to widen the search.</${Empty}>`
        : html`<p class="count">${result.results.length} results in ${Math.round(result.took_ms)} ms${result.local
            ? html` <span class="local-note" data-mode=${result.mode}>· searched on this device${result.mode === "lexical"
              ? " by keywords (the model is still loading)" : ""}${result.reranked_by_profile ? ", re-ranked by your likes" : ""}</span>` : ""}</p>
          <div class="results">${result.results.map((item) => html`<${Card} key=${item.id} item=${item} wide />`)}</div>`}
    </div>
  </div>`;
}
