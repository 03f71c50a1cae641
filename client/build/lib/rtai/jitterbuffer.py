"""The receiver's timeline: reordering, duplicates, loss and concealment.

Frames are placed by their (extended) RTP timestamp on a ring covering a few
seconds.  A contiguous run of received frames is released at once; a missing
frame is waited for until its playout deadline, then replaced by silence
(zeros, never older audio), so the output always has exactly one frame per
timestamp: a recording is as long as the time it covers, whatever was lost.

The deadline of a frame is its media time plus the largest transit seen
recently plus the latency target.  "Transit" is arrival time minus media
time; its maximum absorbs the device's block bursts and the network's jitter
and follows a slow drift of either clock, so the buffer adapts by itself and
``latency_s`` only adds a margin on top.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from rtai.seqnum import Unwrapper
from rtai.stats import ReceiverStats

log = logging.getLogger(__name__)

CAPACITY_S = 4.0
"""Seconds of audio the ring holds beyond the latency target."""
TRANSIT_BUCKET_S = 1.0
"""Length of one bucket of the sliding transit maximum."""
TRANSIT_BUCKETS = 5
"""Buckets kept: the buffer forgets a transit peak after about this many seconds."""
MAX_TRACKED_GAP = 10_000
"""A sequence gap larger than this is counted lost at once, not tracked per packet."""
SEEN_WINDOW = 4096
"""Recent sequence numbers remembered to recognise duplicates."""
DRIFT_MIN_SPAN_S = 10.0
"""Seconds of arrivals needed before a drift figure is given."""
OUTAGE_STEP_S = 0.005
"""While nothing arrives at all, silence is added in steps of this many seconds."""
RESYNC_JUMP_S = 10.0
"""A timestamp jump beyond this restarts the timeline instead of concealing the gap."""
REPORT_WINDOW = 10
"""Sender reports whose earliest capture stamp maps timestamps to device time."""


@dataclass(frozen=True, slots=True)
class ReceivedBlock:
    """Consecutive frames of the stream's timeline, as the receiver yields them."""

    timestamp: int
    """Extended RTP timestamp of the first frame (counts frames, never wraps)."""
    data: NDArray[np.int16]
    """Shaped ``(frames, channels)``; concealed frames are zeros."""
    concealed: tuple[tuple[int, int], ...] = ()
    """``(offset, frames)`` spans of ``data`` that are silence in place of lost audio."""
    capture_time: float | None = None
    """Device wall-clock time (Unix s) of the first frame, once a sender report came."""

    @property
    def frames(self) -> int:
        return int(self.data.shape[0])

    @property
    def concealed_frames(self) -> int:
        return sum(n for _, n in self.concealed)


class JitterBuffer:
    """Puts packets' frames in timestamp order and releases them on time."""

    def __init__(
        self, rate: int, channels: int, *, latency_s: float, stats: ReceiverStats | None = None
    ) -> None:
        self.rate = rate
        self.channels = channels
        self.latency_s = latency_s
        self.stats = stats if stats is not None else ReceiverStats()
        self._cap = int((CAPACITY_S + latency_s) * rate)
        self._buf = np.zeros((self._cap, channels), dtype=np.int16)
        self._have = np.zeros(self._cap, dtype=bool)
        self._seq = Unwrapper(16)
        self._ts = Unwrapper(32)
        self._base = self._release = self._end = 0
        self._started = False
        self._highest_seq = 0
        self._seen: set[int] = set()
        self._missing: dict[int, int] = {}
        self._lost: set[int] = set()
        self._ready: list[ReceivedBlock] = []
        self._buckets: list[list[float]] = []  # [start time, max transit, min transit]
        self._first_min: tuple[float, float] | None = None
        self._last_arrival: tuple[float, int] | None = None
        self._offsets: deque[float] = deque(maxlen=REPORT_WINDOW)

    # -- arrivals -------------------------------------------------------

    def insert(self, seq: int, timestamp: int, samples: NDArray[np.int16], arrival: float) -> None:
        """Place one packet's frames; ``arrival`` is ``time.monotonic()`` at reception."""
        ext_seq, ts = self._seq.extend(seq), self._ts.extend(timestamp)
        if not self._started:
            self._start(ext_seq, ts)
        if ext_seq in self._seen:
            self.stats.duplicates += 1
            return
        self._remember(ext_seq)
        self._observe_transit(arrival, ts)
        was_lost = self._account_order(ext_seq, ts)
        end = ts + int(samples.shape[0])
        if ts < self._release:
            self.stats.late += 1
            if was_lost:
                self.stats.lost -= 1
            if end <= self._release:
                return
            samples, ts = samples[self._release - ts :], self._release
        else:
            self.stats.received += 1
        if end - self._release > self._cap:
            self._make_room(ts, end)
        self._write(ts, samples)
        self._end = max(self._end, end)

    def _start(self, ext_seq: int, ts: int) -> None:
        self._started = True
        self._base = self._release = self._end = ts
        self._highest_seq = ext_seq - 1

    def _remember(self, ext_seq: int) -> None:
        self._seen.add(ext_seq)
        if len(self._seen) > 2 * SEEN_WINDOW:
            floor = self._highest_seq - SEEN_WINDOW
            self._seen = {s for s in self._seen if s >= floor}
            self._lost = {s for s in self._lost if s >= floor}

    def _account_order(self, ext_seq: int, ts: int) -> bool:
        """Track gaps and reordering; True when this packet was already counted lost."""
        if ext_seq > self._highest_seq:
            gap = ext_seq - self._highest_seq - 1
            if gap > MAX_TRACKED_GAP:
                self.stats.lost += gap
            else:
                for missing in range(self._highest_seq + 1, ext_seq):
                    self._missing[missing] = ts
            self._highest_seq = ext_seq
            return False
        self._missing.pop(ext_seq, None)
        if ext_seq in self._lost:
            self._lost.discard(ext_seq)
            return True
        if ts >= self._release:
            self.stats.reordered += 1
        return False

    def _make_room(self, ts: int, end: int) -> None:
        """A packet beyond the ring: conceal up to it, or restart on a huge jump."""
        if ts - self._end > RESYNC_JUMP_S * self.rate:
            log.info("timestamp jumped by %d frames; restarting the timeline", ts - self._end)
            self._flush(self._end)
            self._release = self._end = self._base = ts
            self._buckets.clear()
            self._offsets.clear()
            return
        self._flush(end - self._cap)

    def _flush(self, until: int) -> None:
        while self._release < until:
            block = self._take(min(until, self._release + self._cap // 2), force=True)
            if block is None:
                break
            self._ready.append(block)

    def _write(self, ts: int, samples: NDArray[np.int16]) -> None:
        start = ts % self._cap
        n = int(samples.shape[0])
        first = min(n, self._cap - start)
        self._buf[start : start + first] = samples[:first]
        self._have[start : start + first] = True
        if first < n:
            self._buf[: n - first] = samples[first:]
            self._have[: n - first] = True

    def _observe_transit(self, arrival: float, ts: int) -> None:
        transit = arrival - (ts - self._base) / self.rate
        if not self._buckets or arrival - self._buckets[-1][0] >= TRANSIT_BUCKET_S:
            self._buckets.append([arrival, transit, transit])
            del self._buckets[:-TRANSIT_BUCKETS]
            if self._first_min is None and len(self._buckets) == 2:
                first = self._buckets[0]
                self._first_min = (first[0], first[2])
        else:
            bucket = self._buckets[-1]
            bucket[1] = max(bucket[1], transit)
            bucket[2] = min(bucket[2], transit)
        if self._last_arrival is not None:
            before, before_ts = self._last_arrival
            d = (arrival - before) - (ts - before_ts) / self.rate
            self.stats.jitter_ms += (abs(d) * 1000.0 - self.stats.jitter_ms) / 16.0
        self._last_arrival = (arrival, ts)

    def set_sender_report(self, rtp_timestamp: int, unix_time: float) -> None:
        """Pair a timestamp with the device's capture time (from an RTCP SR)."""
        if not self._started:
            return
        highest = self._ts.highest or 0
        ts = highest - ((highest - rtp_timestamp) % (1 << 32))
        if highest - ts > (1 << 31):
            ts += 1 << 32
        self._offsets.append(unix_time - (ts - self._base) / self.rate)

    def capture_time(self, ts: int) -> float | None:
        """Device wall-clock time of the frame with extended timestamp ``ts``.

        The device stamps a block when its capture thread wakes, a little after
        the sound card finished it; the earliest stamp of recent reports is
        the closest to the truth.
        """
        if not self._offsets:
            return None
        return min(self._offsets) + (ts - self._base) / self.rate

    # -- releases -------------------------------------------------------

    def offset(self) -> float:
        """Playout offset: a frame is due at its media time plus this (monotonic s)."""
        worst = max(b[1] for b in self._buckets) if self._buckets else 0.0
        return worst + self.latency_s

    def deadline(self) -> float | None:
        """When the next frame not yet released will be concealed if still missing."""
        if not self._started:
            return None
        due = (self._release - self._base) / self.rate + self.offset()
        # Past the last packet received, waking for every frame would spin.
        return due + OUTAGE_STEP_S if self._release >= self._end else due

    def pop(self, now: float) -> ReceivedBlock | None:
        """The next releasable block at monotonic time ``now``, or None."""
        if self._ready:
            return self._ready.pop(0)
        if not self._started:
            return None
        due = self._base + math.floor((now - self.offset()) * self.rate) + 1
        return self._take(max(self._end, due), due=due)

    def _take(self, limit: int, *, due: int = 0, force: bool = False) -> ReceivedBlock | None:
        start = pos = self._release
        limit = min(limit, start + self._cap)
        spans: list[tuple[int, int]] = []
        while pos < limit:
            idx = pos % self._cap
            seg = self._have[idx : idx + min(limit - pos, self._cap - idx)]
            filled = bool(seg[0])
            changes = np.flatnonzero(seg != filled)
            run = int(changes[0]) if changes.size else int(seg.shape[0])
            if not filled:
                if not force:
                    if pos >= due:
                        break
                    # A packet's frames are lost together: once the first is due,
                    # conceal up to the next frame received.
                    if pos >= self._end:
                        run = min(run, due - pos)
                spans.append((pos - start, run))
            pos += run
        if pos == start:
            return None
        return self._release_range(start, pos, tuple(spans))

    def _release_range(self, start: int, stop: int, spans: tuple[tuple[int, int], ...]) -> ReceivedBlock:
        first, n = start % self._cap, stop - start
        idx = (np.arange(first, first + n) % self._cap) if first + n > self._cap else None
        if idx is None:
            data = self._buf[first : first + n].copy()
            self._have[first : first + n] = False
        else:
            data = self._buf[idx]
            self._have[idx] = False
        for offset, frames in spans:
            data[offset : offset + frames] = 0
        self._release = stop
        self._end = max(self._end, stop)
        concealed = sum(f for _, f in spans)
        self.stats.output_frames += n
        self.stats.concealed_frames += concealed
        self._declare_lost(stop)
        self.stats.buffer_ms = 1000.0 * (self.offset() - self._min_transit())
        self._update_drift()
        return ReceivedBlock(start, data, spans, self.capture_time(start))

    def _declare_lost(self, position: int) -> None:
        gone = [s for s, bound in self._missing.items() if bound <= position]
        for s in gone:
            del self._missing[s]
            self._lost.add(s)
        self.stats.lost += len(gone)

    def _min_transit(self) -> float:
        return min(b[2] for b in self._buckets) if self._buckets else 0.0

    def _update_drift(self) -> None:
        if self._first_min is None or len(self._buckets) < 2:
            return
        then, first_min = self._first_min
        bucket = self._buckets[-2]  # the last complete bucket
        span = bucket[0] - then
        if span >= DRIFT_MIN_SPAN_S:
            self.stats.drift_ppm = -1e6 * (bucket[2] - first_min) / span
