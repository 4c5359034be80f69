"""The audit trail: one row per operation on biometric data, appended and never changed.

A row names who (token, account, workspace), what (operation, group,
voiceprint), the result code the caller was answered and the logid; never
audio, embeddings or scores. An operation that changes data adds its row in
its own transaction (``AuditTrail.transaction``), so both commit or neither does; one
that only reads, or that fails (its transaction rolled back), has its row
written on its own when it ends. Nothing in the API edits or deletes rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased, sessionmaker

from voiceprint.auth.tokens import Principal
from voiceprint.clock import now
from voiceprint.logid import current_logid
from voiceprint.store.ids import new_id
from voiceprint.store.models import Account, AuditEvent, Workspace

ENROL = "enrol"
ADD_SAMPLES = "add_samples"
UPDATE_VOICEPRINT = "update_voiceprint"
DELETE_VOICEPRINT = "delete_voiceprint"
DELETE_GROUP = "delete_group"
IDENTIFY = "identify"
VERIFY = "verify"
DIARIZE = "diarize"
STREAM_OPENED = "stream_opened"
STREAM_CLOSED = "stream_closed"
DOWNLOAD = "download_audio"
DOWNLOAD_LINK = "download_audio_link"
EXPORT = "export"
IMPORT = "import"
REEMBED = "reembed"
EXPIRE = "expire"
ENCRYPT = "encrypt"
OPERATIONS = (
    ENROL, ADD_SAMPLES, UPDATE_VOICEPRINT, DELETE_VOICEPRINT, DELETE_GROUP, IDENTIFY, VERIFY,
    DIARIZE, STREAM_OPENED, STREAM_CLOSED, DOWNLOAD, DOWNLOAD_LINK, EXPORT, IMPORT, REEMBED,
    EXPIRE, ENCRYPT,
)  # fmt: skip

OK = 0
# The code the caller is answered for an exception (the API's table; see factory.build_runtime).
ResultCode = Callable[[BaseException], int]


@dataclass
class Entry:
    """The row of one operation, filled in as the operation learns what it touched."""

    operation: str
    caller: Principal | None
    group_id: int | None = None
    feature_id: int | None = None
    workspace_id: int | None = None
    recorded: bool = False

    def void(self) -> None:
        """Nothing happened after all (e.g. the data was gone): no row."""
        self.recorded = True

    def row(self, result_code: int) -> AuditEvent:
        caller = self.caller
        return AuditEvent(
            id=new_id(),
            at=now(),
            token_id=caller.token_id if caller else None,
            account_id=caller.account_id if caller else None,
            workspace_id=caller.workspace_id if caller else self.workspace_id,
            operation=self.operation,
            group_id=self.group_id,
            feature_id=self.feature_id,
            result_code=result_code,
            logid=current_logid.get(),
        )


class AuditTrail:
    def __init__(self, sessions: sessionmaker[Session], result_code: ResultCode) -> None:
        self._sessions = sessions
        self._result_code = result_code

    @contextmanager
    def operation(
        self,
        operation: str,
        caller: Principal | None,
        *,
        group_id: int | None = None,
        feature_id: int | None = None,
        workspace_id: int | None = None,
    ) -> Iterator[Entry]:
        """One operation: its row is written exactly once, whatever happens inside."""
        entry = Entry(operation, caller, group_id, feature_id, workspace_id)
        try:
            yield entry
        except BaseException as exc:
            if not entry.recorded:
                self._write(entry, self._result_code(exc))
            raise
        if not entry.recorded:
            self._write(entry, OK)

    @contextmanager
    def transaction(self, entry: Entry) -> Iterator[Session]:
        """The operation's transaction, with its row added just before the commit."""
        with self._sessions() as session, session.begin():
            yield session
            if not entry.recorded:
                session.add(entry.row(OK))
        entry.recorded = True

    def _write(self, entry: Entry, result_code: int) -> None:
        with self._sessions() as session, session.begin():
            session.add(entry.row(result_code))
        entry.recorded = True


def unclassified(_: BaseException) -> int:
    """Without the API's table every failure reads as an internal error (5000)."""
    return 5000


@dataclass(frozen=True)
class AuditView:
    time: str  # ISO 8601, UTC
    operation: str
    result_code: int
    workspace: str | None
    user: str | None
    token_id: int | None
    group_id: int | None
    feature_id: int | None
    logid: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_since(text: str) -> int:
    """Unix seconds, or an ISO 8601 date or time (UTC unless it says otherwise)."""
    if text.isdigit():
        return int(text)
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"--since {text!r} is neither Unix seconds nor an ISO date/time (2026-12-01T10:00)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return int(moment.timestamp())


def read_audit(
    sessions: sessionmaker[Session],
    *,
    since: str | None = None,
    workspace: str | None = None,
    feature_id: int | None = None,
    operation: str | None = None,
) -> list[AuditView]:
    """The rows that match every filter given, oldest first."""
    if operation is not None and operation not in OPERATIONS:
        raise ValueError(f"unknown operation {operation!r}; one of {', '.join(OPERATIONS)}")
    account, space = aliased(Account), aliased(Workspace)
    query = (
        select(AuditEvent, account.name, space.name)
        .outerjoin(account, account.id == AuditEvent.account_id)
        .outerjoin(space, space.id == AuditEvent.workspace_id)
        .order_by(AuditEvent.at, AuditEvent.id)
    )
    if since is not None:
        query = query.where(AuditEvent.at >= parse_since(since))
    if workspace is not None:
        query = query.where(space.name == workspace)
    if feature_id is not None:
        query = query.where(AuditEvent.feature_id == feature_id)
    if operation is not None:
        query = query.where(AuditEvent.operation == operation)
    with sessions() as session:
        return [
            AuditView(
                time=dt.datetime.fromtimestamp(e.at, dt.timezone.utc).strftime(
                    "%Y-%m-%dT%H:%M:%SZ"
                ),
                operation=e.operation,
                result_code=e.result_code,
                workspace=workspace_name,
                user=user,
                token_id=e.token_id,
                group_id=e.group_id,
                feature_id=e.feature_id,
                logid=e.logid,
            )
            for e, user, workspace_name in session.execute(query)
        ]
