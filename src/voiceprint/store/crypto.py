"""AES-256-GCM, the master key and its errors: the primitives of envelope encryption.

The master key (``VOICEPRINT_ENCRYPTION_KEY`` or ``VOICEPRINT_ENCRYPTION_KEY_FILE``)
never encrypts data itself: it wraps one data key per workspace (``keyring.py``),
so a new master key rewraps a few keys instead of re-encrypting every recording.
Every sealed value is ``nonce || ciphertext || tag`` with associated data naming
what it is, so a flipped byte, or a value moved to another row, fails to open.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 12


class EncryptionKeyError(Exception):
    """The master key is missing, malformed or not the one the data was encrypted with."""


class DamagedData(Exception):
    """Stored bytes failed their integrity check: damaged on disk or tampered with."""


def seal(key: AESGCM, plain: bytes, context: bytes) -> bytes:
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + key.encrypt(nonce, plain, context)


def unseal(key: AESGCM, sealed: bytes, context: bytes, what: str) -> bytes:
    try:
        return key.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], context)
    except InvalidTag:
        raise DamagedData(
            f"{what} failed its integrity check (damaged or tampered with); "
            "restore it from a backup or enrol the voiceprint again"
        ) from None


def generate_key() -> str:
    """A new master key, as the settings expect it (base64 of 32 random bytes)."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


@dataclass(frozen=True)
class MasterKey:
    secret: bytes = field(repr=False)

    @property
    def id(self) -> str:
        """A public name for the key: it tells keys apart without revealing them."""
        return hmac.new(self.secret, b"voiceprint master key id", hashlib.sha256).hexdigest()[:16]

    @classmethod
    def parse(cls, text: str, source: str) -> MasterKey:
        try:
            secret = base64.b64decode(text.strip(), validate=True)
        except (binascii.Error, ValueError):
            secret = b""
        if len(secret) != KEY_BYTES:
            raise EncryptionKeyError(
                f"{source} must be base64 of exactly {KEY_BYTES} bytes "
                "(make one with `voiceprint keys generate`)"
            )
        return cls(secret)

    @classmethod
    def read_file(cls, path: Path) -> MasterKey:
        try:
            text = path.read_text()
        except OSError as exc:
            raise EncryptionKeyError(f"cannot read the key file {path}: {exc}") from None
        return cls.parse(text, f"the key file {path}")

    def wrap(self, data_key: bytes, context: bytes) -> bytes:
        return seal(AESGCM(self.secret), data_key, context)

    def unwrap(self, wrapped: bytes, context: bytes) -> bytes:
        return unseal(AESGCM(self.secret), wrapped, context, "a wrapped data key")
