"""Accuracy of each step of the recognition pipeline, per set of ../shared/data.

Prints a table and writes bench/results/accuracy_steps.json. Speakers the
packaged calibration was fitted on are left out of every row, so each row is
measured on the same held-out utterances.

    .venv/bin/python bench/accuracy_steps.py [--cache /tmp/voiceprint-eval.json]
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from voiceprint.audio.vad import speech_only
from voiceprint.config import get_settings
from voiceprint.engine import VoiceEngine
from voiceprint.eval.corpus import load_corpus
from voiceprint.eval.runner import (
    Embedded,
    ScoreFn,
    calibrated_fn,
    embed_corpus,
    evaluate_set,
    raw_fn,
)
from voiceprint.scoring.scorer import MATCH_THRESHOLD, Calibration, Scorer, cosine_matrix
from voiceprint.service.factory import load_models

ROOT = Path(__file__).resolve().parent.parent
INDEX = ROOT.parent / "shared" / "data" / "index.tsv"
SETS = ("speechocean762", "librispeech", "aishell", "fsdd")


@dataclass(frozen=True)
class Step:
    """One row group: embeddings, scoring, threshold (None: the set's EER), enrolment."""

    name: str
    embedded: Embedded
    score: ScoreFn
    threshold: float | None = None
    clips: int = 1
    best_of_samples: bool = False


def speech_only_embeddings(engine: VoiceEngine, embedded: Embedded) -> Embedded:
    """The rejected variant: embed only what the VAD calls speech."""
    vectors = []
    for utterance, kept in zip(embedded.utterances, embedded.vectors, strict=True):
        if kept is None:
            vectors.append(None)
            continue
        wave = utterance.samples()
        vectors.append(engine.encoder.embed(speech_only(wave, engine.detector.segments(wave))))
    return Embedded(embedded.utterances, vectors, embedded.narrowband)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, help="JSON file to keep embeddings between runs")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/accuracy_steps.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    settings = get_settings()
    models = load_models(settings)
    engine = models.voice
    fitted = Calibration.load()
    left_out = set(fitted.speakers)
    utterances = [u for u in load_corpus(INDEX) if f"{u.set}/{u.speaker}" not in left_out]
    plain = embed_corpus(engine, utterances, min_speech_s=None, cache=args.cache)
    gated = embed_corpus(
        engine, utterances, min_speech_s=settings.min_probe_speech_s, cache=args.cache
    )
    trimmed = speech_only_embeddings(engine, gated)
    raw_cohort = np.load(models.paths.cohort)
    centred_only = Scorer(raw_cohort, replace(fitted, method="cosine"))
    no_centre = Scorer(raw_cohort, replace(fitted, domain_mean=()))
    full = Scorer(raw_cohort, fitted)

    calibrated = calibrated_fn(full)
    steps = [
        Step("plain: whole clip, cosine", plain, raw_fn(cosine_matrix)),
        Step("VAD: embed speech only (rejected)", trimmed, raw_fn(cosine_matrix)),
        Step("VAD gate, whole clip, cosine", gated, raw_fn(cosine_matrix)),
        Step("+ AS-norm, VoxCeleb cohort", gated, raw_fn(no_centre.raw_matrix)),
        Step("+ centring on in-domain mean", gated, raw_fn(full.raw_matrix)),
        Step("centring without AS-norm", gated, raw_fn(centred_only.raw_matrix)),
        Step("default: + calibration, threshold 50", gated, calibrated, MATCH_THRESHOLD),
        Step("default, 3 clips per voiceprint", gated, calibrated, MATCH_THRESHOLD, clips=3),
        Step(
            "default, 3 clips kept apart, best score",
            gated,
            calibrated,
            MATCH_THRESHOLD,
            clips=3,
            best_of_samples=True,
        ),
    ]
    rows = []
    for step in steps:
        for set_name in SETS:
            r = evaluate_set(
                set_name,
                step.embedded,
                step.score,
                threshold=step.threshold,
                enroll_clips=step.clips,
                best_of_samples=step.best_of_samples,
            )
            rows.append({"step": step.name, **r.summary()})
    header = "| step | set | EER | minDCF | top-1 | stranger acc. | FRR | trials (t/n) | probes |"
    print(header)
    print("|" + "---|" * 9)

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.1f} %"

    for row in rows:
        print(
            f"| {row['step']} | {row['set']} | {pct(row['eer'])} | {row['min_dcf']:.3f} "
            f"| {pct(row['top1'])} | {pct(row['stranger_acceptance'])} "
            f"| {pct(row['identification_frr'])} "
            f"| {row['target_trials']}/{row['nontarget_trials']} "
            f"| {row['genuine_probes']}+{row['stranger_probes']} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"left_out": sorted(left_out), "rows": rows}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
