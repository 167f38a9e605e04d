// Shared pieces: posters, result cards, feedback buttons, rows, chips and the loading/empty/error states.
import { html, useState } from "./vendor/preact-htm-3.1.1.module.js";
import { FEEDBACK, sendFeedback, session } from "./api.js";
import { navigate } from "./router.js";

const GENRE_COLOURS = {
  Action: "#b3261e", Adventure: "#c0661a", Animation: "#d9a400", Comedy: "#e0a800", Crime: "#4a4a6a",
  Documentary: "#2f7d6d", Drama: "#6a3d9a", Family: "#2e8b57", Fantasy: "#7b3fa0", History: "#8b5a2b",
  Horror: "#3b0a0a", Music: "#c2185b", Mystery: "#283593", Romance: "#d81b60", "Science Fiction": "#1565c0",
  "TV Movie": "#546e7a", Thriller: "#37474f", War: "#5d4037", Western: "#a0522d",
};

export const genreColour = (genre) => GENRE_COLOURS[genre] || "#455a64";

function wrap(text, width, lines) {
  const out = [];
  let line = "";
  for (const word of String(text).split(/\s+/)) {
    if ((line + " " + word).trim().length > width && line) {
      out.push(line);
      line = word;
    } else line = (line + " " + word).trim();
  }
  if (line) out.push(line);
  if (out.length > lines) {
    out.length = lines;
    out[lines - 1] = out[lines - 1].replace(/.{0,2}$/, "…");
  }
  return out;
}

// A drawn poster: the title, the year and the first genre's colour (no image hosting offline).
export function Poster({ item, size = "card" }) {
  const colour = genreColour((item.genres || [])[0]);
  const lines = wrap(item.title || "?", 14, 4);
  return html`<svg class="poster poster-${size}" viewBox="0 0 120 180" role="img"
      aria-label=${`Poster: ${item.title}${item.year ? " (" + item.year + ")" : ""}`}>
    <rect width="120" height="180" rx="6" fill=${colour} />
    <rect y="120" width="120" height="60" fill="#000" opacity="0.28" />
    ${lines.map((l, i) => html`<text x="10" y=${30 + i * 17} fill="#fff" font-size="14" font-weight="700"
        font-family="system-ui, sans-serif">${l}</text>`)}
    <text x="10" y="148" fill="#fff" font-size="13" font-family="system-ui, sans-serif">${item.year || ""}</text>
    <text x="10" y="166" fill="#fff" opacity="0.85" font-size="10" font-family="system-ui, sans-serif">
      ${(item.genres || []).slice(0, 2).join(" · ")}</text>
  </svg>`;
}

export function Loading({ label = "Loading…" }) {
  return html`<p class="state loading" role="status" aria-live="polite"><span class="spinner" aria-hidden="true"></span>${label}</p>`;
}

export function ErrorBox({ error, retry }) {
  const message = error && error.message ? error.message : String(error);
  return html`<div class="state error" role="alert">
    <strong>Something went wrong.</strong> ${message}
    ${retry && html` <button type="button" class="link" onClick=${retry}>Try again</button>`}
  </div>`;
}

export function Empty({ children }) {
  return html`<p class="state empty">${children}</p>`;
}

export function Chip({ label, onRemove, title }) {
  return html`<span class="chip">${label}${onRemove &&
    html`<button type="button" class="chip-x" aria-label=${title || "Remove " + label} onClick=${onRemove}>×</button>`}</span>`;
}

// Like / dislike / not interested / add to list / rate, each posting one interaction.
export function Feedback({ item, onDone, compact = false }) {
  const [state, setState] = useState({ busy: false, done: "", error: "" });
  const [rating, setRating] = useState("");
  if (!session.user) return null;
  async function send(name, kind, extra) {
    setState({ busy: true, done: "", error: "" });
    try {
      const decision = item.decision_id ? { decision_id: item.decision_id } : {};
      const stored = await sendFeedback(session.user, item.id, kind, { ...decision, ...extra });
      setState({ busy: false, done: name, error: "", queued: !!stored.queued });
      onDone && onDone(item, kind);
    } catch (err) {
      setState({ busy: false, done: "", error: err.message });
    }
  }
  const label = (name) => `${FEEDBACK[name].label}: ${item.title}`;
  return html`<div class="feedback" role="group" aria-label=${"Feedback on " + item.title}>
    ${Object.entries(FEEDBACK).map(([name, f]) => html`<button type="button" class=${"fb fb-" + name +
        (state.done === name ? " fb-done" : "")} disabled=${state.busy} aria-label=${label(name)} title=${f.label}
        aria-pressed=${state.done === name ? "true" : "false"} onClick=${() => send(name, f.kind)}>
        ${compact ? f.short : f.label}</button>`)}
    <label class="rate"><span class="sr-only">Rate ${item.title} (1–5 stars)</span>
      <select value=${rating} disabled=${state.busy} aria-label=${"Rate " + item.title}
        onChange=${(e) => { const v = e.target.value; setRating(v); if (v) send("rate", "rating", { value: Number(v), scale: "five" }); }}>
        <option value="">Rate…</option>
        ${[5, 4, 3, 2, 1].map((n) => html`<option value=${n}>${"★".repeat(n)} ${n}</option>`)}
      </select></label>
    ${state.done && html`<span class="fb-status" role="status">${state.queued ? "Saved on this device, sent when the server is back" : "Saved"}</span>`}
    ${state.error && html`<span class="fb-status error" role="alert">${state.error}</span>`}
  </div>`;
}

export function meta(item) {
  const parts = [];
  if (item.year) parts.push(item.year);
  if (item.runtime) parts.push(item.runtime + " min");
  if (item.vote_average) parts.push("★ " + Number(item.vote_average).toFixed(1));
  if (item.media_type === "tv") parts.push("TV");
  return parts.join(" · ");
}

export function Reasons({ reasons }) {
  if (!reasons || !reasons.length) return null;
  return html`<ul class="reasons" aria-label="Why">${reasons.slice(0, 3).map((r) => html`<li>${r}</li>`)}</ul>`;
}

function open(event, item, from) {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  event.preventDefault();
  navigate("/title/" + item.id, { state: { why: { reasons: item.reasons || [], from } } });
}

// A result card (search page: wide; rows: narrow tiles).
export function Card({ item, onFeedback, wide = false, from = "search" }) {
  const overview = (item.overview || "").length > 180 ? item.overview.slice(0, 177) + "…" : item.overview || "";
  return html`<article class=${wide ? "card wide" : "card"} data-item-id=${item.id} data-genres=${(item.genres || []).join("|")}>
    <a class="card-link" href=${"/title/" + item.id} onClick=${(e) => open(e, item, from)} tabindex=${wide ? "-1" : undefined}>
      <${Poster} item=${item} />
      <span class="card-title">${item.title}</span>
    </a>
    <div class="card-body">
      ${wide && html`<h3 class="card-h"><a href=${"/title/" + item.id} onClick=${(e) => open(e, item, from)}>${item.title}</a></h3>`}
      <div class="card-meta">${meta(item)}</div>
      <div class="genres">${(item.genres || []).map((g) => html`<span class="genre" style=${{ "--g": genreColour(g) }}>${g}</span>`)}</div>
      ${wide && overview && html`<p class="overview">${overview}</p>`}
      <${Reasons} reasons=${item.reasons} />
      <${Feedback} item=${item} onDone=${onFeedback} compact=${!wide} />
    </div>
  </article>`;
}

export function Row({ title, subtitle, algorithm, items, onFeedback, error, loading, retry, id }) {
  return html`<section class="row" aria-labelledby=${id} data-row=${id}>
    <header class="row-head">
      <h2 id=${id}>${title}</h2>
      ${algorithm && html`<span class="algo" title="The algorithm that produced this row">${algorithm}</span>`}
      ${subtitle && html`<p class="row-sub">${subtitle}</p>`}
    </header>
    ${loading && !items ? html`<${Loading} />` : error ? html`<${ErrorBox} error=${error} retry=${retry} />`
      : !items || !items.length ? html`<${Empty}>Nothing here yet.</${Empty}>`
      : html`<div class="tiles">${items.map((item) => html`<${Card} key=${item.id} item=${item} onFeedback=${onFeedback}
          from=${`the row “${title}”${algorithm ? " (" + algorithm + ")" : ""}`} />`)}</div>`}
  </section>`;
}
