// Discover (home): rows from the engine, each with its algorithm; onboarding for a new profile.
import { html, useEffect, useRef, useState } from "./vendor/preact-htm-3.1.1.module.js";
import { api, qs, session, subscribe, user } from "./api.js";
import { Card, Empty, ErrorBox, Loading, Row } from "./ui.js";

export const GENRES = [
  "Action", "Adventure", "Animation", "Comedy", "Crime", "Documentary", "Drama", "Family", "Fantasy",
  "History", "Horror", "Music", "Mystery", "Romance", "Science Fiction", "Thriller", "War", "Western",
];
const MOODS = ["feel-good", "exciting", "dark", "relaxing", "suspenseful", "sad"];
const POSITIVE = new Set(["like", "add_to_list", "watch", "rewatch"]);
const K = 24; // asked per row, so SHOW remain after removing titles shown in rows above
const SHOW = 12;

const recs = (params) => api(user(session.user) + "/recommendations" + qs({ k: K, ...params }));

function lastLiked(profile) {
  return (profile.recent || []).find((r) => POSITIVE.has(r.kind) || (r.kind === "rating" && r.strength > 0));
}

// Rows: [id, title, subtitle, request]
function rowSpecs(profile, prefs, mood) {
  const liked = lastLiked(profile);
  const blocked = new Set((prefs.blocked_genres || []).map((b) => b.genre));
  const mine = new Set((profile.top_genres || []).slice(0, 4).map((g) => g.genre));
  const day = Math.floor(Date.now() / 86400000);
  const fresh = GENRES.filter((g) => !mine.has(g) && !blocked.has(g));
  // Today's genre first, then the next ones in case the catalog has nothing of it.
  const different = fresh.map((_, i) => fresh[(day + i) % fresh.length]).slice(0, 4);
  const rows = [];
  if (liked) {
    rows.push(["because", `Because you liked ${liked.title || "#" + liked.item_id}`, "Titles close to it that you have not seen",
      { algorithm: "content", similar_to: liked.item_id }]);
  }
  rows.push(["recent", "More like your recent picks", "Chosen by the bandit among the engine's algorithms", { algorithm: "auto" }]);
  rows.push(["trending", "Trending", "Popular with everyone lately", { algorithm: "trending" }]);
  rows.push(["mood", `By mood: ${mood}`, "Your taste, fused with a mood search", { algorithm: "hybrid", query: mood }]);
  if (different.length) {
    rows.push(["different", "Something different", "A genre outside your usual ones",
      { algorithm: "popularity", genres: different }]);
  }
  return rows;
}

function Onboarding({ onDone }) {
  const [picked, setPicked] = useState([]);
  const [titles, setTitles] = useState(null);
  const [liked, setLiked] = useState(new Set());
  const [error, setError] = useState(null);
  const [loadedFor, setLoadedFor] = useState(null);
  const latest = useRef("");
  // Well-rated titles of any picked genre (one search per genre, interleaved), or popular ones.
  async function loadTitles() {
    const key = picked.join("|");
    latest.current = key;
    setError(null);
    setTitles(null);
    try {
      const searches = picked.length
        ? picked.map((g) => api("/search" + qs({ genre: g, k: 12, rating_min: 6 })))
        : [api("/search" + qs({ q: "popular acclaimed movies", k: 18, rating_min: 6 }))];
      const lists = (await Promise.all(searches)).map((b) => b.results);
      const merged = new Map();
      for (let i = 0; merged.size < 18 && lists.some((l) => i < l.length); i++) {
        for (const list of lists) if (i < list.length && !merged.has(list[i].id)) merged.set(list[i].id, list[i]);
      }
      if (latest.current !== key) return; // an older answer arriving late
      setTitles([...merged.values()]);
      setLoadedFor(key);
    } catch (err) {
      if (latest.current === key) setError(err);
    }
  }
  useEffect(() => { loadTitles(); }, [picked.join("|")]);
  const toggle = (g) => setPicked(picked.includes(g) ? picked.filter((x) => x !== g) : [...picked, g]);
  const onLike = (item) => setLiked(new Set([...liked, item.id]));
  return html`<section class="onboarding" aria-labelledby="welcome">
    <h1 id="welcome">Welcome! Tell us what you like</h1>
    <p>Pick a few genres, then like two or three titles. Your rows appear as soon as you have.</p>
    <fieldset class="genre-picker"><legend>Genres you enjoy</legend>
      ${GENRES.map((g) => html`<button type="button" class="toggle" aria-pressed=${picked.includes(g) ? "true" : "false"}
        onClick=${() => toggle(g)}>${g}</button>`)}
    </fieldset>
    <h2>Like a few titles</h2>
    ${error ? html`<${ErrorBox} error=${error} retry=${loadTitles} />` : !titles ? html`<${Loading} />`
      : !titles.length ? html`<${Empty}>No titles for these genres — try fewer.</${Empty}>`
      : html`<div class="tiles" data-for=${loadedFor}>${titles.filter((t) => !liked.has(t.id)).map((t) => html`<${Card} key=${t.id} item=${t} onFeedback=${onLike} />`)}</div>`}
    <p class="onboarding-foot">
      <span role="status">${liked.size} liked</span>
      <button type="button" class="primary" disabled=${liked.size < 1} onClick=${onDone}>Show my recommendations</button>
    </p>
  </section>`;
}

// One request per row; "Something different" tries its candidate genres until one has titles.
async function load(params) {
  if (!Array.isArray(params.genres)) return recs(params);
  let body = null;
  for (const genre of params.genres) {
    body = await recs({ ...params, genres: genre });
    if (body.results.length >= 4) return { ...body, genre };
  }
  return body;
}

export function Discover() {
  const [profile, setProfile] = useState(undefined); // undefined: loading; null: new user
  const [prefs, setPrefs] = useState({});
  const [error, setError] = useState(null);
  const [mood, setMood] = useState(MOODS[0]);
  const [rows, setRows] = useState({});
  const [version, setVersion] = useState(0);
  const timer = useRef(null);
  const onboarded = useRef(false);
  onboarded.current = Boolean(profile);

  async function loadProfile() {
    setError(null);
    try {
      const [p, pr] = await Promise.all([
        api(user(session.user) + "/profile").catch((e) => { if (e.status === 404) return null; throw e; }),
        api(user(session.user) + "/preferences"),
      ]);
      setProfile(p && p.interactions ? p : null);
      setPrefs(pr);
    } catch (err) {
      setError(err);
    }
  }
  useEffect(() => { loadProfile(); }, [version]);

  const specs = profile ? rowSpecs(profile, prefs, mood) : [];
  const specKey = specs.map((s) => s[0] + JSON.stringify(s[3])).join(";");
  useEffect(() => {
    if (!profile) return;
    let live = true;
    for (const [id, , , params] of specs) {
      setRows((r) => ({ ...r, [id]: { ...(r[id] || {}), loading: true } }));
      load(params).then(
        (body) => live && setRows((r) => ({ ...r, [id]: { body, loading: false } })),
        (err) => live && setRows((r) => ({ ...r, [id]: { error: err, loading: false } })),
      );
    }
    return () => { live = false; };
  }, [profile, specKey]);

  // Learning you can see: after any interaction of this user (this tab or another), refresh the rows.
  const refreshSoon = () => {
    clearTimeout(timer.current);
    timer.current = setTimeout(() => setVersion((v) => v + 1), 250);
  };
  useEffect(() => subscribe(["interaction", "interaction.undone"], (kind, event) => {
    if (onboarded.current && event.data && event.data.user_id === session.user) refreshSoon();
  }), []);

  if (error) return html`<${ErrorBox} error=${error} retry=${loadProfile} />`;
  if (profile === undefined) return html`<${Loading} label="Loading your rows…" />`;
  if (profile === null) return html`<${Onboarding} onDone=${refreshSoon} />`;
  const blocked = (prefs.blocked_genres || []).map((b) => b.genre);
  const shown = new Set();
  return html`<div class="discover">
    <h1 class="page-title">Discover</h1>
    <p class="lede">For <b>${session.user}</b> · ${profile.interactions} interactions
      ${profile.top_genres && profile.top_genres.length ? html` · into ${profile.top_genres.slice(0, 3).map((g) => g.genre).join(", ")}` : ""}
      ${blocked.length ? html` · never ${blocked.join(", ")}` : ""}</p>
    ${specs.map(([id, title, subtitle]) => {
      const state = rows[id] || { loading: true };
      const body = state.body;
      // Each title once on the page: a row shows what the rows above it did not.
      const items = body && body.results.filter((r) => !shown.has(r.id)).slice(0, SHOW)
        .map((r) => ({ ...r, decision_id: body.decision_id }));
      (items || []).forEach((r) => shown.add(r.id));
      const algorithm = body ? body.algorithm + (body.arm ? ` (bandit arm ${body.arm})` : "") : "";
      const heading = id === "different" && body && body.genre ? `${title}: ${body.genre}` : title;
      return html`<div key=${id}>
        ${id === "mood" && html`<div class="moods" role="group" aria-label="Mood">${MOODS.map((m) => html`<button type="button"
          class="toggle" aria-pressed=${m === mood ? "true" : "false"} onClick=${() => setMood(m)}>${m}</button>`)}</div>`}
        <${Row} id=${"row-" + id} title=${heading} subtitle=${subtitle} algorithm=${algorithm} loading=${state.loading}
          error=${state.error} items=${items}
          onFeedback=${refreshSoon} retry=${refreshSoon} />
        ${body && body.notes && body.notes.length ? html`<p class="notes">${body.notes.join(" · ")}</p>` : ""}
      </div>`;
    })}
  </div>`;
}
