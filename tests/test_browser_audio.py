"""Browser audio: the binary frame header, WAV recording and the live player, in Debian's chromium."""

from __future__ import annotations

import base64
import io
import wave

import numpy as np
import pytest

from browserinterface.protocol import KIND_CAPTURE, KIND_PLAYBACK, encode_audio
from tests import chart_harness
from tests.chart_harness import Harness

# The harness's fixtures, used here by name.
browser = chart_harness.browser
server = chart_harness.server
harness_dir = chart_harness.harness_dir
shared_harness = chart_harness.shared_harness
harness = chart_harness.harness

pytestmark = pytest.mark.browser


def b64(data: bytes) -> str:
    """Bytes as base64 text, to pass binary frames into the page."""
    return base64.b64encode(data).decode("ascii")


def test_frame_header_parses_what_the_device_encodes(harness: Harness) -> None:
    samples = np.arange(-7, 8, dtype=np.int16).reshape(5, 3) * 1000
    frame = encode_audio(KIND_PLAYBACK, 2**40 + 3, 1234.5, samples)
    parsed = harness.js(
        """(text) => {
            const f = harness.audio.parseFrame(harness.bytesFromBase64(text));
            return {...f, samples: [...f.samples]};
        }""",
        b64(frame),
    )
    assert parsed == {
        "kind": KIND_PLAYBACK,
        "version": 1,
        "channels": 3,
        "frames": 5,
        "seq": 2**40 + 3,
        "time": 1234.5,
        "samples": samples.reshape(-1).tolist(),
    }
    harness.assert_clean()


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (b"\x01\x01", "binary frame of 2 bytes is shorter than its 24-byte header"),
        (b"\x01\x02" + bytes(22), "binary frame version 2; expected 1"),
        (b"\x07\x01\x01\x00" + bytes(20), "binary frame kind 7 is unknown; expected 1 or 2"),
        (
            encode_audio(KIND_CAPTURE, 0, 0.0, np.zeros((4, 2), np.int16))[:-2],
            "binary frame has 38 bytes; 4 frames x 2 channels need 40",
        ),
    ],
)
def test_bad_frames_are_refused_by_name(harness: Harness, frame: bytes, message: str) -> None:
    error = harness.js(
        """(text) => {
            try { harness.audio.parseFrame(harness.bytesFromBase64(text)); return null; }
            catch (e) { return [e.name, e.message]; }
        }""",
        b64(frame),
    )
    assert error == ["FrameError", message]
    harness.assert_clean()


RECORD = """async ([frames, rate, seconds]) => {
    const progress = [];
    const done = harness.audio.recordWav({rate, seconds, onProgress: (f) => progress.push(f)});
    for (const text of frames) harness.audio.audioFrames.handleBinary(harness.bytesFromBase64(text));
    const blob = await done;
    return {type: blob.type, wav: await harness.blobBase64(blob), progress};
}"""


def test_wav_recorded_from_frames_holds_the_samples(harness: Harness) -> None:
    rate, seconds = 16000, 0.1
    rng = np.random.default_rng(7)
    blocks = [rng.integers(-32768, 32767, size=(256, 2), dtype=np.int16) for _ in range(7)]
    frames = []
    for seq, block in enumerate(blocks):
        frames.append(b64(encode_audio(KIND_CAPTURE, seq, seq * 0.016, block)))
        # Audio a script sends is a different stream: it must not end up in the recording.
        frames.append(b64(encode_audio(KIND_PLAYBACK, seq, 0.0, np.full((64, 1), 99, np.int16))))
    result = harness.js(RECORD, [frames, rate, seconds])
    assert result["type"] == "audio/wav"
    assert result["progress"][-1] == 1
    with wave.open(io.BytesIO(base64.b64decode(result["wav"]))) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, rate)
        assert wav.getnframes() == 1600
        recorded = np.frombuffer(wav.readframes(wav.getnframes()), "<i2").reshape(-1, 2)
    np.testing.assert_array_equal(recorded, np.concatenate(blocks)[:1600])
    harness.assert_clean()


def test_recording_stops_when_the_channel_count_changes(harness: Harness) -> None:
    frames = [
        b64(encode_audio(KIND_CAPTURE, 0, 0.0, np.zeros((100, 2), np.int16))),
        b64(encode_audio(KIND_CAPTURE, 1, 0.0, np.zeros((100, 4), np.int16))),
    ]
    error = harness.js(
        """async ([frames]) => {
            const done = harness.audio.recordWav({rate: 16000, seconds: 1});
            for (const text of frames) harness.audio.audioFrames.handleBinary(harness.bytesFromBase64(text));
            try { await done; return null; } catch (e) { return e.message; }
        }""",
        [frames],
    )
    assert error == "the stream changed from 2 to 4 channels during the recording; record again"
    harness.assert_clean()


def test_recording_refuses_a_bad_rate(harness: Harness) -> None:
    error = harness.js(
        """async () => {
            try { await harness.audio.recordWav({rate: 12.5, seconds: 1}); }
            catch (e) { return e.message; }
        }"""
    )
    assert error == "rate 12.5 is not a sample rate; expected a whole number of Hz, 1000 to 768000"
    harness.assert_clean()


def test_mix_to_stereo_follows_the_selection(harness: Harness) -> None:
    mixed = harness.js(
        """() => {
            const s = new Int16Array([100, 200, 300, 400, 500, 600]);  // 2 frames x 3 channels
            const run = (chosen) => {
                const l = new Float32Array(2), r = new Float32Array(2);
                harness.audio.mixToStereo(s, 3, chosen, l, r);
                return [[...l].map((v) => Math.round(v * 32768)), [...r].map((v) => Math.round(v * 32768))];
            };
            return [run([2]), run([0, 1]), run([0, 1, 2])];
        }"""
    )
    assert mixed == [
        [[300, 600], [300, 600]],
        [[100, 400], [200, 500]],
        [[200, 500], [200, 500]],
    ]
    harness.assert_clean()


def test_live_player_plays_fed_frames_and_stays_live(harness: Harness) -> None:
    rate = 16000
    t = np.arange(rate) / rate
    tone = (np.sin(2 * np.pi * 440 * t) * 16000).astype(np.int16)
    block = np.stack([tone, np.zeros_like(tone)], axis=1)  # left has the tone, right is silent
    frames = [b64(encode_audio(KIND_PLAYBACK, i, 0.0, block[i * 256 : (i + 1) * 256])) for i in range(60)]
    feed = """async (frames) => {
        for (const text of frames) harness.audio.audioFrames.handleBinary(harness.bytesFromBase64(text));
    }"""
    harness.js(
        """async (rate) => {
            const a = harness.audio;
            window.player = new a.LivePlayer({select: [0]});
            await player.start();
            window.unsubscribe = a.audioFrames.subscribe(player.listener(() => rate, a.KIND_PLAYBACK));
        }""",
        rate,
    )
    harness.js(feed, frames[:15])  # 0.24 s: within the player's 0.4 s queue
    harness.page.wait_for_function("() => player.outputPeak() > 0.2", timeout=5000)
    stats = harness.js("() => player.stats()")
    assert stats["playedFrames"] == 15 * 256 and stats["droppedFrames"] == 0
    harness.js(feed, frames[15:])  # 0.72 s at once: what does not fit is dropped, not delayed
    stats = harness.js("() => player.stats()")
    assert stats["droppedFrames"] > 0
    assert stats["queuedSeconds"] <= 0.4 + 256 / rate
    harness.js("() => { unsubscribe(); return player.stop(); }")
    harness.assert_clean()
