"""Capture: sources, the capture thread, the audio configuration, the bus and blocks."""
