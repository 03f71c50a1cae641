// PLACEHOLDER written by the charts/audio engineer so `make` has an entry point.
// The app engineer owns this file: replace it wholesale with the real app.
// Keep importing "./charts/index.js" (it also sets window.micarray.registerHandlerType).
import { handlerTypes } from "./charts/index.js";
import "./audio/index.js";

document.addEventListener("DOMContentLoaded", () => {
  const note = document.createElement("p");
  note.textContent = `Front end placeholder; chart types: ${handlerTypes().join(", ")}`;
  document.body.append(note);
});
