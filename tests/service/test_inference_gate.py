"""Admission control: a bounded number of requests wait; the rest get a clear refusal."""

from __future__ import annotations

import threading
import time

import pytest

from voiceprint.service.errors import Overloaded
from voiceprint.service.inference import InferenceGate


def test_waits_up_to_the_queue_then_refuses() -> None:
    gate = InferenceGate(workers=1, max_waiting=1)
    release = threading.Event()
    order: list[str] = []

    def hold() -> None:
        with gate.slot():
            order.append("first running")
            release.wait(5)

    def wait_then_run() -> None:
        with gate.slot():
            order.append("second running")

    first = threading.Thread(target=hold)
    first.start()
    while not order:
        time.sleep(0.01)
    second = threading.Thread(target=wait_then_run)
    second.start()
    deadline = time.monotonic() + 5
    while gate.waiting < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert gate.waiting == 1  # the second now waits for the only worker

    with pytest.raises(Overloaded, match="busy"), gate.slot():
        pass
    release.set()
    first.join()
    second.join()
    assert order == ["first running", "second running"]
    with gate.slot():  # capacity comes back once the queue drains
        pass


def test_free_workers_run_at_once_even_with_no_queue() -> None:
    gate = InferenceGate(workers=2, max_waiting=0)
    inside = threading.Barrier(2, timeout=5)
    finished: list[bool] = []

    def run() -> None:
        with gate.slot():
            inside.wait()  # both must be inside at once, or this times out
        finished.append(True)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert finished == [True, True]
