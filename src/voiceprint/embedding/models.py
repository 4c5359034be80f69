"""The speaker models the service can run, and what each needs. ``VOICEPRINT_MODEL`` picks one.

Each model has its own converted files, features, calibration and cohort; its
``model_id`` is stored with every embedding it makes, so embeddings of two
models are never compared (``voiceprint reembed`` moves a database to another).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from voiceprint.embedding.features import kaldi_fbank, speechbrain_fbank


@dataclass(frozen=True)
class ModelSpec:
    name: str  # the VOICEPRINT_MODEL value
    model_id: str  # stored with each embedding; changes whenever the embeddings would
    features: Callable[[np.ndarray], np.ndarray]  # 16 kHz wave -> [frames, 80]
    # True: the graph takes a padded batch and each clip's share of its length
    # ("lengths"); False: it sees every frame it is given, so batches hold equal lengths.
    masks_padding: bool
    # True: the cohort comes with the model files (ECAPA's classifier prototypes);
    # False: it is packaged with the calibration (embeddings of real speakers).
    cohort_in_model_files: bool
    # Lowest voice consistency an enrolment may have (lower: "more than one voice"),
    # measured on ../shared/data single-speaker recordings and two-speaker joins.
    min_voice_consistency: float
    dim: int = 192


CAMPPLUS = ModelSpec(
    name="campplus-zh-en",
    model_id="campplus-zh-en-3dspeaker",
    features=kaldi_fbank,
    masks_padding=False,
    cohort_in_model_files=False,
    # 62 single-speaker recordings of every set: lowest 0.347 (FSDD digits); 30 joins of
    # two LibriSpeech or Common Voice speakers: 18 below 0.33.
    min_voice_consistency=0.33,
)
ECAPA = ModelSpec(
    name="ecapa-voxceleb",
    model_id="ecapa-voxceleb-sb1",
    features=speechbrain_fbank,
    masks_padding=True,
    cohort_in_model_files=True,
    # 74 single-speaker recordings: lowest 0.377; 28 two-speaker joins: 23 below 0.35.
    min_voice_consistency=0.35,
)
MODELS = {spec.name: spec for spec in (CAMPPLUS, ECAPA)}
DEFAULT_MODEL = CAMPPLUS.name


def model_spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}") from None
