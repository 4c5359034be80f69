"""Load on speaker_identify: N concurrent clients, 5 s clips, a group of 10 voiceprints.

Starts a real server (SQLite, a temporary data folder) on a free loopback port,
enrols ten LibriSpeech/speechocean762 speakers, then for each N in --clients
runs --pairs pairs of short rounds, each pair one round of the engine alone
(decode + VAD + embedding + scoring, in this process, one request at a time,
the server idle) and one round of N clients in a closed loop against the
server, --seconds each, on the same clips. The order inside a pair alternates
(engine first, then server first), so a machine whose other load drifts during
the run loads both sides alike.

Two measures per pair, each compared within the pair:
- throughput ratio: server req/s over engine-alone req/s (wall time, sensitive
  to what else runs on the machine);
- CPU ratio: the server process's CPU seconds per request over this process's
  CPU seconds per engine-alone request, which other load barely moves. Above 1
  is the server's own overhead (HTTP, database, threads); on a machine with
  fewer cores than clients it bounds the throughput ratio from above.
The table gives each ratio's median and interquartile range over the pairs, and
p50/p95 over all requests of the rows' rounds. The clients send pre-built
requests over plain keep-alive connections, so they take little of the CPU the
server and the engine share. Prints a table and writes bench/results/api_load.json.

    .venv/bin/python bench/api_load.py [--clients 1 2 4 8] [--seconds 4] [--pairs 8]
        [--threads N] [--encrypted]

``--threads`` sets ONNX Runtime's threads for both sides (default: the server's
own default). ``--encrypted`` gives the server an encryption key, so every stored
embedding is opened in memory on each identify (compare with a run without it).
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import secrets
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
CLOCK_TICK = os.sysconf("SC_CLK_TCK")


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


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, all its threads, so far."""
    # Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK


def _round(work: Callable[[], list[float]], pid: int, **extra: Any) -> dict[str, Any]:
    """Run one round; its rate, latencies and the CPU seconds ``pid`` spent per request."""
    cpu, started = process_cpu_s(pid), time.perf_counter()
    latencies = work()
    wall, cpu = time.perf_counter() - started, process_cpu_s(pid) - cpu
    return {
        "requests": len(latencies),
        "req_per_s": len(latencies) / wall,
        "cpu_ms_per_req": cpu / max(1, len(latencies)) * 1000,
        "latencies_ms": [round(s * 1000, 1) for s in latencies],
        **extra,
    }


class EngineAlone:
    """The engine in this process, as the server runs it per request: decode, VAD,
    embedding, scoring against 10 voiceprints; one request at a time."""

    def __init__(self, threads: int | None) -> None:
        settings = get_settings()
        if threads:
            settings = settings.model_copy(update={"inference_threads": threads})
        models = load_models(settings, progress=False)
        self._engine, self._scorer = models.voice, models.scorer
        self._probe = SpeechPolicy("identification", settings.min_probe_speech_s)
        rng = np.random.default_rng(0)
        self._enrolled = Voices.of(rng.standard_normal((10, 192)).astype(np.float32))

    def once(self, data: bytes) -> None:
        sample = self._engine.analyse(decode_audio(data), self._probe)
        self._scorer.scores(Voices.of(sample.embedding, sample.narrowband), self._enrolled)

    def round(self, clips: list[bytes], seconds: float) -> dict[str, Any]:
        def work() -> list[float]:
            latencies: list[float] = []
            deadline = time.perf_counter() + seconds
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                self.once(clips[len(latencies) % len(clips)])
                latencies.append(time.perf_counter() - start)
            return latencies

        return _round(work, os.getpid())


class Clients:
    """Closed-loop clients of speaker_identify, each on its own keep-alive connection,
    sending multipart bodies built once (so the load generator stays cheap)."""

    def __init__(self, url: str, token: str, group: int, clips: list[bytes]) -> None:
        self._host = urlsplit(url).netloc
        self._path = f"{PREFIX}/{group}/speaker_identify"
        boundary = secrets.token_hex(16)
        self._headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        }
        self._bodies = [
            b"".join(
                [
                    f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                    f'filename="probe.wav"\r\nContent-Type: audio/wav\r\n\r\n'.encode(),
                    clip,
                    f"\r\n--{boundary}--\r\n".encode(),
                ]
            )
            for clip in clips
        ]

    def round(self, n: int, seconds: float, server_pid: int) -> dict[str, Any]:
        errors = 0

        def work() -> list[float]:
            nonlocal errors
            latencies: list[float] = []
            lock = threading.Lock()
            deadline = time.monotonic() + seconds

            def client(index: int) -> None:
                nonlocal errors
                connection = http.client.HTTPConnection(self._host, timeout=120)
                i = index
                while time.monotonic() < deadline:
                    start = time.perf_counter()
                    body = self._bodies[i % len(self._bodies)]
                    connection.request("POST", self._path, body, self._headers)
                    response = connection.getresponse()
                    answer = json.loads(response.read())
                    elapsed = time.perf_counter() - start
                    with lock:
                        if response.status == 200 and answer["code"] == 0:
                            latencies.append(elapsed)
                        else:
                            errors += 1
                    i += n
                connection.close()

            threads = [threading.Thread(target=client, args=(k,)) for k in range(n)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return latencies

        client_cpu = process_cpu_s(os.getpid())
        served = _round(work, server_pid)
        served["client_cpu_ms_per_req"] = (
            (process_cpu_s(os.getpid()) - client_cpu) / max(1, served["requests"]) * 1000
        )
        served["errors"] = errors
        return served


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def summarise(n: int, pairs: list[dict[str, Any]]) -> dict[str, Any]:
    """One table row: the ratios' medians and interquartile ranges over the pairs,
    latencies over all requests."""
    ratios = [p["server"]["req_per_s"] / p["engine"]["req_per_s"] for p in pairs]
    cpu_ratios = [p["server"]["cpu_ms_per_req"] / p["engine"]["cpu_ms_per_req"] for p in pairs]
    served = [ms for p in pairs for ms in p["server"]["latencies_ms"]]
    alone = [ms for p in pairs for ms in p["engine"]["latencies_ms"]]
    q1, ratio, q3 = _quartiles(ratios)
    c1, cpu_ratio, c3 = _quartiles(cpu_ratios)
    return {
        "clients": n,
        "pairs": pairs,
        "ratio_median": ratio,
        "ratio_iqr": [q1, q3],
        "cpu_ratio_median": cpu_ratio,
        "cpu_ratio_iqr": [c1, c3],
        "req_per_s": statistics.median(p["server"]["req_per_s"] for p in pairs),
        "engine_req_per_s": statistics.median(p["engine"]["req_per_s"] for p in pairs),
        "server_cpu_ms_per_req": statistics.median(p["server"]["cpu_ms_per_req"] for p in pairs),
        "engine_cpu_ms_per_req": statistics.median(p["engine"]["cpu_ms_per_req"] for p in pairs),
        "client_cpu_ms_per_req": statistics.median(
            p["server"]["client_cpu_ms_per_req"] for p in pairs
        ),
        "p50_ms": float(np.percentile(served, 50)),
        "p95_ms": float(np.percentile(served, 95)),
        "engine_p95_ms": float(np.percentile(alone, 95)),
        "errors": sum(p["server"]["errors"] for p in pairs),
        "load_average": [p["load_average"] for p in pairs],
    }


def _enrol(url: str, headers: dict[str, str]) -> int:
    group = httpx.post(f"{url}{PREFIX}", json={"name": "load"}, headers=headers).json()
    group_id: int = group["data"]["id"]
    for speaker in SPEAKERS:
        r = httpx.post(
            f"{url}{PREFIX}/{group_id}/features",
            data={"name": speaker},
            files={"file": _files(speaker)[0].read_bytes()},
            headers=headers,
            timeout=60,
        )
        assert r.json()["code"] == 0, r.text
    return group_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--seconds", type=float, default=4, help="length of each round")
    parser.add_argument("--pairs", type=int, default=8, help="engine/server round pairs per row")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/api_load.json")
    parser.add_argument(
        "--encrypted", action="store_true", help="recordings and embeddings stored encrypted"
    )
    args = parser.parse_args()
    settings = {"encryption_key": generate_key()} if args.encrypted else {}
    if args.threads:
        settings["inference_threads"] = str(args.threads)

    clips = probe_clips()
    engine = EngineAlone(args.threads)
    engine.once(clips[0])

    with bench_server(**settings) as server:
        clients = Clients(server.url, server.token, _enrol(server.url, server.headers), clips)
        clients.round(1, 2.0, server.process.pid)  # warm the server
        rows = []
        for n in args.clients:
            pairs = []
            for i in range(args.pairs):
                load = os.getloadavg()[0]
                if i % 2 == 0:
                    alone = engine.round(clips, args.seconds)
                    served = clients.round(n, args.seconds, server.process.pid)
                else:
                    served = clients.round(n, args.seconds, server.process.pid)
                    alone = engine.round(clips, args.seconds)
                pairs.append({"engine": alone, "server": served, "load_average": load})
            row = summarise(n, pairs)
            row["server_rss_mb"], row["server_peak_rss_mb"] = rss_mb(server.process.pid)
            rows.append(row)

    stored = "encrypted" if args.encrypted else "in clear"
    loads = [a for r in rows for a in r["load_average"]]
    print(
        f"{args.pairs} pairs of {args.seconds:g} s rounds per row, engine alone and server in "
        f"alternating order (5 s clips, threads {args.threads or 'server default'}, "
        f"voiceprints stored {stored}); load average {min(loads):.1f}–{max(loads):.1f} "
        f"on {os.cpu_count()} cores"
    )
    print(
        "| clients | server req/s | engine alone req/s | ratio median (IQR) "
        "| CPU/req server / engine | CPU ratio median (IQR) | p50 | p95 | engine p95 "
        "| errors | server RSS (peak) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['clients']} | {r['req_per_s']:.2f} | {r['engine_req_per_s']:.2f} "
            f"| {r['ratio_median']:.2f} ({r['ratio_iqr'][0]:.2f}–{r['ratio_iqr'][1]:.2f}) "
            f"| {r['server_cpu_ms_per_req']:.0f} / {r['engine_cpu_ms_per_req']:.0f} ms "
            f"| {r['cpu_ratio_median']:.2f} ({r['cpu_ratio_iqr'][0]:.2f}–"
            f"{r['cpu_ratio_iqr'][1]:.2f}) "
            f"| {r['p50_ms']:.0f} ms | {r['p95_ms']:.0f} ms | {r['engine_p95_ms']:.0f} ms "
            f"| {r['errors']} | {r['server_rss_mb']:.0f} MB ({r['server_peak_rss_mb']:.0f} MB) |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    summary = {"encrypted": args.encrypted, "threads": args.threads, "rows": rows}
    args.out.write_text(json.dumps(summary, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
