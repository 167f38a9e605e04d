// A tiny history router: pages are real paths (shareable), the back button works.
import { useEffect, useState } from "./vendor/preact-htm-3.1.1.module.js";

const listeners = new Set();

export function navigate(to, { replace = false, state = null } = {}) {
  if (to === location.pathname + location.search) return;
  if (replace) history.replaceState(state, "", to);
  else history.pushState(state, "", to);
  window.scrollTo(0, 0);
  listeners.forEach((fn) => fn());
}

window.addEventListener("popstate", () => listeners.forEach((fn) => fn()));

export function useLocation() {
  const read = () => ({ path: location.pathname, params: new URLSearchParams(location.search) });
  const [where, setWhere] = useState(read);
  useEffect(() => {
    const fn = () => setWhere(read());
    listeners.add(fn);
    return () => listeners.delete(fn);
  }, []);
  return where;
}

// Links that route inside the app unless the user asks for a new tab.
export function follow(event) {
  const a = event.currentTarget;
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  event.preventDefault();
  navigate(a.getAttribute("href"));
}
