"""A sample's stored bytes: its recording (a blob) and its embedding (a column).

The one place that encrypts: with a keyring, both are sealed with the data key
of the sample's workspace and opened only in memory; without one they are
stored in clear. A sample says which (``key_generation``; None: in clear), so
a deployment part way through ``voiceprint keys encrypt`` reads both kinds,
and a damaged sealed value is an error (``DamagedData``), never wrong bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from voiceprint.store.blobs import Blobs
from voiceprint.store.keyring import Keyring
from voiceprint.store.models import Sample


def _audio_context(audio_key: str) -> bytes:
    return b"audio:" + audio_key.encode()


def _embedding_context(sample_id: int) -> bytes:
    return b"embedding:" + str(sample_id).encode()


class Vault:
    def __init__(self, blobs: Blobs, keyring: Keyring | None) -> None:
        self.blobs = blobs
        self.keyring = keyring

    @property
    def encrypted(self) -> bool:
        return self.keyring is not None

    def fill(
        self,
        sample: Sample,
        audio: bytes,
        embedding: np.ndarray,
        workspace_id: int,
        *,
        generation: int | None = None,
    ) -> None:
        """Store ``audio`` under a new key and set the sample's audio key, embedding and key
        generation (the workspace's current one unless given)."""
        if self.keyring is None:
            sample.audio_key = self.blobs.put(audio)
            sample.embedding = embedding.astype("<f4").tobytes()
            sample.key_generation = None
            return
        if generation is None:
            generation = self.keyring.current_generation(workspace_id)
        key = self.blobs.new_key()
        sealed_audio, sample.embedding = self._seal(
            self.keyring, sample.id, key, audio, embedding, workspace_id, generation
        )
        self.blobs.put_as(key, sealed_audio)
        sample.audio_key = key
        sample.key_generation = generation

    def sealed(self, sample: Sample, workspace_id: int) -> tuple[bytes, bytes, int]:
        """The sample's audio and embedding as sealed bytes, sealed now if stored in clear,
        and their key generation (for an encrypted archive)."""
        keyring = self._keyring()
        if sample.key_generation is not None:
            return self.blobs.get(sample.audio_key), sample.embedding, sample.key_generation
        generation = keyring.current_generation(workspace_id)
        audio, embedding = self._seal(
            keyring,
            sample.id,
            sample.audio_key,
            self.blobs.get(sample.audio_key),
            self.embedding(sample),
            workspace_id,
            generation,
        )
        return audio, embedding, generation

    @staticmethod
    def _seal(
        keyring: Keyring,
        sample_id: int,
        audio_key: str,
        audio: bytes,
        embedding: np.ndarray,
        workspace_id: int,
        generation: int,
    ) -> tuple[bytes, bytes]:
        return (
            keyring.seal(workspace_id, generation, audio, _audio_context(audio_key)),
            keyring.seal(
                workspace_id,
                generation,
                embedding.astype("<f4").tobytes(),
                _embedding_context(sample_id),
            ),
        )

    def audio(self, sample: Sample) -> bytes:
        stored = self.blobs.get(sample.audio_key)
        if sample.key_generation is None:
            return stored
        return self._keyring().unseal(
            stored, _audio_context(sample.audio_key), f"the recording of sample {sample.id}"
        )

    def embedding(self, sample: Sample) -> np.ndarray:
        return self.open_embedding(sample.id, sample.embedding, sample.key_generation)

    def open_embedding(
        self, sample_id: int, stored: bytes, key_generation: int | None
    ) -> np.ndarray:
        """A sample's embedding from its stored column (for reads that skip the ORM)."""
        if key_generation is not None:
            stored = self._keyring().unseal(
                stored, _embedding_context(sample_id), f"the embedding of sample {sample_id}"
            )
        return np.frombuffer(stored, dtype="<f4")

    def stored_embedding(self, sample: Sample, embedding: np.ndarray) -> bytes:
        """``embedding`` as the sample stores it: sealed with the sample's own data key."""
        plain = embedding.astype("<f4").tobytes()
        if sample.key_generation is None:
            return plain
        return self._keyring().reseal(sample.embedding, plain, _embedding_context(sample.id))

    def delete(self, keys: Sequence[str]) -> None:
        for key in keys:
            self.blobs.delete(key)

    def sweep(self, referenced: Iterable[str]) -> int:
        return self.blobs.sweep(referenced)

    def _keyring(self) -> Keyring:
        if self.keyring is None:
            # Keyring.open refuses to start without a key where sealed data exists.
            raise RuntimeError("sealed data without a keyring")
        return self.keyring
