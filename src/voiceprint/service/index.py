"""The embedding index: each group's voiceprints held in memory, prepared for scoring.

Without it every identify reads and decrypts all of the group's embeddings and
scores them against the AS-norm cohort, a cost that grows with the group (about
0.1 ms a voiceprint). The index keeps, per group of the model the server runs,
the ``Gallery`` (float32 matrix and per-row statistics) that scoring would
build, so a request only scores its probe: one matrix product.

Coherence across server processes sharing a database: every change to a
group's voiceprints raises the group's ``generation`` in the same transaction
(``mark_changed``) and stamps the changed voiceprint's ``revision`` with it.
Each identify (diarize, stream opening) reads the generation of every group
this process holds; one that moved is brought up to date before anything is
scored: the voiceprints stamped after what the index saw are read again, and
those gone are dropped. A group deleted elsewhere leaves memory at the next
identify of any group; this process's own deletes drop their vectors at once.
Decrypted vectors live in memory only.

Memory is bounded (``index_max_mb``): least recently used groups are dropped;
a group larger than the bound, or every group when it is 0, is read per request
as without the index. Scores are the same either way (tests/service/test_index.py).

A group is read by one request at a time (its own lock), and no other group
waits for it: the first identify of a group of 10^5 voiceprints reads for
seconds while identifies of the other groups go on. The index's own lock is held
only to look up and store entries.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session

from voiceprint.memory import give_back_freed
from voiceprint.scoring.scorer import Gallery, Scorer
from voiceprint.service import queries
from voiceprint.store.models import Feature, Group
from voiceprint.store.vault import Vault

# Reads of at least this many voiceprints give freed heap memory back afterwards.
TRIM_AFTER = 10_000


def mark_changed(session: Session, group_id: int, feature_ids: Iterable[int] = ()) -> int:
    """Raise the group's generation, stamp ``feature_ids`` with it, and return it. The
    increment is one statement, so concurrent writers (PostgreSQL) take turns on the row
    and generations follow the order of commits."""
    ids = list(feature_ids)
    if ids:  # voiceprint rows before the group's, the order every writer locks them in
        session.execute(select(Feature.id).where(Feature.id.in_(ids)).with_for_update())
    generation = session.execute(
        update(Group)
        .where(Group.id == group_id)
        .values(generation=Group.generation + 1)
        .returning(Group.generation)
    ).scalar_one()
    if ids:
        session.execute(update(Feature).where(Feature.id.in_(ids)).values(revision=generation))
    return generation


@dataclass(frozen=True)
class Entry:
    """One group's voiceprints in enrolment order, as of ``generation`` (at least): only
    arrays, so a large group costs no Python object per voiceprint (names are read per
    request for the few matches answered)."""

    generation: int
    feature_ids: np.ndarray
    created_at: np.ndarray
    revisions: np.ndarray
    gallery: Gallery

    @property
    def nbytes(self) -> int:
        arrays = (self.feature_ids, self.created_at, self.revisions)
        return self.gallery.nbytes + sum(a.nbytes for a in arrays)

    def take(self, rows: np.ndarray) -> Entry:
        return Entry(
            self.generation,
            self.feature_ids[rows],
            self.created_at[rows],
            self.revisions[rows],
            self.gallery.take(rows),
        )


class EmbeddingIndex:
    def __init__(self, scorer: Scorer, vault: Vault, model_id: str, max_bytes: int) -> None:
        self._scorer = scorer
        self._vault = vault
        self._model_id = model_id
        self._max_bytes = max_bytes
        self._entries: OrderedDict[int, Entry] = OrderedDict()
        # Guards the entries, the counters below and the group locks; never held while
        # the database is read.
        self._lock = threading.Lock()
        # One read of a group at a time: two requests must not both read a large group.
        self._reading: dict[int, threading.Lock] = {}
        # Deletes per group: a read that a delete overtook is answered but not kept.
        self._forgotten: dict[int, int] = {}
        self._rows_read = 0  # since memory was last given back

    @property
    def nbytes(self) -> int:
        with self._lock:
            return self._held_bytes()

    def groups(self) -> list[int]:
        with self._lock:
            return list(self._entries)

    def _held_bytes(self) -> int:
        return sum(entry.nbytes for entry in self._entries.values())

    def enrolled(self, session: Session, group: Group) -> tuple[np.ndarray, Gallery]:
        """The ids of the group's voiceprints, in enrolment order, and their gallery (as
        ``Scorer.grouped`` makes it), as of ``group.generation`` (read in this session
        before, so nothing committed before it is missed) or later: a session that read it
        before an update this process already holds is answered from what it holds."""
        self._sweep(session, exclude=group.id)
        with self._reading_lock(group.id):
            with self._lock:
                entry = self._entries.get(group.id)
                deletes = self._forgotten.get(group.id, 0)
            if entry is None:
                entry = self._load(session, group.id, group.generation)
            elif entry.generation < group.generation:
                entry = self._refresh(session, group.id, entry, group.generation)
            with self._lock:
                if self._forgotten.get(group.id, 0) == deletes:
                    self._keep(group.id, entry)
                trim = self._rows_read >= TRIM_AFTER
                if trim:
                    self._rows_read = 0
        # The read's transient objects (the rows, about as much again as the gallery) are
        # gone now; glibc would keep their pages in the server's RSS.
        if trim:
            give_back_freed()
        # The entry keeps each row as it was read; what the group's voices say together
        # (a gallery caches it) changes with any of them.
        return entry.feature_ids, self._scorer.grouped(entry.gallery)

    def forget(self, group_id: int, feature_ids: Iterable[int] | None = None) -> None:
        """Drop this process's copy of deleted voiceprints (all of the group: None) now."""
        with self._lock:
            self._forgotten[group_id] = self._forgotten.get(group_id, 0) + 1
            entry = self._entries.get(group_id)
            if entry is None:
                return
            if feature_ids is None:
                del self._entries[group_id]
                return
            gone = np.isin(entry.feature_ids, list(feature_ids))
            self._entries[group_id] = entry.take(np.flatnonzero(~gone))

    def _sweep(self, session: Session, exclude: int) -> None:
        """Bring every other group held to its generation; drop those deleted. A group
        another request is reading is left to it."""
        with self._lock:
            held = {group_id: e.generation for group_id, e in self._entries.items()}
        held.pop(exclude, None)
        if not held:
            return
        generations = queries.generations(session, list(held))
        for group_id, seen in held.items():
            generation = generations.get(group_id)
            if generation == seen:
                continue
            reading = self._reading_lock(group_id)
            if not reading.acquire(blocking=False):
                continue
            try:
                self._bring_up_to(session, group_id, generation)
            finally:
                reading.release()

    def _bring_up_to(self, session: Session, group_id: int, generation: int | None) -> None:
        """A held group (its reading lock taken) brought to ``generation``; None: deleted."""
        with self._lock:
            entry = self._entries.get(group_id)
            deletes = self._forgotten.get(group_id, 0)
            if entry is None or generation is None:
                self._entries.pop(group_id, None)
                return
        if entry.generation >= generation:
            return
        try:
            fresh: Entry | None = self._refresh(session, group_id, entry, generation)
        except Exception:  # re-embedded for another model, damaged...: not this caller's
            fresh = None  # group; its own next use reads it and says why
        with self._lock:
            if fresh is None or self._forgotten.get(group_id, 0) != deletes:
                self._entries.pop(group_id, None)
            elif group_id in self._entries:  # not dropped by the bound meanwhile
                self._entries[group_id] = fresh

    def _reading_lock(self, group_id: int) -> threading.Lock:
        with self._lock:
            return self._reading.setdefault(group_id, threading.Lock())

    def _load(self, session: Session, group_id: int, generation: int) -> Entry:
        return self._read(session, generation, Feature.group_id == group_id)

    def _refresh(self, session: Session, group_id: int, entry: Entry, generation: int) -> Entry:
        """``entry`` brought to ``generation``: what changed since is read again."""
        current = dict(
            session.execute(
                select(Feature.id, Feature.revision).where(Feature.group_id == group_id)
            ).all()
        )
        unchanged = np.fromiter(
            (
                current.get(int(feature_id)) == revision
                for feature_id, revision in zip(entry.feature_ids, entry.revisions, strict=True)
            ),
            dtype=bool,
            count=len(entry.feature_ids),
        )
        changed = self._read(
            session,
            generation,
            (Feature.group_id == group_id) & (Feature.revision > entry.generation),
        )
        # Rows stamped after entry.generation are read again even if unchanged since (a
        # load may have seen them before its generation did), and a row read again is
        # never kept too (it may have changed between the two statements).
        keep = unchanged & (entry.revisions <= entry.generation)
        keep &= ~np.isin(entry.feature_ids, changed.feature_ids)
        kept = entry.take(np.flatnonzero(keep))
        merged = _concat(generation, [kept, changed])
        del kept, changed  # a large refresh holds several copies of the group at its peak
        order = np.lexsort((merged.feature_ids, merged.created_at))
        if (order == np.arange(len(order))).all():  # the usual case: what changed is newest
            return merged
        return merged.take(order)

    def _read(self, session: Session, generation: int, where: ColumnElement[bool]) -> Entry:
        parts = [
            Entry(
                generation,
                np.asarray([c.feature_id for c in batch.candidates], np.int64),
                batch.created_at,
                batch.revisions,
                self._scorer.gallery(batch.voices),
            )
            for batch in queries.enrolled_batches(session, self._vault, self._model_id, where)
        ]
        read = _concat(generation, parts)
        with self._lock:
            self._rows_read += len(read.feature_ids)
        return read

    def _keep(self, group_id: int, entry: Entry) -> None:
        """Hold ``entry`` as the most recently used; drop the least recently used beyond the
        bound (``entry`` too, if it alone exceeds it)."""
        self._entries[group_id] = entry
        self._entries.move_to_end(group_id)
        total = self._held_bytes()
        while self._entries and total > self._max_bytes:
            _, dropped = self._entries.popitem(last=False)
            total -= dropped.nbytes


def _concat(generation: int, parts: list[Entry]) -> Entry:
    return Entry(
        generation,
        np.concatenate([p.feature_ids for p in parts] or [np.zeros(0, np.int64)]),
        np.concatenate([p.created_at for p in parts] or [np.zeros(0, np.int64)]),
        np.concatenate([p.revisions for p in parts] or [np.zeros(0, np.int64)]),
        Gallery.concat([p.gallery for p in parts if len(p.gallery)]),
    )
