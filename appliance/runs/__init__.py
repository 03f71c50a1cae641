"""Script runs: launchers, run output, tracebacks and the saved scripts."""
