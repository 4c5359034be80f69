"""Secrets shared by every server process of one installation, kept in the database."""

from __future__ import annotations

import secrets

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from voiceprint.store.models import ServerSecret


def shared_secret(session_factory: sessionmaker[Session], name: str) -> str:
    """The installation's secret called ``name``, created at random on first use."""
    with session_factory() as session:
        row = session.get(ServerSecret, name)
        if row is not None:
            return row.value
        session.add(ServerSecret(name=name, value=secrets.token_hex(32)))
        try:
            session.commit()
        except IntegrityError:  # another process created it first
            session.rollback()
        return session.get(ServerSecret, name).value  # type: ignore[union-attr]
