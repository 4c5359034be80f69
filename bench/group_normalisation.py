"""Would normalising against the group's own voiceprints beat plain cosine?

Issue 20 asks whether a deployment's own voiceprints (other speakers only) can
serve as the impostor statistics that make the stranger side of the decision
hold. This measures the simplest form of it: a probe's score against member i
loses ``beta`` times the mean of its ``k`` highest scores against the group's
other members (``probe``), and with ``both`` half of that plus half of member
i's own mean top-k score against the others.

Identification as users meet it: the held-out speakers of each set (those the
packaged calibration was not fitted on) dealt into groups of 10 over five
seeds, one (or ``--enroll-clips``) recording per voiceprint, every other
recording of the set a probe. The column is the share of genuine probes
rejected at the bar where 1 % of the strangers pass a group (the bar read off
the same speakers, so every scoring is compared at its own best point). A step
is adopted only if it beats cosine on every set.

    .venv/bin/python bench/group_normalisation.py [--enroll-clips 2] [--cache FILE]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from voiceprint.config import get_settings
from voiceprint.eval.corpus import load_corpus
from voiceprint.eval.runner import embed_corpus
from voiceprint.scoring.scorer import combine, normalize
from voiceprint.service.factory import load_models

ROOT = Path(__file__).resolve().parent.parent
INDEX = ROOT.parent / "shared" / "data" / "index.tsv"
SETS = ("speechocean762", "commonvoice_zh", "telephone", "librispeech")
GROUP_SIZE = 10
SEEDS = range(5)
STRANGERS_PASSING = 0.01
SCORINGS = [("cosine", 0.0, "probe", 0)] + [
    (f"{side} beta={beta} k={k}", beta, side, k)
    for side in ("probe", "both")
    for beta in (0.5, 1.0)
    for k in (3, 9)
]


def top_mean_of_others(scores: np.ndarray, k: int) -> np.ndarray:
    """For each column i, the mean of each row's k highest scores in the other columns."""
    out = np.empty_like(scores)
    for i in range(scores.shape[1]):
        others = np.delete(scores, i, axis=1)
        out[:, i] = np.sort(others, axis=1)[:, -min(k, others.shape[1]) :].mean(axis=1)
    return out


def group_scores(
    probes: np.ndarray, members: np.ndarray, beta: float, side: str, k: int
) -> np.ndarray:
    cosine = probes @ members.T
    if beta == 0.0:
        return cosine
    probe_level = top_mean_of_others(cosine, k)
    if side == "probe":
        return cosine - beta * probe_level
    member_level = np.diag(top_mean_of_others(members @ members.T, k))
    return cosine - beta * 0.5 * (probe_level + member_level[None, :])


def groups(
    speakers: np.ndarray, vectors: np.ndarray, enroll: int, seed: int
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """(members' voiceprints, genuine probes, each probe's member, strangers) per group."""
    names, counts = np.unique(speakers, return_counts=True)
    order = np.random.default_rng(seed).permutation(names[counts > enroll])
    for start in range(0, len(order) - 1, GROUP_SIZE):
        members = order[start : start + GROUP_SIZE]
        prints, probe_rows, truth = [], [], []
        for index, speaker in enumerate(members):
            rows = np.flatnonzero(speakers == speaker)
            prints.append(combine(vectors[rows[:enroll]]))
            probe_rows += list(rows[enroll:])
            truth += [index] * len(rows[enroll:])
        strangers = vectors[~np.isin(speakers, members)]
        yield np.stack(prints), vectors[probe_rows], np.array(truth), strangers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enroll-clips", type=int, default=1)
    parser.add_argument("--cache", type=Path, help="JSON file to keep embeddings between runs")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/group_normalisation.json")
    args = parser.parse_args()

    settings = get_settings()
    models = load_models(settings)
    fitted = set(models.scorer.calibration.speakers)
    held_out = [
        u for u in load_corpus(INDEX) if u.set in SETS and f"{u.set}/{u.speaker}" not in fitted
    ]
    embedded = embed_corpus(
        models.voice, held_out, min_speech_s=settings.min_probe_speech_s, cache=args.cache
    )
    kept = [
        (u, v) for u, v in zip(embedded.utterances, embedded.vectors, strict=True) if v is not None
    ]
    results: dict[str, dict[str, float]] = {}
    trials: dict[str, tuple[int, int]] = {}
    for name, beta, side, k in SCORINGS:
        results[name] = {}
        for set_name in SETS:
            speakers = np.array([u.speaker for u, _ in kept if u.set == set_name])
            vectors = normalize(np.stack([v for u, v in kept if u.set == set_name]))
            genuine, strangers = [], []
            for seed in SEEDS:
                for prints, probes, truth, others in groups(
                    speakers, vectors, args.enroll_clips, seed
                ):
                    own = group_scores(probes, prints, beta, side, k)
                    genuine.append(own[np.arange(len(truth)), truth])
                    strangers.append(group_scores(others, prints, beta, side, k).max(axis=1))
            trials[set_name] = (sum(map(len, genuine)), sum(map(len, strangers)))
            bar = np.quantile(np.concatenate(strangers), 1 - STRANGERS_PASSING)
            results[name][set_name] = round(100 * float(np.mean(np.concatenate(genuine) < bar)), 2)

    print(
        f"genuine probes rejected (%) where {100 * STRANGERS_PASSING:g} % of strangers pass a "
        f"group of {GROUP_SIZE}; {args.enroll_clips} recording(s) per voiceprint; held-out speakers"
    )
    print("scoring".ljust(24) + "".join(s.rjust(16) for s in SETS))
    for name, row in results.items():
        print(name.ljust(24) + "".join(f"{row[s]:16.1f}" for s in SETS))
    print(
        "genuine / stranger probes (5 seeds):",
        ", ".join(f"{s} {g}/{n}" for s, (g, n) in trials.items()),
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {"enroll_clips": args.enroll_clips, "probes": trials, "rejected": results}, indent=2
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
