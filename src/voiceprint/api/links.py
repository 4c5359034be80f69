"""Signed, expiring download links for stored audio (``audio_url``).

The signature is an HMAC of the voiceprint id and expiry under a random
secret kept in the database, so a link cannot be guessed or altered, and
every server process of one installation accepts the links of the others.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SECRET_NAME = "audio_url_hmac"


class LinkSigner:
    def __init__(self, key: str, ttl_s: int) -> None:
        self._key = key.encode()
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
        # As bytes: compare_digest refuses str with non-ASCII characters (a TypeError).
        return hmac.compare_digest(
            self._signature(feature_id, expires).encode(), signature.encode()
        )
