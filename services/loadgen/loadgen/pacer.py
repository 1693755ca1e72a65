"""One request rate shared by every shopper thread."""
from __future__ import annotations

import threading
import time


class Pacer:
    """Hands out evenly spaced start times, one per request, at `rate` per second over all callers.

    A caller that is late (every shopper was busy waiting for slow answers) gets "now", not a backlog: after a slow
    phase the generator goes back to the target rate instead of bursting to catch up, like real shoppers would.
    """

    def __init__(self, rate: float, stop: threading.Event):
        self.interval = 1.0 / rate
        self.stop = stop
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def wait_turn(self) -> bool:
        """Block until this caller may send its next request. False when the generator is stopping."""
        with self._lock:
            now = time.monotonic()
            slot = max(self._next, now)
            self._next = slot + self.interval
        delay = slot - time.monotonic()
        if delay > 0:
            return not self.stop.wait(delay)
        return not self.stop.is_set()
