"""Shares of the device's limited things that one credential may hold.

The device has a few of some things for everyone (RTP stream slots, chart
tabs).  Without a share per owner one token or one script could take them
all; so each credential (a run, an API token, the local token) gets at most
a part.  Tabs count in ``appliance.sessions.handlers``; streams here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from appliance.sessions.streaming import StreamError

if TYPE_CHECKING:
    from appliance.sessions.session import ClientSession

#: RTP streams one credential may have open at once (the device has 8 in all).
STREAMS_PER_OWNER = 2


def check_stream_quota(
    session: ClientSession, sessions: Iterable[ClientSession], listeners: Iterable[dict[str, Any]]
) -> None:
    """Raise StreamError when ``session``'s credential already has its share of streams.

    Counted over every connection with the same credential, so opening more
    connections does not give more streams.
    """
    mine = {s.id for s in sessions if s.credential == session.credential}
    used = sum(1 for listener in listeners if listener["owner"] in mine)
    if used >= STREAMS_PER_OWNER:
        raise StreamError(
            f"{used} streams are open with this {session.principal.kind} credential; "
            f"the limit is {STREAMS_PER_OWNER} per credential. Stop one first"
        )
