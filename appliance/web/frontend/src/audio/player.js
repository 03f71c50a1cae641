// Live playback of int16 interleaved frames with the Web Audio API. Each
// block becomes an AudioBuffer scheduled right after the previous one (the
// browser resamples to its own rate). This needs neither AudioWorklet, which
// browsers only offer on HTTPS pages (the device is reached over plain HTTP),
// nor the deprecated ScriptProcessor. A small lead absorbs network jitter; when
// the queue grows past maxLatency, blocks are dropped so playback stays live.
import { KIND_CAPTURE } from "./frame.js";

export const DEFAULT_LATENCY_S = 0.08;
export const DEFAULT_MAX_LATENCY_S = 0.4;

export class LivePlayer {
  /**
   * @param {{latency?: number, maxLatency?: number, volume?: number, select?: number[]|null}} options
   * `select`: the frame's channels to hear (indices). One goes to both ears, two to left and
   * right, more are mixed equally into both; null hears every channel.
   */
  constructor({ latency = DEFAULT_LATENCY_S, maxLatency = DEFAULT_MAX_LATENCY_S, volume = 1, select = null } = {}) {
    this.latency = latency;
    this.maxLatency = maxLatency;
    this.volume = volume;
    this.selection = select;
    this.context = null;
    this.nextTime = 0;
    this.counts = { playedFrames: 0, droppedFrames: 0, underruns: 0, blocks: 0 };
  }

  /** Open the audio output; call it from a click handler (browsers block sound before a gesture). */
  async start() {
    if (!this.context) {
      this.context = new AudioContext({ latencyHint: "interactive" });
      this.gain = this.context.createGain();
      this.gain.gain.value = this.volume;
      this.analyser = this.context.createAnalyser();
      this.analyser.fftSize = 2048;
      this.gain.connect(this.analyser);
      this.analyser.connect(this.context.destination);
      this.nextTime = 0;
    }
    await this.context.resume();
  }

  /** Close the audio output. */
  async stop() {
    const context = this.context;
    this.context = null;
    if (context) await context.close();
  }

  get running() {
    return this.context !== null && this.context.state === "running";
  }

  /** Volume 0 (mute) to 4 (x4 gain); takes effect at once. */
  setVolume(volume) {
    if (!(volume >= 0 && volume <= 4)) throw new RangeError(`volume ${volume} is out of range; expected 0 to 4`);
    this.volume = volume;
    if (this.gain) this.gain.gain.setTargetAtTime(volume, this.context.currentTime, 0.01);
  }

  /** Which channels to hear (indices into each frame), or null for all. */
  select(channels) {
    if (channels !== null && !(Array.isArray(channels) && channels.every((c) => Number.isInteger(c) && c >= 0))) {
      throw new RangeError(`channels ${JSON.stringify(channels)} must be a list of channel indices or null`);
    }
    this.selection = channels;
  }

  /** A hub listener that plays frames of `kind` at the rate `rate()` returns (the current config). */
  listener(rate, kind = KIND_CAPTURE) {
    return (frame) => {
      if (frame.kind === kind) this.play(frame.samples, frame.channels, rate());
    };
  }

  /** Queue one block of int16 interleaved samples. Ignored until start(). */
  play(samples, channels, rate) {
    const context = this.context;
    if (!context || context.state !== "running") return;
    const frames = Math.floor(samples.length / channels);
    if (frames === 0) return;
    const now = context.currentTime;
    if (this.nextTime < now) {
      if (this.nextTime > 0) this.counts.underruns++;
      this.nextTime = now + this.latency;
    }
    if (this.nextTime - now > this.maxLatency) {
      this.counts.droppedFrames += frames;
      return;
    }
    const buffer = context.createBuffer(2, frames, rate);
    mixToStereo(samples, channels, this.#chosen(channels), buffer.getChannelData(0), buffer.getChannelData(1));
    const source = context.createBufferSource();
    source.buffer = buffer;
    source.connect(this.gain);
    source.start(this.nextTime);
    this.nextTime += frames / rate;
    this.counts.playedFrames += frames;
    this.counts.blocks++;
  }

  /** Seconds queued ahead of the output, and the counters. */
  stats() {
    const queued = this.context ? Math.max(0, this.nextTime - this.context.currentTime) : 0;
    return { ...this.counts, queuedSeconds: queued };
  }

  /** Peak of the output (0..1) over the analyser's window, for a meter. */
  outputPeak() {
    if (!this.analyser) return 0;
    const data = new Float32Array(this.analyser.fftSize);
    this.analyser.getFloatTimeDomainData(data);
    return data.reduce((peak, v) => Math.max(peak, Math.abs(v)), 0);
  }

  #chosen(channels) {
    const all = Array.from({ length: channels }, (_, i) => i);
    const picked = (this.selection ?? all).filter((c) => c < channels);
    return picked.length > 0 ? picked : all;
  }
}

/** Mix the chosen channels of int16 interleaved `samples` into float left/right. */
export function mixToStereo(samples, channels, chosen, left, right) {
  const frames = left.length;
  const scale = 1 / 32768;
  if (chosen.length <= 2) {
    const a = chosen[0];
    const b = chosen.length === 2 ? chosen[1] : a;
    for (let f = 0; f < frames; f++) {
      left[f] = samples[f * channels + a] * scale;
      right[f] = samples[f * channels + b] * scale;
    }
    return;
  }
  const share = scale / chosen.length;
  for (let f = 0; f < frames; f++) {
    let sum = 0;
    for (const c of chosen) sum += samples[f * channels + c];
    left[f] = right[f] = sum * share;
  }
}
