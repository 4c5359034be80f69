"""A real server process on a free port, against SQLite or a fresh PostgreSQL database."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from voiceprint.auth.tokens import mint_token
from voiceprint.config import get_settings
from voiceprint.store.db import make_engine, make_session_factory

PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
MAX_FEATURES_PER_GROUP = 3
MAX_GROUPS_PER_WORKSPACE = 6


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    data_dir: Path
    database_url: str
    log: Path
    process: subprocess.Popen[bytes] | None = None
    _db: Engine = field(init=False)

    def __post_init__(self) -> None:
        self._db = make_engine(self.database_url)

    def token(
        self,
        user: str = "alice",
        workspace: str | None = None,
        permissions: str = "all",
        expires_days: float | None = None,
    ) -> str:
        """A token for ``user``; a fresh workspace unless one is named."""
        workspace = workspace or f"ws-{secrets.token_hex(4)}"
        with make_session_factory(self._db)() as session, session.begin():
            minted = mint_token(
                session,
                user=user,
                workspace=workspace,
                permissions=permissions,
                expires_days=expires_days,
            )
        return minted.token

    def audio_files(self) -> list[Path]:
        return [p for p in (self.data_dir / "audio").glob("*/*") if p.is_file()]


def _start(tmp: Path, database_url: str, **settings: str) -> Iterator[Server]:
    port = _free_port()
    env = {
        **os.environ,
        "VOICEPRINT_DATA_DIR": str(tmp / "data"),
        "VOICEPRINT_DATABASE_URL": database_url,
        "VOICEPRINT_MODEL_DIR": str(get_settings().model_dir),
        "VOICEPRINT_MAX_FEATURES_PER_GROUP": str(MAX_FEATURES_PER_GROUP),
        "VOICEPRINT_MAX_GROUPS_PER_WORKSPACE": str(MAX_GROUPS_PER_WORKSPACE),
        "VOICEPRINT_INFERENCE_THREADS": "2",
        **{f"VOICEPRINT_{name.upper()}": value for name, value in settings.items()},
    }
    log = tmp / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "voiceprint.cli", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"server did not start:\n{log.read_text()}")
        time.sleep(0.2)
    try:
        yield Server(url, tmp / "data", database_url, log, process)
    finally:
        process.terminate()
        process.wait(timeout=10)


def postgres_database() -> Iterator[str]:
    import psycopg

    name = f"voiceprint_test_{secrets.token_hex(4)}"
    try:
        admin = psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres")
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL is not running at 127.0.0.1:5432 ({exc})")
    admin.autocommit = True
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp(f"server-{request.param}")
    if request.param == "sqlite":
        yield from _start(tmp, f"sqlite:///{tmp / 'voiceprint.db'}")
    else:
        for url in postgres_database():
            yield from _start(tmp, url)


def start_sqlite(
    tmp_path_factory: pytest.TempPathFactory, name: str, **settings: str
) -> Iterator[Server]:
    """A server on SQLite in a fresh folder, with ``VOICEPRINT_<NAME>`` settings."""
    tmp = tmp_path_factory.mktemp(name)
    yield from _start(tmp, f"sqlite:///{tmp / 'voiceprint.db'}", **settings)


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from start_sqlite(tmp_path_factory, "server-raw")


@pytest.fixture(scope="module")
def unqueued_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One inference at a time and no waiting room: the second concurrent one is refused."""
    yield from start_sqlite(
        tmp_path_factory,
        "server-unqueued",
        inference_workers="1",
        inference_queue="0",
        rate_limit_per_minute="30",
    )
