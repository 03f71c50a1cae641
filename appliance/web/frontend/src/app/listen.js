// The Audio pane: listen to chosen channels, play what scripts send with send_audio,
// record N seconds of every channel to a WAV file made in the page.
import { parseFrame, KIND_CAPTURE, KIND_PLAYBACK } from "../audio/frame.js";
import { encodeWav } from "../audio/wav.js";
import { h, byId, toast } from "./dom.js";
import { LivePlayer } from "../audio/player.js";

const MAX_LISTEN_CHANNELS = 2;
const MAX_RECORD_CHANNELS = 16; // what the device sends a browser at most

export class AudioPane {
  constructor(conn) {
    this.conn = conn;
    this.config = null;
    this.listenChannels = [0];
    this.recording = null; // {chunks, frames, target, channels, rate}
    this.listener = new LivePlayer();
    this.playback = new LivePlayer();
    this.playbackFrames = 0;
    conn.onbinary = (data) => this.frame(data);
    document.addEventListener("micarray:config", (event) => this.configChanged(event.detail));
    conn.on("welcome", () => this.subscribe());
    byId("listen-on").addEventListener("change", () => this.subscribe());
    byId("listen-volume").addEventListener("input", () => this.listener.setVolume(byId("listen-volume").value / 100));
    byId("playback-volume").addEventListener("input", () => this.playback.setVolume(byId("playback-volume").value / 100));
    byId("btn-record").addEventListener("click", () => this.record());
    this.listener.setVolume(byId("listen-volume").value / 100);
    this.playback.setVolume(byId("playback-volume").value / 100);
  }

  configChanged(config) {
    const previous = this.config;
    this.config = config;
    if (this.recording) this.finishRecording("the audio settings changed, so the recording stopped early");
    if (!previous || previous.channels !== config.channels) this.channelPicks(config.channels);
  }

  channelPicks(count) {
    this.listenChannels = this.listenChannels.filter((c) => c < count);
    if (!this.listenChannels.length) this.listenChannels = [0];
    const box = byId("listen-channels");
    box.replaceChildren(...Array.from({ length: count }, (_, i) => {
      const input = h("input", { type: "checkbox", value: i, checked: this.listenChannels.includes(i) });
      input.addEventListener("change", () => this.pick(i, input.checked));
      return h("label", {}, input, ` ch ${i}`);
    }));
    this.subscribe();
  }

  pick(channel, on) {
    const set = new Set(this.listenChannels);
    if (on) set.add(channel); else set.delete(channel);
    let list = [...set].sort((a, b) => a - b);
    if (list.length > MAX_LISTEN_CHANNELS) { list = list.slice(-MAX_LISTEN_CHANNELS); toast(`At most ${MAX_LISTEN_CHANNELS} channels can be heard at once`); }
    this.listenChannels = list;
    for (const input of byId("listen-channels").querySelectorAll("input")) input.checked = list.includes(Number(input.value));
    this.subscribe();
  }

  /** Ask the device for the blocks this page needs: all channels while recording, else the heard ones. */
  subscribe() {
    const listening = byId("listen-on").checked;
    if (listening) startOutput(this.listener);
    let channels = null;
    if (this.recording) channels = this.recording.channels;
    else if (listening && this.listenChannels.length) channels = this.listenChannels;
    const msg = channels ? { type: "audio", on: true, channels } : { type: "audio", on: false };
    this.conn.request(msg).catch((err) => toast(`Audio from the device: ${err.message}`, "error"));
  }

  frame(data) {
    let frame;
    try { frame = parseFrame(data); } catch (err) { console.warn(`audio frame dropped: ${err.message}`); return; }
    const rate = this.config?.rate || 48000;
    if (frame.kind === KIND_PLAYBACK) {
      if (!byId("playback-on").checked) return;
      startOutput(this.playback);
      this.playback.play(frame.samples, frame.channels, rate);
      this.playbackFrames += frame.frames;
      byId("playback-status").textContent = `${(this.playbackFrames / rate).toFixed(1)} s received`;
      return;
    }
    if (frame.kind !== KIND_CAPTURE) return;
    if (this.recording) this.recordFrame(frame);
    if (byId("listen-on").checked) {
      const chosen = this.recording ? pickChannels(frame, this.listenChannels) : frame;
      this.listener.play(chosen.samples, chosen.channels, rate);
    }
  }

  record() {
    if (this.recording) { this.finishRecording("stopped by you"); return; }
    if (!this.config) { toast("Not connected to the device yet", "error"); return; }
    const seconds = Number(byId("record-seconds").value);
    if (!(seconds > 0 && seconds <= 600)) { toast(`record length ${byId("record-seconds").value} is not allowed; choose 1 to 600 seconds`, "error"); return; }
    const channels = Array.from({ length: Math.min(this.config.channels, MAX_RECORD_CHANNELS) }, (_, i) => i);
    this.recording = { chunks: [], frames: 0, target: Math.round(seconds * this.config.rate), channels, rate: this.config.rate };
    byId("btn-record").textContent = "■ Stop recording";
    byId("record-download").hidden = true;
    byId("record-progress").value = 0;
    const some = channels.length < this.config.channels ? ` (the first ${channels.length} of ${this.config.channels})` : "";
    byId("record-status").textContent = `Recording ${seconds} s of ${channels.length} channels${some} at ${this.config.rate} Hz…`;
    this.subscribe();
  }

  recordFrame(frame) {
    const rec = this.recording;
    if (frame.channels !== rec.channels.length) return; // a block from before the request took effect
    const need = rec.target - rec.frames;
    const take = Math.min(need, frame.frames);
    rec.chunks.push(frame.samples.slice(0, take * frame.channels));
    rec.frames += take;
    byId("record-progress").value = rec.frames / rec.target;
    if (rec.frames >= rec.target) this.finishRecording(null);
  }

  finishRecording(why) {
    const rec = this.recording;
    this.recording = null;
    byId("btn-record").textContent = "● Record";
    this.subscribe();
    if (!rec.frames) { byId("record-status").textContent = `No audio recorded${why ? `: ${why}` : ""}.`; return; }
    const blob = encodeWav(rec.chunks, rec.rate, rec.channels.length);
    const link = byId("record-download");
    if (link.href) URL.revokeObjectURL(link.href);
    link.href = URL.createObjectURL(blob);
    const stamp = new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19);
    link.download = `recording-${stamp}.wav`;
    link.hidden = false;
    byId("record-status").textContent = `${(rec.frames / rec.rate).toFixed(2)} s, ${rec.channels.length} channels, ${(blob.size / 1e6).toFixed(1)} MB${why ? ` (${why})` : ""}.`;
  }
}

/** Open a player's output once (browsers allow sound only after a click on the page). */
function startOutput(player) {
  if (!player.running) player.start().catch((err) => console.warn("audio cannot start", err));
}

function pickChannels(frame, wanted) {
  const keep = wanted.filter((c) => c < frame.channels);
  const out = new Int16Array(frame.frames * keep.length);
  for (let f = 0; f < frame.frames; f += 1) {
    for (let k = 0; k < keep.length; k += 1) out[f * keep.length + k] = frame.samples[f * frame.channels + keep[k]];
  }
  return { samples: out, channels: keep.length };
}
