// The public /api/v1 contract (mobile_api_spec/openapi.yaml), nothing else.
import { lang } from "./i18n.js";

export class Unauthorized extends Error {}
export class Offline extends Error {}

export function token() { return localStorage.getItem("device_token"); }
export function setToken(v) {
  if (v) localStorage.setItem("device_token", v); else localStorage.removeItem("device_token");
  localStorage.removeItem("push_token_sent"); // a new (or no) device has no push token yet
}

export async function call(method, path, { json, form, headers = {}, auth = true } = {}) {
  const h = { "Accept-Language": lang(), Accept: "application/json", ...headers };
  if (auth) h.Authorization = `Bearer ${token()}`;
  let body;
  if (json !== undefined) { h["Content-Type"] = "application/json"; body = JSON.stringify(json); }
  if (form) body = form;
  let r;
  try { r = await fetch(path, { method, headers: h, body, cache: "no-store" }); }
  catch (e) { throw new Offline(String(e)); }
  if (r.status === 401 && auth) { setToken(null); throw new Unauthorized(); }
  const data = r.status === 204 ? null : await r.json().catch(() => null);
  return { status: r.status, ok: r.ok, data, headers: r.headers };
}

// activateDevice
export const activate = (code) => call("POST", "/api/v1/devices/activate", { json: { code, platform: "web" }, auth: false });
export const me = () => call("GET", "/api/v1/me");                       // getMe
export const proposeHome = (h) => call("PUT", "/api/v1/me/home-position", { json: h }); // proposeHomePosition
export const prompt = () => call("GET", "/api/v1/me/prompt");            // getCurrentPrompt
export const history = () => call("GET", "/api/v1/me/history?limit=20"); // listMyHistory
export const declarations = () => call("GET", "/api/v1/me/declarations"); // listMyDeclarations
export const declare = (d) => call("POST", "/api/v1/me/declarations", { json: d }); // submitDeclaration
// updatePushToken: the browser's FCM registration token (web push, when configured)
export const pushToken = (t) => call("PUT", "/api/v1/me/push-token", { json: { push_token: t, platform: "web" } });

// submitCheckin: the same Idempotency-Key on every network retry of one attempt.
// `frames`: the liveness burst, in capture order, when the prompt has a challenge.
export async function checkin(fields, selfie, key, { retries = 3, frames = [] } = {}) {
  for (let i = 0; ; i++) {
    const form = new FormData();
    for (const [k, v] of Object.entries(fields)) form.append(k, String(v));
    form.append("selfie", selfie, "selfie.jpg");
    frames.forEach((f, n) => form.append("frames", f, `frame${n}.jpg`));
    try {
      const r = await call("POST", "/api/v1/me/checkins", { form, headers: { "Idempotency-Key": key } });
      if (r.status === 409 && r.data?.code === "checkin_in_progress" && i < retries) {
        await new Promise((ok) => setTimeout(ok, 1000 * Number(r.headers.get("Retry-After") || 1)));
        continue;
      }
      return r;
    } catch (e) {
      if (!(e instanceof Offline) || i >= retries) throw e;
      await new Promise((ok) => setTimeout(ok, 1000 * (i + 1)));
    }
  }
}
