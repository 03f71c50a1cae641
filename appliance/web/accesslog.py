"""The access log: what reaches the service log of every request the web app serves.

Tornado logs every request at INFO, so the Device tab's service log filled with
``200 GET /static/...`` lines. Successful requests are only worth a line when
debugging (``--log-level DEBUG``); refusals and failures keep their warning
and error lines, and sign-in, sign-out and password events are logged by the
pages themselves.
"""

from __future__ import annotations

import logging

from tornado.web import RequestHandler

log = logging.getLogger("tornado.access")

CLIENT_ERROR = 400
SERVER_ERROR = 500


def level_for(status: int) -> int:
    """The log level of a request that got ``status``."""
    if status < CLIENT_ERROR:
        return logging.DEBUG
    if status < SERVER_ERROR:
        return logging.WARNING
    return logging.ERROR


def log_request(handler: RequestHandler) -> None:
    """Tornado's ``log_function``: one line per request at the level of its status."""
    status = handler.get_status()
    level = level_for(status)
    if not log.isEnabledFor(level):
        return
    request = handler.request
    took_ms = 1000.0 * request.request_time()
    # The path only: a query may carry a token (``stream.sdp?token=`` for tools that
    # cannot send a header), and nothing secret goes into the log.
    log.log(level, "%d %s %s (%s) %.1f ms", status, request.method, request.path, request.remote_ip, took_ms)
