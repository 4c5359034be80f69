"""How recording length moves scores: verification pairs of speechocean762 by duration.

Pairs are binned by the shorter recording's duration; for each bin, the
same-speaker pairs rejected and the different-speaker pairs accepted at the
default threshold (score 50). All 40 speakers are used: nothing is fitted here.
Prints a table and writes bench/results/accuracy_by_duration.json.

    .venv/bin/python bench/accuracy_by_duration.py [--cache FILE]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import soundfile

from voiceprint.config import get_settings
from voiceprint.eval.corpus import load_corpus
from voiceprint.eval.runner import embed_corpus
from voiceprint.service.factory import load_models

ROOT = Path(__file__).resolve().parent.parent
INDEX = ROOT.parent / "shared" / "data" / "index.tsv"
BINS = ((0.0, 2.5), (2.5, 3.5), (3.5, 5.0), (5.0, 60.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, help="JSON file to keep embeddings between runs")
    parser.add_argument("--set", default="speechocean762")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench/results/accuracy_by_duration.json"
    )
    args = parser.parse_args()

    settings = get_settings()
    models = load_models(settings)
    engine, scorer = models.voice, models.scorer
    utterances = [u for u in load_corpus(INDEX) if u.set == args.set]
    embedded = embed_corpus(
        engine, utterances, min_speech_s=settings.min_probe_speech_s, cache=args.cache
    )
    kept = [
        (u, v) for u, v in zip(embedded.utterances, embedded.vectors, strict=True) if v is not None
    ]
    seconds = np.array([sum(soundfile.info(str(p)).duration for p in u.paths) for u, _ in kept])
    speakers = np.array([u.speaker for u, _ in kept])
    vectors = np.stack([v for _, v in kept])
    scores = scorer.calibration.to_score(scorer.raw_matrix(vectors, vectors))
    upper = np.triu_indices(len(kept), k=1)
    same = speakers[upper[0]] == speakers[upper[1]]
    shorter = np.minimum(seconds[upper[0]], seconds[upper[1]])
    pair_scores = scores[upper]

    rows = []
    for low, high in BINS:
        in_bin = (shorter >= low) & (shorter < high)
        target, nontarget = pair_scores[in_bin & same], pair_scores[in_bin & ~same]
        rows.append(
            {
                "shorter_recording_s": [low, high],
                "target_pairs": len(target),
                "nontarget_pairs": len(nontarget),
                "target_mean_score": float(target.mean()),
                "false_reject": float(np.mean(target < 50)),
                "false_accept": float(np.mean(nontarget >= 50)),
            }
        )
    print(f"{args.set}: pairs by the shorter recording's duration, default threshold 50")
    print("| shorter recording | same-speaker pairs | mean score | false rejects "
          "| different-speaker pairs | false accepts |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for r in rows:
        low, high = r["shorter_recording_s"]
        print(
            f"| {low:g}-{high:g} s | {r['target_pairs']} | {r['target_mean_score']:.1f} "
            f"| {100 * r['false_reject']:.1f} % | {r['nontarget_pairs']} "
            f"| {100 * r['false_accept']:.2f} % |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"set": args.set, "rows": rows}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
