// Caches the app shell so /app/ opens with no network; API calls always go to the network.
const CACHE = "isocheck-shell-v1";
const SHELL = ["/app/", "/app/app.js", "/app/i18n.js", "/app/api.js", "/app/app.css",
  "/app/manifest.webmanifest", "/app/icon.svg"];
self.addEventListener("install", (e) => {
  e.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});
const PREFS = "isocheck-prefs"; // the app's language, written by the page (app.js translate)
self.addEventListener("activate", (e) => {
  e.waitUntil(caches.keys().then((ks) => Promise.all(ks.filter((k) => k !== CACHE && k !== PREFS).map((k) => caches.delete(k))))
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

// Web push (FCM, when the deployment configured it): the push data is FCM's message JSON —
// `notification` (Vietnamese title/body, icon, tag) and `data` (kind, ids, `title_en`/`body_en`);
// shown in the language the person chose in the app. Open windows are told to look again.
async function pushLang() {
  const r = await caches.open(PREFS).then((c) => c.match("/app/lang")).catch(() => null);
  return r ? (await r.text()) : "vi";
}
async function showPush(p) {
  const n = p.notification || {}, d = p.data || {};
  const en = (await pushLang()) === "en";
  for (const c of await self.clients.matchAll({ type: "window" })) c.postMessage({ type: "push", kind: d.kind });
  return self.registration.showNotification((en && d.title_en) || n.title || "isocheck", {
    body: (en && d.body_en) || n.body || "", icon: n.icon || "/app/icon.svg", lang: en ? "en" : "vi",
    tag: n.tag || d.kind || "isocheck", data: { kind: d.kind || "", prompt_id: d.prompt_id || "" },
  });
}
self.addEventListener("push", (e) => {
  let p = {};
  try { p = e.data ? e.data.json() : {}; } catch { p = {}; }
  e.waitUntil(showPush(p));
});
// A click opens the app on the prompt: an open window of the app is focused and told, else a new one.
self.addEventListener("notificationclick", (e) => {
  e.notification.close();
  e.waitUntil((async () => {
    const wins = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    const w = wins.find((c) => new URL(c.url).pathname.startsWith("/app/"));
    if (w) { w.postMessage({ type: "open_prompt" }); return w.focus(); }
    return self.clients.openWindow("/app/?open=prompt");
  })());
});
self.addEventListener("pushsubscriptionchange", (e) => {
  e.waitUntil(self.clients.matchAll({ type: "window" }).then((ws) => ws.forEach((c) => c.postMessage({ type: "resubscribe" }))));
});
