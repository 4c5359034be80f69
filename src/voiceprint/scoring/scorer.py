"""From two embeddings to a calibrated 0-100 score and a same-speaker decision.

1. centring: embeddings are length-normalised and the mean embedding of
   in-domain speech (fitted with the calibration) is subtracted, which removes
   the direction every recording of the deployment shares (channel, language);
2. cosine similarity;
3. adaptive symmetric score normalisation (AS-norm): each side's score is
   standardised against its ``top_k`` closest impostors in a cohort (the ECAPA
   classifier's 7205 VoxCeleb speaker prototypes, centred the same way), which
   removes the per-speaker offsets that make some strangers score high;
4. a logistic calibration maps the normalised score to 0-100, where 50 is the
   default decision threshold.

``voiceprint calibrate`` fits the mean, threshold and slope on real speech;
docs/accuracy.md has what each step measured.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

DEFAULT_CALIBRATION = Path(__file__).with_name("calibration.json")
MATCH_THRESHOLD = 50.0


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (a single vector works too)."""
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def cosine_matrix(probes: np.ndarray, enrolled: np.ndarray) -> np.ndarray:
    """Cosine similarity of every probe [P, D] with every enrolled vector [E, D]."""
    return normalize(np.atleast_2d(probes)) @ normalize(np.atleast_2d(enrolled)).T


def combine(embeddings: np.ndarray) -> np.ndarray:
    """One voiceprint from several samples: the mean direction of the normalised samples."""
    return normalize(normalize(np.atleast_2d(embeddings)).mean(axis=0))


@dataclass(frozen=True)
class Calibration:
    """How raw embeddings become scores; score = 100 * sigmoid(slope * (norm - threshold))."""

    threshold: float
    slope: float
    method: str = "asnorm"  # or "cosine": no cohort normalisation
    top_k: int = 1000
    domain_mean: tuple[float, ...] = ()  # empty: no centring
    fitted_on: str = ""
    # "set/speaker" of every speaker used for fitting: evaluations leave them out.
    speakers: tuple[str, ...] = field(default=(), repr=False)

    @classmethod
    def load(cls, path: Path = DEFAULT_CALIBRATION) -> Calibration:
        data = json.loads(path.read_text())
        data["domain_mean"] = tuple(data.get("domain_mean", ()))
        data["speakers"] = tuple(data.get("speakers", ()))
        return cls(**data)

    def save(self, path: Path) -> None:
        data = asdict(self)
        data["domain_mean"] = [round(v, 6) for v in self.domain_mean]
        data["speakers"] = list(self.speakers)
        path.write_text(json.dumps(data, indent=2) + "\n")

    def to_score(self, raw: np.ndarray) -> np.ndarray:
        return 100.0 / (1.0 + np.exp(-self.slope * (np.asarray(raw) - self.threshold)))


class Scorer:
    def __init__(self, cohort: np.ndarray, calibration: Calibration) -> None:
        self.calibration = calibration
        self._mean = np.asarray(calibration.domain_mean or np.zeros(cohort.shape[1]), np.float32)
        self.cohort = self.prepare(cohort)
        self.top_k = min(calibration.top_k, len(self.cohort))

    def prepare(self, embeddings: np.ndarray) -> np.ndarray:
        """Length-normalise, centre on the domain mean, length-normalise again."""
        return normalize(normalize(np.atleast_2d(embeddings).astype(np.float32)) - self._mean)

    def cohort_stats(self, prepared: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std of each (prepared) embedding's ``top_k`` highest cohort scores."""
        scores = prepared @ self.cohort.T
        top = np.partition(scores, -self.top_k, axis=1)[:, -self.top_k :]
        return top.mean(axis=1), np.maximum(top.std(axis=1), 1e-6)

    def raw_matrix(self, probes: np.ndarray, enrolled: np.ndarray) -> np.ndarray:
        """Uncalibrated scores [n_probes, n_enrolled]."""
        probes, enrolled = self.prepare(probes), self.prepare(enrolled)
        cosine = probes @ enrolled.T
        if self.calibration.method == "cosine":
            return cosine
        mean_p, std_p = self.cohort_stats(probes)
        mean_e, std_e = self.cohort_stats(enrolled)
        return 0.5 * (
            (cosine - mean_e[None, :]) / std_e[None, :]
            + (cosine - mean_p[:, None]) / std_p[:, None]
        )

    def scores(self, probe: np.ndarray, enrolled: np.ndarray) -> np.ndarray:
        """Calibrated 0-100 scores of one probe against each enrolled voiceprint.

        >= 50 means the same speaker at the default threshold.
        """
        return self.calibration.to_score(self.raw_matrix(probe, enrolled)[0])
