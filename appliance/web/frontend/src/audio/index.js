// Audio in the browser: parse binary frames, play them live, record WAVs.
//
//   socket.binaryType = "arraybuffer";
//   socket.onmessage = (e) => { if (e.data instanceof ArrayBuffer) audioFrames.handleBinary(e.data); };
//   const player = new LivePlayer({select: [0, 1]});
//   button.onclick = () => player.start();            // needs a user gesture
//   audioFrames.subscribe(player.listener(() => config.rate, KIND_CAPTURE));   // the microphones
//   audioFrames.subscribe(other.listener(() => config.rate, KIND_PLAYBACK));  // send_audio
//   const blob = await recordWav({rate: config.rate, seconds: 5, onProgress: (f) => bar.value = f});
export { FrameError, HEADER_SIZE, KIND_CAPTURE, KIND_PLAYBACK, encodeFrame, parseFrame } from "./frame.js";
export { FrameHub, audioFrames } from "./hub.js";
export { LivePlayer, mixToStereo } from "./player.js";
export { MAX_SECONDS, recordWav } from "./recorder.js";
export { encodeWav, wavHeader } from "./wav.js";

import { KIND_CAPTURE, KIND_PLAYBACK, encodeFrame, parseFrame } from "./frame.js";
import { FrameHub, audioFrames } from "./hub.js";
import { LivePlayer } from "./player.js";
import { recordWav } from "./recorder.js";
import { encodeWav } from "./wav.js";

if (typeof window !== "undefined") {
  window.micarray = Object.assign(window.micarray ?? {}, {
    audio: { KIND_CAPTURE, KIND_PLAYBACK, FrameHub, LivePlayer, audioFrames, encodeFrame, encodeWav, parseFrame, recordWav },
  });
}
