"""Finding the editor line a traceback or warning line points at.

The user's file is run unchanged, so a frame in that file carries the very
line number the editor shows.  Frames in library files get no line.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

# `  File "/x/run/abc/script.py", line 12, in <module>` (also SyntaxError reports)
_FRAME = re.compile(r'^\s*File "(?P<path>[^"]+)", line (?P<line>\d+)')
# `/x/run/abc/script.py:12: UserWarning: ...` from the warnings module
_WARNING = re.compile(r"^(?P<path>[^:\s][^:]*):(?P<line>\d+): \w+")


class UserFileLines:
    """Recognises output lines that point into one run's script."""

    def __init__(self, run_dir: Path, script: str) -> None:
        full = run_dir / script
        self._paths = {script, str(full), os.path.realpath(full)}

    def line_of(self, text: str) -> int | None:
        """The line number in the user's script ``text`` refers to, if any."""
        match = _FRAME.match(text) or _WARNING.match(text)
        if match is None or match["path"] not in self._paths:
            return None
        return int(match["line"])
