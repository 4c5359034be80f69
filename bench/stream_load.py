"""Live streams under load: N clients replay conversations at real-time pace over loopback.

A real server (SQLite) with a group of enrolled LibriSpeech speakers (two are
left out, as strangers); each client streams its own conversation built from
real recordings (``voiceprint.eval.conversations``: 4 speakers, some changes
without a pause) as 16 kHz PCM in 100 ms pieces at the pace it is spoken, and
notes when each event arrives. Reported per N: p50/p95 of the final answer's
delay after the turn's audio has been sent (the turn end); the same for the
parts of a turn before a change of speaker inside it (answered when the stream
hears the change, or when the turn ends); p50/p95 of the first interim answer's
delay after the speech start; errors; and how much of the speech the finals
attribute as offline
``speaker_diarize`` of the same conversation does. Prints a table and writes
bench/results/stream_load.json.

    .venv/bin/python bench/stream_load.py [--clients 1 8 16] [--seconds 60]
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import random
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import soundfile
from websockets.sync.client import connect

from bench_server import PREFIX, BenchServer, bench_server
from voiceprint.config import get_settings
from voiceprint.eval import conversations
from voiceprint.eval.corpus import load_corpus
from voiceprint.service.factory import load_models

ROOT = Path(__file__).resolve().parent.parent
INDEX = ROOT.parent / "shared" / "data" / "index.tsv"
PIECE = 1600  # samples: 100 ms


def wav(wave: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, wave, 16000, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def stream_one(server: BenchServer, group: str, wave: np.ndarray, out: dict) -> None:
    url = server.url.replace("http://", "ws://") + f"{PREFIX}/{group}/speaker_identify/stream"
    pcm = (np.clip(wave, -1, 1) * 32767).astype("<i2").tobytes()
    sent_at: dict[int, float] = {}  # stream ms -> wall time its audio was sent
    events: list[tuple[float, dict]] = []
    with connect(url, additional_headers=server.headers, max_size=None) as ws:
        ws.recv(timeout=30)
        stop = threading.Event()

        def reader() -> None:
            while not stop.is_set():
                try:
                    message = ws.recv(timeout=0.5)
                except TimeoutError:
                    continue
                except Exception:
                    return
                events.append((time.monotonic(), json.loads(message)))

        thread = threading.Thread(target=reader)
        thread.start()
        start = time.monotonic()
        for i in range(0, len(pcm), PIECE * 2):
            target = start + i / 32000
            time.sleep(max(0.0, target - time.monotonic()))
            delta = base64.b64encode(pcm[i : i + PIECE * 2]).decode()
            ws.send(
                json.dumps({"event_type": "input_audio_buffer.append", "data": {"delta": delta}})
            )
            sent_at[(i + PIECE * 2) // 32] = time.monotonic()
        time.sleep(1.5)
        ws.send(json.dumps({"event_type": "input_audio_buffer.complete"}))
        time.sleep(1.0)
        stop.set()
        thread.join()
    marks = np.array(sorted(sent_at))

    def sent(ms: int) -> float:
        return sent_at[int(marks[min(np.searchsorted(marks, ms), len(marks) - 1)])]

    started = stopped = None
    finals: list[dict] = []
    for arrived, event in events:
        kind, data = event["event_type"], event["data"]
        if kind == "input_audio_buffer.speech_started":
            started, first = data["offset_ms"], True
        elif kind == "input_audio_buffer.speech_stopped":
            stopped = data["offset_ms"]
        elif kind == "speaker_identify.segment" and not data["final"] and first:
            out["interim"].append(arrived - sent(started))
            first = False
        elif kind == "speaker_identify.segment" and data["final"]:
            # A turn's last part ends where the VAD heard it stop; an earlier part ends at a
            # change of speaker inside the turn, answered once the stream hears the change
            # or, at the latest, when the turn ends.
            where = "final" if data["end_ms"] == stopped else "final_inside"
            out[where].append(arrived - sent(data["end_ms"]))
            finals.append(data)
        elif kind == "error":
            out["errors"].append(data)
    out["finals"].append(finals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 16])
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    settings = get_settings()
    models = load_models(settings, progress=False)
    by_speaker: dict[str, list] = {}
    for u in load_corpus(INDEX):
        if u.set == "librispeech":
            by_speaker.setdefault(f"{u.set}/{u.speaker}", []).append(u)
    by_speaker = {k: v for k, v in by_speaker.items() if len(v) >= 3}
    strangers = sorted(by_speaker)[-2:]  # never enrolled
    rng = random.Random(0)
    length = int(args.seconds * 16000)
    waves = []
    for _ in range(max(args.clients)):
        conv = conversations.build(by_speaker, models.voice.detector, rng, speakers=4, turns=12)
        wave = np.tile(conv.wave, -(-length // len(conv.wave)))[:length]
        # A second of silence ends the last turn, as a microphone would go on sending.
        waves.append(np.concatenate([wave, np.zeros(16000, np.float32)]))
    rows = []
    with bench_server(max_streams="64", inference_threads="1") as server:
        group = httpx.post(
            f"{server.url}{PREFIX}", json={"name": "live"}, headers=server.headers
        ).json()["data"]["id"]
        for speaker in sorted(set(by_speaker) - set(strangers)):
            enrolment = wav(by_speaker[speaker][0].samples())
            httpx.post(
                f"{server.url}{PREFIX}/{group}/features",
                data={"name": speaker[-10:]},
                files={"file": enrolment},
                headers=server.headers,
                timeout=60,
            )
        offline = [
            httpx.post(
                f"{server.url}{PREFIX}/{group}/speaker_diarize", files={"file": wav(w)},
                headers=server.headers, timeout=300,
            ).json()["data"]
            for w in waves
        ]  # fmt: skip
        for n in args.clients:
            outs = [
                {"interim": [], "final": [], "final_inside": [], "finals": [], "errors": []}
                for _ in range(n)
            ]
            threads = [
                threading.Thread(target=stream_one, args=(server, group, waves[i], outs[i]))
                for i in range(n)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()

            def pooled(key: str, outs: list[dict] = outs) -> list[float]:
                return [x for o in outs for x in o[key]]

            same, total = np.sum(
                [agreement(o["finals"][0], offline[i], len(waves[i])) for i, o in enumerate(outs)],
                axis=0,
            )
            row = {"clients": n, "finals": len(pooled("final")), "errors": len(pooled("errors"))}
            for key in ("final", "final_inside", "interim"):
                values = pooled(key)
                for q in (50, 95):
                    row[f"{key}_p{q}_ms"] = (
                        1000 * float(np.percentile(values, q)) if values else float("nan")
                    )
            row["inside"] = len(pooled("final_inside"))
            row["agreement"] = float(same / max(total, 1))
            rows.append(row)
            print(row, flush=True)
    print(
        "| clients | final after turn end p50 / p95 (n) | final of a part before a change "
        "inside a turn p50 / p95 (n) | first interim after speech start p50 / p95 "
        "| finals agree with offline | errors |"
    )
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['clients']} | {r['final_p50_ms']:.0f} / {r['final_p95_ms']:.0f} ms "
            f"({r['finals']}) | {r['final_inside_p50_ms']:.0f} / "
            f"{r['final_inside_p95_ms']:.0f} ms ({r['inside']}) "
            f"| {r['interim_p50_ms']:.0f} / {r['interim_p95_ms']:.0f} ms "
            f"| {100 * r['agreement']:.1f} % | {r['errors']} |"
        )
    out_path = ROOT / "bench/results/stream_load.json"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(rows, indent=2))
    print(f"wrote {out_path}")


def agreement(finals: list[dict], offline: dict, length: int) -> tuple[int, int]:
    """Frames of speech (offline segments) where the stream's finals name the same
    voiceprint (or both none), and frames of speech."""
    frames = -(-length // 160)
    live = [None] * frames
    for f in finals:
        best = f["feature_score_list"][0]["feature_id"] if f["match"] else ""
        for i in range(f["start_ms"] // 10, min(f["end_ms"] // 10, frames)):
            live[i] = best
    total = same = 0
    for seg in offline["segments"]:
        for i in range(seg["start_ms"] // 10, min(seg["end_ms"] // 10, frames)):
            total += 1
            same += live[i] == seg["feature_id"]
    return same, total


if __name__ == "__main__":
    main()
