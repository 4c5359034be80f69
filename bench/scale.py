"""Identify latency as a group grows to 10^5 voiceprints: the embedding index at work.

LATENCY TEST ONLY: the group is filled with real embeddings of ../shared/data
speakers (the cohort set, one recording each), each repeated under many names
and bulk-inserted straight into the server's database, as the index sees any
change made by another server. Their recognition results mean nothing.

Starts a real server (SQLite, a temporary data folder, no encryption) on a free
loopback port, with a reference group of 10 real voiceprints. At each size it
enrols one real voiceprint through the API (its time is the enrol time),
identifies once (the index brings itself up to date after the fill) while a
second client identifies the reference group (its time says whether one group's
read holds up another's identify), then times
--requests identifies of the large group, one client, each with a 5 s real clip
and top_k 10, each followed by one of the reference group: the ratio of their
p95 compares the sizes under the same machine load. It records the server's RSS
after each size. Prints a table and writes bench/results/scale.json.

    .venv/bin/python bench/scale.py [--sizes 10 100 1000 10000 100000] [--requests 40]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import httpx
import numpy as np
from sqlalchemy import insert

from api_load import SPEAKERS, _files, probe_clips
from bench_server import PREFIX, BenchServer, bench_server, rss_mb
from voiceprint.audio.decode import decode_audio
from voiceprint.audio.errors import NotEnoughSpeech
from voiceprint.clock import now
from voiceprint.config import get_settings
from voiceprint.engine import SpeechPolicy
from voiceprint.service.factory import load_models
from voiceprint.service.index import mark_changed
from voiceprint.store.db import make_engine, make_session_factory
from voiceprint.store.ids import new_id
from voiceprint.store.models import Feature, Sample

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
LABEL = "latency test only"
# How long after the large group's first identify is sent the reference group's goes:
# time for the first to reach the index's read.
READ_STARTS_S = 0.2
ENROL = SpeechPolicy("enrolment", 1.0)


def real_embeddings(
    threads: int, sets: Sequence[str], count: int | None = None
) -> tuple[str, np.ndarray]:
    """The model id and embeddings of the first ``count`` (all: None) recordings of
    ``sets``, as enrolled (at most the first 10 s of each); those with too little speech
    are left out."""
    settings = get_settings().model_copy(update={"inference_threads": threads})
    engine = load_models(settings, progress=False).voice
    with (DATA / "index.tsv").open() as f:
        paths = [DATA / r["path"] for r in csv.DictReader(f, delimiter="\t") if r["set"] in sets]
    vectors = []
    for path in paths[:count]:
        audio = decode_audio(path.read_bytes())
        try:
            sample = engine.analyse(replace(audio, samples=audio.samples[:160000]), ENROL)
        except NotEnoughSpeech:
            continue
        vectors.append(sample.embedding)
    return engine.model_id, np.stack(vectors).astype("<f4")


def bulk_insert(
    server: BenchServer, group: int, model_id: str, vectors: np.ndarray, n: int
) -> float:
    """Add ``n`` voiceprints (one sample each, cycling through ``vectors``) in one
    transaction, raising the group's generation as any change does; seconds taken."""
    started = time.perf_counter()
    sessions = make_session_factory(make_engine(f"sqlite:///{server.data_dir / 'voiceprint.db'}"))
    at = now()
    with sessions() as session, session.begin():
        generation = mark_changed(session, group)
        features, samples = [], []
        for i in range(n):
            feature_id = new_id()
            features.append(
                {
                    "id": feature_id,
                    "group_id": group,
                    "creator_id": server.account_id,
                    "name": f"filler-{feature_id % 10**8}",
                    "description": LABEL,
                    "created_at": at,
                    "updated_at": at,
                    "revision": generation,
                }
            )
            samples.append(
                {
                    "id": new_id(),
                    "feature_id": feature_id,
                    "audio_key": "none/latency-test-only",
                    "audio_format": "wav",
                    "source_rate": 16000,
                    "source_channels": 1,
                    "embedding": vectors[i % len(vectors)].tobytes(),
                    "model_id": model_id,
                    "speech_seconds": 10.0,
                    "quality": {"narrowband": False},
                    "created_at": at,
                    "key_generation": None,
                }
            )
        session.execute(insert(Feature), features)
        session.execute(insert(Sample), samples)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000, 10000, 100000])
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--distinct", type=int, default=200, help="real filler embeddings")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/scale.json")
    args = parser.parse_args()

    model_id, vectors = real_embeddings(args.threads, ["cohort"], args.distinct)
    clips = probe_clips()
    rows = []
    with bench_server(
        inference_threads=str(args.threads), max_features_per_group=str(max(args.sizes) + 10)
    ) as server:
        client = httpx.Client(base_url=server.url, headers=server.headers, timeout=300)
        second = httpx.Client(base_url=server.url, headers=server.headers, timeout=300)
        idle_mb, _ = rss_mb(server.process.pid)

        def identify(group: str, clip: bytes, by: httpx.Client = client) -> float:
            start = time.perf_counter()
            r = by.post(
                f"{PREFIX}/{group}/speaker_identify", data={"top_k": "10"}, files={"file": clip}
            )
            assert r.status_code == 200 and r.json()["code"] == 0, r.text
            return (time.perf_counter() - start) * 1000

        def enrol(group: str, speaker: str) -> float:
            start = time.perf_counter()
            r = client.post(
                f"{PREFIX}/{group}/features",
                data={"name": f"real-{speaker}"},
                files={"file": _files(speaker)[0].read_bytes()},
            )
            assert r.json()["code"] == 0, r.text
            return (time.perf_counter() - start) * 1000

        # The reference: a group of 10 real voiceprints, identified in turn with the large
        # one, so both see the same load from whatever else runs on the machine.
        reference = client.post(PREFIX, json={"name": "reference"}).json()["data"]["id"]
        for speaker in SPEAKERS:
            enrol(reference, speaker)
        group = client.post(PREFIX, json={"name": "scale"}).json()["data"]["id"]
        enrolled = 0
        for size in sorted(args.sizes):
            filled = bulk_insert(server, group, model_id, vectors, max(size - enrolled - 1, 0))
            enrolled = max(size - 1, enrolled)
            enrol_ms = enrol(group, SPEAKERS[len(rows) % len(SPEAKERS)])
            enrolled += 1
            with ThreadPoolExecutor(1) as pool:
                first = pool.submit(identify, group, clips[0])
                time.sleep(READ_STARTS_S)
                beside_first_ms = identify(reference, clips[1], second)
                first_ms = first.result()
            timed: dict[str, list[float]] = {"large": [], "reference": []}
            for i in range(1, args.requests + 1):
                timed["large"].append(identify(group, clips[i % len(clips)]))
                timed["reference"].append(identify(reference, clips[i % len(clips)]))
            rss, peak = rss_mb(server.process.pid)
            large, ref = (np.array(timed[k]) for k in ("large", "reference"))
            rows.append(
                {
                    "voiceprints": enrolled,
                    "bulk_insert_s": filled,
                    "enrol_ms": enrol_ms,
                    "first_identify_ms": first_ms,
                    "reference_beside_first_ms": beside_first_ms,
                    "p50_ms": float(np.percentile(large, 50)),
                    "p95_ms": float(np.percentile(large, 95)),
                    "reference_p50_ms": float(np.percentile(ref, 50)),
                    "reference_p95_ms": float(np.percentile(ref, 95)),
                    "server_rss_mb": rss,
                    "server_peak_rss_mb": peak,
                }
            )
            print(f"{enrolled} voiceprints: p50 {rows[-1]['p50_ms']:.0f} ms", flush=True)

    print(
        f"LATENCY TEST ONLY ({LABEL}); server idle RSS {idle_mb:.0f} MB; {args.threads} "
        f"threads; {args.requests} identifies per size, alternating with a group of 10"
    )
    print(
        "| voiceprints | identify p50 | p95 | group of 10 alongside: p50 | p95 | p95 ratio "
        "| first identify after the fill | group of 10 meanwhile | enrol | server RSS (peak) "
        "| RSS over idle |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['voiceprints']} | {r['p50_ms']:.0f} ms | {r['p95_ms']:.0f} ms "
            f"| {r['reference_p50_ms']:.0f} ms | {r['reference_p95_ms']:.0f} ms "
            f"| {r['p95_ms'] / r['reference_p95_ms']:.2f} | {r['first_identify_ms']:.0f} ms "
            f"| {r['reference_beside_first_ms']:.0f} ms "
            f"| {r['enrol_ms']:.0f} ms "
            f"| {r['server_rss_mb']:.0f} MB ({r['server_peak_rss_mb']:.0f} MB) "
            f"| {r['server_rss_mb'] - idle_mb:+.0f} MB |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    summary = {"label": LABEL, "idle_rss_mb": idle_mb, "threads": args.threads, "rows": rows}
    args.out.write_text(json.dumps(summary, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
