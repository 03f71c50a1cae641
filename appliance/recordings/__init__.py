"""Recordings kept on the device: written as captured, listed, repaired after a crash."""
