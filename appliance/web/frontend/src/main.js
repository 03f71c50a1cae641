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
import { setupKeys, setupSplitter, setupTheme } from "./app/shell.js";
import { byId, toast } from "./app/dom.js";
import "./app/image-handler.js"; // the base:image type: figures from plt.show() and savefig()
import { Files } from "./app/files.js";
import { Recordings } from "./app/recordings.js";

const WS_PATH = "/api/v1/ws";

function boot() {
  setupTheme();
  const conn = new Connection(WS_PATH);
  let scripts = null;
  let runs = null;
  const actions = {
    execute: () => runs.execute(),
    another: () => runs.execute({ copy: true }),
    stop: () => runs.stop(),
    save: () => scripts.save(),
  };
  const editor = createEditor(byId("editor"), { ...actions, onChange: () => scripts?.changed() });
  scripts = new Scripts(editor);
  runs = new Runs(conn, editor, () => scripts.name());
  const tabs = new Tabs(conn);
  const device = new DevicePanel(conn);
  const audio = new AudioPane(conn);
  const files = new Files(conn, scripts, runs);
  runs.getProject = () => files.runProject();
  const recordings = new Recordings();
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
  // Saved scripts changed in another window (or by another tool): the list follows.
  conn.on("scripts_changed", () => scripts.refresh());
  setupKeys(actions);
  setupSplitter(() => tabs.resizeAll());
  window.micarray = Object.assign(window.micarray ?? {}, { conn, editor, runs, tabs, device, audio, scripts, files, recordings });
  Promise.resolve(scripts.start()).then(() => files.refresh());
  conn.open();
  // The user's chart types from the device's handlers/ folder; tabs waiting for a type draw once it is there.
  loadUserHandlerTypes()
    .then(({ failed }) => failed.forEach((f) => toast(`handler file ${f.name}: ${f.error}`, "error")))
    .catch((error) => toast(`handler files: ${error.message}`, "error"));
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
else boot();
