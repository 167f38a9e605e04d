// metamedia's web app: who the user is (key gate, profile switcher), the navigation, and the pages.
import { html, render, useEffect, useRef, useState } from "./vendor/preact-htm-3.1.1.module.js";
import { api, newId, session, setKey, setUser } from "./api.js";
import { follow, navigate, useLocation } from "./router.js";
import { ErrorBox, Loading } from "./ui.js";
import { Discover } from "./discover.js";
import { SearchPage } from "./search.js";
import { ItemPage } from "./item.js";
import { ProfilePage } from "./profile.js";
import { Dashboard } from "./dashboard.js";
import { onStatus, startOffline, status as offlineStatus } from "./offline/offline.js";

const ME = "metamedia.me";

const NAV = [
  ["/", "Discover"],
  ["/find", "Search"],
  ["/profile", "Profile"],
  ["/dashboard", "Dashboard"],
];

function KeyGate({ onKey, problem }) {
  const [key, setValue] = useState("");
  return html`<main class="gate" id="main">
    <h1>metamedia</h1>
    <form onSubmit=${(e) => { e.preventDefault(); if (key.trim()) onKey(key.trim()); }}>
      <p>This server needs an API key. It is kept in this tab's session storage only.</p>
      ${problem && html`<p class="state error" role="alert">${problem}</p>`}
      <label for="key">API key</label>
      <input id="key" type="password" autocomplete="off" value=${key} onInput=${(e) => setValue(e.target.value)}
        placeholder="mm_…" required />
      <button type="submit">Continue</button>
    </form>
  </main>`;
}

function ProfileSwitcher({ me, onChange }) {
  const [known, setKnown] = useState([]);
  useEffect(() => {
    if (me.user_id || !me.scopes.includes("admin")) return;
    api("/users?limit=12").then((r) => setKnown(r.users)).catch(() => setKnown([]));
  }, [me]);
  if (me.user_id) return html`<span class="who" title="This key is bound to one user">Signed in as <b>${me.user_id}</b></span>`;
  const ids = new Set(known.map((u) => u.user_id));
  if (session.user) ids.add(session.user);
  return html`<label class="who">
    <span>Profile</span>
    <select aria-label="Profile" value=${session.user} onChange=${(e) => {
        const v = e.target.value;
        onChange(v === "__new" ? newId("web-").slice(0, 14) : v);
      }}>
      ${[...ids].map((id) => html`<option value=${id}>${id}${known.find((u) => u.user_id === id) ? ` (${known.find((u) => u.user_id === id).interactions})` : ""}</option>`)}
      <option value="__new">+ New profile</option>
    </select>
  </label>`;
}

// What works right now: with the server away, search runs on this device and feedback waits in the outbox.
function OfflineBanner() {
  const [s, setS] = useState({ ...offlineStatus });
  useEffect(() => onStatus(setS), []);
  const search = s.index !== "ready" ? "search needs the server (the catalog is not on this device yet)"
    : s.model === "ready" ? `searching ${s.items} titles on this device`
    : `keyword search on this device while the model loads (${s.items} titles)`;
  const queued = s.outbox ? ` · ${s.outbox} action${s.outbox === 1 ? "" : "s"} waiting to be sent` : "";
  if (s.online) {
    return html`<span class="net online" role="status" data-state="online">
      ${s.outbox ? `Sending ${s.outbox} saved action${s.outbox === 1 ? "" : "s"}…` : s.cached ? "Ready offline" : "Online"}</span>`;
  }
  return html`<p class="net offline" role="status" data-state="offline"><b>Offline</b> — the server cannot be reached:
    ${search}; likes and ratings are saved here and sent when it is back${queued}. Recommendations and the dashboard need the server.</p>`;
}

const TITLES = { "/": "Discover", "/find": "Search", "/profile": "Profile", "/dashboard": "Dashboard" };

function Page({ me, userVersion }) {
  const { path, params } = useLocation();
  const first = useRef(true);
  useEffect(() => {
    document.title = `${TITLES[path] || (path.startsWith("/title/") ? "Title" : "Not found")} · metamedia`;
    if (first.current) first.current = false;
    else document.getElementById("main")?.focus({ preventScroll: true }); // a new page: start reading at main
  }, [path]);
  if (path === "/find") return html`<${SearchPage} params=${params} />`;
  if (path.startsWith("/title/")) return html`<${ItemPage} id=${Number(path.slice(7))} key=${path} />`;
  if (path === "/profile") return html`<${ProfilePage} key=${userVersion} />`;
  if (path === "/dashboard") return html`<${Dashboard} me=${me} />`;
  if (path === "/") return html`<${Discover} key=${userVersion} />`;
  return html`<div class="state empty"><h1>Not found</h1><p>No page at ${path}. <a href="/" onClick=${follow}>Go to Discover</a>.</p></div>`;
}

function App() {
  const [me, setMe] = useState(null);
  const [problem, setProblem] = useState("");
  const [error, setError] = useState(null);
  const [userVersion, setUserVersion] = useState(0);
  const { path } = useLocation();

  async function load() {
    setError(null);
    try {
      const who = await api("/me");
      localStorage.setItem(ME, JSON.stringify(who));
      session.me = who;
      if (who.user_id) setUser(who.user_id);
      else if (!session.user) setUser(newId("web-").slice(0, 14));
      setMe(who);
      startOffline({ key: () => session.key, online: true });
    } catch (err) {
      const cached = err.status === 0 && localStorage.getItem(ME);
      if (cached) { // the server is away: the last known identity, and the app's local features
        const who = JSON.parse(cached);
        session.me = who;
        if (!session.user) setUser(who.user_id || newId("web-").slice(0, 14));
        setMe(who);
        startOffline({ key: () => session.key, online: false });
        return;
      }
      if (err.status === 401) {
        if (session.key) setProblem("That key was not accepted: " + err.message);
        setKey("");
        setMe({ needsKey: true });
      } else setError(err);
    }
  }
  useEffect(() => { load(); }, []);
  useEffect(() => { // the app shell is on screen: the "warm shell" time of bench/README.md
    if (me && !me.needsKey && !performance.getEntriesByName("metamedia:shell").length) performance.mark("metamedia:shell");
  }, [me]);

  if (error) return html`<main class="gate" id="main"><h1>metamedia</h1><${ErrorBox} error=${error} retry=${load} /></main>`;
  if (!me) return html`<main class="gate" id="main"><${Loading} label="Connecting…" /></main>`;
  if (me.needsKey) return html`<${KeyGate} problem=${problem} onKey=${(k) => { setKey(k); setProblem(""); setMe(null); load(); }} />`;

  const switchUser = (id) => { setUser(id); setUserVersion((v) => v + 1); if (path !== "/" && path !== "/profile") navigate("/"); };
  return html`<a class="skip" href="#main">Skip to content</a>
    <header class="top">
      <a class="brand" href="/" onClick=${follow}>metamedia</a>
      <nav aria-label="Main">
        ${NAV.filter(([to]) => to !== "/dashboard" || me.scopes.includes("admin")).map(([to, label]) => html`<a href=${to}
          onClick=${follow} aria-current=${(to === "/" ? path === "/" : path.startsWith(to)) ? "page" : undefined}>${label}</a>`)}
      </nav>
      <${ProfileSwitcher} me=${me} onChange=${switchUser} />
      <${OfflineBanner} />
      ${me.auth && html`<button type="button" class="link" onClick=${() => { setKey(""); setMe({ needsKey: true }); }}>Sign out</button>`}
    </header>
    <main id="main" tabindex="-1"><${Page} me=${me} userVersion=${session.user + ":" + userVersion} /></main>`;
}

const root = document.getElementById("app");
root.textContent = "";
render(html`<${App} />`, root);
