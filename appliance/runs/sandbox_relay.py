"""Inside a run's sandbox: the device's API on loopback, then the script.

A sandboxed run has a network namespace of its own with nothing but ``lo``,
so the device's API (on the host's loopback) is out of reach.  The service
binds one Unix socket into the sandbox; this program listens on the
sandbox's own ``127.0.0.1:PORT`` (the address in ``BI_DEVICE``), carries each
connection to that socket, starts the script and ends with it (its status
passed on as its own).

It runs as the run's own user with only the standard library: it must not
import anything from the device, which the sandbox does not show.

Usage: ``python sandbox_relay.py SOCKET PORT -- ARGV...``; with ``-`` for
PORT (a run told of no device, or one with every network) it only starts
the script.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import socket
import sys
import threading

CHUNK = 65536
#: Connections carried at once; a script needs one or two.
MAX_CONNECTIONS = 16


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(CHUNK):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _carry(client: socket.socket, path: str, slots: threading.Semaphore) -> None:
    try:
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            upstream.connect(path)
        except OSError:
            upstream.close()
            return
        back = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
        back.start()
        _pipe(client, upstream)
        back.join()
        upstream.close()
    finally:
        client.close()
        slots.release()


def _serve(listener: socket.socket, path: str) -> None:
    slots = threading.Semaphore(MAX_CONNECTIONS)
    with selectors.DefaultSelector() as sel:
        sel.register(listener, selectors.EVENT_READ)
        while True:
            sel.select()
            client, _ = listener.accept()
            if not slots.acquire(blocking=False):
                client.close()
                continue
            threading.Thread(target=_carry, args=(client, path, slots), daemon=True).start()


def _exit_like(status: int) -> None:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1)


def main(argv: list[str]) -> None:
    """Listen, start the script with the signals it expects, end as it ends."""
    path, port, sep, *command = argv
    if sep != "--" or not command:
        sys.exit("usage: sandbox_relay.py SOCKET PORT -- ARGV...")
    listener = None if port == "-" else socket.create_server(("127.0.0.1", int(port)), backlog=16)
    pid = os.fork()
    if pid == 0:
        if listener is not None:
            listener.close()
        # The service starts the sandbox with Stop's signals ignored so that
        # only the script gets them; the script must get them as usual.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.execv(command[0], command)
    if listener is not None:
        threading.Thread(target=_serve, args=(listener, path), daemon=True).start()
    _, status = os.waitpid(pid, 0)
    _exit_like(status)


if __name__ == "__main__":
    main(sys.argv[1:])
