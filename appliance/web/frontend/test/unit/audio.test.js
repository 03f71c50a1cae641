// The frame header and the WAV writer, byte for byte.
import assert from "node:assert/strict";
import { test } from "node:test";
import { KIND_CAPTURE, encodeFrame, parseFrame } from "../../src/audio/frame.js";
import { encodeWav } from "../../src/audio/wav.js";

test("a frame round-trips, including a 64-bit sequence number", () => {
  const samples = new Int16Array([1, -2, 3, -4, 32767, -32768]);
  const frame = parseFrame(encodeFrame({ kind: KIND_CAPTURE, channels: 2, seq: 2 ** 40, time: 1.5, samples }));
  assert.deepEqual({ ...frame, samples: [...frame.samples] }, {
    kind: 1, version: 1, channels: 2, frames: 3, seq: 2 ** 40, time: 1.5, samples: [...samples],
  });
});

test("a frame inside a larger, oddly placed buffer is copied, not misread", () => {
  const bytes = new Uint8Array(encodeFrame({ channels: 1, samples: new Int16Array([258, -1]) }));
  const padded = new Uint8Array(bytes.length + 1);
  padded.set(bytes, 1);
  assert.deepEqual([...parseFrame(padded.subarray(1)).samples], [258, -1]);
});

test("a WAV has the RIFF header and the samples", async () => {
  const blob = encodeWav([new Int16Array([1, 2, 3, 4]), new Int16Array([5, 6])], 16000, 2);
  const view = new DataView(await blob.arrayBuffer());
  const text = (at) => String.fromCharCode(...new Uint8Array(view.buffer, at, 4));
  assert.equal(text(0), "RIFF");
  assert.equal(view.getUint32(4, true), 36 + 12);
  assert.equal(text(8) + text(12), "WAVEfmt ");
  assert.deepEqual([view.getUint16(22, true), view.getUint32(24, true), view.getUint16(34, true)], [2, 16000, 16]);
  assert.equal(view.getUint32(40, true), 12);
  assert.deepEqual([...new Int16Array(view.buffer, 44)], [1, 2, 3, 4, 5, 6]);
});
