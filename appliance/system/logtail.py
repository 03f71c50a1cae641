"""The recent service log, kept for the device panel and streamed to browsers."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

LOG_TAIL = 200


@dataclass(frozen=True, slots=True)
class LogLine:
    level: str
    name: str
    message: str
    time: float

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "log",
            "level": self.level,
            "name": self.name,
            "message": self.message,
            "time": self.time,
        }


class LogTail(logging.Handler):
    """Keeps the recent log for the device panel and forwards new lines to browsers."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: deque[LogLine] = deque(maxlen=LOG_TAIL)
        self.listener: Callable[[LogLine], None] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        line = LogLine(record.levelname, record.name, record.getMessage(), record.created)
        self.lines.append(line)
        if self.listener is not None:
            self.listener(line)
