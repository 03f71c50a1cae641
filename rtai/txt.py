"""The keys of a device's ``_micarray._tcp`` TXT record (short, as DNS-SD advises).

A module of their own, so the device can name them without loading zeroconf.
"""

from __future__ import annotations

TXT_ID = "id"
TXT_MODEL = "model"
TXT_CHANNELS = "channels"
TXT_RATE = "rate"
TXT_RATES = "rates"
TXT_API_PORT = "api"
TXT_WS_PATH = "path"
TXT_VERSION = "version"
TXT_PROTOCOL = "proto"
TXT_HOST = "host"
"""The host name the device settled on (``micarray-2.local`` after a rename)."""
