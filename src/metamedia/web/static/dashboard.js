// Dashboard (admin): latency and request rates from /metrics, the bandit from /bandit, learner runs
// and causal effects from the memory routes. Polled every few seconds; series are kept in the page.
import { html, useEffect, useRef, useState } from "./vendor/preact-htm-3.1.1.module.js";
import { api } from "./api.js";
import { BarChart, LineChart, fmt } from "./charts.js";
import { ErrorBox, Loading } from "./ui.js";

const POLL_MS = 3000;
const KEEP = 60;
const PAGES = new Set(["/", "/find", "/profile", "/dashboard", "/title/{item_id}"]);

// Prometheus text format -> [{name, labels, value}]
export function parseMetrics(text) {
  const out = [];
  for (const line of text.split("\n")) {
    if (!line || line[0] === "#") continue;
    const m = line.match(/^([a-zA-Z_:][\w:]*)(\{(.*)\})?\s+(\S+)/);
    if (!m) continue;
    const labels = {};
    for (const l of (m[3] || "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}

// Quantile of a cumulative histogram (linear inside the bucket), in seconds.
function quantile(samples, name, match, q) {
  const buckets = new Map();
  for (const s of samples) {
    if (s.name !== name + "_bucket" || !match(s.labels)) continue;
    const le = s.labels.le === "+Inf" ? Infinity : Number(s.labels.le);
    buckets.set(le, (buckets.get(le) || 0) + s.value);
  }
  const sorted = [...buckets.entries()].sort((a, b) => a[0] - b[0]);
  const total = sorted.length ? sorted[sorted.length - 1][1] : 0;
  if (!total) return null;
  let prevLe = 0, prevCount = 0;
  for (const [le, count] of sorted) {
    if (count >= q * total) {
      if (le === Infinity) return prevLe;
      return prevLe + ((le - prevLe) * (q * total - prevCount)) / Math.max(1e-12, count - prevCount);
    }
    prevLe = le;
    prevCount = count;
  }
  return prevLe;
}

function requestCounts(samples) {
  const counts = {};
  for (const s of samples) {
    if (s.name !== "metamedia_http_request_duration_seconds_count") continue;
    const route = s.labels.route;
    if (route.startsWith("/static") || PAGES.has(route) || route === "unmatched") continue; // the app's own files
    const key = `${s.labels.method} ${route.replace(/\{(\w+?)(_id)?(:\w+)?\}/g, ":$1")}`;
    counts[key] = (counts[key] || 0) + s.value;
  }
  return counts;
}

const push = (list, point) => [...list, point].slice(-KEEP);

function Panel({ title, children, note }) {
  return html`<section class="panel"><h2>${title}</h2>${children}${note && html`<p class="note">${note}</p>`}</section>`;
}

export function Dashboard({ me }) {
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const series = useRef({ latency: {}, rates: {}, shares: {}, last: null });
  const [, setTick] = useState(0);

  async function poll() {
    try {
      const [metricsText, bandit, runs, effects] = await Promise.all([
        api("/metrics"), api("/bandit"), api("/memory/learner/runs?limit=10"), api("/memory/causal/effects?top=10"),
      ]);
      const samples = parseMetrics(metricsText);
      const now = Date.now();
      const s = series.current;
      const lat = {
        "search p50": quantile(samples, "metamedia_search_duration_seconds", (l) => l.kind === "search", 0.5),
        "search p95": quantile(samples, "metamedia_search_duration_seconds", (l) => l.kind === "search", 0.95),
        "recommend p50": quantile(samples, "metamedia_recommendation_duration_seconds", () => true, 0.5),
        "recommend p95": quantile(samples, "metamedia_recommendation_duration_seconds", () => true, 0.95),
      };
      for (const [name, v] of Object.entries(lat)) if (v !== null) s.latency[name] = push(s.latency[name] || [], [now, v * 1000]);
      const counts = requestCounts(samples);
      if (s.last) {
        const seconds = (now - s.last.at) / 1000;
        for (const [route, c] of Object.entries(counts)) {
          const rate = Math.max(0, (c - (s.last.counts[route] || 0)) / seconds);
          s.rates[route] = push(s.rates[route] || [], [now, rate]);
        }
      }
      s.last = { at: now, counts };
      for (const arm of bandit.arms) s.shares[arm.name] = push(s.shares[arm.name] || [], [now, arm.selection_share * 100]);
      setData({ samples, counts, bandit, runs, effects, lat });
      setError(null);
    } catch (err) {
      setError(err);
    }
    setTick((t) => t + 1);
  }
  useEffect(() => {
    poll();
    const id = setInterval(poll, POLL_MS);
    return () => clearInterval(id);
  }, []);

  if (!me.scopes.includes("admin")) return html`<${ErrorBox} error=${{ message: "The dashboard needs a key with the admin scope." }} />`;
  if (!data) return error ? html`<${ErrorBox} error=${error} retry=${poll} />` : html`<${Loading} label="Reading metrics…" />`;
  const s = series.current;
  const topRoutes = Object.entries(data.counts).sort((a, b) => b[1] - a[1]).slice(0, 6);
  const gauge = (name) => (data.samples.find((x) => x.name === name) || {}).value;
  return html`<div class="dashboard">
    <h1 class="page-title">Dashboard</h1>
    ${error && html`<${ErrorBox} error=${error} />`}
    <p class="lede">${fmt(gauge("metamedia_catalog_items"))} items · ${fmt(gauge("metamedia_index_size"))} vectors ·
      ${data.bandit.decisions} bandit decisions (${data.bandit.rewarded} rewarded) · updated every ${POLL_MS / 1000} s</p>
    <div class="panels">
      <${Panel} title="Latency (ms)" note="Quantiles of the server's histograms since it started.">
        <${LineChart} label="Search and recommendation latency, milliseconds" unit=" ms"
          series=${Object.entries(s.latency).map(([name, points]) => ({ name, points }))} />
        <${BarChart} label="Latency now, milliseconds" unit=" ms"
          bars=${Object.entries(data.lat).filter(([, v]) => v !== null).map(([label, v]) => ({ label, value: v * 1000 }))} />
      </${Panel}>
      <${Panel} title="Request rates (per second)">
        <${LineChart} label="Requests per second by route" unit="/s"
          series=${topRoutes.map(([route]) => ({ name: route, points: s.rates[route] || [] }))} />
        <${BarChart} label="Requests since start by route" bars=${topRoutes.map(([label, value]) => ({ label, value }))} />
      </${Panel}>
      <${Panel} title="Bandit: allocation per arm (%)" note=${`Policy ${data.bandit.policy_version || "–"}; minimum exploration ${fmt(data.bandit.min_exploration)}.`}>
        <${LineChart} label="Share of bandit selections per arm over time, percent" unit="%"
          series=${Object.entries(s.shares).map(([name, points]) => ({ name, points }))} />
        <${BarChart} label="Selections per arm" bars=${data.bandit.arms.map((a) => ({ label: a.name, value: a.selections }))} />
      </${Panel}>
      <${Panel} title="Bandit: reward per arm" note="Posterior mean reward; rewarded pulls in brackets.">
        <${BarChart} label="Posterior mean reward per arm"
          bars=${data.bandit.arms.map((a) => ({ label: `${a.name} (${a.rewarded_pulls})`, value: a.posterior_mean }))} />
      </${Panel}>
      <${Panel} title="Learner runs">
        ${data.runs.length ? html`<${BarChart} label="Learner run durations, seconds" unit=" s"
          bars=${data.runs.map((r) => ({ label: `run ${r.run_id} · ${new Date(r.started_at * 1000).toLocaleTimeString()}`,
            value: r.finished_at ? r.finished_at - r.started_at : 0 }))} />` : html`<p class="state empty">No learner run yet (POST /admin/learn, or the nightly schedule).</p>`}
      </${Panel}>
      <${Panel} title="Causal effects on completion" note="Population effects of ranking features, learnt from feedback.">
        <${BarChart} label="Causal effect per feature" bars=${data.effects.population.map((e) => ({ label: e.feature, value: e.effect }))} />
      </${Panel}>
    </div>
  </div>`;
}
