"""Time-ordered 64-bit ids (snowflake layout): 41 bits of ms, 10 of node, 12 of sequence."""

from __future__ import annotations

import secrets
import threading
import time

_EPOCH_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z


class IdGenerator:
    def __init__(self, node: int | None = None) -> None:
        # A random node per process keeps ids of several server processes apart.
        self._node = secrets.randbelow(1024) if node is None else node
        self._lock = threading.Lock()
        self._last_ms = 0
        self._sequence = 0

    def next_id(self) -> int:
        with self._lock:
            now = max(int(time.time() * 1000) - _EPOCH_MS, self._last_ms)
            if now == self._last_ms:
                self._sequence = (self._sequence + 1) & 0xFFF
                if self._sequence == 0:  # 4096 ids in one millisecond: borrow the next one
                    now += 1
            else:
                self._sequence = 0
            self._last_ms = now
            return (now << 22) | (self._node << 12) | self._sequence


new_id = IdGenerator().next_id
