"""Client sessions: one WebSocket connection each, chart tabs and RTP streams."""
