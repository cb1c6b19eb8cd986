// Stand-in for the firebase package's firebase-app.js (tests only).
const apps = [];
export function initializeApp(options, name = "[DEFAULT]") {
  const app = { name, options }; apps.push(app); return app;
}
export function getApps() { return apps.slice(); }
