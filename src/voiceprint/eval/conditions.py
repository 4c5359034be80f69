"""Recording conditions an evaluation can put the speech through."""

from __future__ import annotations

import numpy as np
import soxr

from voiceprint.audio.limits import SAMPLE_RATE

AS_RECORDED = "as-recorded"
NARROWBAND = "narrowband"
CONDITIONS = (AS_RECORDED, NARROWBAND)


def telephone(wave: np.ndarray) -> np.ndarray:
    """The speech as an 8 kHz line would carry it, back at 16 kHz."""
    narrow = soxr.resample(wave, SAMPLE_RATE, 8000)
    return soxr.resample(narrow, 8000, SAMPLE_RATE).astype(np.float32)


def apply(condition: str, wave: np.ndarray) -> np.ndarray:
    return telephone(wave) if condition == NARROWBAND else wave
