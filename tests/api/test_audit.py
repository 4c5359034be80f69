"""The audit trail, end to end: every route of the OpenAPI document is called, and each one
touching biometric data writes exactly its row (with the caller, the ids, the result code and
the request's logid) while the rest write none; the live stream writes its opening and its
closing; `voiceprint audit` reads the rows back."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from websockets.sync.client import connect

from tests.api.conftest import Server, start_sqlite
from tests.conftest import read_speech, run_cli, speech_files, wav_bytes
from voiceprint.store.crypto import generate_key
from voiceprint.store.models import AuditEvent

PREFIX = "/v1/audio/voiceprint_groups"
KEY = generate_key()

# (method, path) of every route -> the operation it records, or None: it touches no
# biometric data. A route the document gains must be added here, so nobody forgets its row.
ACROSS = "/v1/audio/speaker_identify"
OPERATIONS: dict[tuple[str, str], str | None] = {
    ("POST", PREFIX): None,
    ("GET", PREFIX): None,
    ("PUT", PREFIX + "/{group_id}"): None,
    ("DELETE", PREFIX + "/{group_id}"): "delete_group",
    ("POST", PREFIX + "/{group_id}/features"): "enrol",
    ("GET", PREFIX + "/{group_id}/features"): None,
    ("PUT", PREFIX + "/{group_id}/features/{feature_id}"): "update_voiceprint",
    ("DELETE", PREFIX + "/{group_id}/features/{feature_id}"): "delete_voiceprint",
    ("POST", PREFIX + "/{group_id}/features/{feature_id}/samples"): "add_samples",
    ("GET", PREFIX + "/{group_id}/features/{feature_id}/audio"): "download_audio",
    ("POST", PREFIX + "/{group_id}/speaker_identify"): "identify",
    ("POST", PREFIX + "/{group_id}/speaker_diarize"): "diarize",
    ("POST", PREFIX + "/{group_id}/features/{feature_id}/verify"): "verify",
    ("POST", ACROSS): "identify",
    ("GET", "/health"): None,
    # The xiaozhi contract: the same service operations, so the same rows.
    ("GET", "/voiceprint/health"): None,
    ("POST", "/voiceprint/register"): "enrol",
    ("POST", "/voiceprint/identify"): "identify",
    ("DELETE", "/voiceprint/{speaker_id}"): "delete_voiceprint",
}


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from start_sqlite(
        tmp_path_factory,
        "server-audit",
        encryption_key=KEY,
        max_groups_per_workspace="100",
        max_features_per_group="20",  # the xiaozhi routes share one group
    )


def _clip(speaker: str, index: int = 0) -> bytes:
    return wav_bytes(*read_speech(speech_files("librispeech", speaker)[index]))


def _rows(server: Server) -> list[AuditEvent]:
    with server._db.connect() as connection:
        return list(connection.execute(select(AuditEvent).order_by(AuditEvent.id)))


def _count(server: Server) -> int:
    with server._db.connect() as connection:
        return connection.scalar(select(func.count()).select_from(AuditEvent)) or 0


class Fixtures:
    """Fresh groups and voiceprints for each call (a delete must have something to delete)."""

    def __init__(self, server: Server, auth: dict[str, str]) -> None:
        self.server, self.auth = server, auth

    def group(self) -> str:
        created = httpx.post(
            f"{self.server.url}{PREFIX}", json={"name": "g"}, headers=self.auth
        ).json()
        return created["data"]["id"]

    def feature(self, gid: str) -> str:
        created = httpx.post(
            f"{self.server.url}{PREFIX}/{gid}/features", data={"name": "1688"},
            files={"file": _clip("1688")}, headers=self.auth, timeout=60,
        ).json()  # fmt: skip
        assert created["code"] == 0, created
        return created["data"]["id"]

    def speaker(self, speaker_id: str) -> tuple[str, str]:
        """A voice registered through the xiaozhi routes: its group and voiceprint ids."""
        registered = httpx.post(
            f"{self.server.url}/voiceprint/register", data={"speaker_id": speaker_id},
            files={"file": _clip("1688")}, headers=self.auth, timeout=60,
        )  # fmt: skip
        assert registered.status_code == 200, registered.text
        groups = httpx.get(
            f"{self.server.url}{PREFIX}", params={"name": "xiaozhi"}, headers=self.auth
        ).json()["data"]["items"]
        gid = groups[0]["id"]
        features = httpx.get(f"{self.server.url}{PREFIX}/{gid}/features", headers=self.auth).json()[
            "data"
        ]["items"]
        return gid, next(f["id"] for f in features if f["desc"] == speaker_id)


def _request(
    method: str, path: str, operation: dict[str, Any], made: Fixtures
) -> tuple[dict[str, Any], str | None, str | None]:
    """Keyword arguments for a valid call of the route, and the group and voiceprint ids."""
    gid = fid = None
    if path.startswith("/voiceprint/"):
        return _xiaozhi_request(method, path, made)
    if "{group_id}" in path:
        gid = made.group()
        path = path.replace("{group_id}", gid)
    if "{feature_id}" in path:
        fid = made.feature(gid)  # type: ignore[arg-type]
        path = path.replace("{feature_id}", fid)
    kwargs: dict[str, Any] = {"method": method, "url": made.server.url + path, "timeout": 120}
    content = (operation.get("requestBody") or {}).get("content", {})
    if "multipart/form-data" in content:
        kwargs["files"] = {"file": _clip("1688", 1)}
        kwargs["data"] = {"name": "renamed"}
    elif "application/json" in content:
        kwargs["json"] = {"name": "g2"}
    if path == ACROSS:  # the groups travel in the body; the row names the best match's
        gid = made.group()
        made.feature(gid)
        kwargs["data"] = {"group_ids": gid}
    return kwargs, gid, fid


def _xiaozhi_request(
    method: str, path: str, made: Fixtures
) -> tuple[dict[str, Any], str | None, str | None]:
    url = made.server.url + path
    kwargs: dict[str, Any] = {"method": method, "url": url, "timeout": 120}
    if path == "/voiceprint/register":
        kwargs["data"] = {"speaker_id": f"new-{secrets.token_hex(4)}"}
        kwargs["files"] = {"file": _clip("1688", 1)}
        gid, _ = made.speaker("already-there")
        return kwargs, gid, None
    if path == "/voiceprint/identify":
        gid, _ = made.speaker("to-identify")
        kwargs["data"] = {"speaker_ids": "to-identify"}
        kwargs["files"] = {"file": _clip("1688", 1)}
        return kwargs, gid, None
    if "{speaker_id}" in path:
        speaker_id = f"to-delete-{secrets.token_hex(4)}"
        gid, fid = made.speaker(speaker_id)
        kwargs["url"] = url.replace("{speaker_id}", speaker_id)
        return kwargs, gid, fid
    return kwargs, None, None


def test_every_biometric_route_writes_exactly_its_row(audited: Server) -> None:
    token = audited.token("alice", workspace="audited")
    auth = {"Authorization": f"Bearer {token}"}
    made = Fixtures(audited, auth)
    spec = httpx.get(f"{audited.url}/openapi.json").json()
    routes = [
        (method.upper(), path, operation)
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
    ]
    assert {(m, p) for m, p, _ in routes} == set(OPERATIONS), "a route without an audit entry"
    token_id = int(token.split("_")[1])
    for method, path, operation in routes:
        kwargs, gid, fid = _request(method, path, operation, made)
        before = _count(audited)
        answer = httpx.request(**kwargs, headers=auth)
        assert answer.status_code == 200, (method, path, answer.text)
        rows = _rows(audited)[before:]
        expected = OPERATIONS[(method, path)]
        if expected is None:
            assert rows == [], (method, path, rows)
            continue
        assert len(rows) == 1, (method, path, rows)
        (row,) = rows
        assert row.operation == expected and row.result_code == 0
        assert row.token_id == token_id and row.workspace_id is not None
        assert row.account_id is not None
        assert str(row.group_id) == gid
        if fid is not None:  # verify too: the probe is the voiceprint's speaker
            assert str(row.feature_id) == fid
        if expected == "enrol" and path.startswith(PREFIX):
            assert str(row.feature_id) == answer.json()["data"]["id"]
        assert row.logid == answer.headers["x-tt-logid"]


def test_a_signed_link_a_refusal_and_a_match_are_recorded(audited: Server) -> None:
    token = audited.token("bob")
    auth = {"Authorization": f"Bearer {token}"}
    made = Fixtures(audited, auth)
    gid = made.group()
    fid = made.feature(gid)
    listed = httpx.get(f"{audited.url}{PREFIX}/{gid}/features", headers=auth).json()
    before = _count(audited)
    link = httpx.get(listed["data"]["items"][0]["audio_url"])  # no token: the signature
    assert link.status_code == 200 and link.content == _clip("1688")
    missing = httpx.post(
        f"{audited.url}{PREFIX}/{int(gid) + 1}/speaker_identify", files={"file": _clip("1688")},
        headers=auth, timeout=60,
    )  # fmt: skip
    assert missing.json()["code"] == 4200
    matched = httpx.post(
        f"{audited.url}{PREFIX}/{gid}/speaker_identify", files={"file": _clip("1688", 2)},
        headers=auth, timeout=60,
    ).json()  # fmt: skip
    assert matched["data"]["feature_score_list"][0]["score"] >= 50
    link_row, refused, identified = _rows(audited)[before:]
    assert link_row.operation == "download_audio_link" and link_row.token_id is None
    assert str(link_row.feature_id) == fid and link_row.workspace_id is not None
    assert refused.operation == "identify" and refused.result_code == 4200
    assert refused.logid == missing.headers["x-tt-logid"]
    assert identified.operation == "identify" and str(identified.feature_id) == fid


def test_a_stream_records_its_opening_and_closing(audited: Server) -> None:
    token = audited.token("carol")
    made = Fixtures(audited, {"Authorization": f"Bearer {token}"})
    gid = made.group()
    before = _count(audited)
    url = audited.url.replace("http://", "ws://") + f"{PREFIX}/{gid}/speaker_identify/stream"
    with connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        assert json.loads(ws.recv())["event_type"] == "speaker_identify.created"
    rows: list[AuditEvent] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the close is recorded after the socket has gone
        rows = _rows(audited)[before:]
        if len(rows) == 2:
            break
        time.sleep(0.1)
    assert [r.operation for r in rows] == ["stream_opened", "stream_closed"]
    assert all(str(r.group_id) == gid for r in rows)


def test_the_audit_command_reads_and_filters(audited: Server) -> None:
    url = audited.database_url
    everything = run_cli(audited.data_dir, "audit", "--json", database_url=url, encryption_key=KEY)
    assert everything.returncode == 0, everything.stderr
    rows = [json.loads(line) for line in everything.stdout.splitlines()]
    assert rows and set(rows[0]) == {
        "time", "operation", "result_code", "workspace", "user", "token_id", "group_id",
        "feature_id", "logid",
    }  # fmt: skip
    enrols = run_cli(
        audited.data_dir, "audit", "--json", "--operation", "enrol", "--workspace", "audited",
        database_url=url, encryption_key=KEY,
    )  # fmt: skip
    chosen = [json.loads(line) for line in enrols.stdout.splitlines()]
    assert chosen and all(r["operation"] == "enrol" and r["workspace"] == "audited" for r in chosen)
    assert all(r["user"] == "alice" for r in chosen)
    later = run_cli(
        audited.data_dir, "audit", "--since", "2999-01-01", database_url=url, encryption_key=KEY
    )
    assert later.returncode == 0 and len(later.stdout.splitlines()) == 1  # the header only
    bad = run_cli(
        audited.data_dir, "audit", "--operation", "x", database_url=url, encryption_key=KEY
    )
    assert bad.returncode == 2 and "unknown operation" in bad.stderr

    archive = audited.data_dir.parent / "backup.zip"
    exported = run_cli(
        audited.data_dir, "export", str(archive), database_url=url, encryption_key=KEY
    )
    assert exported.returncode == 0, exported.stderr
    assert _rows(audited)[-1].operation == "export"
