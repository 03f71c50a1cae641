"""The one base exception of the rtai package."""


class RtaiError(Exception):
    """Something a user of rtai can fix; the message says what and how."""
