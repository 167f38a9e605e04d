// Item page: details, feedback, why it would be recommended to this user, and similar titles.
import { html, useEffect, useState } from "./vendor/preact-htm-3.1.1.module.js";
import { api, qs } from "./api.js";
import { Card, ErrorBox, Feedback, Loading, Poster, Reasons, meta, genreColour } from "./ui.js";

export function ItemPage({ id }) {
  const [item, setItem] = useState(null);
  const [similar, setSimilar] = useState(null);
  const why = (history.state && history.state.why) || null; // the reasons on the card that was opened
  const [error, setError] = useState(null);
  const [notice, setNotice] = useState("");

  async function load() {
    setError(null);
    try {
      setItem(await api("/items/" + id));
    } catch (err) {
      setError(err);
      return;
    }
    api("/items/" + id + "/similar" + qs({ k: 12, diversity: true })).then((b) => setSimilar(b.results), (e) => setSimilar(e));
  }
  useEffect(() => { load(); }, [id]);

  if (error) return html`<${ErrorBox} error=${error} retry=${load} />`;
  if (!item) return html`<${Loading} />`;
  return html`<article class="item-page" data-item-id=${item.id}>
    <div class="item-hero">
      <${Poster} item=${item} size="large" />
      <div>
        <h1>${item.title}</h1>
        <p class="card-meta">${meta(item)}${item.original_title && item.original_title !== item.title ? ` · ${item.original_title}` : ""}</p>
        <div class="genres">${(item.genres || []).map((g) => html`<span class="genre" style=${{ "--g": genreColour(g) }}>${g}</span>`)}</div>
        ${item.tagline && html`<p class="tagline">${item.tagline}</p>`}
        <p class="overview">${item.overview || "No overview."}</p>
        ${item.keywords && item.keywords.length ? html`<p class="keywords">${item.keywords.slice(0, 12).join(" · ")}</p>` : ""}
        <${Feedback} item=${item} onDone=${(_, kind) => setNotice(kind === "skip" ? "We will not suggest it again." : "Saved — your Discover rows are updating.")} />
        ${notice && html`<p class="notice" role="status">${notice}</p>`}
        ${why && why.reasons && why.reasons.length ? html`<div class="why"><h2>Why it was suggested</h2>
          <p>From ${why.from}:</p><${Reasons} reasons=${why.reasons} /></div>` : ""}
      </div>
    </div>
    <section class="row" aria-labelledby="similar-h">
      <header class="row-head"><h2 id="similar-h">More like this</h2><span class="algo">vector similarity</span></header>
      ${!similar ? html`<${Loading} />` : similar instanceof Error ? html`<${ErrorBox} error=${similar} />`
        : html`<div class="tiles">${similar.map((s) => html`<${Card} key=${s.id} item=${s} />`)}</div>`}
    </section>
  </article>`;
}
