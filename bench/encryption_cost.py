"""What encryption at rest costs identify: opening a group's embeddings in memory.

An identify reads every sample of the group and opens each embedding. This
times ``queries.enrolled`` (the read identify does) on a real SQLite database
for groups of 10 voiceprints with 1 and 10 samples each (10 and 100 embeddings,
192 floats: CAM++), stored in clear and sealed, in one process. The time of the
whole identify is ``bench/api_load.py`` (with and without ``--encrypted``).
Prints a table and writes bench/results/encryption_cost.json.

    .venv/bin/python bench/encryption_cost.py [--repeats 300]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from voiceprint.clock import now
from voiceprint.service import queries
from voiceprint.store.blobs import BlobStore
from voiceprint.store.crypto import MasterKey, generate_key
from voiceprint.store.db import make_engine, make_session_factory, migrate
from voiceprint.store.ids import new_id
from voiceprint.store.keyring import Keyring
from voiceprint.store.models import Account, Feature, Group, Sample, Workspace
from voiceprint.store.vault import Vault

ROOT = Path(__file__).resolve().parent.parent
MODEL = "bench-model"


def _group(sessions: sessionmaker[Session], vault: Vault, samples_each: int) -> int:
    """A group of 10 voiceprints with ``samples_each`` random embeddings each."""
    rng = np.random.default_rng(0)
    stamp = now()
    with sessions() as session, session.begin():
        workspace = Workspace(id=new_id(), name=f"w{new_id()}", created_at=stamp)
        account = Account(id=new_id(), workspace_id=workspace.id, name="a", created_at=stamp)
        group = Group(
            id=new_id(), workspace_id=workspace.id, creator_id=account.id, name="g",
            created_at=stamp, updated_at=stamp,
        )  # fmt: skip
        session.add_all([workspace, account])
        session.flush()
        session.add(group)
    with sessions() as session, session.begin():
        for n in range(10):
            samples = []
            for _ in range(samples_each):
                sample = Sample(
                    id=new_id(), audio_format="wav", model_id=MODEL, speech_seconds=5.0,
                    quality={}, created_at=stamp,
                )  # fmt: skip
                embedding = rng.standard_normal(192).astype(np.float32)
                vault.fill(sample, b"audio", embedding, workspace.id)
                samples.append(sample)
            session.add(
                Feature(
                    id=new_id(), group_id=group.id, creator_id=account.id, name=str(n),
                    created_at=stamp, updated_at=stamp, samples=samples,
                )
            )  # fmt: skip
    return group.id


def _median_ms(sessions: sessionmaker[Session], vault: Vault, group_id: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        with sessions() as session:
            queries.enrolled(session, vault, MODEL, Feature.group_id == group_id)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/encryption_cost.json")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="voiceprint-bench-"))
    database = make_engine(f"sqlite:///{tmp / 'bench.db'}")
    migrate(database)
    sessions = make_session_factory(database)
    blobs = BlobStore(tmp / "audio")
    vaults = {
        "in clear": Vault(blobs, None),
        "encrypted": Vault(blobs, Keyring.open(sessions, MasterKey.parse(generate_key(), "k"))),
    }
    rows = []
    for samples_each in (1, 10):
        row: dict[str, float | int] = {"embeddings": 10 * samples_each}
        for name, vault in vaults.items():
            group_id = _group(sessions, vault, samples_each)
            row[name] = _median_ms(sessions, vault, group_id, args.repeats)
        row["added_ms"] = row["encrypted"] - row["in clear"]
        rows.append(row)
    database.dispose()

    print("queries.enrolled, the read of one identify (median ms, SQLite, one process)")
    print("| embeddings | in clear | encrypted | added |")
    print("|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['embeddings']} | {r['in clear']:.2f} ms | {r['encrypted']:.2f} ms "
            f"| {r['added_ms']:.2f} ms |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"repeats": args.repeats, "rows": rows}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
