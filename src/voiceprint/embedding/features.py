"""Log-mel filterbank features, computed exactly as SpeechBrain's ``Fbank`` does.

SpeechBrain's defaults for the ECAPA recipe: 16 kHz, 25 ms Hamming window
(periodic), 10 ms hop, 400-point FFT, centred frames with zero padding, power
spectrum, 80 triangular mel filters over 0-8 kHz, 10*log10 with a floor of 1e-10
and a dynamic range of 80 dB below the clip's loudest bin. The ECAPA recipe then
subtracts each clip's mean over time ("sentence" normalisation, no std).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from voiceprint.audio.limits import SAMPLE_RATE

N_FFT = 400
HOP = 160
N_MELS = 80
AMIN = 1e-10
TOP_DB = 80.0


def _hz_to_mel(hz: float) -> float:
    return 2595.0 * np.log10(1.0 + hz / 700.0)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


@lru_cache(maxsize=1)
def _mel_matrix() -> np.ndarray:
    """[n_fft//2 + 1, n_mels] triangular filters, as speechbrain's Filterbank builds them."""
    hz = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(SAMPLE_RATE / 2), N_MELS + 2))
    band = (hz[1:] - hz[:-1])[:-1]
    centre = hz[1:-1]
    freqs = np.linspace(0.0, SAMPLE_RATE // 2, N_FFT // 2 + 1)
    slope = (freqs[:, None] - centre[None, :]) / band[None, :]
    return np.maximum(0.0, np.minimum(slope + 1.0, 1.0 - slope))


@lru_cache(maxsize=1)
def _window() -> np.ndarray:
    n = np.arange(N_FFT)
    return 0.54 - 0.46 * np.cos(2.0 * np.pi * n / N_FFT)  # periodic Hamming


def fbank(wave: np.ndarray) -> np.ndarray:
    """16 kHz mono float waveform -> [frames, 80] mean-normalised log-mel features (float32)."""
    padded = np.pad(np.asarray(wave, dtype=np.float64), N_FFT // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    spectrum = np.fft.rfft(frames * _window(), axis=1)
    power = spectrum.real**2 + spectrum.imag**2
    db = 10.0 * np.log10(np.maximum(power @ _mel_matrix(), AMIN))
    db = np.maximum(db, db.max() - TOP_DB)
    return (db - db.mean(axis=0, keepdims=True)).astype(np.float32)
