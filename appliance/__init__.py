"""The device service: capture, the audio bus, client sessions and script runs."""

__version__ = "0.1.0"
