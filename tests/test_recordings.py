"""Recordings written as captured: the WAV/RF64 writer, repair after a crash, the API.

The files are read back with libsndfile (soundfile), not with our own parser,
so "valid" means what other programs see.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile

from appliance.recordings.store import RecordingStore
from appliance.recordings.wavfile import DATA_OFFSET, WavWriter, _header, read_info, repair
from tests.server import ApplianceProcess
from tests.workspace_client import Api, reachable_data_dir

DEADLINE_S = 30.0


def samples(frames: int, channels: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(-32768, 32767, (frames, channels), dtype=np.int16)


def test_a_synced_wav_reads_back_bit_for_bit(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    data = samples(48000, 8)
    writer = WavWriter(path, 48000, 8)
    writer.write(data[:20000].tobytes())
    writer.sync()
    writer.write(data[20000:].tobytes())
    writer.close()
    back, rate = soundfile.read(path, dtype="int16", always_2d=True)
    assert rate == 48000 and back.shape == (48000, 8)
    assert np.array_equal(back, data)


def test_a_wav_cut_mid_frame_is_valid_up_to_the_last_sync_then_repaired_to_the_last_frame(
    tmp_path: Path,
) -> None:
    path = tmp_path / "cut.wav"
    data = samples(30000, 6)
    writer = WavWriter(path, 16000, 6)
    writer.write(data[:10000].tobytes())
    writer.sync()
    writer.write(data[10000:].tobytes())
    writer._file.close()  # the process "died": no last header rewrite
    # What a kill leaves: the header says 10000 frames, the file holds 30000 and a torn frame.
    with path.open("ab") as f:
        f.write(b"\x01\x02\x03")
    before, _ = soundfile.read(path, dtype="int16", always_2d=True)
    assert np.array_equal(before, data[:10000])
    info = repair(path)
    assert info.frames == 30000 and path.stat().st_size == DATA_OFFSET + 30000 * 12
    after, _ = soundfile.read(path, dtype="int16", always_2d=True)
    assert np.array_equal(after, data)
    assert repair(path) == info  # a second start changes nothing


def test_past_4_gib_the_header_becomes_rf64_that_libsndfile_reads(tmp_path: Path) -> None:
    path = tmp_path / "big.wav"
    data_bytes = (5 << 30) // 16 * 16  # 5 GiB of 8-channel frames, as a sparse file
    with path.open("wb") as f:
        f.write(_header(48000, 8, data_bytes))
        f.truncate(DATA_OFFSET + data_bytes)
    with path.open("rb") as f:
        assert f.read(4) == b"RF64"
        assert struct.unpack("<I", f.read(4))[0] == 0xFFFFFFFF
    info = soundfile.info(str(path))
    assert (info.samplerate, info.channels, info.frames) == (48000, 8, data_bytes // 16)
    assert read_info(path).frames == data_bytes // 16


FLAC_WRITER = """
import os, sys
import numpy as np
from pathlib import Path
from appliance.recordings.writers import Flac
data = np.load(sys.argv[2])
writer = Flac(Path(sys.argv[1]), 48000, 8)
for i in range(0, len(data), 4800):
    writer.write(data[i : i + 4800])
    if i % 48000 == 0:
        writer.sync()
writer.sync()
os._exit(0)  # dies without closing: no total length in the header
"""


def test_a_flac_cut_by_a_dead_writer_is_rewritten_whole_up_to_its_torn_end(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path)
    path = store.folder / "cut.flac"
    data = samples(48000 * 3, 8)
    np.save(tmp_path / "data.npy", data)
    subprocess.run([sys.executable, "-c", FLAC_WRITER, str(path), str(tmp_path / "data.npy")], check=True)
    with path.open("r+b") as f:  # and a torn last frame
        f.truncate(path.stat().st_size - 1000)
    assert soundfile.info(str(path)).frames > len(data) * 1000  # libsndfile's "unknown"
    store.write_meta("cut.flac", {"started": 1.0, "state": "recording", "format": "flac"})
    assert store.repair_cut() == ["cut.flac"]
    back, _ = soundfile.read(path, dtype="int16", always_2d=True)
    assert len(data) - 48000 < len(back) < len(data)
    assert np.array_equal(back, data[: len(back)])
    assert store.describe("cut.flac")["state"] == "done"


@pytest.fixture
def device() -> Iterator[ApplianceProcess]:
    with reachable_data_dir() as data_dir:
        server = ApplianceProcess(data_dir, "sim").start()
        try:
            yield server
        finally:
            server.stop()
            assert "Traceback" not in server.log(), server.log()


def poll(api: Api, done: Any) -> list[dict[str, Any]]:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        listed: list[dict[str, Any]] = api.json("GET", "/api/v1/recordings")
        if done(listed):
            return listed
        time.sleep(0.1)  # polling with a deadline, not waiting on a time
    raise AssertionError(f"not reached within {DEADLINE_S} s: {listed}")


def test_a_recording_from_the_page_is_listed_stopped_renamed_and_downloaded(device: ApplianceProcess) -> None:
    api = Api(device)
    started = api.json("POST", "/api/v1/recordings", {"format": "wav", "name": "take.wav"})
    assert started["state"] == "recording" and started["disk_seconds_left"] > 0
    poll(api, lambda rs: rs[0]["name"] == "take.wav" and rs[0]["seconds"] >= 1.0)
    stopped = api.json("POST", "/api/v1/recordings/take.wav/stop")
    assert stopped["state"] == "done" and stopped["reason"] == "stopped by user"
    assert stopped["seconds"] >= 1.0 and stopped["channels"] == started["channels"]
    assert api.json("POST", "/api/v1/recordings/take.wav/rename", {"to": "first take.wav"}) == {
        "name": "first take.wav"
    }
    status, body, headers = api.request("GET", "/api/v1/recordings/first%20take.wav")
    assert status == 200 and headers["Content-Type"] == "audio/wav"
    on_disk = (device.data_dir / "recordings" / "first take.wav").read_bytes()
    assert body == on_disk
    status, body, _ = api.request("POST", "/api/v1/recordings/x/rename", {"to": "../y.wav"})
    assert status == 400
    status, body, _ = api.request("POST", "/api/v1/recordings", {"format": "mp3"})
    assert status == 400 and b"format 'mp3' is not supported; use one of wav, flac" in body
    assert api.json("DELETE", "/api/v1/recordings/first%20take.wav") == {"deleted": "first take.wav"}
    assert api.json("GET", "/api/v1/recordings") == []


def test_a_flac_recording_with_a_duration_ends_by_itself(device: ApplianceProcess) -> None:
    api = Api(device)
    api.json("POST", "/api/v1/recordings", {"format": "flac", "seconds": 1.5, "name": "short.flac"})
    done = poll(api, lambda rs: rs and rs[0]["state"] == "done")[0]
    assert done["reason"] == "the duration asked for was reached"
    audio, rate = soundfile.read(device.data_dir / "recordings" / "short.flac", dtype="int16", always_2d=True)
    assert audio.shape[0] == round(1.5 * rate) and np.abs(audio).max() > 0


def test_a_recording_cut_by_kill_9_is_valid_and_repaired_on_the_next_start(device: ApplianceProcess) -> None:
    api = Api(device)
    api.json("POST", "/api/v1/recordings", {"format": "wav", "name": "cut.wav"})
    poll(api, lambda rs: rs[0]["seconds"] >= 3.0)
    assert device.proc is not None
    os.killpg(device.proc.pid, signal.SIGKILL)
    device.proc.wait()
    path = device.data_dir / "recordings" / "cut.wav"
    header_frames = read_info(path).frames
    before, _ = soundfile.read(path, dtype="int16", always_2d=True)
    assert before.shape[0] == header_frames > 0  # valid up to the last sync
    device.start()
    api = Api(device)
    listed = api.json("GET", "/api/v1/recordings")[0]
    assert listed["state"] == "done" and "cut short" in listed["reason"]
    after, _ = soundfile.read(path, dtype="int16", always_2d=True)
    assert after.shape[0] >= header_frames
    assert path.stat().st_size == DATA_OFFSET + after.size * 2  # up to the last whole block
    assert np.array_equal(after[: before.shape[0]], before)
    assert json.loads((path.parent / ".cut.wav.json").read_text())["state"] == "done"


SCRIPT_RECORDS = """\
import json, os, urllib.request
def call(method, path, body=None):
    req = urllib.request.Request(
        f"http://{os.environ['BI_DEVICE']}/api/v1/recordings{path}", method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {os.environ['BI_TOKEN']}", "Content-Type": "application/json"},
    )
    return json.load(urllib.request.urlopen(req))
started = call("POST", "", {"format": "wav", "seconds": 1, "name": "from script.wav"})
print("started", started["name"], flush=True)
"""


def test_a_script_starts_a_recording_with_its_run_token_and_a_stranger_cannot(
    device: ApplianceProcess,
) -> None:
    import asyncio  # noqa: PLC0415

    from tests import wsclient  # noqa: PLC0415

    async def run() -> list[str]:
        ws, _ = await wsclient.browser(device)
        await ws.write_message(
            json.dumps({"type": "run_start", "id": 1, "name": "rec.py", "code": SCRIPT_RECORDS})
        )
        run_id = (await wsclient.receive(ws, "ack", 20))["run"]["id"]
        lines = []
        while True:
            raw = await asyncio.wait_for(ws.read_message(), 60)
            assert isinstance(raw, str)
            event = json.loads(raw)
            if event["type"] == "run_output" and event["run"] == run_id:
                lines.append(event["text"])
            if event["type"] == "run_ended" and event["run"]["id"] == run_id:
                await wsclient.shut(ws)
                return lines

    assert asyncio.run(run()) == ["started from script.wav"]
    api = Api(device)
    done = poll(api, lambda rs: rs and rs[0]["state"] == "done")[0]
    assert done["name"] == "from script.wav" and done["seconds"] == 1.0
    # Without a session or a valid token: refused before anything is done.
    import urllib.error  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    req = urllib.request.Request(
        f"{device.url}/api/v1/recordings",
        data=b"{}",
        method="POST",
        headers={"Authorization": "Bearer not-a-token"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req, timeout=10)
    assert refused.value.code == 403
    refused.value.close()
    assert [r["name"] for r in api.json("GET", "/api/v1/recordings")] == ["from script.wav"]
