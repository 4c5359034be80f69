"""Soak: mixed traffic against a real server for a long while; does anything grow or fail?

Several closed-loop clients, each in its own workspace, enrol, identify, list,
add and delete voiceprints and send bad input (corrupt audio, bad ids, wrong
tokens), against one server (SQLite). Every 10 s the server's RSS and open file
descriptors are sampled. Reports throughput, answers by code, unexpected
answers (5xx or transport errors: must be 0) and growth of RSS and descriptors
from the end of warm-up (the first fifth) to the end. Prints a table and writes
bench/results/soak.json.

    .venv/bin/python bench/soak.py [--minutes 30] [--clients 4] [--encrypted]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import soundfile

from bench_server import PREFIX, BenchServer, bench_server
from voiceprint.auth.tokens import mint_token
from voiceprint.store.crypto import generate_key
from voiceprint.store.db import make_engine, make_session_factory

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
SPEAKERS = ["1688", "1998", "2033", "2414", "2609", "3005", "3080", "3331", "367", "533"]


def _clips() -> list[bytes]:
    clips = []
    for speaker in SPEAKERS:
        path = sorted((DATA / "librispeech" / speaker).glob("*.flac"))[0]
        wave, rate = soundfile.read(path, dtype="float32")
        buffer = io.BytesIO()
        soundfile.write(buffer, wave[: 4 * rate], rate, format="WAV", subtype="PCM_16")
        clips.append(buffer.getvalue())
    return clips


def _sample(pid: int) -> tuple[float, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    return rss / 1024, len(os.listdir(f"/proc/{pid}/fd"))


def _client(server: BenchServer, token: str, seed: int, clips: list[bytes], deadline: float,
            codes: Counter, unexpected: list[str], lock: threading.Lock) -> None:  # fmt: skip
    rng = random.Random(seed)
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as c:
        group = c.post(PREFIX, json={"name": "soak"}).json()["data"]["id"]
        features: list[str] = []
        while time.monotonic() < deadline:
            action = rng.choice(
                ["identify"] * 4
                + ["enrol", "list", "add", "delete", "corrupt", "bad id", "bad token"]
            )
            clip = rng.choice(clips)
            try:
                if action == "enrol" or (action in ("add", "delete") and not features):
                    if len(features) >= 8:
                        r = c.delete(f"{PREFIX}/{group}/features/{features.pop(0)}")
                    else:
                        r = c.post(
                            f"{PREFIX}/{group}/features", data={"name": "p"}, files={"file": clip}
                        )
                        if r.json()["code"] == 0:
                            features.append(r.json()["data"]["id"])
                elif action == "identify":
                    r = c.post(f"{PREFIX}/{group}/speaker_identify", files={"file": clip})
                elif action == "list":
                    r = c.get(f"{PREFIX}/{group}/features")
                elif action == "add":
                    r = c.post(
                        f"{PREFIX}/{group}/features/{rng.choice(features)}/samples",
                        files={"file": clip},
                    )
                elif action == "delete":
                    r = c.delete(f"{PREFIX}/{group}/features/{features.pop()}")
                elif action == "corrupt":
                    broken = bytearray(clip)
                    broken[44:] = os.urandom(len(broken) - 44)[: len(broken) - 44]
                    r = c.post(
                        f"{PREFIX}/{group}/speaker_identify", files={"file": bytes(broken[:9000])}
                    )
                elif action == "bad id":
                    r = c.get(f"{PREFIX}/{rng.choice(['x', '0', '²', '9' * 30])}/features")
                else:
                    r = httpx.get(
                        f"{server.url}{PREFIX}", headers={"Authorization": "Bearer vp_1_nope"}
                    )
                code = r.json()["code"]
                with lock:
                    codes[code] += 1
                    if r.status_code >= 500:
                        unexpected.append(f"{action}: {r.status_code} {r.text[:200]}")
            except (httpx.TransportError, ValueError, KeyError) as exc:
                with lock:
                    unexpected.append(f"{action}: {type(exc).__name__}: {exc}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--encrypted", action="store_true", help="with an encryption key")
    args = parser.parse_args()
    key = {"encryption_key": generate_key()} if args.encrypted else {}
    clips = _clips()
    codes: Counter = Counter()
    unexpected: list[str] = []
    lock = threading.Lock()
    samples: list[tuple[float, float, int]] = []
    # Failed logins are part of the traffic; the limiter must not turn the rest into 4013.
    with bench_server(failed_auth_per_minute="0", **key) as server:
        db = make_session_factory(make_engine(f"sqlite:///{server.data_dir / 'voiceprint.db'}"))
        tokens = []
        for i in range(args.clients):
            with db() as session, session.begin():
                tokens.append(mint_token(session, user=f"soak{i}", workspace=f"soak{i}").token)
        started = time.monotonic()
        deadline = started + args.minutes * 60
        threads = [
            threading.Thread(
                target=_client, args=(server, t, i, clips, deadline, codes, unexpected, lock)
            )
            for i, t in enumerate(tokens)
        ]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            samples.append((time.monotonic() - started, *_sample(server.process.pid)))
            time.sleep(10)
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
    warm = [s for s in samples if s[0] >= elapsed / 5] or samples
    rss_growth = (warm[-1][1] - warm[0][1]) / warm[0][1]
    fd_growth = (warm[-1][2] - warm[0][2]) / max(warm[0][2], 1)
    total = sum(codes.values())
    print(
        f"{args.minutes:g} min, {args.clients} clients{', encrypted' if key else ''}: "
        f"{total} requests, {total / elapsed:.1f} req/s"
    )
    print("| answers by code | " + " | ".join(f"{k}: {v}" for k, v in sorted(codes.items())) + " |")
    print(f"unexpected (5xx or transport errors): {len(unexpected)}")
    for line in unexpected[:10]:
        print("  " + line)
    print(
        f"RSS after warm-up {warm[0][1]:.0f} MB -> end {warm[-1][1]:.0f} MB "
        f"({100 * rss_growth:+.1f} %), "
        f"max {max(s[1] for s in samples):.0f} MB"
    )
    print(
        f"open descriptors after warm-up {warm[0][2]} -> end {warm[-1][2]} "
        f"({100 * fd_growth:+.1f} %)"
    )
    out = ROOT / f"bench/results/soak{'-encrypted' if key else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "minutes": args.minutes, "clients": args.clients, "encrypted": bool(key),
        "requests": total,
        "codes": dict(codes), "unexpected": unexpected, "samples": samples,
        "rss_growth": rss_growth, "fd_growth": fd_growth,
    }, indent=2))  # fmt: skip
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
