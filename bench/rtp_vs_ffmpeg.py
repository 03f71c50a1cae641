"""Our RTP sender against ffmpeg's, like for like: whole process, real time, the same WAV.

    .venv/bin/python -m bench rtp_vs_ffmpeg [SECONDS]

For 2, 8 and 48 channels at 48 kHz, a WAV of random samples is sent as L16
RTP in 1472-byte datagrams to one receiver on loopback, in real time, by:

- ours: a real ``appliance serve --source wav:FILE`` (256-frame buffers),
  streaming to a real ``rtai listen`` that subscribed over the API; CPU of
  the daemon's whole process over SECONDS while it streams (and, beside it,
  with no client at all);
- ffmpeg: ``ffmpeg -re -i FILE -f rtp``, whole process, a SECONDS+1 s run
  minus a 1 s run so start-up cancels.

Both read the file, pace it to real time and send the same datagrams to a
receiver in another process that reads every one (``rtai listen`` for ours,
a socket drained by a Python process for ffmpeg's): delivering a datagram to
a waiting reader is part of a sender's cost on loopback, and a sender whose
port has no reader (as ffmpeg's had in ``bench/scaling.py`` before) pays
far less.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

from appliance.capture.config import AudioConfig, save_config
from bench import span
from bench._hotpath import UDP_DRAIN
from bench._proc import cpu_seconds
from tests.server import BIN, ApplianceProcess

RATE, FRAMES = 48000, 256
CHANNELS = (2, 8, 48)
SECONDS = span(5.0, 0.5)


def _write_wav(path: Path, channels: int) -> None:
    data = np.random.default_rng(channels).integers(-8000, 8000, (RATE * 2, channels)).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(data.tobytes())


def _window(pid: int) -> float:
    before, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(SECONDS)  # the measurement window itself
    return 100 * (cpu_seconds(pid) - before) / (time.monotonic() - t0)


def _ours(wav: Path, channels: int, root: Path) -> tuple[float, float]:
    """(% of a core streaming to one listener, % with no client) of the daemon."""
    data = root / f"data{channels}"
    data.mkdir()
    save_config(data, AudioConfig(RATE, channels, FRAMES, 80))
    server = ApplianceProcess(data, f"wav:{wav}").start()
    try:
        assert server.proc is not None
        time.sleep(1.0)  # start-up is not what is measured
        idle = _window(server.proc.pid)
        listen = subprocess.Popen(
            [str(BIN / "rtai"), "listen", server.device, f"--token={server.token('bench')}",
             "--out", str(root / f"rx{channels}.wav"), "--duration", str(SECONDS + 3)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            time.sleep(1.5)  # the listener subscribes and the first packets flow
            busy = _window(server.proc.pid)
        finally:
            listen.wait(SECONDS + 30)
        return busy, idle
    finally:
        server.stop()


def _ffmpeg(wav: Path) -> float:
    drain = subprocess.Popen([sys.executable, "-c", UDP_DRAIN], stdout=subprocess.PIPE)
    try:
        assert drain.stdout is not None
        return _ffmpeg_to(wav, int(drain.stdout.readline()))
    finally:
        drain.kill()
        drain.wait()


def _ffmpeg_to(wav: Path, port: int) -> float:

    def cpu(seconds: float) -> float:
        cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-stream_loop", "-1",
               "-t", str(seconds), "-i", str(wav), "-c:a", "pcm_s16be",
               "-f", "rtp", f"rtp://127.0.0.1:{port}?pkt_size=1472"]  # fmt: skip
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, _, usage = os.wait4(proc.pid, 0)
        return float(usage.ru_utime + usage.ru_stime)

    return 100 * (cpu(SECONDS + 1.0) - cpu(1.0)) / SECONDS


def main() -> None:
    global SECONDS
    if len(sys.argv) == 2:
        SECONDS = float(sys.argv[1])
    print(f"one RTP stream, 48 kHz, 1472-byte datagrams, real time, whole process, {SECONDS:.0f} s windows")
    print("| channels | ours streaming | ours, no client | ffmpeg | ours / ffmpeg |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for channels in CHANNELS:
            wav = root / f"in{channels}.wav"
            _write_wav(wav, channels)
            busy, idle = _ours(wav, channels, root)
            theirs = _ffmpeg(wav)
            ratio = busy / theirs if theirs > 0 else float("nan")
            print(f"| {channels} | {busy:.1f} % | {idle:.1f} % | {theirs:.1f} % | {ratio:.2f} |", flush=True)
    load = os.getloadavg()
    print(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")


if __name__ == "__main__":
    main()
