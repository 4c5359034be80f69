"""How far can the bar go? Genuine probes rejected against strangers accepted, per bar.

Issue 20 asks for few strangers through a group of 10 (≤ 1 %) and few enrolled
people rejected (≤ 5 % adults wide-band, ≤ 10 % speechocean762, ≤ 15 % phone
lines). A bar trades one for the other; this reads the trade-off off the packaged
model and calibration, to tell what a different bar could reach and what it could not.

Each set's speakers are dealt into groups of 10 over five seeds (as
``cohort_normalisation``), each member enrolling 1, 2 or 3 recordings (combined as
the server combines them) and probing with the rest; strangers are the set's other
speakers. Every probe is scored as ``speaker_identify`` scores it (centring, the
condition's curve, the bar for a group of 10). For score bars from 20 to 50 it
prints the share of genuine probes whose own voiceprint scores below the bar and the
share of strangers whose best score reaches it, the calibration's fitting speakers
and the held-out ones apart, and, per row, the lowest bar that keeps strangers at or
under 1 % with the rejections there. The real calls are scored a second and third
time as if their line were one the calibration's line direction does not know: with
the group's shared-line check (``Scorer.grouped``) and without it.

    .venv/bin/python bench/decision_frontier.py [--cache FILE]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from cohort_normalisation import GROUP_SIZE, SEEDS, STRANGERS_PASSING, groups
from voiceprint.config import get_settings
from voiceprint.eval.calibrate import voices
from voiceprint.eval.corpus import load_corpus
from voiceprint.eval.runner import embed_corpus
from voiceprint.scoring.scorer import Scorer, Voices
from voiceprint.service.factory import load_models

ROOT = Path(__file__).resolve().parent.parent
INDEX = ROOT.parent / "shared" / "data" / "index.tsv"
SETS = ("speechocean762", "commonvoice_zh", "librispeech", "telephone")
BARS = (20, 25, 30, 35, 40, 45, 50)
RECORDINGS = (1, 2, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, help="JSON file to keep embeddings between runs")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/decision_frontier.json")
    args = parser.parse_args()

    settings = get_settings()
    models = load_models(settings)
    packaged = models.scorer
    fitted = set(packaged.calibration.speakers)
    corpus = [u for u in load_corpus(INDEX) if u.set in SETS]
    embedded = embed_corpus(
        models.voice, corpus, min_speech_s=settings.min_probe_speech_s, cache=args.cache
    )
    recordings = voices(embedded)
    rows = []
    print_header()
    for set_name in SETS:
        for half in ("fitting", "held out"):
            mine = [
                r
                for r in recordings
                if r.set == set_name and (f"{r.set}/{r.speaker}" in fitted) == (half == "fitting")
            ]
            if not mine:
                continue  # a set the calibration was not fitted on has no fitting half
            speakers = np.array([r.speaker for r in mine])
            every = Voices.of(np.stack([r.vector for r in mine]), [r.narrowband for r in mine])
            for scoring, scorer in scorings(packaged, set_name):
                rows += frontier(scorer, speakers, every, set_name, half, scoring)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"model": settings.model, "rows": rows}, indent=2))
    print(f"wrote {args.out}")


def scorings(packaged: Scorer, set_name: str) -> list[tuple[str, Scorer]]:
    """The packaged scoring; for the real calls also as if their line were one the line
    direction was not fitted on, with and without the group's shared-line check."""
    if set_name != "telephone":
        return [("packaged", packaged)]
    unknown = replace(packaged.calibration, line_direction=())
    return [
        ("packaged", packaged),
        ("unknown line", Scorer(None, unknown)),
        ("unknown line, no group check", Scorer(None, replace(unknown, shared_line=0.0))),
    ]


def frontier(
    scorer: Scorer, speakers: np.ndarray, every: Voices, set_name: str, half: str, scoring: str
) -> list[dict]:
    rows = []
    for enroll in RECORDINGS:
        own, best_stranger = [], []
        for seed in SEEDS:
            for group in groups(speakers, enroll, seed):
                if len(group.prints) < GROUP_SIZE:
                    continue  # a last, smaller group would make strangers' odds easier
                prints = Voices.concat([every.take(p).combined() for p in group.prints])
                gallery = scorer.grouped(scorer.gallery(prints))  # as the index holds it
                scores = scorer.score_matrix(every.take(group.probes), gallery)
                own.append(scores[np.arange(len(group.truth)), group.truth])
                others = scorer.score_matrix(every.take(group.strangers), gallery)
                best_stranger.append(others.max(axis=1))
        if not own:
            continue  # too few speakers with that many recordings
        genuine, strangers = np.concatenate(own), np.concatenate(best_stranger)
        # The lowest bar (score) that lets at most 1 % of strangers through.
        lowest = float(np.quantile(strangers, 1 - STRANGERS_PASSING, method="higher"))
        lowest = np.nextafter(lowest, np.inf)
        rows.append(
            {
                "set": set_name,
                "scoring": scoring,
                "speakers": half,
                "recordings": enroll,
                "genuine_probes": len(genuine),
                "stranger_probes": len(strangers),
                "at_bar": {
                    str(bar): {
                        "rejected": float(np.mean(genuine < bar)),
                        "strangers": float(np.mean(strangers >= bar)),
                    }
                    for bar in BARS
                },
                "lowest_bar": round(float(lowest), 2),
                "rejected_at_lowest_bar": float(np.mean(genuine < lowest)),
            }
        )
        print_row(rows[-1])
    return rows


def print_header() -> None:
    print(
        "| set | scoring | speakers | recordings per voiceprint | probes (genuine / strangers) | "
        + " | ".join(f"bar {bar}: rejected / strangers" for bar in BARS)
        + " | lowest bar with ≤ 1 % strangers: rejected |"
    )
    print("|---" * (6 + len(BARS)) + "|")


def print_row(row: dict) -> None:
    cells = " | ".join(
        f"{100 * row['at_bar'][str(bar)]['rejected']:.1f} / "
        f"{100 * row['at_bar'][str(bar)]['strangers']:.2f} %"
        for bar in BARS
    )
    print(
        f"| {row['set']} | {row['scoring']} | {row['speakers']} | {row['recordings']} | "
        f"{row['genuine_probes']} / {row['stranger_probes']} | {cells} | "
        f"{row['lowest_bar']:.1f}: {100 * row['rejected_at_lowest_bar']:.1f} % |",
        flush=True,
    )


if __name__ == "__main__":
    main()
