// Stand-in for the firebase package's firebase-messaging.js (tests only). Like the real
// build it imports firebase-app.js from Google's CDN; isocheck serves that import from itself.
import { getApps } from "https://www.gstatic.com/firebasejs/10.14.1/firebase-app.js";
export async function isSupported() {
  return "PushManager" in self && "serviceWorker" in navigator;
}
export function getMessaging(app) {
  if (!getApps().includes(app)) throw new Error("app not initialised");
  return { app };
}
export async function getToken(messaging, { vapidKey, serviceWorkerRegistration: reg } = {}) {
  // What the real getToken needs: the app's config, the VAPID key, an active registration.
  if (!(reg instanceof ServiceWorkerRegistration) || !reg.active) {
    throw new Error("no active service worker");
  }
  const calls = JSON.parse(localStorage.getItem("standin_calls") || "[]");
  const { options } = messaging.app;
  calls.push({ options, vapidKey, scope: reg.scope, script: reg.active.scriptURL });
  localStorage.setItem("standin_calls", JSON.stringify(calls));
  return localStorage.getItem("standin_token") || "standin-token-1";
}
