"""Scripts written for easy-dsp behave as they did there (issue 12), run as real processes.

Each test writes a small script in the style of the original examples, runs it
with ``python -u`` against a real ``appliance serve --source sim`` and reads
its output, its exit status and what the device sends to other clients.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from browserinterface import protocol as P
from tests.guide import Script
from tests.server import ApplianceProcess
from tests.wsclient import browser, connect, hello, shut


@pytest.fixture
def run_script(appliance: ApplianceProcess, tmp_path: Path) -> Iterator[Any]:
    """``run(name, code)`` starts a script against the device; all are ended after the test."""
    token = appliance.token("easydsp")
    started: list[Script] = []

    def run(name: str, code: str) -> Script:
        path = tmp_path / f"{name}.py"
        path.write_text(code)
        script = Script(path, {"BI_DEVICE": appliance.device, "BI_TOKEN": token})
        started.append(script)
        return script

    yield run
    for script in started:
        if script.proc.poll() is None:
            script.proc.kill()
        script.wait()
    assert "Traceback" not in appliance.log(), appliance.log()


# ---- 2. change_config twice in a row: the last request wins ------------------------

CONFIG_WATCHER = """
import sys
import browserinterface as bi

def config(buffer_frames, rate, channels, volume):
    # One write per line: the main thread may print at the same time.
    sys.stdout.write(f"config {buffer_frames} {rate} {channels} {volume}\\n")

bi.register_when_new_config(config)
bi.start()
"""

TWO_CHANGES = """
import threading
import browserinterface as bi

settled = threading.Event()
want = {}

def data(buffer):
    # A buffer of the wanted shape means capture has reopened with it.
    if want and buffer.shape[0] == want["frames"] and bi.rate == want["rate"]:
        settled.set()

def settle(frames, rate):
    settled.clear()
    want.update(frames=frames, rate=rate)
    assert settled.wait(20), "no audio of the new shape"

bi.register_handle_data(data)
bi.start()
first = bi.buffer_frames
bi.change_config(rate=44100)
bi.change_config(volume=61)
print("after two", bi.rate, bi.volume, flush=True)
settle(first, 44100)
print("settled", bi.rate, bi.volume, flush=True)
bi.change_config(buffer_frames=2048)
settle(2048, 44100)
print("next change", bi.buffer_frames, bi.rate, bi.volume, flush=True)
bi.stop()
"""


async def _welcome_config(appliance: ApplianceProcess, token: str) -> dict[str, Any]:
    ws = await connect(appliance, token)
    welcome = await hello(ws)
    await shut(ws)
    config: dict[str, Any] = welcome["config"]
    return config


def test_two_changes_in_a_row_from_one_script_keep_the_last(
    run_script: Any, appliance: ApplianceProcess
) -> None:
    watcher = run_script("watcher", CONFIG_WATCHER)
    watcher.expect(r"^config ")
    changer = run_script("changer", TWO_CHANGES)
    changer.expect(r"^after two 44100 61$")
    changer.expect(r"^settled 44100 61$")
    changer.expect(r"^next change 2048 44100 61$")
    assert changer.wait(20) == 0, changer.output()
    # The other script saw the changes in order and ends on the last one.
    watcher.expect(r"^config 2048 44100 \d+ 61$")
    volumes = [line.split()[4] for line in watcher.seen if line.startswith("config ")]
    assert set(volumes[volumes.index("61") :]) == {"61"}, watcher.seen  # never back to the old gain
    config = asyncio.run(_welcome_config(appliance, appliance.token("check")))
    assert (config["rate"], config["buffer_frames"], config["volume"]) == (44100, 2048, 61)


async def _two_clients_back_to_back(appliance: ApplianceProcess, token: str) -> list[dict[str, Any]]:
    a, b = await connect(appliance, token), await connect(appliance, token)
    await hello(a)
    await hello(b)
    await a.write_message(json.dumps({"type": "audio", "on": True}))
    # Each field is changed by one client only, so the end is the same whatever
    # order the two connections' requests interleave in.
    requests = [
        (a, {"rate": 44100}),
        (b, {"volume": 61}),
        (a, {"rate": 16000}),
        (b, {"buffer_frames": 2048}),
        (a, {"rate": 44100}),
        (b, {"volume": 62}),
    ]
    for n, (ws, fields) in enumerate(requests):  # none waits for an answer
        await ws.write_message(json.dumps({"type": "change_config", "id": n, **fields}))
    seen: dict[Any, list[dict[str, Any]]] = {a: [], b: []}

    async def read(ws: Any, until_audio: bool) -> None:
        acks = 0
        while True:
            msg = await asyncio.wait_for(ws.read_message(), 20)
            assert msg is not None
            if isinstance(msg, bytes):
                frame = P.decode_audio(msg)
                if (
                    until_audio
                    and acks == 3
                    and frame.data.shape[0] == 2048
                    and seen[ws][-1]["rate"] == 44100
                ):
                    return  # audio of the final shape: capture has reported its reopen
                continue
            parsed = json.loads(msg)
            if parsed["type"] == "config":
                seen[ws].append(parsed["config"])
            elif parsed["type"] == "ack" and parsed.get("id") is not None:  # not the audio request's
                acks += 1
                if acks == 3 and not until_audio:
                    return
            elif parsed["type"] == "error":
                raise AssertionError(parsed)

    await asyncio.gather(read(a, True), read(b, False))
    # b has no audio: its acks came; take what else arrived by the time a had audio.
    await b.write_message(json.dumps({"type": "ping", "id": 99}))
    with_pending = await _drain_configs(b)
    seen[b].extend(with_pending)
    await shut(a, b)
    return [seen[a][-1], seen[b][-1]]


async def _drain_configs(ws: Any) -> list[dict[str, Any]]:
    """Config messages that arrive before the answer to a request sent last (its reply or error)."""
    out = []
    while True:
        msg = await asyncio.wait_for(ws.read_message(), 20)
        assert msg is not None
        if isinstance(msg, bytes):
            continue
        parsed = json.loads(msg)
        if parsed["type"] == "config":
            out.append(parsed["config"])
        if parsed.get("id") == 99:
            return out


def test_back_to_back_changes_from_two_clients_end_on_the_last(appliance: ApplianceProcess) -> None:
    token = appliance.token("two")
    last_a, last_b = asyncio.run(_two_clients_back_to_back(appliance, token))
    final = {"rate": 44100, "buffer_frames": 2048, "volume": 62}
    for last in (last_a, last_b):
        assert {k: last[k] for k in final} == final, last
    config = asyncio.run(_welcome_config(appliance, token))
    assert {k: config[k] for k in final} == final, config


# ---- 3. registering again replaces; add=True adds; unregister removes ----------------

REGISTER_AGAIN = """
import threading
import browserinterface as bi

calls = []
enough = threading.Event()

def make(name):
    def callback(*args):
        calls.append(name)
        if len(calls) >= 6:
            enough.set()
    return callback

a, b, c = make("a"), make("b"), make("c")

def phase(title):
    enough.wait(20)
    print(title, "".join(sorted(set(calls))), flush=True)
    calls.clear()
    enough.clear()

bi.register_handle_data(a)
bi.register_handle_data(b)              # as in easy-dsp: replaces a
bi.start()
phase("replaced")
bi.register_handle_data(c, add=True)    # both b and c
phase("added")
bi.unregister_handle_data(b)
phase("unregistered")
bi.register_handle_data(None)
config_calls = []
bi.register_when_new_config(lambda *cfg: config_calls.append(("first",) + cfg))
bi.register_when_new_config(lambda *cfg: config_calls.append(("second",) + cfg))
bi.change_config(volume=55)
bi.change_config(volume=56)
bi.stop()
print("config", sorted({name for name, *_ in config_calls}), flush=True)
print("volumes", [cfg[4] for cfg in config_calls], flush=True)
"""


def test_registering_again_replaces_and_add_keeps_both(run_script: Any) -> None:
    script = run_script("register_again", REGISTER_AGAIN)
    script.expect(r"^replaced b$")
    script.expect(r"^added bc$")
    script.expect(r"^unregistered c$")
    script.expect(r"^config \['second'\]$")
    volumes = script.expect(r"^volumes \[(.*)\]$").group(1)
    assert volumes.split(", ")[-1] == "56", script.output()
    assert script.wait(20) == 0, script.output()


# ---- 4. record_audio(duration=..., callback=...) -----------------------------------

RECORD_KEYWORDS = """
import threading
import browserinterface as bi

done = threading.Event()
got = {}

def keep(name):
    def callback(buffer):
        got[name] = buffer.shape
        if len(got) == 3:
            done.set()
    return callback

bi.start()
bi.record_audio(duration=300, callback=keep("easy-dsp names"))
bi.record_audio(duration_ms=300, callback=keep("our names"))
bi.record_audio(300, keep("positional"))
for bad in ("bi.record_audio(duration=300)", "bi.record_audio(duration=-1, callback=print)",
            "bi.record_audio(300, callback=print, duration=300)"):
    try:
        eval(bad)
    except (TypeError, ValueError) as exc:
        print("refused:", exc, flush=True)
assert done.wait(20)
for name in sorted(got):
    print(name, got[name][0] >= 0.3 * bi.rate, got[name][1] == bi.channels, flush=True)
bi.stop()
"""


def test_record_audio_takes_the_original_keyword_names(run_script: Any) -> None:
    script = run_script("record", RECORD_KEYWORDS)
    script.expect(r"^refused: record_audio needs a duration in ms and a callback")
    script.expect(r"^refused: record_audio's duration \(ms\) must be a positive number, not -1$")
    script.expect(r"^refused: record_audio takes duration_ms or duration")
    script.expect(r"^easy-dsp names True True$")
    script.expect(r"^our names True True$")
    script.expect(r"^positional True True$")
    assert script.wait(20) == 0, script.output()


# ---- 5. send_audio takes int16, other integers, floats and nested lists ----------------

SEND_AUDIO = """
import numpy as np
import browserinterface as bi

bi.start()
bi.send_audio(np.array([[1, -2], [3, -4]], dtype=np.int16))
bi.send_audio(np.array([[40000, -40000], [5, -6]], dtype=np.int32))     # clipped
bi.send_audio(np.array([[0.4, 1.6], [-2.5, 70000.0]]))                 # rounded, clipped
bi.send_audio(np.array([np.nan, np.inf, -np.inf], dtype=np.float32))   # one channel
bi.send_audio([[7, 8], [9, 10]])                                       # nested lists
bi.send_audio(np.array([[1, 2], [3, 4]], dtype=np.uint16)[:, ::-1])     # not contiguous
for bad in ("np.zeros((2, 2, 2))", "np.zeros((0, 2))", "[[1, 2], [3]]", "[['a', 'b']]"):
    try:
        bi.send_audio(eval(bad))
    except ValueError as exc:
        print("refused:", exc, flush=True)
print("sent", flush=True)
bi.stop()
"""

EXPECTED_PLAYBACK = [
    [[1, -2], [3, -4]],
    [[32767, -32768], [5, -6]],
    [[0, 2], [-2, 32767]],
    [[0], [32767], [-32768]],
    [[7, 8], [9, 10]],
    [[2, 1], [4, 3]],
]


async def _playback(appliance: ApplianceProcess, start: Any) -> tuple[Script, list[list[list[int]]]]:
    """Start the script once a browser listens; the playback frames it sent, as lists."""
    ws, _ = await browser(appliance)
    script: Script = start()
    frames: list[list[list[int]]] = []
    while len(frames) < len(EXPECTED_PLAYBACK):
        msg = await asyncio.wait_for(ws.read_message(), 20)
        assert msg is not None
        if isinstance(msg, bytes):
            audio = P.decode_audio(msg)
            if audio.kind == P.KIND_PLAYBACK:
                frames.append(np.asarray(audio.data).tolist())
    await shut(ws)
    return script, frames


def test_send_audio_converts_what_the_original_took(run_script: Any, appliance: ApplianceProcess) -> None:
    script, frames = asyncio.run(_playback(appliance, lambda: run_script("send_audio", SEND_AUDIO)))
    assert frames == EXPECTED_PLAYBACK
    script.expect(
        r"^refused: send_audio needs \(frames, channels\) or \(frames,\) numbers, not shape \(2, 2, 2\)$"
    )
    script.expect(
        r"^refused: send_audio needs \(frames, channels\) or \(frames,\) numbers, not shape \(0, 2\)$"
    )
    script.expect(r"^refused: send_audio needs \(frames, channels\) of numbers; the rows differ")
    script.expect(r"^refused: send_audio needs numbers \(integers or floats\), not <U1 values$")
    script.expect(r"^sent$")
    assert script.wait(20) == 0, script.output()


# ---- 6. an uncaught exception after start() ends the script with status 1 --------------

FAILS_AFTER_START = """
import browserinterface as bi

def data(buffer):
    pass

bi.register_handle_data(data)
bi.start()
print("started", flush=True)
bi.change_config(channels=99)   # refused: ConfigError, not caught by the script
print("never printed")
"""

DIVIDES_AFTER_START = """
import browserinterface as bi

bi.register_handle_data(lambda buffer: print("Did not receive expected audio!", flush=True))
bi.start()
print("started", flush=True)
print(1 / 0)
"""


@pytest.mark.parametrize(("name", "code", "error"), [
    ("config_error", FAILS_AFTER_START, r"^browserinterface\.ConfigError: channels 99 is not supported"),
    ("zero_division", DIVIDES_AFTER_START, r"^ZeroDivisionError: division by zero$"),
])  # fmt: skip
def test_uncaught_exception_after_start_ends_the_script(
    run_script: Any, name: str, code: str, error: str
) -> None:
    script = run_script(name, code)
    script.expect(r"^started$")
    script.expect(r"^Traceback \(most recent call last\):$")
    script.expect(error)
    assert script.wait(20) == 1, script.output()
    assert "never printed" not in script.output()
    # Callbacks stop with it: at most the few buffers that came before the exception.
    assert script.output().count("Did not receive expected audio!") < 20, script.output()


FOREVER = """
import sys
import browserinterface as bi

count = 0

def data(buffer):
    global count
    count += 1
    if count in (3, 6):  # buffers served after the script's last line
        sys.stdout.write(f"buffer {count}\\n")

bi.register_handle_data(data)
bi.start()
sys.stdout.write("main done\\n")
"""


def test_a_callback_still_runs_forever_when_nothing_failed(run_script: Any) -> None:
    script = run_script("forever", FOREVER)
    script.expect(r"^main done$")
    script.expect(r"^buffer 3$")
    script.expect(r"^buffer 6$")
    assert script.proc.poll() is None  # still serving callbacks after its last line
    assert script.interrupt() in (0, 130), script.output()
    assert "Traceback" not in script.output()


# ---- 1. polar parameters are checked where they enter --------------------------------

BAD_POLAR = """
import sys
import browserinterface as bi

main_done = said = False

def data(buffer):
    global said
    if main_done and not said:  # after the script's last line: Ctrl-C now meets the loop
        said = True
        sys.stdout.write("serving\\n")

bi.add_handler("DOA", "base:polar:line", {"series": ["p"], "numPoints": 0})
bi.add_handler("Beam", "base:polar:line", {"series": ["p"], "numPoints": 60})
bi.register_handle_data(data)
bi.start()
print("started", flush=True)
main_done = True
"""


def test_polar_parameters_that_cannot_work_are_refused_in_words(run_script: Any) -> None:
    script = run_script("bad_polar", BAD_POLAR)
    script.expect(
        r"^browserinterface: add_handler 'DOA': numPoints must be a whole number from 1 to 100000, not 0$"
    )
    if "started" not in script.seen:  # printed before or after the refusal: the script goes on
        script.expect(r"^started$")
    # Not at once after "started": a Ctrl-C inside the script's own last line is Python's own
    # KeyboardInterrupt, before the script has handed over to the callbacks' loop.
    script.expect(r"^serving$")
    assert script.interrupt() in (0, 130), script.output()
    assert "Beam" not in script.output()


async def _answer_a_change_at_once(appliance: ApplianceProcess, token: str) -> tuple[dict[str, Any], ...]:
    """Client b changes the volume the moment it hears of a's rate change (while capture reopens)."""
    a, b = await connect(appliance, token), await connect(appliance, token)
    await hello(a)
    await hello(b)
    await a.write_message(json.dumps({"type": "change_config", "id": 1, "rate": 44100}))
    while (msg := await asyncio.wait_for(b.read_message(), 20)) is not None:
        if isinstance(msg, str) and json.loads(msg)["type"] == "config":
            await b.write_message(json.dumps({"type": "change_config", "id": 2, "volume": 61}))
            break
    # Audio of the new rate for a means capture has reported its reopen; then a later change.
    await a.write_message(json.dumps({"type": "audio", "on": True}))
    last: dict[Any, dict[str, Any]] = {}
    for ws in (a, b):
        while True:
            msg = await asyncio.wait_for(ws.read_message(), 20)
            assert msg is not None
            if isinstance(msg, bytes):
                if ws is a and last.get(a, {}).get("volume") == 61:
                    break
                continue
            parsed = json.loads(msg)
            if parsed["type"] == "config":
                last[ws] = parsed["config"]
            if ws is b and parsed.get("id") == 2:
                break
    await a.write_message(json.dumps({"type": "change_config", "id": 3, "buffer_frames": 2048}))
    for ws in (a, b):  # the next change must keep volume 61
        while True:
            msg = await asyncio.wait_for(ws.read_message(), 20)
            assert msg is not None
            if isinstance(msg, str) and json.loads(msg)["type"] == "config":
                last[ws] = json.loads(msg)["config"]
                if last[ws]["buffer_frames"] == 2048:
                    break
    await shut(a, b)
    return last[a], last[b]


def test_a_change_answered_at_once_by_another_client_is_kept(appliance: ApplianceProcess) -> None:
    token = appliance.token("answer")
    for last in asyncio.run(_answer_a_change_at_once(appliance, token)):
        assert (last["rate"], last["volume"], last["buffer_frames"]) == (44100, 61, 2048), last
    config = asyncio.run(_welcome_config(appliance, token))
    assert (config["rate"], config["volume"], config["buffer_frames"]) == (44100, 61, 2048), config
