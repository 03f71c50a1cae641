"""The one base exception of the rtai package."""


class RtaiError(Exception):
    """Something a user of rtai can fix; the message says what and how."""


class DeviceRefused(RtaiError):
    """The device answered but refused the token or the request."""


class DeviceUnreachable(RtaiError):
    """No connection to the device's web port."""
