"""What encryption at rest costs identify: opening a group's embeddings in memory.

An identify reads every sample of the group and opens each embedding. This
times, in one process on real SQLite databases:

- ``queries.enrolled`` (the read identify does) for groups of 10 voiceprints
  with 1 and 10 samples each (10 and 100 embeddings of 192 floats, CAM++'s
  size), stored in clear and sealed;
- the whole ``VoiceprintService.identify`` (decode, VAD, embedding, scoring,
  the audit row) of 5 s LibriSpeech clips against 10 enrolled speakers, on two
  services side by side (one without a key, one with), calls alternating
  between them so that the machine's other load falls on both alike.

Prints tables and writes bench/results/encryption_cost.json. The server's
throughput is ``bench/api_load.py`` (with and without ``--encrypted``).

    .venv/bin/python bench/encryption_cost.py [--repeats 300] [--identifies 60]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
from sqlalchemy.orm import Session, sessionmaker

from voiceprint.auth.tokens import authenticate, mint_token
from voiceprint.clock import now
from voiceprint.config import Settings, get_settings
from voiceprint.service import queries
from voiceprint.service.factory import Models, Runtime, build_runtime, load_models
from voiceprint.service.recordings import AudioUpload
from voiceprint.store.blobs import BlobStore
from voiceprint.store.crypto import MasterKey, generate_key
from voiceprint.store.db import make_engine, make_session_factory, migrate
from voiceprint.store.ids import new_id
from voiceprint.store.keyring import Keyring
from voiceprint.store.models import Account, Feature, Group, Sample, Workspace
from voiceprint.store.vault import Vault

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "librispeech"
SPEAKERS = ["1688", "1998", "2033", "2414", "2609", "3005", "3080", "3331", "367", "533"]
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


def _wav(path: Path, seconds: float | None = None) -> AudioUpload:
    wave, rate = soundfile.read(path, dtype="float32")
    buffer = io.BytesIO()
    soundfile.write(buffer, wave[: int(seconds * rate)] if seconds else wave, rate, format="WAV")
    return AudioUpload(buffer.getvalue())


def _identify_ms(models: Models, identifies: int) -> dict[str, float]:
    """Median ms of identify on a service without a key and one with, calls alternating."""
    runtimes: dict[str, Runtime] = {}
    calls = {}
    for name, key in (("in clear", None), ("encrypted", generate_key())):
        tmp = Path(tempfile.mkdtemp(prefix="voiceprint-bench-"))
        runtime = build_runtime(Settings(data_dir=tmp, encryption_key=key), models)
        with runtime.sessions() as session, session.begin():
            token = mint_token(session, user="bench", workspace="bench").token
        with runtime.sessions() as session:
            caller = authenticate(session, f"Bearer {token}")
        service = runtime.service
        group = service.create_group(caller, "bench", "")
        for speaker in SPEAKERS:
            first = sorted((DATA / speaker).glob("*.flac"))[0]
            service.create_feature(caller, group, speaker, "", [_wav(first)])
        runtimes[name] = runtime
        calls[name] = (service, caller, group)
    probes = [
        _wav(path, 5.0)
        for speaker in SPEAKERS
        for path in sorted((DATA / speaker).glob("*.flac"))[1:3]
    ]
    times: dict[str, list[float]] = {name: [] for name in calls}
    for i in range(identifies):
        for name, (service, caller, group) in calls.items():
            start = time.perf_counter()
            service.identify(caller, group, probes[i % len(probes)], top_k=None)
            times[name].append(time.perf_counter() - start)
    for runtime in runtimes.values():
        runtime.database.dispose()
    return {name: statistics.median(t) * 1000 for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--identifies", type=int, default=60)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/encryption_cost.json")
    args = parser.parse_args()
    settings = get_settings()
    identify = _identify_ms(load_models(settings, progress=False), args.identifies)
    identify["added_percent"] = 100 * (identify["encrypted"] / identify["in clear"] - 1)
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
    print(
        f"\nidentify, 5 s clip, group of 10 (median of {args.identifies} each, alternating): "
        f"in clear {identify['in clear']:.1f} ms, encrypted {identify['encrypted']:.1f} ms, "
        f"{identify['added_percent']:+.1f} %"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {"repeats": args.repeats, "rows": rows, "identify_ms": identify}
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
