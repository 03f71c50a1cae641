"""Ending a script from a callback as an uncaught exception in it would."""

from __future__ import annotations

import ctypes
import sys
import threading


class CallbackFailed(BaseException):
    """Raised in the main thread when a callback on the background thread ended the script.

    ``code`` is the exit status the callback chose (1 for an exception).  Not a
    SystemExit: CPython reads no status from an exception raised this way, but
    an uncaught exception ends with status 1, and the script's exception hook
    (``browserinterface._say_setup_errors_in_words``) ends it with any other.
    """

    code = 1


def end_main_thread(code: int) -> None:
    """End the script from a background thread as ``sys.exit(code)`` in the main thread would.

    CPython's documented hook for raising an exception in another thread;
    the main thread sees it at its next bytecode (a long sleep ends first).
    """
    exc: type[BaseException] = SystemExit
    if code != 0:
        exc = type("CallbackFailed", (CallbackFailed,), {"code": code})
    main = threading.main_thread().ident
    if main is not None:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(main), ctypes.py_object(exc))


def say(line: str) -> None:
    """One line to stderr in one write, so a line printed by another thread cannot land inside it."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
