"""Tokens: minted once, stored hashed, and ``authenticate`` refusing every kind of bad header."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from voiceprint.auth import permissions as perm
from voiceprint.auth.tokens import AuthenticationFailed, authenticate, mint_token, revoke_token
from voiceprint.store.db import make_engine, make_session_factory, migrate
from voiceprint.store.models import Token


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    database = make_engine(f"sqlite:///{tmp_path / 'tokens.db'}")
    migrate(database)
    yield make_session_factory(database)
    database.dispose()


def _mint(sessions: sessionmaker[Session], **kwargs: object) -> str:
    with sessions() as session, session.begin():
        return mint_token(session, user="ann", workspace="acme", **kwargs).token  # type: ignore[arg-type]


def test_a_minted_token_identifies_its_account_and_is_stored_hashed(
    sessions: sessionmaker[Session],
) -> None:
    token = _mint(sessions, permissions="listVoiceprintGroup")
    secret = token.split("_", 2)[2]
    with sessions() as session:
        caller = authenticate(session, f"Bearer {token}")
        row = session.scalar(select(Token))
    assert caller.account_name == "ann"
    assert caller.permissions == {perm.LIST_GROUPS}
    assert row is not None and row.id == caller.token_id
    assert row.secret_sha256 == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in row.secret_sha256


def test_the_scheme_is_case_insensitive_and_spaces_are_tolerated(
    sessions: sessionmaker[Session],
) -> None:
    token = _mint(sessions)
    with sessions() as session:
        assert authenticate(session, f"  bearer   {token} ").account_name == "ann"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "missing Authorization header"),
        ("", "missing Authorization header"),
        ("Basic abc", "must be 'Bearer <token>'"),
        ("Bearer", "must be 'Bearer <token>'"),
        ("Bearer nonsense", "not valid"),
        ("Bearer vp_²_secret", "not valid"),
        ("Bearer vp_١٢_secret", "not valid"),
        ("Bearer vp_99999999999999999999999_secret", "not valid"),
        ("Bearer vp_123_", "not valid"),
    ],
)
def test_malformed_headers_are_refused(
    sessions: sessionmaker[Session], header: str | None, message: str
) -> None:
    _mint(sessions)
    with sessions() as session, pytest.raises(AuthenticationFailed, match=message):
        authenticate(session, header)


def test_a_wrong_secret_for_a_real_id_is_refused(sessions: sessionmaker[Session]) -> None:
    token = _mint(sessions)
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with sessions() as session, pytest.raises(AuthenticationFailed, match="not valid"):
        authenticate(session, f"Bearer {forged}")


def test_revoked_and_expired_tokens_are_refused_with_the_reason(
    sessions: sessionmaker[Session],
) -> None:
    revoked = _mint(sessions)
    expired = _mint(sessions, expires_days=-1)
    with sessions() as session, session.begin():
        assert revoke_token(session, int(revoked.split("_")[1]))
    with sessions() as session:
        with pytest.raises(AuthenticationFailed, match="revoked"):
            authenticate(session, f"Bearer {revoked}")
        with pytest.raises(AuthenticationFailed, match="expired"):
            authenticate(session, f"Bearer {expired}")


def test_unknown_permission_names_are_refused_when_minting(
    sessions: sessionmaker[Session],
) -> None:
    with pytest.raises(ValueError, match="unknown permission"):
        _mint(sessions, permissions="listVoiceprintGroup,readMinds")
