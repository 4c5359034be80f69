"""Load on speaker_identify: N concurrent clients, 5 s clips, a group of 10 voiceprints.

Starts a real server (SQLite, a temporary data folder) on a free loopback port,
enrols ten LibriSpeech/speechocean762 speakers, then for each N in --clients
alternates --rounds rounds of the engine alone (decode + VAD + embedding +
scoring, in this process, one request at a time, the server idle) with
--rounds rounds of N clients in a closed loop against the server, each
--seconds long, on the same clips. Each server round is divided by the engine
round just before it; the table gives the median ratio and its range, so a
machine whose other load changes during the run shows as spread rather than as
a wrong ratio. Prints a table and writes bench/results/api_load.json.

    .venv/bin/python bench/api_load.py [--clients 1 2 4 8] [--seconds 10] [--rounds 5]
        [--encrypted]

``--encrypted`` gives the server an encryption key, so every stored embedding is
opened in memory on each identify (compare with a run without it).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import soundfile

from bench_server import PREFIX, bench_server, rss_mb
from voiceprint.audio.decode import decode_audio
from voiceprint.config import get_settings
from voiceprint.engine import SpeechPolicy
from voiceprint.scoring.scorer import Voices
from voiceprint.service.factory import load_models
from voiceprint.store.crypto import generate_key

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
SPEAKERS = ["1688", "1998", "2033", "2414", "2609", "3005", "3080", "3331", "367", "533"]


def _wav(wave: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, wave, 16000, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def _files(speaker: str) -> list[Path]:
    return sorted((DATA / "librispeech" / speaker).glob("*.flac"))


def probe_clips() -> list[bytes]:
    """5 s cuts of the speakers' other recordings (those of at least 5 s)."""
    clips = []
    for speaker in SPEAKERS:
        for path in _files(speaker)[1:]:
            wave, _ = soundfile.read(path, dtype="float32")
            if len(wave) >= 5 * 16000:
                clips.append(_wav(wave[: 5 * 16000]))
    return clips


class EngineAlone:
    """The engine in this process, as the server runs it per request: decode, VAD,
    embedding, scoring against 10 voiceprints; one request at a time."""

    def __init__(self, threads: int) -> None:
        settings = get_settings().model_copy(update={"inference_threads": threads})
        models = load_models(settings)
        self._engine, self._scorer = models.voice, models.scorer
        self._probe = SpeechPolicy("identification", settings.min_probe_speech_s)
        rng = np.random.default_rng(0)
        self._enrolled = Voices.of(rng.standard_normal((10, 192)).astype(np.float32))

    def once(self, data: bytes) -> None:
        sample = self._engine.analyse(decode_audio(data), self._probe)
        self._scorer.scores(Voices.of(sample.embedding, sample.narrowband), self._enrolled)

    def rate(self, clips: list[bytes], seconds: float) -> float:
        """Requests per second over a round of ``seconds``, the clips in turn."""
        done, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            self.once(clips[done % len(clips)])
            done += 1
        return done / (time.perf_counter() - started)


def run_clients(url: str, token: str, group: str, clips: list[bytes], n: int, seconds: float):  # type: ignore[no-untyped-def]
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(index: int) -> None:
        nonlocal errors
        with httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as c:
            i = index
            while time.monotonic() < deadline:
                start = time.perf_counter()
                r = c.post(
                    f"{PREFIX}/{group}/speaker_identify", files={"file": clips[i % len(clips)]}
                )
                elapsed = time.perf_counter() - start
                with lock:
                    if r.status_code == 200 and r.json()["code"] == 0:
                        latencies.append(elapsed)
                    else:
                        errors += 1
                i += n

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - started
    ms = np.array(latencies) * 1000
    return {
        "clients": n,
        "requests": len(latencies),
        "errors": errors,
        "req_per_s": len(latencies) / wall,
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "p99_ms": float(np.percentile(ms, 99)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--seconds", type=float, default=10, help="length of each round")
    parser.add_argument("--rounds", type=int, default=5, help="engine and server rounds each")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/api_load.json")
    parser.add_argument(
        "--encrypted", action="store_true", help="recordings and embeddings stored encrypted"
    )
    args = parser.parse_args()
    key = {"encryption_key": generate_key()} if args.encrypted else {}

    clips = probe_clips()
    engine = EngineAlone(args.threads)
    engine.once(clips[0])

    with bench_server(inference_threads=str(args.threads), **key) as server:
        url, token, headers = server.url, server.token, server.headers
        group = httpx.post(f"{url}{PREFIX}", json={"name": "load"}, headers=headers).json()
        group_id = group["data"]["id"]
        for speaker in SPEAKERS:
            with _files(speaker)[0].open("rb") as f:
                r = httpx.post(
                    f"{url}{PREFIX}/{group_id}/features",
                    data={"name": speaker},
                    files={"file": f.read()},
                    headers=headers,
                    timeout=60,
                )
            assert r.json()["code"] == 0, r.text
        run_clients(url, token, group_id, clips, 1, 2.0)  # warm the server
        rows = []
        for n in args.clients:
            # Engine and server rounds alternate, so a change in what else runs on the
            # machine falls on both; each server round is compared with the engine round
            # just before it.
            rounds = []
            for _ in range(args.rounds):
                engine_rps = engine.rate(clips, args.seconds)
                served = run_clients(url, token, group_id, clips, n, args.seconds)
                rounds.append({**served, "engine_req_per_s": engine_rps})
            ratios = [r["req_per_s"] / r["engine_req_per_s"] for r in rounds]
            row = {
                "clients": n,
                "rounds": rounds,
                "ratio_median": statistics.median(ratios),
                "ratio_min": min(ratios),
                "ratio_max": max(ratios),
                "req_per_s": statistics.median(r["req_per_s"] for r in rounds),
                "engine_req_per_s": statistics.median(r["engine_req_per_s"] for r in rounds),
                "p50_ms": statistics.median(r["p50_ms"] for r in rounds),
                "p95_ms": statistics.median(r["p95_ms"] for r in rounds),
                "errors": sum(r["errors"] for r in rounds),
            }
            row["server_rss_mb"], row["server_peak_rss_mb"] = rss_mb(server.process.pid)
            rows.append(row)

    stored = "encrypted" if args.encrypted else "in clear"
    print(
        f"{args.rounds} engine-alone and {args.rounds} server rounds of {args.seconds:g} s "
        f"alternating per row (5 s clips, {args.threads} threads, voiceprints stored {stored}); "
        "medians over rounds"
    )
    print(
        "| clients | server req/s | engine alone req/s | ratio (median) | ratio min–max "
        "| p50 | p95 | errors | server RSS (peak) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['clients']} | {r['req_per_s']:.2f} | {r['engine_req_per_s']:.2f} "
            f"| {r['ratio_median']:.2f} | {r['ratio_min']:.2f}–{r['ratio_max']:.2f} "
            f"| {r['p50_ms']:.0f} ms | {r['p95_ms']:.0f} ms | {r['errors']} "
            f"| {r['server_rss_mb']:.0f} MB ({r['server_peak_rss_mb']:.0f} MB) |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    summary = {"encrypted": args.encrypted, "threads": args.threads, "rows": rows}
    args.out.write_text(json.dumps(summary, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
