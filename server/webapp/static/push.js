// Web push (loaded only when /app/push.json says the deployment configured it): the Firebase
// messaging SDK, served by isocheck at /app/vendor/, turns this browser's push subscription on the
// app's service worker into an FCM registration token, sent with updatePushToken and sent again
// whenever getToken hands out another one (checked every time the app opens).
import * as api from "./api.js";

const SENT = "push_token_sent"; // the token the server has for this device

// Called once notifications are allowed. -> "registered" | "unchanged" | "denied" | "unsupported"
export async function register(cfg, registration) {
  if (!("Notification" in window) || !("PushManager" in window) || !registration) return "unsupported";
  if (Notification.permission !== "granted") return "denied";
  const [{ initializeApp, getApps }, fm] = await Promise.all([
    import("/app/vendor/firebase-app.js"), import("/app/vendor/firebase-messaging.js")]);
  if (fm.isSupported && !(await fm.isSupported())) return "unsupported";
  const app = getApps().find((a) => a.name === "isocheck") || initializeApp(cfg.config, "isocheck");
  const messaging = fm.getMessaging(app);
  const token = await fm.getToken(messaging, { vapidKey: cfg.vapid_key, serviceWorkerRegistration: registration });
  if (!token) return "unsupported";
  if (localStorage.getItem(SENT) === token) return "unchanged";
  const r = await api.pushToken(token);
  if (r.status !== 204) throw new Error(`updatePushToken: ${r.status}`);
  localStorage.setItem(SENT, token);
  return "registered";
}
