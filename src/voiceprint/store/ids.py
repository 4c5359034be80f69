"""Ids: time-ordered 64-bit integers (snowflake layout), and the one rule for reading them.

An id is 41 bits of milliseconds, 10 of node and 12 of sequence. Clients see
it as a decimal string; ``parse_id`` is the only place that turns text back
into an id, for routes and tokens alike.
"""

from __future__ import annotations

import re
import secrets
import threading
import time

_EPOCH_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
MAX_ID = 2**63 - 1
# ASCII digits only: str.isdigit() and int() also accept '²' or Arabic-Indic digits.
_ID_TEXT = re.compile(r"[1-9][0-9]{0,18}")


def parse_id(text: str) -> int | None:
    """The id written in ``text`` (ASCII decimal, 1..2**63-1), or None if it is not one."""
    if not _ID_TEXT.fullmatch(text):
        return None
    value = int(text)
    return value if value <= MAX_ID else None


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
