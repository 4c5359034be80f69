"""Kill the server at random moments while clients write; check nothing acknowledged is lost.

Audio is checked wherever the server keeps it (files, or ``audio_blobs`` rows with
``VOICEPRINT_BLOB_STORE=database``): no sample may name a blob that is not there, no
voiceprint may be left without a sample, and the restart's sweep must leave no blob
that no sample names. Used by test_crash_safety.py (a few cycles) and bench/crash_safety.py (many).
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import func, select, update

from tests.api.conftest import Server, _start
from tests.conftest import read_speech, speech_files, wav_bytes
from voiceprint.store.db import make_engine, make_session_factory
from voiceprint.store.models import AudioBlob, Feature, Sample

PREFIX = "/v1/audio/voiceprint_groups"
SPEAKERS = ("1688", "2033", "3080", "533", "1998", "2414")


@dataclass
class Ledger:
    """What the server acknowledged (code 0), by voiceprint id."""

    alive: dict[str, int] = field(default_factory=dict)  # id -> samples acknowledged
    deleted: set[str] = field(default_factory=set)
    # Deletes sent but not answered (the server died meanwhile): either outcome is right.
    maybe_deleted: set[str] = field(default_factory=set)
    writes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class CycleReport:
    cycles: int = 0
    writes_acknowledged: int = 0
    lost: list[str] = field(default_factory=list)
    deletes_unanswered: int = 0  # sent when the server was killed; done or not, both are right
    resurrected: list[str] = field(default_factory=list)
    dangling_samples: int = 0
    voiceprints_without_samples: int = 0
    leftovers_swept: int = 0


def _clips() -> list[bytes]:
    clips = []
    for speaker in SPEAKERS:
        wave, rate = read_speech(speech_files("librispeech", speaker)[0])
        clips.append(wav_bytes(wave[: 4 * rate], rate))
    return clips


def _client(
    url: str, token: str, group: str, clips: list[bytes], ledger: Ledger, stop: threading.Event
) -> None:
    rng = random.Random(threading.get_ident())
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as client:
        while not stop.is_set():
            try:
                with ledger.lock:
                    mine = list(ledger.alive)
                action = (
                    rng.choice(["create", "create", "add", "replace", "delete"])
                    if mine
                    else "create"
                )
                clip = rng.choice(clips)
                if action == "create":
                    r = client.post(
                        f"{PREFIX}/{group}/features", data={"name": "k"}, files={"file": clip}
                    )
                    if r.json().get("code") == 0:
                        with ledger.lock:
                            ledger.alive[r.json()["data"]["id"]] = 1
                            ledger.writes += 1
                    continue
                target = rng.choice(mine)
                if action == "add":
                    r = client.post(
                        f"{PREFIX}/{group}/features/{target}/samples", files={"file": clip}
                    )
                elif action == "replace":
                    r = client.put(f"{PREFIX}/{group}/features/{target}", files={"file": clip})
                else:
                    try:
                        r = client.delete(f"{PREFIX}/{group}/features/{target}")
                    except httpx.TransportError:
                        with ledger.lock:
                            ledger.maybe_deleted.add(target)
                        raise
                if r.json().get("code") == 0:
                    with ledger.lock:
                        ledger.writes += 1
                        if action == "delete":
                            ledger.alive.pop(target, None)
                            ledger.deleted.add(target)
                elif action == "delete" and target in ledger.maybe_deleted:
                    with ledger.lock:  # its earlier, unanswered delete did happen
                        ledger.alive.pop(target, None)
            except (httpx.TransportError, ValueError):
                time.sleep(0.05)  # the server is down (killed): keep trying until told to stop


def restartable(
    tmp: Path, database_url: str, **settings: str
) -> Callable[[], AbstractContextManager[Server]]:
    """Start a server on the same data folder and database (with ``VOICEPRINT_<NAME>``
    settings), as often as asked."""

    @contextmanager
    def start() -> Iterator[Server]:
        running = _start(tmp, database_url, **settings)
        try:
            yield next(running)
        finally:
            running.close()

    return start


def run_cycles(
    start: Callable[[], AbstractContextManager[Server]], cycles: int, seed: int = 0
) -> CycleReport:
    """``start()`` gives a running server on the same data each time; ``cycles`` kills."""
    rng = random.Random(seed)
    clips = _clips()
    ledger = Ledger()
    report = CycleReport()
    token = group = None
    for _ in range(cycles):
        with start() as server:
            if token is None:
                token = server.token("crash")
                auth = {"Authorization": f"Bearer {token}"}
                group = httpx.post(
                    f"{server.url}{PREFIX}", json={"name": "crash"}, headers=auth
                ).json()["data"]["id"]
            stop = threading.Event()
            threads = [
                threading.Thread(
                    target=_client, args=(server.url, token, group, clips, ledger, stop)
                )
                for _ in range(3)
            ]
            for t in threads:
                t.start()
            _first_write(ledger, ledger.writes)
            time.sleep(rng.uniform(0.5, 2.0))
            assert server.process is not None
            server.process.kill()  # SIGKILL: no shutdown of any kind
            server.process.wait()
            stop.set()
            for t in threads:
                t.join()
            report.cycles += 1
    with start() as server:
        _age_blobs(server)
    with start() as server:
        report.writes_acknowledged = ledger.writes
        report.leftovers_swept = _check(server, token, group, ledger, report)
    return report


def _first_write(ledger: Ledger, before: int, deadline_s: float = 120.0) -> None:
    """Wait until the restarted server acknowledges a write, so every kill comes while
    writes are under way (on a loaded machine a fixed delay can end before the first)."""
    deadline = time.monotonic() + deadline_s
    while ledger.writes == before and time.monotonic() < deadline:
        time.sleep(0.05)


def _age_blobs(server: Server) -> None:
    """Make every stored blob, file or row, look older than the sweep's grace period (one
    hour)."""
    old = time.time() - 7200
    for path in (server.data_dir / "audio").glob("*/*"):
        os.utime(path, (old, old))
    with make_session_factory(make_engine(server.database_url))() as session, session.begin():
        session.execute(update(AudioBlob).values(created_at=int(old)))


def _check(server: Server, token: str, group: str, ledger: Ledger, report: CycleReport) -> int:
    auth = {"Authorization": f"Bearer {token}"}
    listed = httpx.get(f"{server.url}{PREFIX}/{group}/features?page_size=200", headers=auth).json()
    present = {item["id"] for item in listed["data"]["items"]}
    unanswered = ledger.maybe_deleted - ledger.deleted
    report.deletes_unanswered = len(unanswered)
    report.lost = sorted(set(ledger.alive) - present - unanswered)
    report.resurrected = sorted(ledger.deleted & present)
    sessions = make_session_factory(make_engine(server.database_url))
    with sessions() as session:
        keys = set(session.scalars(select(Sample.audio_key)))
        stored = set(session.scalars(select(AudioBlob.key)))
        report.voiceprints_without_samples = session.scalar(
            select(func.count()).select_from(Feature).where(~Feature.samples.any())
        )
    stored |= {p.name for p in (server.data_dir / "audio").glob("*/*")}
    report.dangling_samples = len(keys - stored)
    leftovers = len(stored - keys)
    probe = _clips()[0]
    answer = httpx.post(
        f"{server.url}{PREFIX}/{group}/speaker_identify",
        headers=auth,
        files={"file": probe},
        timeout=60,
    )
    assert answer.json()["code"] == 0, answer.text
    return leftovers


def iterate(report: CycleReport) -> Iterator[str]:
    yield f"kill cycles: {report.cycles}"
    yield f"writes acknowledged: {report.writes_acknowledged}"
    yield f"acknowledged voiceprints lost: {len(report.lost)}"
    yield f"acknowledged deletes undone: {len(report.resurrected)}"
    yield f"deletes unanswered at a kill (either outcome correct): {report.deletes_unanswered}"
    yield f"samples pointing at missing audio: {report.dangling_samples}"
    yield f"voiceprints without a sample: {report.voiceprints_without_samples}"
    yield f"unreferenced blobs left after the restart's sweep: {report.leftovers_swept}"
