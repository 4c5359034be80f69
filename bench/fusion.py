"""Is fusing ECAPA with CAM++ worth it? Per-set EER and minDCF of each model and of the fusion.

Plain cosine on whole clips (VAD-gated as the server does), every pair of a
set's utterances a trial. Fusion: each model's cosine standardised by the mean
and spread of its different-speaker scores on the calibration speakers of
CAM++ (speechocean762 1-20, commonvoice_zh 1-25), then averaged. Reported on
the other speakers only. Also times both models on a 3 s clip, since fusion
runs both. Prints a table and writes bench/results/fusion.json.

    .venv/bin/python bench/fusion.py [--cache FILE]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from voiceprint.config import get_settings
from voiceprint.eval.corpus import load_corpus
from voiceprint.eval.metrics import eer, min_dcf
from voiceprint.eval.runner import embed_corpus
from voiceprint.scoring.scorer import normalize
from voiceprint.service.factory import load_models

ROOT = Path(__file__).resolve().parent.parent
INDEX = ROOT.parent / "shared" / "data" / "index.tsv"
SETS = ("speechocean762", "librispeech", "commonvoice_zh", "aishell", "fsdd")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path)
    args = parser.parse_args()
    settings = get_settings()
    models = {
        name: load_models(settings.model_copy(update={"model": name}), progress=False)
        for name in ("campplus-zh-en", "ecapa-voxceleb")
    }
    fit = set(models["campplus-zh-en"].scorer.calibration.speakers)
    corpus = [u for u in load_corpus(INDEX) if u.set in SETS]
    vectors = {}
    for name, m in models.items():
        embedded = embed_corpus(
            m.voice, corpus, min_speech_s=settings.min_probe_speech_s, cache=args.cache
        )
        vectors[name] = embedded.vectors
    kept = [i for i in range(len(corpus)) if all(vectors[n][i] is not None for n in models)]

    def cosines(name: str, rows: list[int]) -> np.ndarray:
        x = normalize(np.stack([vectors[name][i] for i in rows]))
        return x @ x.T

    # Standardise each model's cosine by its impostor scores on the fitting speakers.
    stats = {}
    for name in models:
        rows = [i for i in kept if f"{corpus[i].set}/{corpus[i].speaker}" in fit]
        labels = np.array([f"{corpus[i].set}/{corpus[i].speaker}" for i in rows])
        matrix, upper = cosines(name, rows), np.triu_indices(len(rows), k=1)
        impostor = matrix[upper][labels[upper[0]] != labels[upper[1]]]
        stats[name] = (float(impostor.mean()), float(impostor.std()))

    table = []
    for set_name in SETS:
        rows = [
            i
            for i in kept
            if corpus[i].set == set_name and f"{corpus[i].set}/{corpus[i].speaker}" not in fit
        ]
        labels = np.array([corpus[i].speaker for i in rows])
        upper = np.triu_indices(len(rows), k=1)
        same = labels[upper[0]] == labels[upper[1]]
        scores = {name: cosines(name, rows)[upper] for name in models}
        scores["fusion"] = sum((scores[n] - stats[n][0]) / stats[n][1] for n in models) / len(
            models
        )
        row = {"set": set_name, "trials": [int(same.sum()), int((~same).sum())]}
        for name, s in scores.items():
            row[name] = {"eer": eer(s[same], s[~same])[0], "min_dcf": min_dcf(s[same], s[~same])}
        table.append(row)

    wave = corpus[0].samples()[:48000]
    cost = {}
    for name, m in models.items():
        m.voice.encoder.embed(wave)
        start = time.perf_counter()
        for _ in range(10):
            m.voice.encoder.embed(wave)
        cost[name] = (time.perf_counter() - start) / 10 * 1000

    print(
        "| set | trials (same / diff) | CAM++ EER / minDCF | ECAPA EER / minDCF "
        "| fusion EER / minDCF |"
    )
    print("|---|---|---|---|---|")
    for row in table:
        cells = [
            f"{100 * row[n]['eer']:.2f} % / {row[n]['min_dcf']:.3f}"
            for n in ("campplus-zh-en", "ecapa-voxceleb", "fusion")
        ]
        print(
            f"| {row['set']} | {row['trials'][0]} / {row['trials'][1]} | "
            + " | ".join(cells)
            + " |"
        )
    print(
        f"embedding a 3 s clip: CAM++ {cost['campplus-zh-en']:.1f} ms, "
        f"ECAPA {cost['ecapa-voxceleb']:.1f} ms; fusion pays both"
    )
    out = ROOT / "bench/results/fusion.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"sets": table, "ms_3s": cost}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
