"""Changes of speaker inside a live turn, on real speech of each set in ../shared/data.

Each stream is fed to ``IdentifyStream`` (the server's stream, without the
socket) in 100 ms pieces, as one turn without a pause: the VAD's pauses are
cut out of the recordings. Per set, for 16 speakers:

- one speaker's talk (10 s from their recordings): every final that ends before
  the turn does is a false change;
- that speaker's 5 s, then the next speaker's 5 s: the change is caught when a
  final ends within 0.5 s of it before the turn ends; reported with how far from
  the true change it was placed and how much later the stream answered it
  (audio time, not wall time: what the stream needed to hear).

Changes not caught are still answered when the turn ends, as before. Prints a
table and writes bench/results/stream_changes.json.

    .venv/bin/python bench/stream_changes.py [--speakers 16]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np

from voiceprint.audio.vad import speech_only
from voiceprint.config import get_settings
from voiceprint.eval.corpus import Utterance, load_corpus
from voiceprint.service.factory import Models, load_models
from voiceprint.service.streams import IdentifyStream, TurnAnswer

ROOT = Path(__file__).resolve().parent.parent
INDEX = ROOT.parent / "shared" / "data" / "index.tsv"
SETS = ("librispeech", "commonvoice_zh", "speechocean762", "telephone")
RATE = 16000
PIECE = 1600  # samples: 100 ms


def talk(models: Models, utterances: list[Utterance], seconds: float) -> np.ndarray:
    """``seconds`` of one speaker's speech, the pauses the VAD hears cut out."""
    pieces, total = [], 0
    for u in utterances:
        wave = u.samples()
        pieces.append(speech_only(wave, models.voice.detector.segments(wave)))
        total += len(pieces[-1])
        if total >= seconds * RATE:
            break
    return np.concatenate(pieces)[: int(seconds * RATE)]


def early_finals(models: Models, wave: np.ndarray) -> list[tuple[int, int]]:
    """(end sample, stream sample when it was answered) of each final answered while
    the turn went on."""
    stream = IdentifyStream(
        models.voice, models.scorer, [], np.zeros((0, 1), np.float32), max_ahead_s=1e9
    )
    pcm = (np.clip(wave, -1, 1) * 32767).astype("<i2").tobytes()
    out = []
    for i in range(0, len(wave), PIECE):
        for event in stream.append(pcm[2 * i : 2 * (i + PIECE)]):
            if isinstance(event, TurnAnswer) and event.final:
                out.append((event.end_ms * RATE // 1000, i + PIECE))
    return out


def measure(models: Models, by_speaker: dict[str, list[Utterance]]) -> dict:
    keys = sorted(by_speaker)
    false, heard, caught, placed, later, pairs = 0, 0.0, 0, [], [], 0
    for i, key in enumerate(keys):
        one = talk(models, by_speaker[key], 10)
        heard += len(one) / RATE
        false += len(early_finals(models, one))
        first = talk(models, by_speaker[key], 5)
        second = talk(models, by_speaker[keys[(i + 1) % len(keys)]], 5)
        if len(first) < 5 * RATE or len(second) < 3 * RATE:
            continue
        pairs += 1
        near = [
            (end, at)
            for end, at in early_finals(models, np.concatenate([first, second]))
            if abs(end - len(first)) < RATE // 2
        ]
        if near:
            caught += 1
            placed.append(abs(near[0][0] - len(first)) / RATE)
            later.append((near[0][1] - len(first)) / RATE)
    return {
        "false_changes": false,
        "minutes_of_one_speaker": heard / 60,
        "changes": pairs,
        "caught": caught,
        "placement_error_s_median": float(np.median(placed)) if placed else None,
        "answered_after_s_median": float(np.median(later)) if later else None,
        "answered_after_s_max": float(max(later)) if later else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speakers", type=int, default=16)
    args = parser.parse_args()
    models = load_models(get_settings(), progress=False)
    corpus = load_corpus(INDEX)
    rng = random.Random(0)
    rows = []
    for set_name in SETS:
        by_speaker: dict[str, list[Utterance]] = {}
        for u in corpus:
            if u.set == set_name:
                by_speaker.setdefault(u.speaker, []).append(u)
        chosen = sorted(k for k, v in by_speaker.items() if len(v) >= 2)
        rng.shuffle(chosen)
        row = {
            "set": set_name,
            **measure(models, {k: by_speaker[k] for k in chosen[: args.speakers]}),
        }
        rows.append(row)
        print(row, flush=True)

    def seconds(value: float | None) -> str:
        return "–" if value is None else f"{value:.2f} s"

    print(
        "| set | false changes in one speaker's talk | changes caught before the turn ends "
        "| placed within (median) | answered after (median / max) |"
    )
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['set']} | {r['false_changes']} in {r['minutes_of_one_speaker']:.1f} min "
            f"| {r['caught']} of {r['changes']} | {seconds(r['placement_error_s_median'])} "
            f"| {seconds(r['answered_after_s_median'])} / {seconds(r['answered_after_s_max'])} |"
        )
    out = ROOT / "bench/results/stream_changes.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
