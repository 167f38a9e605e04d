// Profile and preferences: learned affinities, blocked genres, runtime limit, history with undo.
import { html, useEffect, useState } from "./vendor/preact-htm-3.1.1.module.js";
import { api, session, user } from "./api.js";
import { follow } from "./router.js";
import { GENRES } from "./discover.js";
import { Empty, ErrorBox, Loading } from "./ui.js";

const KIND_LABEL = { skip: "not interested", add_to_list: "added to list", rating: "rated", like: "liked", dislike: "disliked" };

function Affinity({ rows, label }) {
  if (!rows.length) return html`<${Empty}>Nothing yet.</${Empty}>`;
  const top = Math.max(...rows.map((r) => Math.abs(r.affinity)), 1e-9);
  return html`<ul class="bars" aria-label=${label}>${rows.map((r) => html`<li>
    <span class="bar-label">${r.genre}</span>
    <svg class="bar" viewBox="0 0 100 10" preserveAspectRatio="none" aria-hidden="true">
      <rect width=${Math.max(2, (100 * Math.abs(r.affinity)) / top)} height="10" rx="2" fill=${r.affinity >= 0 ? "#2456d6" : "#b3261e"} /></svg>
    <span class="bar-value">${r.affinity > 0 ? "+" : ""}${r.affinity.toFixed(2)}</span></li>`)}</ul>`;
}

export function ProfilePage() {
  const [profile, setProfile] = useState(undefined);
  const [prefs, setPrefs] = useState(null);
  const [history, setHistory] = useState([]);
  const [error, setError] = useState(null);
  const [status, setStatus] = useState("");
  const base = user(session.user);

  async function load() {
    setError(null);
    try {
      const [p, pr, h] = await Promise.all([
        api(base + "/profile").catch((e) => { if (e.status === 404) return null; throw e; }),
        api(base + "/preferences"),
        api(base + "/interactions?limit=50"),
      ]);
      setProfile(p);
      setPrefs(pr);
      setHistory(h.interactions);
    } catch (err) {
      setError(err);
    }
  }
  useEffect(() => { load(); }, []);

  async function save(body, message) {
    setStatus("Saving…");
    try {
      setPrefs(await api(base + "/preferences", { method: "PUT", body }));
      setStatus(message);
    } catch (err) {
      setStatus("Not saved: " + err.message);
    }
  }
  async function undo(row) {
    try {
      await api(base + "/interactions/" + row.id, { method: "DELETE" });
      setStatus(`Undone: ${KIND_LABEL[row.kind] || row.kind} ${row.title || "#" + row.item_id}`);
      load();
    } catch (err) {
      setStatus("Could not undo: " + err.message);
    }
  }

  if (error) return html`<${ErrorBox} error=${error} retry=${load} />`;
  if (profile === undefined || !prefs) return html`<${Loading} />`;
  const blocked = prefs.blocked_genres.map((b) => b.genre);
  const toggle = (g) => {
    const next = blocked.includes(g) ? blocked.filter((x) => x !== g) : [...blocked, g];
    save({ blocked_genres: next }, blocked.includes(g) ? `${g} unblocked.` : `${g} blocked: it will not appear in your rows.`);
  };
  return html`<div class="profile-page">
    <h1 class="page-title">Your profile</h1>
    <p class="lede">Profile <b>${session.user}</b>${profile ? html` · ${profile.interactions} interactions · confidence ${Math.round(profile.confidence * 100)}%` : " · no interactions yet"}</p>
    <p class="status" role="status" aria-live="polite">${status}</p>
    <div class="columns">
      <section aria-labelledby="learned"><h2 id="learned">What we learned</h2>
        <h3>Genres you lean towards</h3><${Affinity} rows=${(profile && profile.top_genres) || []} label="Liked genres" />
        <h3>Genres you avoid</h3><${Affinity} rows=${(profile && profile.avoided_genres) || []} label="Avoided genres" />
      </section>
      <section aria-labelledby="prefs"><h2 id="prefs">Preferences</h2>
        <fieldset class="genre-picker"><legend>Blocked genres (never recommended)</legend>
          ${GENRES.map((g) => html`<button type="button" class="toggle block" aria-pressed=${blocked.includes(g) ? "true" : "false"}
            onClick=${() => toggle(g)}>${g}</button>`)}
        </fieldset>
        ${prefs.blocked_genres.filter((b) => b.source !== "user").map((b) => html`<p class="note">Memory avoids ${b.genre}: ${b.reason}</p>`)}
        <label class="runtime">Longest runtime
          <select value=${prefs.max_runtime ? String(prefs.max_runtime.minutes) : ""} onChange=${(e) => {
            const v = e.target.value;
            save(v ? { max_runtime: Number(v) } : { clear_max_runtime: true }, v ? `Only titles up to ${v} min from now on.` : "Runtime limit removed.");
          }}>
            <option value="">No limit</option>${[90, 100, 120, 150].map((m) => html`<option value=${m}>${m} min</option>`)}
          </select></label>
      </section>
    </div>
    <section aria-labelledby="hist"><h2 id="hist">History</h2>
      ${history.length ? html`<ol class="history">${history.map((row) => html`<li key=${row.id}>
        <span class="kind">${KIND_LABEL[row.kind] || row.kind}${row.kind === "rating" ? " " + row.value : ""}</span>
        <a href=${"/title/" + row.item_id} onClick=${follow}>${row.title || "title #" + row.item_id}</a>
        <time datetime=${new Date(row.timestamp * 1000).toISOString()}>${new Date(row.timestamp * 1000).toLocaleString()}</time>
        <button type="button" class="link" aria-label=${"Undo " + (KIND_LABEL[row.kind] || row.kind) + " " + (row.title || row.item_id)} onClick=${() => undo(row)}>Undo</button>
      </li>`)}</ol>` : html`<${Empty}>No interactions yet. Like something on Discover.</${Empty}>`}
    </section>
  </div>`;
}
