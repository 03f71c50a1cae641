"""RTP streaming: our sender against ffmpeg's, the added latency, the receiver's CPU.

    .venv/bin/python -m bench.rtai_stream            (or: python -m bench rtai_stream)

1. Sender CPU seconds per second of audio, same WAV input, 48 kHz, 8 and 48
   channels, real-time pace, 1472-byte datagrams to a loopback port: ours (a
   process running a real Bus and StreamManager fed 4096-frame blocks as the
   capture thread would) against ``ffmpeg -re -i in.wav -f rtp``, both as
   whole processes (5 s run minus 1 s run, median of 3).
2. Added latency on loopback: from the moment a block is handed to the bus
   (its capture finished) to the moment the listener's ``Receiver``, in its
   own process, yields its last frame; p50 and p99.
3. The receiver's CPU seconds per second of audio (measured inside it).

Prints figures and ratios; never fails on a time.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

from bench import count, span
from tests.rtai_support import free_port_pair

RATE = 48000
SECONDS = span(5.0, smoke=1.0)
SHORT_SECONDS = span(1.0, smoke=0.5)
RUNS = count(3)
BLOCK = 4096
SMALL_BLOCK = 512
LATENCY_MS = 20.0
REPO = Path(__file__).resolve().parent.parent
SELF = [sys.executable, "-m", "bench.rtai_stream"]


def _write_wav(path: Path, channels: int, seconds: float) -> None:
    rng = np.random.default_rng(channels)
    data = rng.integers(-8000, 8000, (int(RATE * seconds), channels)).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(data.tobytes())


def _cpu_of(cmd: list[str], **kwargs: object) -> float:
    """Run ``cmd`` to its end; its user + system CPU seconds."""
    proc = subprocess.Popen(cmd, **kwargs)  # type: ignore[call-overload]
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"{cmd[:4]} exited with {proc.returncode}")
    return float(usage.ru_utime + usage.ru_stime)


# -- child processes -------------------------------------------------------


def child_sender(wav_path: str, port: int, stamps_path: str, block: int) -> None:
    """Our sender: WAV blocks -> Bus -> StreamManager -> UDP, at real-time pace."""
    from appliance.capture.block import Block  # noqa: PLC0415
    from appliance.capture.bus import Bus  # noqa: PLC0415
    from appliance.capture.config import AudioConfig  # noqa: PLC0415
    from appliance.sessions.streaming import StreamManager  # noqa: PLC0415

    with wave.open(wav_path, "rb") as wav:
        channels = wav.getnchannels()
        raw = np.frombuffer(wav.readframes(wav.getnframes()), "<i2")
    data = raw.astype(np.int16).reshape(-1, channels)
    config = AudioConfig(rate=RATE, channels=channels, buffer_frames=block)
    stamps: list[float] = []

    async def main() -> None:
        bus = Bus()
        manager = StreamManager(bus, lambda: config)
        await manager.start()
        manager.subscribe("bench", "127.0.0.1", port)
        cpu[0] = time.process_time()
        start = time.monotonic()
        for seq, i in enumerate(range(0, data.shape[0] - block + 1, block)):
            due = start + (i + block) / RATE
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            now = time.time()
            stamps.append(now)
            bus.publish(Block.frozen(seq, now, data[i : i + block].copy()))
        await manager.close()
        cpu[0] = time.process_time() - cpu[0]

    cpu = [0.0]
    asyncio.run(main())
    result = {"stamps": stamps, "cpu": cpu[0], "seconds": len(stamps) * block / RATE}
    Path(stamps_path).write_text(json.dumps(result))


def child_receiver(port: int, channels: int, frames: int, out_path: str) -> None:
    """Our receiver: records (offset of each yield's last frame, wall time) and its CPU."""
    from rtai.receiver import Receiver  # noqa: PLC0415

    marks: list[tuple[int, float]] = []
    with Receiver(port, rate=RATE, channels=channels, latency_ms=LATENCY_MS) as rx:
        Path(out_path + ".ready").write_text("")
        first, got, cpu_start = None, 0, 0.0
        deadline = time.monotonic() + SECONDS + 10
        while got < frames and time.monotonic() < deadline:
            for block in rx.read(0.1):
                now = time.time()
                if first is None:
                    first, cpu_start = block.timestamp, time.process_time()
                got = block.timestamp + block.frames - first
                marks.append((got - 1, now))
        cpu = time.process_time() - cpu_start
        result = {"marks": marks, "lost": rx.stats.lost, "cpu": cpu, "seconds": got / RATE}
    Path(out_path).write_text(json.dumps(result))


# -- the runs ---------------------------------------------------------------


def _sender_cpu(tmp: Path, channels: int) -> dict[str, float]:
    """CPU per second of audio of each sender, measured the same way for both.

    Whole process against whole process: the slope between a long and a short
    run of the same sender (which removes start-up, imports included), the
    median of a few runs, since this machine is shared.  (Timing ours inside
    its streaming loop against ffmpeg's whole process flattered ours.)
    """
    port = free_port_pair()
    long_wav, short_wav = tmp / f"in{channels}-{SECONDS:g}.wav", tmp / f"in{channels}-short.wav"
    _write_wav(long_wav, channels, SECONDS)
    _write_wav(short_wav, channels, SHORT_SECONDS)
    out = tmp / "sender.json"

    def ours(wav: Path) -> list[str]:
        return [*SELF, "sender", str(wav), str(port), str(out), str(BLOCK)]

    def ffmpeg(wav: Path) -> list[str]:
        return ["ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-i", str(wav), "-c:a", "pcm_s16be",
                "-payload_type", "96", "-f", "rtp", f"rtp://127.0.0.1:{port}?pkt_size=1472"]  # fmt: skip

    commands = {"ours": ours, "ffmpeg": ffmpeg}
    slopes: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(RUNS):
        for name, command in commands.items():
            cpu = {
                seconds: _cpu_of(command(wav), cwd=REPO, stdout=subprocess.DEVNULL)
                for wav, seconds in ((long_wav, SECONDS), (short_wav, SHORT_SECONDS))
            }
            slopes[name].append((cpu[SECONDS] - cpu[SHORT_SECONDS]) / (SECONDS - SHORT_SECONDS))
    return {name: float(np.median(values)) for name, values in slopes.items()}


def _latency(wav: Path, channels: int, tmp: Path, block: int) -> dict[str, float]:
    port = free_port_pair()
    out = tmp / f"rx{channels}-{block}.json"
    stamps = tmp / f"tx{channels}-{block}.json"
    frames = (int(RATE * SECONDS) // block) * block
    rx = subprocess.Popen([*SELF, "receiver", str(port), str(channels), str(frames), str(out)], cwd=REPO)
    deadline = time.monotonic() + 20
    while not Path(str(out) + ".ready").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    _cpu_of([*SELF, "sender", str(wav), str(port), str(stamps), str(block)], cwd=REPO)
    rx.wait()
    result = json.loads(out.read_text())
    sent = json.loads(stamps.read_text())["stamps"]
    added = [
        1000.0 * (when - sent[last // block]) for last, when in result["marks"] if last // block < len(sent)
    ]
    arr = np.array(added)
    return {
        "p50_ms": float(np.percentile(arr, 50)),
        "p99_ms": float(np.percentile(arr, 99)),
        "max_ms": float(arr.max()),
        "lost": float(result["lost"]),
        "receiver_cpu": result["cpu"] / max(result["seconds"], 1e-9),
    }


def main() -> None:
    """Run every figure and print them."""
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for channels in (8, 48):
            cpu = _sender_cpu(tmp, channels)
            print(
                f"sender {channels:2d} ch 48 kHz, {BLOCK}-frame blocks: ours "
                f"{cpu['ours'] * 1000:6.2f} ms CPU per s of audio, ffmpeg "
                f"{cpu['ffmpeg'] * 1000:6.2f} ms; ours/ffmpeg {cpu['ours'] / cpu['ffmpeg']:.2f}",
                flush=True,
            )
            wav = tmp / f"in{channels}-{SECONDS:g}.wav"
            for block in (BLOCK, SMALL_BLOCK):
                lat = _latency(wav, channels, tmp, block)
                print(
                    f"latency {channels:2d} ch, {block:4d}-frame blocks, bus -> Receiver yield: "
                    f"p50 {lat['p50_ms']:.2f} ms, p99 {lat['p99_ms']:.2f} ms, "
                    f"max {lat['max_ms']:.2f} ms, lost {lat['lost']:.0f}; receiver CPU "
                    f"{lat['receiver_cpu'] * 1000:.1f} ms per s of audio",
                    flush=True,
                )
    print(
        f"(jitter buffer target {LATENCY_MS:g} ms: it holds back only frames whose packet is "
        "missing; --play adds the same amount as the sound card's queue)"
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "sender":
        child_sender(sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]))
    elif len(sys.argv) > 1 and sys.argv[1] == "receiver":
        child_receiver(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    else:
        main()
