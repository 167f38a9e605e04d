// Small SVG charts drawn from data: horizontal bars and time lines. No chart library, no CDN.
import { html } from "./vendor/preact-htm-3.1.1.module.js";

const PALETTE = ["#2456d6", "#c0661a", "#2e8b57", "#b3261e", "#6a3d9a", "#00838f", "#8d6e63", "#d81b60"];
export const colour = (i) => PALETTE[i % PALETTE.length];

export function fmt(value, unit = "") {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  const abs = Math.abs(value);
  const text = abs >= 100 ? value.toFixed(0) : abs >= 10 ? value.toFixed(1) : abs >= 0.01 || abs === 0 ? value.toFixed(2) : value.toExponential(1);
  return text + unit;
}

// bars: [{label, value}] — negative values draw to the left of a zero line.
export function BarChart({ bars, unit = "", label }) {
  if (!bars.length) return html`<p class="state empty">No data yet.</p>`;
  const max = Math.max(...bars.map((b) => Math.abs(b.value)), 1e-12);
  const signed = bars.some((b) => b.value < 0);
  const rowH = 22, labelW = 200, width = 480, valueW = 64;
  const plot = width - labelW - valueW;
  const zero = labelW + (signed ? plot / 2 : 0);
  const scale = (signed ? plot / 2 : plot) / max;
  return html`<svg class="chart" viewBox=${`0 0 ${width} ${bars.length * rowH + 4}`} role="img" aria-label=${label}>
    <title>${label}</title>
    ${bars.map((b, i) => {
      const w = Math.max(1, Math.abs(b.value) * scale);
      const x = b.value < 0 ? zero - w : zero;
      return html`<g class="bar-row" data-label=${b.label} data-value=${b.value}>
        <text x=${labelW - 6} y=${i * rowH + 15} text-anchor="end" font-size="12">${b.label.length > 27 ? b.label.slice(0, 26) + "…" : b.label}</text>
        <rect x=${x} y=${i * rowH + 4} width=${w} height=${rowH - 8} rx="2" fill=${b.value < 0 ? "#b3261e" : colour(i)} />
        <text x=${width - 4} y=${i * rowH + 15} text-anchor="end" font-size="12">${fmt(b.value, unit)}</text>
      </g>`;
    })}
    ${signed && html`<line x1=${zero} x2=${zero} y1="0" y2=${bars.length * rowH + 4} stroke="#888" />`}
  </svg>`;
}

// series: [{name, points: [[t, v], ...]}], t in ms.
export function LineChart({ series, unit = "", label, height = 160 }) {
  const points = series.flatMap((s) => s.points);
  if (points.length < 2) return html`<p class="state empty">Collecting data… (one point every few seconds)</p>`;
  const width = 460, left = 48, bottom = 20, top = 8;
  const t0 = Math.min(...points.map((p) => p[0])), t1 = Math.max(...points.map((p) => p[0]));
  const vmax = Math.max(...points.map((p) => p[1])) || 1; // all zero: a 0..1 scale
  const x = (t) => left + ((t - t0) / Math.max(1, t1 - t0)) * (width - left - 6);
  const y = (v) => top + (1 - v / vmax) * (height - top - bottom);
  return html`<figure class="line-chart">
    <svg class="chart" viewBox=${`0 0 ${width} ${height}`} role="img" aria-label=${label}>
      <title>${label}</title>
      <line x1=${left} x2=${width} y1=${y(0)} y2=${y(0)} stroke="#ccc" />
      <line x1=${left} x2=${width} y1=${y(vmax)} y2=${y(vmax)} stroke="#eee" />
      <text x=${left - 4} y=${y(vmax) + 4} text-anchor="end" font-size="11">${fmt(vmax, unit)}</text>
      <text x=${left - 4} y=${y(0)} text-anchor="end" font-size="11">0</text>
      <text x=${width - 4} y=${height - 4} text-anchor="end" font-size="11">now</text>
      <text x=${left} y=${height - 4} font-size="11">${Math.round((t1 - t0) / 1000)} s ago</text>
      ${series.map((s, i) => s.points.length > 0 && html`<polyline fill="none" stroke=${colour(i)} stroke-width="2"
        data-series=${s.name} data-last=${s.points[s.points.length - 1][1]}
        points=${s.points.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" ")} />`)}
    </svg>
    <figcaption class="legend">${series.map((s, i) => html`<span><i style=${{ "--c": colour(i) }}></i>${s.name}
      <b class="legend-value">${s.points.length ? fmt(s.points[s.points.length - 1][1], unit) : "–"}</b></span>`)}</figcaption>
  </figure>`;
}
