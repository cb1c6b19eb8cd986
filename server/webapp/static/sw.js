// Caches the app shell so /app/ opens with no network; API calls always go to the network.
const CACHE = "isocheck-shell-v1";
const SHELL = ["/app/", "/app/app.js", "/app/i18n.js", "/app/api.js", "/app/app.css",
  "/app/manifest.webmanifest", "/app/icon.svg"];
self.addEventListener("install", (e) => {
  e.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});
self.addEventListener("activate", (e) => {
  e.waitUntil(caches.keys().then((ks) => Promise.all(ks.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});
self.addEventListener("fetch", (e) => {
  const url = new URL(e.request.url);
  if (e.request.method !== "GET" || !url.pathname.startsWith("/app/")) return;
  const key = url.pathname === "/app/activate" ? "/app/" : url.pathname;
  // Network first (fresh shell when online), the cached shell when offline.
  e.respondWith(fetch(e.request).then((r) => {
    if (r.ok && SHELL.includes(key)) { const copy = r.clone(); caches.open(CACHE).then((c) => c.put(key, copy)); }
    return r;
  }).catch(() => caches.match(key)));
});
