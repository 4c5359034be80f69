"""A real server for benchmarks: own data folder, SQLite, a free loopback port, a token."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from voiceprint.auth.tokens import mint_token
from voiceprint.store.db import make_engine, make_session_factory
from voiceprint.store.models import Token

PREFIX = "/v1/audio/voiceprint_groups"


@dataclass
class BenchServer:
    url: str
    token: str
    process: subprocess.Popen[bytes]
    data_dir: Path
    account_id: int

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def rss_mb(pid: int) -> tuple[float, float]:
    """A process's resident memory now and at its peak, in MB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def bench_server(**settings: str) -> Iterator[BenchServer]:
    """Start ``voiceprint serve`` with ``VOICEPRINT_<NAME>`` settings; stop it afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix="voiceprint-bench-"))
    port = _free_port()
    env = {
        **os.environ,
        "VOICEPRINT_DATA_DIR": str(tmp),
        **{f"VOICEPRINT_{name.upper()}": value for name, value in settings.items()},
    }
    env.pop("VOICEPRINT_DATABASE_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "voiceprint.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        sessions = make_session_factory(make_engine(f"sqlite:///{tmp / 'voiceprint.db'}"))
        with sessions() as session, session.begin():
            minted = mint_token(session, user="bench", workspace=secrets.token_hex(4))
            account_id = session.get_one(Token, minted.id).account_id
        yield BenchServer(url, minted.token, process, tmp, account_id)
    finally:
        process.terminate()
        process.wait(timeout=10)
