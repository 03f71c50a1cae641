// Record N seconds of the frames passing through a hub into a WAV Blob.
import { KIND_CAPTURE } from "./frame.js";
import { audioFrames } from "./hub.js";
import { encodeWav } from "./wav.js";

/** Longest recording kept in memory (int16 at 48 kHz x 8 channels is 46 MB a minute). */
export const MAX_SECONDS = 600;

/**
 * Record `seconds` of frames of `kind` (capture by default) at `rate` Hz.
 * `channels` defaults to the first frame's count; a change of channel count
 * mid-way rejects the promise. `onProgress(fraction)` follows each frame;
 * `signal` (an AbortSignal) cancels. Resolves to an audio/wav Blob.
 */
export function recordWav({ rate, channels, seconds, onProgress, kind = KIND_CAPTURE, hub = audioFrames, signal } = {}) {
  if (!Number.isInteger(rate) || rate < 1000 || rate > 768000) {
    return Promise.reject(new RangeError(`rate ${rate} is not a sample rate; expected a whole number of Hz, 1000 to 768000`));
  }
  if (!(seconds > 0 && seconds <= MAX_SECONDS)) {
    return Promise.reject(new RangeError(`seconds ${seconds} is out of range; record from over 0 up to ${MAX_SECONDS} s`));
  }
  if (channels !== undefined && !(Number.isInteger(channels) && channels >= 1)) {
    return Promise.reject(new RangeError(`channels ${channels} is not a channel count; expected a whole number of at least 1`));
  }
  const total = Math.max(1, Math.round(rate * seconds));
  return new Promise((resolve, reject) => {
    const chunks = [];
    let got = 0;
    let count = channels;
    const finish = (error, blob) => {
      unsubscribe();
      signal?.removeEventListener("abort", abort);
      if (error) reject(error);
      else resolve(blob);
    };
    const abort = () => finish(new DOMException("the recording was cancelled", "AbortError"));
    const unsubscribe = hub.subscribe((frame) => {
      if (frame.kind !== kind) return;
      count ??= frame.channels;
      if (frame.channels !== count) {
        finish(new Error(`the stream changed from ${count} to ${frame.channels} channels during the recording; record again`));
        return;
      }
      const take = Math.min(total - got, frame.frames);
      chunks.push(frame.samples.slice(0, take * count));
      got += take;
      onProgress?.(got / total);
      if (got >= total) finish(null, encodeWav(chunks, rate, count));
    });
    if (signal?.aborted) abort();
    else signal?.addEventListener("abort", abort);
  });
}
