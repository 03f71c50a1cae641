// A RIFF WAV file (PCM, 16-bit) from int16 interleaved samples.

export const WAV_HEADER_SIZE = 44;

/** The 44-byte header for `frames` frames of `channels` int16 channels at `rate` Hz. */
export function wavHeader(frames, rate, channels) {
  const dataBytes = frames * channels * 2;
  const header = new ArrayBuffer(WAV_HEADER_SIZE);
  const view = new DataView(header);
  const text = (offset, s) => [...s].forEach((ch, i) => view.setUint8(offset + i, ch.charCodeAt(0)));
  text(0, "RIFF");
  view.setUint32(4, 36 + dataBytes, true);
  text(8, "WAVE");
  text(12, "fmt ");
  view.setUint32(16, 16, true); // fmt chunk size
  view.setUint16(20, 1, true); // PCM: readable everywhere, any channel count
  view.setUint16(22, channels, true);
  view.setUint32(24, rate, true);
  view.setUint32(28, rate * channels * 2, true); // bytes per second
  view.setUint16(32, channels * 2, true); // bytes per frame
  view.setUint16(34, 16, true); // bits per sample
  text(36, "data");
  view.setUint32(40, dataBytes, true);
  return header;
}

/** A Blob holding a WAV of the chunks (Int16Array each, interleaved), in order. */
export function encodeWav(chunks, rate, channels) {
  const samples = chunks.reduce((n, chunk) => n + chunk.length, 0);
  const frames = Math.floor(samples / channels);
  // Typed arrays are little-endian on every platform browsers run on, as WAV wants.
  return new Blob([wavHeader(frames, rate, channels), ...chunks], { type: "audio/wav" });
}
