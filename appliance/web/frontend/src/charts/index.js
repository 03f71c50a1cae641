// Handler views: the chart in each tab opened by a script's add_handler.
//
//   const view = createHandlerView(container, "base:graph:line", {series: ["a"]});
//   view.update(data);   // every handler_data message, in order (history first)
//   view.resize();       // optional: size changes are followed automatically
//   view.destroy();
//
// Data is applied once per animation frame; view.stats() and chartTotals()
// count what was received, drawn, coalesced into one frame, and dropped.
// Users add their own types with registerHandlerType (also reachable from the
// browser console as window.micarray.registerHandlerType): see docs/handlers.md.
import { graphType } from "./graph.js";
import { heatmapType } from "./heatmap.js";
import { polarType } from "./polar.js";
import { spectrogramType } from "./spectrogram.js";
import { totals } from "./scheduler.js";
import { HandlerView } from "./view.js";
import { installDataHandlers } from "./compat.js";
import { loadUserHandlerTypes as loadUserFiles } from "./user-types.js";

const types = new Map();
const listeners = new Set();

/**
 * Add (or replace) a handler type. `factory(container, parameters)` returns an
 * object with `update(data)` (or `newData(data)`), and optionally `resize()`
 * and `destroy()`. It may throw an Error: its message is shown in the tab.
 */
export function registerHandlerType(type, factory) {
  if (typeof type !== "string" || type === "") throw new TypeError(`handler type ${String(type)} must be a non-empty string`);
  if (typeof factory !== "function") throw new TypeError(`the factory for ${type} must be a function (container, parameters) => view`);
  types.set(type, factory);
  for (const listener of listeners) listener(type);
}

/** The registered type names, sorted. */
export function handlerTypes() {
  return [...types.keys()].sort();
}

/** Call `listener(type)` whenever a type is registered (so the app can redraw tabs waiting for it). */
export function onHandlerTypeRegistered(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/**
 * The chart of one handler in `container`; `{update(data), resize(), destroy(), stats()}`.
 * Bad parameters give a view that shows the problem in words. A type not
 * registered yet gives a view that says so, keeps the data, and draws as soon
 * as the type is registered.
 */
export function createHandlerView(container, handlerType, parameters = {}) {
  const factory = types.get(handlerType) ?? null;
  const waitForType = (type, start) =>
    onHandlerTypeRegistered((registered) => {
      if (registered === type) start(types.get(type));
    });
  waitForType.message =
    `unknown handler type "${handlerType}"; known types: ${handlerTypes().join(", ")}. ` +
    "Register it (docs/handlers.md) and this tab draws.";
  return new HandlerView(container, handlerType, parameters, factory, waitForType);
}

/**
 * Load a JavaScript module from the device (same origin: the page's security
 * policy allows no other) that calls registerHandlerType; resolves to the
 * types it added.
 */
export async function loadHandlerTypes(url) {
  const before = new Set(types.keys());
  const resolved = new URL(url, window.location.href);
  if (resolved.origin !== window.location.origin) {
    throw new Error(`handler types load only from this device; ${resolved.href} is on another origin`);
  }
  await import(/* @vite-ignore */ resolved.href);
  return handlerTypes().filter((type) => !before.has(type));
}

/** Load the user's handler files kept on the device (see user-types.js); resolves to what loaded and failed. */
export function loadUserHandlerTypes() {
  return loadUserFiles((url) => loadHandlerTypes(url));
}

/** Counters over all views: received, drawn, coalesced, dropped, errors. */
export function chartTotals() {
  return { ...totals };
}

registerHandlerType("base:graph:line", graphType("line"));
registerHandlerType("base:graph:area", graphType("area"));
registerHandlerType("base:graph:bar", graphType("bar"));
registerHandlerType("base:graph:plot", graphType("plot"));
registerHandlerType("base:polar:line", polarType("line"));
registerHandlerType("base:polar:area", polarType("area"));
registerHandlerType("base:heatmap", heatmapType());
registerHandlerType("base:spectrogram", spectrogramType());

// The documented hook for user scripts pasted in the console or loaded from the device.
if (typeof window !== "undefined") {
  window.micarray = Object.assign(window.micarray ?? {}, {
    registerHandlerType,
    loadHandlerTypes,
    handlerTypes,
    createHandlerView,
    chartTotals,
    loadUserHandlerTypes,
  });
  // easy-dsp's page API: dataHandlers.registerNewType(name, fn) (compat.js).
  installDataHandlers(registerHandlerType, window);
}
