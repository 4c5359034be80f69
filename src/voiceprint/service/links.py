"""Signed, expiring download links for stored audio (``audio_url``).

The signature is an HMAC of the voiceprint id and expiry under a random
secret kept in the database, so a link cannot be guessed or altered, and
every server process of one installation accepts the links of the others.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from voiceprint.store.models import ServerSecret

_SECRET_NAME = "audio_url_hmac"


class LinkSigner:
    def __init__(self, session_factory: sessionmaker[Session], ttl_s: int) -> None:
        self._key = _load_or_create_secret(session_factory).encode()
        self.ttl_s = ttl_s

    def _signature(self, feature_id: int, expires: int) -> str:
        message = f"{feature_id}:{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:32]

    def sign(self, feature_id: int) -> tuple[int, str]:
        expires = int(time.time()) + self.ttl_s
        return expires, self._signature(feature_id, expires)

    def verify(self, feature_id: int, expires: int, signature: str) -> bool:
        if expires < time.time():
            return False
        return hmac.compare_digest(self._signature(feature_id, expires), signature)


def _load_or_create_secret(session_factory: sessionmaker[Session]) -> str:
    with session_factory() as session:
        row = session.get(ServerSecret, _SECRET_NAME)
        if row is not None:
            return row.value
        session.add(ServerSecret(name=_SECRET_NAME, value=secrets.token_hex(32)))
        try:
            session.commit()
        except IntegrityError:  # another process created it first
            session.rollback()
        return session.get(ServerSecret, _SECRET_NAME).value  # type: ignore[union-attr]
