"""The whole device on a test LAN: ``appliance serve`` in one namespace, a laptop in another.

The laptop finds it with ``rtai discover``, and a browserinterface script
reaches it by ``lab.local`` alone. Every packet stays on the veth pair.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import wave
from pathlib import Path

from tests.netns import requires_netns, veth_pair, wait_for_line

BIN = Path(sys.executable).parent
PORT = 8080


pytestmark = requires_netns

SCRIPT = """
import browserinterface

browserinterface.bi_board_ip = "lab.local:8080"

def recorded(buffer):
    print("recorded", buffer.shape[0], buffer.shape[1], buffer.dtype)
    browserinterface.stop()

browserinterface.start()
browserinterface.record_audio(300, recorded)
browserinterface.loop_callbacks()
"""


def _rtai(*args: str) -> list[str]:
    return [str(BIN / "rtai"), *args]


def test_laptop_finds_the_device_and_runs_a_script_by_name(tmp_path: Path) -> None:
    data = tmp_path / "data"
    token = subprocess.run(
        [str(BIN / "appliance"), "token", "new", "laptop", "--data-dir", str(data)],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.strip().splitlines()[-1]  # fmt: skip
    with veth_pair() as (device, laptop):
        serve = device.spawn(
            [
                str(BIN / "appliance"),
                "serve",
                "--source",
                "sim",
                "--http-port",
                str(PORT),
                "--data-dir",
                str(data),
                "--hostname",
                "lab",
            ]
        )
        wait_for_line(serve, f"announced lab.local (10.231.0.1) on port {PORT}", deadline_s=60)

        records = json.loads(laptop.run(_rtai("discover", "--timeout", "3", "--json")))
        assert [(r["name"], r["url"], r["addresses"]) for r in records] == [
            ("lab", f"http://lab.local:{PORT}/", ["10.231.0.1"])
        ]
        rec = records[0]
        # The blocking call works inside a running event loop too (a notebook's kernel runs one).
        in_loop = (
            "import asyncio, rtai.discover as d\n"
            "async def main():\n    print([r.name for r in d.discover(3.0)])\n"
            "asyncio.run(main())\n"
        )
        assert laptop.run([sys.executable, "-c", in_loop]).strip() == "['lab']"
        assert rec["model"] and rec["version"] and rec["device_id"]
        assert isinstance(rec["channels"], int) and rec["channels"] > 0
        assert rec["rate"] in rec["rates"]
        assert rec["api_port"] == PORT and rec["ws_path"].startswith("/")

        script = tmp_path / "laptop_script.py"
        script.write_text(textwrap.dedent(SCRIPT))
        env = {**os.environ, "BI_TOKEN": token}
        env.pop("BI_DEVICE", None)
        out = laptop.run([sys.executable, str(script)], env=env, timeout=60)
        words = out.split()
        assert words[0] == "recorded" and words[2] == str(rec["channels"]), out
        assert words[3] == "int16"
        assert int(words[1]) >= rec["rate"] * 3 // 10

        # rtai listens to it by name: RTP over the veth pair into a WAV file.
        wav = tmp_path / "lab.wav"
        laptop.run(
            _rtai("listen", f"lab.local:{PORT}", "--token", token, "--duration", "1", "--out", str(wav)),
            timeout=60,
        )
        with wave.open(str(wav)) as w:
            assert (w.getnchannels(), w.getframerate(), w.getsampwidth()) == (
                rec["channels"],
                rec["rate"],
                2,
            )
            assert w.getnframes() >= rec["rate"] * 9 // 10
        # rtai sdp by name: the SDP for other tools, streaming until Ctrl-C.
        sdp = laptop.spawn(_rtai("sdp", f"lab.local:{PORT}", "--token", token, "--port", "5004"))
        wait_for_line(sdp, "streaming", deadline_s=30)
        os.killpg(sdp.pid, signal.SIGINT)
        assert sdp.stdout is not None
        text = sdp.stdout.read()
        assert sdp.wait(30) == 0
        assert "c=IN IP4 10.231.0.2" in text
        assert f"L16/{rec['rate']}/{rec['channels']}" in text

        # A configuration change reaches the announcement (within the status interval).
        new_rate = next(r for r in rec["rates"] if r != rec["rate"])
        change = f"import browserinterface as b; b.start(); b.change_config(rate={new_rate}); b.stop()"
        laptop.run([sys.executable, "-c", change], env={**env, "BI_DEVICE": f"lab.local:{PORT}"})
        deadline = time.monotonic() + 60
        while json.loads(laptop.run(_rtai("discover", "--timeout", "1", "--json")))[0]["rate"] != new_rate:
            assert time.monotonic() < deadline, "the new rate was not announced"
