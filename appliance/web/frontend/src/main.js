// The web app's entry point: wires the editor, runs console, tabs, device panel and
// audio pane to one WebSocket connection. Bundled into appliance/web/static/dist/main.js.
import "./app/style.css";
import { loadUserHandlerTypes } from "./charts/index.js"; // registers the handler types and window.micarray.registerHandlerType
import { Connection } from "./app/socket.js";
import { createEditor } from "./app/editor.js";
import { Runs } from "./app/runs.js";
import { Scripts } from "./app/scripts.js";
import { Tabs } from "./app/tabs.js";
import { DevicePanel } from "./app/device.js";
import { AudioPane } from "./app/listen.js";
import { byId, toast } from "./app/dom.js";

const WS_PATH = "/api/v1/ws";

function boot() {
  const conn = new Connection(WS_PATH);
  let scripts = null;
  let runs = null;
  const editor = createEditor(byId("editor"), {
    onExecute: () => runs.execute(),
    onSave: () => scripts.save(),
    onChange: () => scripts?.changed(),
  });
  scripts = new Scripts(editor);
  runs = new Runs(conn, editor, () => scripts.name());
  const tabs = new Tabs(conn);
  const device = new DevicePanel(conn);
  const audio = new AudioPane(conn);
  conn.onstate = (state) => {
    const badge = byId("conn-state");
    badge.textContent = { online: "connected", offline: "offline, retrying", connecting: "connecting", refused: "refused" }[state] || state;
    badge.className = `badge conn-${state}`;
  };
  let droppedShown = 0;
  conn.on("dropped", (msg) => {
    // The device skipped messages to this page because it fell behind; say so, at most every 5 s.
    if (Date.now() - droppedShown < 5000) return;
    droppedShown = Date.now();
    toast(`${msg.messages} updates from the device were dropped: this page fell behind`, "error");
  });
  // Ctrl+S and Ctrl+Enter anywhere on the page save and run the script (the editor handles its own).
  document.addEventListener("keydown", (event) => {
    if (!(event.ctrlKey || event.metaKey) || event.defaultPrevented) return;
    if (event.key === "s") { event.preventDefault(); scripts.save(); }
    if (event.key === "Enter") { event.preventDefault(); runs.execute(); }
  });
  window.micarray = Object.assign(window.micarray ?? {}, { conn, editor, runs, tabs, device, audio, scripts });
  scripts.start();
  conn.open();
  // The user's chart types from the device's handlers/ folder; tabs waiting for a type draw once it is there.
  loadUserHandlerTypes()
    .then(({ failed }) => failed.forEach((f) => toast(`handler file ${f.name}: ${f.error}`, "error")))
    .catch((error) => toast(`handler files: ${error.message}`, "error"));
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
else boot();
