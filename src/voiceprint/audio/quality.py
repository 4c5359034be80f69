"""Signal measures of a recording's speech: level, noise, clipping.

Together with speech seconds (VAD) and voice consistency (embeddings, in the
engine) they form the enrolment quality report stored with each sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from voiceprint.audio.errors import PoorQuality
from voiceprint.audio.limits import SAMPLE_RATE
from voiceprint.audio.vad import Segment

FRAME = SAMPLE_RATE // 50  # 20 ms
CLIP_LEVEL = 0.99

# Voice consistency compares 2 s parts of the speech; the lowest it may be depends on
# the embedding model (ModelSpec.min_voice_consistency, measured per model).
CONSISTENCY_WINDOW = 2 * SAMPLE_RATE
# Noise is measured in pauses; with less pause than this there is no reliable floor.
MIN_PAUSE = SAMPLE_RATE // 4
MAX_CLIPPING = 0.01
MIN_SNR_DB = 5.0

# Telephone and other narrow-band speech carries next to nothing above 4 kHz. On
# ../shared/data (every third recording of each set), speech above 4.5 kHz against
# below 4 kHz: wide-band recordings -54..-1 dB (one band-limited Common Voice
# microphone -69 dB); the same recordings passed through 8 kHz: -103 dB or less.
NARROWBAND_DB = -75.0
# A source of integer samples carries their rounding noise across the whole band; once a
# call is resampled to 16 kHz and stored in 16 bits, that floor sits above 4.5 kHz where
# the line left nothing, and a quiet call read as wide-band (calls of ``telephone`` so
# stored, dithered, 6 dB quieter: 18 of 109 narrow-band). The floor is taken off the
# band first, at its dithered level (TPDF dither triples the plain rounding noise).
_DITHERED_ROUNDING = 3 / 12  # noise power per sample, in units of one step squared
_BAND_FFT = 512
_BAND_BLOCK = 2048  # frames transformed at once


@dataclass(frozen=True)
class SignalQuality:
    level_dbfs: float  # RMS level of the speech
    snr_db: float | None  # speech power over the noise floor of the pauses; None: no pauses
    clipping_ratio: float  # share of speech samples at full scale


def _db(power: float) -> float:
    return float(10.0 * np.log10(max(power, 1e-12)))


def _frame_powers(wave: np.ndarray) -> np.ndarray:
    n = len(wave) // FRAME
    return np.mean(wave[: n * FRAME].reshape(n, FRAME).astype(np.float64) ** 2, axis=1)


def measure(wave: np.ndarray, segments: list[Segment]) -> SignalQuality:
    mask = np.zeros(len(wave), dtype=bool)
    for s in segments:
        mask[s.start : s.end] = True
    speech, rest = wave[mask], wave[~mask]
    speech_power = float(np.mean(speech.astype(np.float64) ** 2)) if len(speech) else 0.0
    snr = None
    if len(rest) >= MIN_PAUSE:
        noise_power = float(np.median(_frame_powers(rest)))
        snr = round(min(_db(speech_power) - _db(noise_power), 99.0), 1)
    clipped = float(np.mean(np.abs(speech) >= CLIP_LEVEL)) if len(speech) else 0.0
    return SignalQuality(
        level_dbfs=round(_db(speech_power), 1), snr_db=snr, clipping_ratio=round(clipped, 4)
    )


def rounding_power(source_bits: int | None, source_rate: int) -> float:
    """Power per sample of a source's rounding noise (dithered) as it lies in the 16 kHz
    samples: white up to the source's Nyquist, so a higher rate leaves less of it here.
    0 for float and lossy sources (``source_bits`` None)."""
    if not source_bits:
        return 0.0
    step = 2.0 ** (1 - source_bits)  # samples span [-1, 1)
    return _DITHERED_ROUNDING * step**2 * min(1.0, SAMPLE_RATE / source_rate)


def upper_band_db(wave: np.ndarray, segments: list[Segment], rounding: float = 0.0) -> float | None:
    """Power of the speech above 4.5 kHz relative to below 4 kHz, in dB; None if too short.
    ``rounding``: the power per sample of the source's rounding noise (``rounding_power``),
    which is not speech.

    Frames are taken inside each speech segment: joining segments end to end would
    put clicks, broadband energy, at every join.
    """
    window = np.hanning(_BAND_FFT).astype(np.float32)
    power = np.zeros(_BAND_FFT // 2 + 1)
    frames_seen = 0
    for seg in segments:
        if seg.end - seg.start < _BAND_FFT:
            continue
        frames = np.lib.stride_tricks.sliding_window_view(wave[seg.start : seg.end], _BAND_FFT)
        frames = frames[:: _BAND_FFT // 2]
        frames_seen += len(frames)
        for i in range(0, len(frames), _BAND_BLOCK):  # in blocks: hours of speech fit in memory
            spectra = np.fft.rfft(frames[i : i + _BAND_BLOCK] * window, axis=1)
            power += np.sum(spectra.real**2 + spectra.imag**2, axis=0)
    if not frames_seen:
        return None
    low_end = _BAND_FFT // 4  # the bin of 4 kHz at 16 kHz
    high_start = _BAND_FFT * 9 // 32  # 4.5 kHz: the window's leakage from below 4 kHz stays out
    upper = float(power[high_start:].sum())
    if rounding:
        per_bin = rounding * float(np.sum(window.astype(np.float64) ** 2))
        upper = max(upper - per_bin * frames_seen * len(power[high_start:]), 0.0)
    return round(_db(upper) - _db(float(power[:low_end].sum())), 1)


def is_narrowband(upper_band: float | None) -> bool:
    return upper_band is not None and upper_band < NARROWBAND_DB


def check_enrolment(
    signal: SignalQuality, consistency: float | None, min_consistency: float
) -> None:
    """Refuse a recording that would make a poor voiceprint, saying why."""
    if consistency is not None and consistency < min_consistency:
        raise PoorQuality(
            "the recording seems to hold more than one voice (voice consistency "
            f"{consistency:.2f} < {min_consistency}); enrol one person speaking alone"
        )
    if signal.clipping_ratio > MAX_CLIPPING:
        raise PoorQuality(
            f"{100 * signal.clipping_ratio:.1f} % of the speech is clipped; record at a lower level"
        )
    if signal.snr_db is not None and signal.snr_db < MIN_SNR_DB:
        raise PoorQuality(
            f"the speech is only {signal.snr_db:.1f} dB above the background noise "
            f"({MIN_SNR_DB:.0f} dB needed); record somewhere quieter or closer to the microphone"
        )
