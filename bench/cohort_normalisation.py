"""Would normalising scores against a cohort beat plain cosine?

Issue 20 names two cohorts that could make the stranger side of a decision
hold in every condition: the deployment's own voiceprints (a group's other
members, used as statistics only) and cohorts shipped with the calibration.
Each scoring here is one of them:

- ``group``: a probe's score against member i loses ``beta`` times the mean of
  its ``k`` highest scores against the group's other members;
- ``asnorm``: adaptive symmetric normalisation (each side standardised against
  its ``k`` closest cohort voices) against a shipped cohort: one mean embedding
  per speaker of the ``cohort`` set and of the packaged calibration's fitting
  speakers (English L2, English, Mandarin, real phone lines);
- ``shift``: the same cohort, but only the mean of both sides' ``k`` closest
  cohort scores, ``beta`` times, is taken off, and only between wide-band
  recordings (phone-line pairs stay plain cosine): ``voiceprint calibrate
  --method shift``.

Identification as users meet it: the held-out speakers of each set (those the
packaged calibration was not fitted on) dealt into groups of 10 over five
seeds, one (or ``--enroll-clips``) recording per voiceprint, every other
recording of the set a probe. Two columns per set, both the share of genuine
probes rejected: at the set's own bar where 1 % of the strangers pass a group
(each scoring at its best point for that set), and at one bar for all
wide-band sets, the highest of their own bars (as one calibration curve must
serve every wide-band recording; the telephone set has a curve of its own).
A step is adopted only if it beats cosine on every set in both.

    .venv/bin/python bench/cohort_normalisation.py [--enroll-clips 2] [--cache FILE]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voiceprint.config import get_settings
from voiceprint.eval.calibrate import cohort_of, voices
from voiceprint.eval.corpus import load_corpus
from voiceprint.eval.runner import embed_corpus
from voiceprint.scoring.scorer import Calibration, Scorer, Voices, combine, normalize
from voiceprint.service.factory import load_models

ROOT = Path(__file__).resolve().parent.parent
INDEX = ROOT.parent / "shared" / "data" / "index.tsv"
SETS = ("speechocean762", "commonvoice_zh", "telephone", "librispeech")
WIDEBAND = ("speechocean762", "commonvoice_zh", "librispeech")
GROUP_SIZE = 10
SEEDS = range(5)
STRANGERS_PASSING = 0.01

# (probes [P, D], members [M, D], each side narrow-band) -> scores [P, M]
Scoring = Callable[[np.ndarray, np.ndarray, bool], np.ndarray]


def top_mean_of_others(scores: np.ndarray, k: int) -> np.ndarray:
    """For each column i, the mean of each row's k highest scores in the other columns."""
    out = np.empty_like(scores)
    for i in range(scores.shape[1]):
        others = np.delete(scores, i, axis=1)
        out[:, i] = np.sort(others, axis=1)[:, -min(k, others.shape[1]) :].mean(axis=1)
    return out


def group_scoring(beta: float, k: int) -> Scoring:
    def score(probes: np.ndarray, members: np.ndarray, narrowband: bool) -> np.ndarray:
        cosine = probes @ members.T
        return cosine - beta * top_mean_of_others(cosine, k) if beta else cosine

    return score


def cohort_scoring(cohort: np.ndarray, method: str, k: int, beta: float = 0.0) -> Scoring:
    """The scorer's own AS-norm or shift (which leaves narrow-band pairs alone)."""
    fitted = Calibration(threshold=0.0, slope=1.0, method=method, top_k=k, shift=beta)
    scorer = Scorer(cohort, fitted)

    def score(probes: np.ndarray, members: np.ndarray, narrowband: bool) -> np.ndarray:
        return scorer.raw_between(
            scorer.gallery(Voices.of(probes, narrowband)),
            scorer.gallery(Voices.of(members, narrowband)),
        )

    return score


@dataclass(frozen=True)
class Group:
    """One group of ``GROUP_SIZE`` held-out speakers, as rows of their set's recordings."""

    prints: list[np.ndarray]  # per member, the rows their voiceprint combines
    probes: np.ndarray  # the members' other rows
    truth: np.ndarray  # each probe's member
    strangers: np.ndarray  # every row of a speaker outside the group


def groups(speakers: np.ndarray, enroll: int, seed: int) -> Iterator[Group]:
    """The speakers with more than ``enroll`` recordings dealt into groups (``seed``); each
    member enrols their first ``enroll`` recordings and probes with the rest."""
    names, counts = np.unique(speakers, return_counts=True)
    order = np.random.default_rng(seed).permutation(names[counts > enroll])
    for start in range(0, len(order) - 1, GROUP_SIZE):
        members = order[start : start + GROUP_SIZE]
        prints, probes, truth = [], [], []
        for index, speaker in enumerate(members):
            rows = np.flatnonzero(speakers == speaker)
            prints.append(rows[:enroll])
            probes += list(rows[enroll:])
            truth += [index] * len(rows[enroll:])
        strangers = np.flatnonzero(~np.isin(speakers, members))
        yield Group(prints, np.array(probes), np.array(truth), strangers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enroll-clips", type=int, default=1)
    parser.add_argument("--cache", type=Path, help="JSON file to keep embeddings between runs")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench/results/cohort_normalisation.json"
    )
    args = parser.parse_args()

    settings = get_settings()
    models = load_models(settings)
    fitted = set(models.scorer.calibration.speakers)
    corpus = load_corpus(INDEX)
    in_cohort = [u for u in corpus if u.set == "cohort" or f"{u.set}/{u.speaker}" in fitted]
    held_out = [u for u in corpus if u.set in SETS and f"{u.set}/{u.speaker}" not in fitted]
    embedded = embed_corpus(
        models.voice,
        in_cohort + held_out,
        min_speech_s=settings.min_probe_speech_s,
        cache=args.cache,
    )
    recordings = voices(embedded)
    cohort = cohort_of(
        r for r in recordings if f"{r.set}/{r.speaker}" in fitted or r.set == "cohort"
    )
    scorings: dict[str, Scoring] = {
        "cosine": group_scoring(0.0, 1),
        "group beta=0.5 k=9": group_scoring(0.5, 9),
        "group beta=1 k=3": group_scoring(1.0, 3),
        "asnorm k=50": cohort_scoring(cohort, "asnorm", 50),
        "asnorm k=300": cohort_scoring(cohort, "asnorm", 300),
        "shift beta=0.5 k=5": cohort_scoring(cohort, "shift", 5, 0.5),
        "shift beta=0.5 k=20": cohort_scoring(cohort, "shift", 20, 0.5),
    }
    held = {f"{u.set}/{u.speaker}" for u in held_out}
    results: dict[str, dict[str, dict[str, float]]] = {}
    trials: dict[str, tuple[int, int]] = {}
    for name, scoring in scorings.items():
        genuine: dict[str, np.ndarray] = {}
        bars: dict[str, float] = {}
        for set_name in SETS:
            mine = [r for r in recordings if r.set == set_name and f"{r.set}/{r.speaker}" in held]
            speakers = np.array([r.speaker for r in mine])
            vectors = normalize(np.stack([r.vector for r in mine]))
            narrowband = set_name not in WIDEBAND
            own, strangers = [], []
            for seed in SEEDS:
                for group in groups(speakers, args.enroll_clips, seed):
                    prints = np.stack([combine(vectors[rows]) for rows in group.prints])
                    scores = scoring(vectors[group.probes], prints, narrowband)
                    own.append(scores[np.arange(len(group.truth)), group.truth])
                    others = vectors[group.strangers]
                    strangers.append(scoring(others, prints, narrowband).max(axis=1))
            genuine[set_name] = np.concatenate(own)
            trials[set_name] = (len(genuine[set_name]), sum(map(len, strangers)))
            bars[set_name] = float(np.quantile(np.concatenate(strangers), 1 - STRANGERS_PASSING))
        one_bar = max(bars[s] for s in WIDEBAND)
        results[name] = {
            set_name: {
                "own_bar": round(100 * float(np.mean(genuine[set_name] < bars[set_name])), 2),
                "one_bar": round(
                    100
                    * float(
                        np.mean(
                            genuine[set_name]
                            < (one_bar if set_name in WIDEBAND else bars[set_name])
                        )
                    ),
                    2,
                ),
            }
            for set_name in SETS
        }

    print(
        f"genuine probes rejected (%) where {100 * STRANGERS_PASSING:g} % of strangers pass a "
        f"group of {GROUP_SIZE}, at each set's own bar / at one bar for the wide-band sets; "
        f"{args.enroll_clips} recording(s) per voiceprint; held-out speakers"
    )
    print("scoring".ljust(22) + "".join(s.rjust(17) for s in SETS))
    for name, row in results.items():
        cells = (f"{row[s]['own_bar']:.1f} / {row[s]['one_bar']:.1f}" for s in SETS)
        print(name.ljust(22) + "".join(c.rjust(17) for c in cells))
    print(
        "genuine / stranger probes (5 seeds):",
        ", ".join(f"{s} {g}/{n}" for s, (g, n) in trials.items()),
        f"; shipped cohort: {len(cohort)} voices",
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "enroll_clips": args.enroll_clips,
                "probes": trials,
                "cohort_voices": len(cohort),
                "rejected": results,
            },
            indent=2,
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
