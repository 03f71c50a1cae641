// The WebSocket to the device: hello, requests with ids, dispatch, reconnect.

const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 5000;
const REQUEST_TIMEOUT_MS = 15000;

export class Connection {
  constructor(path) {
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    this.url = `${scheme}://${window.location.host}${path}`;
    this.handlers = new Map();
    this.pending = new Map();
    this.nextId = 1;
    this.retryMs = RETRY_FIRST_MS;
    this.ws = null;
    this.onstate = () => {};
    this.onbinary = () => {};
  }

  /** Register fn for messages of this type. */
  on(type, fn) {
    if (!this.handlers.has(type)) this.handlers.set(type, []);
    this.handlers.get(type).push(fn);
  }

  open() {
    this.onstate("connecting");
    const ws = new WebSocket(this.url);
    ws.binaryType = "arraybuffer";
    ws.onopen = () => {
      this.retryMs = RETRY_FIRST_MS;
      // batch: while messages come fast the device sends them as one JSON array per frame,
      // so a print flood costs the page a few tasks a second, not thousands.
      ws.send(JSON.stringify({ type: "hello", protocol: 1, role: "browser", batch: true }));
    };
    ws.onmessage = (event) => this.receive(event.data);
    ws.onclose = (event) => {
      this.ws = null;
      for (const { reject } of this.pending.values()) reject(new Error("the connection to the device closed"));
      this.pending.clear();
      this.onstate(event.code === 1008 || event.code === 4401 ? "refused" : "offline");
      this.checkSession();
      setTimeout(() => this.open(), this.retryMs);
      this.retryMs = Math.min(RETRY_MAX_MS, this.retryMs * 2);
    };
    this.ws = ws;
  }

  receive(data) {
    if (typeof data !== "string") { this.onbinary(data); return; }
    let msg;
    try { msg = JSON.parse(data); } catch (err) { console.warn("device sent a non-JSON message", err); return; }
    if (Array.isArray(msg)) { for (const one of msg) this.dispatch(one); return; }
    this.dispatch(msg);
  }

  dispatch(msg) {
    if (msg === null || typeof msg !== "object") return;
    if (msg.type === "welcome") this.onstate("online");
    if ((msg.type === "ack" || msg.type === "error" || msg.type === "pong") && this.pending.has(msg.id)) {
      const { resolve, reject, timer } = this.pending.get(msg.id);
      clearTimeout(timer);
      this.pending.delete(msg.id);
      if (msg.type !== "error") resolve(msg); else reject(Object.assign(new Error(msg.message), { code: msg.code }));
      return;
    }
    for (const fn of this.handlers.get(msg.type) || []) {
      try { fn(msg); } catch (err) { console.error(`handling ${msg.type} failed`, err); }
    }
  }

  /** A refused socket looks like any closed one; ask over HTTP whether the session ended. */
  async checkSession() {
    try {
      const response = await fetch("/api/v1/examples", { credentials: "same-origin" });
      if (response.status === 403) window.location.assign("/login");
    } catch {
      // The device is unreachable: keep retrying the socket.
    }
  }

  /** Send without waiting for an answer; false when offline. */
  send(msg) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  /** Send a request with an id; resolves with the ack, rejects with the error's words. */
  request(msg) {
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      if (!this.send({ ...msg, id })) { reject(new Error("not connected to the device")); return; }
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`the device did not answer ${msg.type} within ${REQUEST_TIMEOUT_MS / 1000} s`));
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
    });
  }
}
