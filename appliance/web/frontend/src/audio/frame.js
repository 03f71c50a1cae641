// The binary WebSocket frame: a 24-byte little-endian header
// <B kind, B version, H channels, I frames, Q seq, d time> and then int16 LE
// interleaved samples (see browserinterface/protocol.py for the Python side).

export const HEADER_SIZE = 24;
export const PROTOCOL_VERSION = 1;
export const KIND_CAPTURE = 1; // a captured block: the channels the browser asked for
export const KIND_PLAYBACK = 2; // audio a script sent with send_audio
export const MAX_CHANNELS = 256;

export class FrameError extends Error {
  constructor(message) {
    super(message);
    this.name = "FrameError";
  }
}

const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Parse one binary frame (ArrayBuffer, or a typed array over one).
 * Returns {kind, version, channels, frames, seq, time, samples: Int16Array};
 * throws FrameError naming the bad field.
 */
export function parseFrame(input) {
  const bytes = input instanceof ArrayBuffer ? new Uint8Array(input) : new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  if (bytes.byteLength < HEADER_SIZE) {
    throw new FrameError(`binary frame of ${bytes.byteLength} bytes is shorter than its ${HEADER_SIZE}-byte header`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const kind = view.getUint8(0);
  const version = view.getUint8(1);
  const channels = view.getUint16(2, true);
  const frames = view.getUint32(4, true);
  const seq = Number(view.getBigUint64(8, true));
  const time = view.getFloat64(16, true);
  if (version !== PROTOCOL_VERSION) throw new FrameError(`binary frame version ${version}; expected ${PROTOCOL_VERSION}`);
  if (kind !== KIND_CAPTURE && kind !== KIND_PLAYBACK) throw new FrameError(`binary frame kind ${kind} is unknown; expected 1 or 2`);
  if (channels < 1 || channels > MAX_CHANNELS) throw new FrameError(`channels ${channels} is out of range 1 to ${MAX_CHANNELS}`);
  const expected = HEADER_SIZE + 2 * channels * frames;
  if (bytes.byteLength !== expected) {
    throw new FrameError(`binary frame has ${bytes.byteLength} bytes; ${frames} frames x ${channels} channels need ${expected}`);
  }
  return { kind, version, channels, frames, seq, time, samples: samplesOf(bytes, frames * channels) };
}

// A view when the platform is little-endian and the data aligned, else a copy.
function samplesOf(bytes, count) {
  const start = bytes.byteOffset + HEADER_SIZE;
  if (littleEndian && start % 2 === 0) return new Int16Array(bytes.buffer, start, count);
  const view = new DataView(bytes.buffer, start, count * 2);
  const out = new Int16Array(count);
  for (let i = 0; i < count; i++) out[i] = view.getInt16(i * 2, true);
  return out;
}

/** Build a frame (used by tests and by code that feeds the player locally). */
export function encodeFrame({ kind = KIND_CAPTURE, channels, seq = 0, time = 0, samples }) {
  const frames = samples.length / channels;
  if (!Number.isInteger(frames)) throw new FrameError(`${samples.length} samples do not split into ${channels} channels`);
  const buffer = new ArrayBuffer(HEADER_SIZE + samples.length * 2);
  const view = new DataView(buffer);
  view.setUint8(0, kind);
  view.setUint8(1, PROTOCOL_VERSION);
  view.setUint16(2, channels, true);
  view.setUint32(4, frames, true);
  view.setBigUint64(8, BigInt(seq), true);
  view.setFloat64(16, time, true);
  for (let i = 0; i < samples.length; i++) view.setInt16(HEADER_SIZE + i * 2, samples[i], true);
  return buffer;
}
