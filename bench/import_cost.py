"""What ``import browserinterface`` costs a script on the device: time and memory.

Each figure is a fresh interpreter: its resident memory (VmRSS) before the
import, after it, and after a local session took its first audio blocks; the
import's wall time; beside it, the peer measured the same way: the same
interpreter importing what the module used to load for every script
(Tornado's WebSocket and HTTP client, zeroconf), and numpy alone, which
every script needs.

    .venv/bin/python -m bench import_cost
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import count
from tests.server import ApplianceProcess

RUNS = count(5, smoke=1)

MEASURE = """
import json, sys, time
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
before = rss()
t0 = time.perf_counter()
{imports}
took = time.perf_counter() - t0
after = rss()
session = None
if {session}:
    import browserinterface as bi
    got = []
    def handle(buffer):
        got.append(1)
        if len(got) == 5:
            bi.stop()
    bi.register_handle_data(handle)
    bi.start()
    bi.loop_callbacks()
    session = rss()
print(json.dumps({{"before": before, "after": after, "import_s": took, "session": session,
                  "modules": len(sys.modules)}}))
"""
CASES = (
    ("import browserinterface", "import browserinterface", True),
    (
        "peer: tornado.websocket + zeroconf",
        "import numpy, tornado.websocket, tornado.httpclient, zeroconf",
        False,
    ),
)


def _measure(imports: str, session: bool, env: dict[str, str]) -> dict[str, float]:
    code = MEASURE.format(imports=imports, session=session)
    argv = [sys.executable, "-c", code]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    print("load average:", Path("/proc/loadavg").read_text().strip())
    with tempfile.TemporaryDirectory() as tmp:
        server = ApplianceProcess(Path(tmp) / "data", "sim:usb-stereo").start()
        try:
            env = {**os.environ, "BI_DEVICE": server.device, "BI_TOKEN": server.token("bench")}
            for name, imports, session in CASES:
                runs = [_measure(imports, session, env) for _ in range(RUNS)]
                best = min(runs, key=lambda r: r["import_s"])
                line = (
                    f"{name}: {1000 * best['import_s']:.0f} ms (best of {RUNS}; worst "
                    f"{1000 * max(r['import_s'] for r in runs):.0f}), RSS {best['before']:.1f} -> "
                    f"{best['after']:.1f} MB, {best['modules']:.0f} modules"
                )
                if best["session"] is not None:
                    line += f"; {best['session']:.1f} MB once a local session had its first blocks"
                print(line)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
