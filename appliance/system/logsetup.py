"""Where the service's log goes: the journal under systemd, stderr otherwise.

Only entry points (``appliance serve``) call :func:`setup_logging`; library
modules just use ``logging.getLogger(__name__)``.

Under systemd each record goes to the journal natively, with its priority
(``journalctl -p warning``) and fields: ``LOGGER``, ``CODE_FILE``/``LINE``/
``FUNC``, ``THREAD_NAME``, the exception text, ``SYSLOG_IDENTIFIER=micarray``
and ``MICARRAY_VERSION``, plus any upper-case ``extra=`` a call passes
(``log.info("...", extra={"MICARRAY_RUN": run_id})`` makes
``journalctl MICARRAY_RUN=...`` work). Without systemd-python it falls back to
stderr lines with ``<N>`` priority prefixes, which journald also understands.
"""

from __future__ import annotations

import logging
import os
import sys
from importlib import metadata
from typing import Literal, TextIO

Target = Literal["auto", "journal", "stderr"]

IDENTIFIER = "micarray"
STDERR_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
# journald stamps the time itself.
JOURNAL_STREAM_FORMAT = "%(name)s: %(message)s"

_SYSLOG_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


def journal_attached(stream: TextIO | None = None) -> bool:
    """True when ``stream`` (stderr by default) is systemd's journal stream.

    systemd sets ``JOURNAL_STREAM=dev:inode`` of the stream it connected;
    comparing it with the stream we hold avoids logging natively from a child
    whose stderr was redirected elsewhere.
    """
    value = os.environ.get("JOURNAL_STREAM", "")
    dev, _, ino = value.partition(":")
    if not (dev.isdigit() and ino.isdigit()):
        return False
    try:
        st = os.fstat((stream or sys.stderr).fileno())
    except (OSError, ValueError):
        return False
    return (st.st_dev, st.st_ino) == (int(dev), int(ino))


class PriorityPrefixFormatter(logging.Formatter):
    """Prefixes each line with ``<N>`` so journald assigns the syslog priority."""

    def format(self, record: logging.LogRecord) -> str:
        """The formatted record with its priority prefix."""
        priority = 7
        for level, value in sorted(_SYSLOG_PRIORITY.items()):
            if record.levelno >= level:
                priority = value
        return f"<{priority}>" + super().format(record).replace("\n", f"\n<{priority}>")


def _version() -> str:
    try:
        return metadata.version("micarray-appliance")
    except metadata.PackageNotFoundError:
        return "unknown"


def _journal_handler() -> logging.Handler:
    try:
        from systemd.journal import JournalHandler  # noqa: PLC0415 (optional device extra)
    except ImportError:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(PriorityPrefixFormatter(JOURNAL_STREAM_FORMAT))
        return handler
    journal: logging.Handler = JournalHandler(SYSLOG_IDENTIFIER=IDENTIFIER, MICARRAY_VERSION=_version())
    journal.setFormatter(logging.Formatter("%(message)s"))
    return journal


def setup_logging(level: int | str = logging.INFO, target: Target = "auto") -> str:
    """Send the root logger to the journal or stderr; returns ``"journal"`` or ``"stderr"``.

    ``auto`` picks the journal when stderr is systemd's journal stream. Calling
    it again replaces the handler it installed before.
    """
    if target not in ("auto", "journal", "stderr"):
        raise ValueError(f"log target {target!r} is not known; use auto, journal or stderr")
    chosen = target
    if target == "auto":
        chosen = "journal" if journal_attached() else "stderr"
    if chosen == "journal":
        handler = _journal_handler()
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(STDERR_FORMAT))
    handler.set_name("appliance.system.logsetup")
    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == "appliance.system.logsetup":
            root.removeHandler(old)
            old.close()
    root.addHandler(handler)
    root.setLevel(level)
    return chosen
