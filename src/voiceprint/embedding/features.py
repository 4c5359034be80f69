"""Log-mel filterbank features, exactly as each model's own recipe computes them.

``speechbrain_fbank`` (ECAPA): SpeechBrain's defaults for the ECAPA recipe:
16 kHz, 25 ms Hamming window (periodic), 10 ms hop, 400-point FFT, centred
frames with zero padding, power spectrum, 80 triangular mel filters over
0-8 kHz, 10*log10 with a floor of 1e-10 and a dynamic range of 80 dB below the
clip's loudest bin. The ECAPA recipe then subtracts each clip's mean over time
("sentence" normalisation, no std).

``kaldi_fbank`` (CAM++): Kaldi's ``compute-fbank-feats`` as torchaudio's
``compliance.kaldi.fbank`` runs it for 3D-Speaker: 25 ms / 10 ms frames without
edge padding (snip_edges), each frame's DC offset removed, pre-emphasis 0.97,
Povey window, 512-point FFT, power spectrum, 80 mel bins from 20 Hz to Nyquist
on Kaldi's mel scale, natural log floored at float32 epsilon; no dither. The
waveform is taken as it is, in [-1, 1]; 3D-Speaker then subtracts the clip's mean.
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


def speechbrain_fbank(wave: np.ndarray) -> np.ndarray:
    """16 kHz mono float waveform -> [frames, 80] mean-normalised log-mel features (float32)."""
    padded = np.pad(np.asarray(wave, dtype=np.float64), N_FFT // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    spectrum = np.fft.rfft(frames * _window(), axis=1)
    power = spectrum.real**2 + spectrum.imag**2
    db = 10.0 * np.log10(np.maximum(power @ _mel_matrix(), AMIN))
    db = np.maximum(db, db.max() - TOP_DB)
    return (db - db.mean(axis=0, keepdims=True)).astype(np.float32)


KALDI_FRAME = 400
KALDI_FFT = 512
KALDI_LOW_HZ = 20.0
KALDI_PREEMPHASIS = 0.97
KALDI_FLOOR = float(np.finfo(np.float32).eps)


def _kaldi_mel(hz: np.ndarray | float) -> np.ndarray:
    return 1127.0 * np.log(1.0 + np.asarray(hz) / 700.0)


@lru_cache(maxsize=1)
def _kaldi_mel_matrix() -> np.ndarray:
    """[n_fft//2 + 1, n_mels] triangles on Kaldi's mel scale; the Nyquist bin gets no weight."""
    low, high = _kaldi_mel(KALDI_LOW_HZ), _kaldi_mel(SAMPLE_RATE / 2)
    delta = (high - low) / (N_MELS + 1)
    left = low + delta * np.arange(N_MELS)
    centre, right = left + delta, left + 2 * delta
    mel = _kaldi_mel(np.arange(KALDI_FFT // 2) * SAMPLE_RATE / KALDI_FFT)[:, None]
    up = (mel - left) / (centre - left)
    down = (right - mel) / (right - centre)
    weights = np.maximum(0.0, np.minimum(up, down))
    return np.vstack([weights, np.zeros((1, N_MELS))])


@lru_cache(maxsize=1)
def _povey_window() -> np.ndarray:
    n = np.arange(KALDI_FRAME)
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * n / (KALDI_FRAME - 1))) ** 0.85


def kaldi_fbank(wave: np.ndarray) -> np.ndarray:
    """16 kHz mono float waveform -> [frames, 80] mean-normalised Kaldi log-mel fbank."""
    wave = np.asarray(wave, dtype=np.float64)
    if len(wave) < KALDI_FRAME:
        return np.zeros((0, N_MELS), dtype=np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(wave, KALDI_FRAME)[::HOP]
    frames = frames - frames.mean(axis=1, keepdims=True)
    emphasised = np.concatenate(
        [
            frames[:, :1] * (1.0 - KALDI_PREEMPHASIS),
            frames[:, 1:] - KALDI_PREEMPHASIS * frames[:, :-1],
        ],
        axis=1,
    )
    spectrum = np.fft.rfft(emphasised * _povey_window(), n=KALDI_FFT, axis=1)
    power = spectrum.real**2 + spectrum.imag**2
    logmel = np.log(np.maximum(power @ _kaldi_mel_matrix(), KALDI_FLOOR))
    return (logmel - logmel.mean(axis=0, keepdims=True)).astype(np.float32)
