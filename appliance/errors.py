"""The one base exception of the device service and its kinds."""


class ApplianceError(Exception):
    """Base of every error the device service raises on purpose."""

    code = "refused"
    """The protocol's error code for this kind of error."""


class ConfigError(ApplianceError):
    """An audio configuration value the device does not accept."""

    code = "bad_config"


class SourceUnavailable(ApplianceError):
    """The capture device is missing, unplugged, or cannot be opened."""


class AuthError(ApplianceError):
    """A token or password that does not authenticate."""

    code = "unauthorized"
