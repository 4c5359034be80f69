"""API tokens: minted at random, shown once, stored as SHA-256, checked in constant time.

A token reads ``vp_<token id>_<secret>``: the id finds the row without
searching by secret, and only the hash of the secret is ever stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from voiceprint.auth.permissions import parse_permissions
from voiceprint.clock import now
from voiceprint.store.ids import new_id, parse_id
from voiceprint.store.models import Account, Token, Workspace

PREFIX = "vp_"


class AuthenticationFailed(Exception):
    """No usable token: missing, malformed, unknown, expired or revoked."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the account behind a valid token, and what the token allows."""

    account_id: int
    account_name: str
    workspace_id: int
    permissions: frozenset[str]
    token_id: int


@dataclass(frozen=True)
class MintedToken:
    id: int
    token: str  # shown once; only its hash is kept
    account: str
    workspace: str


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def mint_token(
    session: Session,
    *,
    user: str,
    workspace: str = "default",
    permissions: str = "all",
    expires_days: float | None = None,
) -> MintedToken:
    """Create the workspace and account if new, and a token for the account."""
    allowed = parse_permissions(permissions)
    created_at = now()
    ws = session.scalar(select(Workspace).where(Workspace.name == workspace))
    if ws is None:
        ws = Workspace(id=new_id(), name=workspace, created_at=created_at)
        session.add(ws)
        session.flush()
    account = session.scalar(
        select(Account).where(Account.workspace_id == ws.id, Account.name == user)
    )
    if account is None:
        account = Account(id=new_id(), workspace_id=ws.id, name=user, created_at=created_at)
        session.add(account)
        session.flush()
    secret = secrets.token_urlsafe(32)
    row = Token(
        id=new_id(),
        account_id=account.id,
        secret_sha256=_hash(secret),
        permissions=",".join(sorted(allowed)),
        created_at=created_at,
        expires_at=None if expires_days is None else created_at + int(expires_days * 86400),
    )
    session.add(row)
    session.flush()
    return MintedToken(row.id, f"{PREFIX}{row.id}_{secret}", user, workspace)


def authenticate(session: Session, authorization: str | None) -> Principal:
    """The caller behind an ``Authorization: Bearer`` header value."""
    if not authorization:
        raise AuthenticationFailed(
            "missing Authorization header; send 'Authorization: Bearer <token>'"
        )
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed("Authorization header must be 'Bearer <token>'")
    token_id, secret = _split(token.strip())
    row = session.get(Token, token_id) if token_id is not None else None
    # Compare even when no row was found so timing does not tell which ids exist.
    expected = row.secret_sha256 if row is not None else _hash("")
    if not hmac.compare_digest(expected, _hash(secret)) or row is None:
        raise AuthenticationFailed("the token is not valid")
    if row.revoked_at is not None:
        raise AuthenticationFailed("the token has been revoked")
    if row.expires_at is not None and row.expires_at <= now():
        raise AuthenticationFailed("the token has expired; create a new one")
    account = row.account
    return Principal(
        account_id=account.id,
        account_name=account.name,
        workspace_id=account.workspace_id,
        permissions=frozenset(row.permissions.split(",")),
        token_id=row.id,
    )


def account_principal(session: Session, user: str, workspace: str) -> Principal | None:
    """The account ``user`` of ``workspace`` with every permission, for the operator's own
    commands (no token involved); None if there is no such account."""
    account = session.scalar(
        select(Account)
        .join(Workspace, Workspace.id == Account.workspace_id)
        .where(Workspace.name == workspace, Account.name == user)
    )
    if account is None:
        return None
    return Principal(account.id, account.name, account.workspace_id, parse_permissions("all"), 0)


def _split(token: str) -> tuple[int | None, str]:
    if not token.startswith(PREFIX):
        return None, token
    token_id, _, secret = token[len(PREFIX) :].partition("_")
    parsed = parse_id(token_id)
    if parsed is not None and secret:
        return parsed, secret
    return None, token


def list_tokens(session: Session) -> list[Token]:
    return list(session.scalars(select(Token).order_by(Token.created_at, Token.id)))


def revoke_token(session: Session, token_id: int) -> bool:
    row = session.get(Token, token_id)
    if row is None:
        return False
    if row.revoked_at is None:
        row.revoked_at = now()
    return True
