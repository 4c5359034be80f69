"""Admission control for CPU-heavy work: a few run, a bounded number wait, the rest are refused."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from voiceprint.metrics import INFERENCE_QUEUE, INFERENCE_WAIT
from voiceprint.service.errors import Overloaded


class InferenceGate:
    def __init__(self, workers: int, max_waiting: int) -> None:
        self._running = threading.BoundedSemaphore(max(1, workers))
        self._max_waiting = max_waiting
        self._waiting = 0
        self._lock = threading.Lock()

    @property
    def waiting(self) -> int:
        """Requests queued for a worker right now."""
        with self._lock:
            return self._waiting

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Run now if a worker is free, else wait in the queue, else refuse."""
        if not self._running.acquire(blocking=False):
            waited = time.perf_counter()
            with self._lock:
                if self._waiting >= self._max_waiting:
                    raise Overloaded(
                        f"the server is busy ({self._waiting} requests waiting for inference); "
                        "retry shortly"
                    )
                self._waiting += 1
                INFERENCE_QUEUE.set(self._waiting)
            try:
                self._running.acquire()
            finally:
                with self._lock:
                    self._waiting -= 1
                    INFERENCE_QUEUE.set(self._waiting)
                INFERENCE_WAIT.observe(time.perf_counter() - waited)
        try:
            yield
        finally:
            self._running.release()
