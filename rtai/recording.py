"""Where ``rtai listen`` puts received audio: a file, a pipe, the sound card.

A file gets a new file per stream format (``rec.wav``, ``rec-2.wav`` after
the device changed its rate or channels). A pipe (``--out -``, a FIFO,
``/dev/stdout`` into a pipe) carries one format only, so a change ends the
recording with a message saying why; a reader that went away (``| head``)
ends it quietly.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path
from typing import BinaryIO

from rtai.errors import RtaiError
from rtai.jitterbuffer import ReceivedBlock
from rtai.playback import Player
from rtai.wavstream import AudioSink, Format

log = logging.getLogger("rtai")

STDOUT = "-"


class FormatChanged(RtaiError):
    """The stream changed shape and the output (a pipe) cannot start a new file."""


class Recording:
    """Received blocks to WAV or raw output and/or the sound card."""

    def __init__(
        self, out: str | None, play: bool, latency_ms: float, device: str | None, fmt: Format = "wav"
    ) -> None:
        self.out = out
        self.format: Format = fmt
        self.play = play
        self.latency_ms = latency_ms
        self.device = device
        self.seconds = 0.0
        self.files: list[str] = []
        self.underruns = 0
        """Sound card periods that found the playback queue empty."""
        self.reader_gone = False
        """The pipe's reader closed it (``| head``): the recording ended there."""
        self._file: BinaryIO | None = None
        self._sink: AudioSink | None = None
        self._player: Player | None = None
        self._shape: tuple[int, int] | None = None

    def write(self, block: ReceivedBlock, rate: int, limit_s: float | None) -> bool:
        """Take a block; False once ``limit_s`` seconds are recorded or the reader left."""
        data = block.data
        if limit_s is not None:
            room = round((limit_s - self.seconds) * rate)
            data = data[: max(room, 0)]
        if data.shape[0]:
            self._sinks(rate, int(data.shape[1]))
            if self._sink is not None:
                try:
                    self._sink.write(data)
                except BrokenPipeError:
                    self.reader_gone = True
                    return False
            if self._player is not None:
                self._player.put(data)
            self.seconds += data.shape[0] / rate
        return limit_s is None or self.seconds < limit_s - 0.5 / rate

    def _sinks(self, rate: int, channels: int) -> None:
        if self._shape == (rate, channels):
            return
        if self._shape is not None:
            if self._sink is not None and not self._sink.seekable:
                raise FormatChanged(
                    f"the device now sends {channels} channels at {rate} Hz; a pipe carries one "
                    f"format, so the recording ends here ({self.seconds:.2f} s); run rtai listen again"
                )
            log.warning("the device now sends %d channels at %d Hz", channels, rate)
        self.close()
        self._shape = (rate, channels)
        if self.out is not None:
            self._open_sink(rate, channels)
        if self.play:
            self._player = Player(rate, channels, self.latency_ms / 1000.0, self.device)

    def _open_sink(self, rate: int, channels: int) -> None:
        assert self.out is not None
        if self.out == STDOUT:
            self._file, name = sys.stdout.buffer, "standard output"
        else:
            path = Path(self.out)
            if self.files:
                path = path.with_name(f"{path.stem}-{len(self.files) + 1}{path.suffix}")
            try:
                self._file = path.open("wb")
            except OSError as exc:
                raise RtaiError(f"cannot write {path}: {exc.strerror or exc}") from None
            name = str(path)
        self._sink = AudioSink(self._file, rate, channels, self.format)
        self.files.append(name)

    def close(self) -> None:
        """Final header, file closed, sound card released; safe to call twice."""
        sink, self._sink = self._sink, None
        if sink is not None:
            with contextlib.suppress(BrokenPipeError):
                sink.finish()
        file, self._file = self._file, None
        if file is not None and file is not sys.stdout.buffer:
            file.close()
        if self._player is not None:
            self._player.close()
            self.underruns += self._player.underruns
            self._player = None
