// Where binary frames go once parsed: the player and any WAV recording
// subscribe, so one WebSocket feeds them all.
import { parseFrame } from "./frame.js";

export class FrameHub {
  constructor() {
    this.listeners = new Set();
    this.received = 0;
  }

  /** Call `listener(frame)` for each frame; returns the function that unsubscribes. */
  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Hand a parsed frame to every listener. */
  emit(frame) {
    this.received++;
    for (const listener of [...this.listeners]) listener(frame);
  }

  /** Parse a WebSocket binary message and hand it on; throws FrameError when malformed. */
  handleBinary(buffer) {
    const frame = parseFrame(buffer);
    this.emit(frame);
    return frame;
  }
}

/** The page's hub: the app feeds it every binary WebSocket message. */
export const audioFrames = new FrameHub();
