// Plays int16 interleaved blocks gap-free by scheduling AudioBuffers back to back.
// One or two channels play as mono or left/right; a late stream restarts with a
// short lead instead of building up delay.

const LEAD_S = 0.08;      // how far ahead of "now" a restarted stream is scheduled
const MAX_AHEAD_S = 0.5;  // more queued than this and the block is dropped (we fell behind)

export class StreamPlayer {
  constructor() {
    this.context = null;
    this.gain = null;
    this.volume = 0.7;
    this.nextTime = 0;
    this.dropped = 0;
  }

  /** Create or resume the AudioContext (browsers allow it after a click). */
  resume() {
    if (!this.context) {
      const Context = window.AudioContext || window.webkitAudioContext;
      if (!Context) return;
      this.context = new Context();
      this.gain = this.context.createGain();
      this.gain.gain.value = this.volume;
      this.gain.connect(this.context.destination);
    }
    if (this.context.state === "suspended") this.context.resume().catch((err) => console.warn("audio cannot start", err));
  }

  setVolume(v) {
    this.volume = v;
    if (this.gain) this.gain.gain.value = v;
  }

  push(samples, channels, rate) {
    if (!this.context || channels < 1) return;
    const frames = Math.floor(samples.length / channels);
    if (!frames) return;
    const out = Math.min(2, channels);
    const buffer = this.context.createBuffer(out, frames, rate);
    for (let c = 0; c < out; c += 1) {
      const data = buffer.getChannelData(c);
      for (let f = 0; f < frames; f += 1) data[f] = samples[f * channels + c] / 32768;
    }
    const now = this.context.currentTime;
    if (this.nextTime < now) this.nextTime = now + LEAD_S;
    if (this.nextTime - now > MAX_AHEAD_S) { this.dropped += 1; return; }
    const source = this.context.createBufferSource();
    source.buffer = buffer;
    source.connect(this.gain);
    source.start(this.nextTime);
    this.nextTime += frames / rate;
  }
}
