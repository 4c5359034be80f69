"""The service layer called directly, as the routes call it."""

from __future__ import annotations

from voiceprint.auth.tokens import Principal, authenticate, mint_token
from voiceprint.service.factory import Runtime


def caller(
    runtime: Runtime, user: str = "alice", workspace: str = "home", permissions: str = "all"
) -> Principal:
    """A new token's principal, as a request presenting it is authenticated."""
    with runtime.sessions() as session, session.begin():
        token = mint_token(session, user=user, workspace=workspace, permissions=permissions).token
    with runtime.sessions() as session:
        return authenticate(session, f"Bearer {token}")
