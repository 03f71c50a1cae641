"""Capture sources: ALSA hardware, the array simulator, and WAV files.

Every source implements :class:`appliance.capture.sources.base.CaptureSource`.
"""
