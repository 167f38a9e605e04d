// metamedia's service worker: the app keeps working with the server stopped.
// - pages (navigations): network first, the cached shell when the server is away (every page is one shell);
// - /static/: cached copy at once, refreshed from the network in the background;
// - /vendor/ and /models/: cache first (pinned, verified files; the model is 90 MB, fetched once);
// - everything else (the API, /catalog/index, /sw.js): network only, never cached here.
const CACHE = "metamedia-v1";
const SHELL = "/";

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) if (name !== CACHE) await caches.delete(name);
    await self.clients.claim();
  })());
});

self.addEventListener("message", (event) => {
  if (event.data && event.data.type === "precache") {
    event.waitUntil((async () => {
      const cache = await caches.open(CACHE);
      for (const url of event.data.urls) {
        if (await cache.match(url)) continue;
        try {
          const response = await fetch(url, { cache: "no-cache" });
          if (response.ok) await cache.put(url, response);
        } catch {
          // offline right now: the next load caches it
        }
      }
    })());
  }
});

async function networkFirstPage(request) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(SHELL, response.clone());
    return response;
  } catch {
    return (await cache.match(SHELL)) || Response.error();
  }
}

async function cacheFirst(request) {
  const cache = await caches.open(CACHE);
  const hit = await cache.match(request);
  if (hit) return hit;
  const response = await fetch(request);
  if (response.ok) await cache.put(request, response.clone());
  return response;
}

async function staleWhileRevalidate(event) {
  const cache = await caches.open(CACHE);
  const hit = await cache.match(event.request);
  const refresh = fetch(event.request).then(async (response) => {
    if (response.ok) await cache.put(event.request, response.clone());
    return response;
  });
  if (hit) {
    event.waitUntil(refresh.catch(() => undefined));
    return hit;
  }
  return refresh;
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  if (request.mode === "navigate") event.respondWith(networkFirstPage(request));
  else if (url.pathname.startsWith("/vendor/") || url.pathname.startsWith("/models/")) event.respondWith(cacheFirst(request));
  else if (url.pathname.startsWith("/static/")) event.respondWith(staleWhileRevalidate(event));
});
