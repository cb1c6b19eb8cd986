import * as api from "./api.js";
import { lang, setLang, t, symptomLabels } from "./i18n.js";

const $ = (s) => document.querySelector(s);
const QUEUE = "declaration_queue"; // declarations waiting for the network, each sent once
let current = null; // the open prompt
let attemptKey = null; // Idempotency-Key of the attempt in flight (kept across retries)
let timer = null;

function show(id) {
  for (const s of document.querySelectorAll("main > section")) s.hidden = s.id !== id;
  if (id !== "v-checkin") stopCamera();
}
function say(text, cls = "") { const m = $("#msg"); m.textContent = text || ""; m.className = cls; }
function translate() {
  document.documentElement.lang = lang();
  // The service worker shows push notifications in this language (it cannot read localStorage).
  globalThis.caches?.open("isocheck-prefs").then((c) => c.put("/app/lang", new Response(lang()))).catch(() => {});
  for (const el of document.querySelectorAll("[data-t]")) el.textContent = t(el.dataset.t);
  $("#lang").textContent = lang() === "vi" ? "EN" : "VI";
  const box = $("#symptoms"); box.textContent = "";
  for (const [code, label] of Object.entries(symptomLabels())) {
    const l = document.createElement("label"); const i = document.createElement("input");
    i.type = "checkbox"; i.name = "symptoms"; i.value = code; l.append(i, label); box.append(l);
  }
}
const fmt = (iso) => (iso ? new Date(iso).toLocaleString(lang() === "vi" ? "vi-VN" : "en-GB") : "—");

async function guarded(fn) {
  try { return await fn(); }
  catch (e) {
    if (e instanceof api.Unauthorized) { show("v-activate"); say(t("revoked"), "bad"); return null; }
    if (e instanceof api.Offline) { say(t("offline"), "warn"); return null; }
    throw e;
  }
}

// Activation: a typed code, /app/activate?code=…, or a pasted isocheck://activate?…&code=… payload.
function codeFrom(text) {
  const m = /[?&]code=([^&#\s]+)/.exec(text);
  return m ? decodeURIComponent(m[1]) : text.trim();
}
async function activate(code) {
  say(t("sending"));
  const r = await guarded(() => api.activate(codeFrom(code)));
  if (!r) return;
  if (r.status !== 201) { say(r.data?.detail || r.data?.title || String(r.status), "bad"); return; }
  api.setToken(r.data.token);
  history.replaceState(null, "", "/app/");
  say("");
  await home();
}

async function home() {
  show("v-home");
  const m = await guarded(api.me);
  if (!m) return;
  if (!m.ok) { say(m.data?.detail || "", "bad"); return; }
  $("#name").textContent = m.data.full_name;
  $("#iso-end").textContent = fmt(m.data.isolation_end);
  setupPush();
  showHome(m.data.home_position);
  await refreshPrompt();
  if (openOnLoad) { openOnLoad = false; if (current) startCheckin(); }
}

// Web push, when the deployment configured it (/app/push.json); otherwise, or when the person
// does not allow notifications, the in-page reminder below is what reminds them.
let pushCfg, openOnLoad = new URLSearchParams(location.search).get("open") === "prompt";
async function setupPush(tapped = false) {
  try {
    if (pushCfg === undefined) pushCfg = await fetch("/app/push.json").then((r) => r.json()).catch(() => null);
    const button = $("#push-on");
    if (!pushCfg?.enabled || !("Notification" in window) || !("serviceWorker" in navigator)) { button.hidden = true; return; }
    button.hidden = Notification.permission !== "default"; // asked only on the button
    if (Notification.permission !== "granted") return;
    const { register } = await import("./push.js");
    const result = await register(pushCfg, await navigator.serviceWorker.ready);
    button.hidden = Notification.permission !== "default";
    document.body.dataset.push = result;
    if (tapped && result === "registered") say(t("push_on"), "ok");
  } catch (e) { guardedError(e); }
}
function guardedError(e) {
  if (e instanceof api.Unauthorized) { show("v-activate"); say(t("revoked"), "bad"); return; }
  document.body.dataset.push = "error"; console.warn("web push:", String(e));
}

// Enrolled without coordinates: the person sends the phone's position from home (issue 19).
function showHome(state) {
  $("#home-box").hidden = state !== "needed";
  if (state === "proposed") say(t("home_wait"));
}
async function sendHome() {
  say(t("sending"));
  let c;
  try { c = await position(); } catch { say(t("no_gps"), "bad"); return; }
  const r = await guarded(() => api.proposeHome({ latitude: c.latitude, longitude: c.longitude,
                                                  accuracy_m: Math.max(c.accuracy || 1, 1) }));
  if (!r) return;
  if (!r.ok) { say(r.data?.detail || String(r.status), "bad"); return; }
  showHome(r.data.home_position);
  say(t(r.data.home_position === "proposed" ? "home_sent" : "home_wait"), "ok");
}

// Reminders without push: while the page is open it wakes itself when the next prompt opens
// (next_opens_at, corrected for the phone's clock skew) and shows an in-page reminder.
let wake = null, reminded = null;
function remind() {
  if (!current || reminded === current.id) return;
  reminded = current.id;
  const box = $("#reminder"); box.textContent = t("reminder"); box.hidden = false;
  // Same tag as the web push for this prompt (server/notify/fcm.py): one notification, not two.
  if (window.Notification?.permission === "granted") new window.Notification(t("reminder"), { tag: `prompt-${current.id}` });
}
async function refreshPrompt() {
  const r = await guarded(api.prompt);
  if (!r || !r.ok) return;
  current = r.data.prompt;
  const box = $("#prompt-box"); box.textContent = "";
  clearInterval(timer); clearTimeout(wake);
  $("#go-checkin").hidden = !current;
  $("#reminder").hidden = !current || reminded !== current.id;
  $("#status").textContent = current ? t("checkin_btn") : t("no_prompt");
  const skew = Date.now() - new Date(r.data.server_time).getTime();
  if (!current) {
    const p = document.createElement("p");
    p.textContent = `${t("next_at")}: ${fmt(r.data.next_opens_at)}`; box.append(p);
    if (r.data.next_opens_at) {
      const ms = new Date(r.data.next_opens_at).getTime() + skew - Date.now() + 1000;
      wake = setTimeout(refreshPrompt, Math.min(Math.max(ms, 1000), 2 ** 31 - 1));
    }
    return;
  }
  remind();
  const cd = document.createElement("p"); cd.className = "countdown"; cd.id = "countdown"; box.append(cd);
  const tick = () => {
    const left = Math.max(0, new Date(current.due_at).getTime() - (Date.now() - skew));
    const mm = Math.floor(left / 60000), ss = Math.floor((left % 60000) / 1000);
    cd.textContent = `${t("closes_in")}: ${mm}:${String(ss).padStart(2, "0")}`;
    if (left === 0) { clearInterval(timer); refreshPrompt(); }
  };
  tick(); timer = setInterval(tick, 1000);
}

// --- check-in ---
let stream = null;
async function startCheckin() {
  show("v-checkin"); say("");
  attemptKey = null;
  $("#attempts").textContent = `${t("attempts_left")}: ${current?.attempts_left ?? "—"}`;
  showChallenge("challenge_intro");
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "user", width: { ideal: 1280 } }, audio: false });
    $("#video").srcObject = stream; $("#capture").hidden = false;
  } catch { $("#capture").hidden = true; say(t("no_camera"), "warn"); }
}
function stopCamera() { if (stream) { for (const tr of stream.getTracks()) tr.stop(); stream = null; } }

// The liveness challenge (getCurrentPrompt's `challenge`): blink, turn_left or turn_right.
function showChallenge(lead) {
  const ch = current?.challenge; const box = $("#challenge");
  box.hidden = !ch; box.textContent = ch ? `${t(lead)} ${t(`do_${ch.kind}`)}` : "";
}

// Downscale to at most `max` px on the long side, JPEG.
function toJpeg(source, w, h, max = 1280) {
  const k = Math.min(1, max / Math.max(w, h));
  const c = document.createElement("canvas"); c.width = Math.round(w * k); c.height = Math.round(h * k);
  c.getContext("2d").drawImage(source, 0, 0, c.width, c.height);
  return new Promise((ok) => c.toBlob(ok, "image/jpeg", 0.88));
}
async function fromVideo(max) { const v = $("#video"); return toJpeg(v, v.videoWidth, v.videoHeight, max); }

// With a challenge the capture is a burst: the selfie and frame 0 looking straight, then the
// person performs the action while BURST more frames are taken BURST_MS apart (2-8 frames in
// all, the contract's limit). Frames are drawn from the camera itself, never the preview, so
// left stays the person's left as the server expects.
const BURST = 5, BURST_MS = 300, FRAME_PX = 640;
async function capture() {
  const selfie = await fromVideo();
  if (!current?.challenge) return submit(selfie);
  const button = $("#capture"); button.disabled = true;
  try {
    const frames = [await fromVideo(FRAME_PX)];
    showChallenge("challenge_now");
    for (let i = 0; i < BURST; i++) {
      await new Promise((ok) => setTimeout(ok, BURST_MS));
      frames.push(await fromVideo(FRAME_PX));
    }
    showChallenge("challenge_intro");
    return await submit(selfie, frames);
  } finally { button.disabled = false; }
}
async function fromFile(file) { const b = await createImageBitmap(file); return toJpeg(b, b.width, b.height); }

function position() {
  return new Promise((ok, bad) => navigator.geolocation.getCurrentPosition(
    (p) => ok(p.coords), bad, { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 }));
}

async function submit(blob, frames = []) {
  if (!current) return;
  say(t("sending"));
  let coords;
  try { coords = await position(); } catch { say(t("no_gps"), "bad"); return; }
  attemptKey = attemptKey || crypto.randomUUID(); // new per attempt, same across retries
  const fields = { nonce: current.nonce, latitude: coords.latitude, longitude: coords.longitude,
    accuracy_m: coords.accuracy, captured_at: new Date().toISOString() };
  const r = await guarded(() => api.checkin(fields, blob, attemptKey, { frames }));
  if (!r) return; // offline after retries: the same key is reused on the next tap
  attemptKey = null; // answered: the next photo is a new attempt
  const d = r.data || {};
  if (d.attempts_left !== undefined) { current.attempts_left = d.attempts_left; $("#attempts").textContent = `${t("attempts_left")}: ${d.attempts_left}`; }
  const cls = d.result === "verified" ? "ok" : (d.result === "review" || d.code === "retake_requested") ? "warn" : "bad";
  say(`${d.title || ""} — ${d.message || d.detail || ""}`.trim(), cls);
  $("#msg").dataset.code = d.code || "";
  if (d.result === "verified" || d.result === "review" || d.prompt_state === "failed") { stopCamera(); await refreshPrompt(); }
}

// --- declarations: queued in localStorage, each sent exactly once (removed only on 2xx/4xx answer) ---
const queue = () => JSON.parse(localStorage.getItem(QUEUE) || "[]");
const saveQueue = (q) => localStorage.setItem(QUEUE, JSON.stringify(q));
let flushing = false;
async function flush() {
  if (flushing || !api.token()) return;
  flushing = true;
  try {
    for (const item of queue()) {
      let r;
      try { r = await api.declare(item.body); } catch (e) { if (e instanceof api.Unauthorized) show("v-activate"); break; }
      saveQueue(queue().filter((x) => x.id !== item.id));
      if (r.ok) say(`${t("sent")} ${r.data.advice || ""}`, r.data.risk_level === "red" ? "bad" : "ok");
      else say(r.data?.detail || String(r.status), "bad");
    }
  } finally { flushing = false; }
}
function declare(ev) {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const num = (k, int) => (f.get(k) === "" ? null : int ? parseInt(f.get(k), 10) : parseFloat(f.get(k)));
  const body = { measured_at: new Date().toISOString(), temperature_c: num("temperature_c"),
    spo2: num("spo2", true), heart_rate: num("heart_rate", true), symptoms: f.getAll("symptoms") };
  saveQueue([...queue(), { id: crypto.randomUUID(), body }]);
  ev.target.reset();
  if (navigator.onLine) flush(); else say(t("queued"), "warn");
}

async function showHistory() {
  show("v-history");
  const ul = $("#hist"); ul.textContent = "";
  const [h, d] = await Promise.all([guarded(api.history), guarded(api.declarations)]);
  const rows = [];
  for (const i of h?.data?.items || []) rows.push([i.opens_at, `${t("checkin")}: ${i.state}${i.last_code ? ` (${i.last_code})` : ""}`]);
  for (const i of d?.data?.items || []) rows.push([i.measured_at, `${t("declaration")}: ${i.risk_level}`]);
  rows.sort((a, b) => (a[0] < b[0] ? 1 : -1));
  for (const [at, text] of rows) { const li = document.createElement("li"); li.textContent = `${fmt(at)} — ${text}`; ul.append(li); }
}

function wire() {
  translate();
  $("#lang").addEventListener("click", () => { setLang(lang() === "vi" ? "en" : "vi"); translate(); if (!$("#v-home").hidden) home(); });
  $("#f-activate").addEventListener("submit", (e) => { e.preventDefault(); activate($("#code").value); });
  $("#go-checkin").addEventListener("click", startCheckin);
  $("#send-home").addEventListener("click", sendHome);
  $("#go-declare").addEventListener("click", () => { show("v-declare"); say(""); });
  $("#go-history").addEventListener("click", showHistory);
  for (const b of document.querySelectorAll(".back")) b.addEventListener("click", home);
  $("#capture").addEventListener("click", capture);
  $("#file").addEventListener("change", async (e) => {
    const file = e.target.files[0]; e.target.value = "";
    if (!file) return;
    if (current?.challenge) { say(t("challenge_camera"), "warn"); return; } // a saved photo cannot blink
    submit(await fromFile(file));
  });
  $("#f-declare").addEventListener("submit", declare);
  window.addEventListener("online", flush);
  // The permission prompt straight from the tap (browsers want the user's gesture for it).
  $("#push-on").addEventListener("click", () => Notification.requestPermission().then(() => setupPush(true)));
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/app/sw.js", { scope: "/app/" });
    // From sw.js: a push arrived (look at the prompt again), its notification was clicked (open
    // the prompt), or the push subscription changed (register the new token).
    navigator.serviceWorker.addEventListener("message", (e) => {
      const type = e.data?.type;
      if (!api.token()) return;
      if (type === "push") refreshPrompt();
      else if (type === "open_prompt") { openOnLoad = true; home(); }
      else if (type === "resubscribe") setupPush();
    });
  }
}

wire();
const linkCode = new URLSearchParams(location.search).get("code");
if (openOnLoad) history.replaceState(null, "", "/app/");
if (linkCode) activate(linkCode);
else if (api.token()) { home(); flush(); }
else show("v-activate");
