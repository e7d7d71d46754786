"""Login throttling: after a few failures for one name or one address, each further try must wait longer.

Kept in memory: a restart forgives, which is fine for slowing down guessing (hashing already costs ~50 ms a
try). With several web processes each keeps its own count, so the limit is per process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

MAX_WAIT_S = 300.0
FORGET_AFTER_S = 3600.0


class LoginThrottle:
    def __init__(self, free_failures: int = 5, clock=time.monotonic):
        self.free = free_failures
        self.clock = clock
        self._failures: dict[str, tuple[int, float]] = {}  # key -> (count, time of the last failure)
        self._lock = threading.Lock()

    def wait_s(self, keys: Iterable[str]) -> float:
        """Seconds before another try for these keys is allowed (0: go ahead)."""
        now = self.clock()
        with self._lock:
            return max((self._wait(key, now) for key in keys), default=0.0)

    def _wait(self, key: str, now: float) -> float:
        count, last = self._failures.get(key, (0, 0.0))
        if count < self.free:
            return 0.0
        delay = min(MAX_WAIT_S, 2.0 ** (count - self.free + 1))
        return max(0.0, last + delay - now)

    def failed(self, keys: Iterable[str]) -> None:
        now = self.clock()
        with self._lock:
            for key in keys:
                count, last = self._failures.get(key, (0, now))
                self._failures[key] = (count + 1 if now - last < FORGET_AFTER_S else 1, now)
            if len(self._failures) > 100_000:  # an address-spraying client must not grow this forever
                self._failures = {k: v for k, v in self._failures.items() if now - v[1] < FORGET_AFTER_S}

    def succeeded(self, keys: Iterable[str]) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)
