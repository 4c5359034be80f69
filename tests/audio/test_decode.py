"""Decoding real speech in every accepted encoding, and refusing broken input clearly."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
import soundfile

from tests.conftest import read_speech, speech_files, wav_bytes
from voiceprint.audio.decode import decode_audio
from voiceprint.audio.errors import AudioTooLong, InvalidAudio
from voiceprint.audio.limits import SAMPLE_RATE as TARGET_RATE


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    samples, rate = read_speech(speech_files("librispeech", "1688")[0])
    assert rate == TARGET_RATE
    return samples[: 3 * rate]


def _close(a: np.ndarray, b: np.ndarray, tol: float) -> None:
    assert a.shape == b.shape
    assert np.max(np.abs(a - b)) < tol


@pytest.mark.parametrize(
    ("subtype", "tol", "bits"),
    [
        ("PCM_U8", 1 / 64, 8),
        ("PCM_16", 1e-4, 16),
        ("PCM_24", 1e-6, 24),
        ("PCM_32", 1e-6, 32),
        ("FLOAT", 1e-7, None),
    ],
)
def test_wav_encodings_decode_to_the_same_samples(
    speech: np.ndarray, subtype: str, tol: float, bits: int | None
) -> None:
    audio = decode_audio(wav_bytes(speech, TARGET_RATE, subtype))
    assert audio.source_format == "wav" and audio.source_bits == bits
    _close(audio.samples, speech, tol)


def test_stereo_is_mixed_down(speech: np.ndarray) -> None:
    stereo = np.stack([speech, np.zeros_like(speech)], axis=1)
    audio = decode_audio(wav_bytes(stereo, TARGET_RATE, "FLOAT"))
    assert audio.source_channels == 2
    _close(audio.samples, speech / 2, 1e-6)


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_other_rates_are_resampled_to_16k(speech: np.ndarray, rate: int) -> None:
    resampled = soundfile.read(io.BytesIO(wav_bytes(speech, TARGET_RATE)), dtype="float32")[
        0
    ]  # start from the 16 kHz original
    import soxr

    at_rate = soxr.resample(resampled, TARGET_RATE, rate)
    audio = decode_audio(wav_bytes(at_rate, rate, "FLOAT"))
    assert audio.source_rate == rate
    assert abs(len(audio.samples) - len(speech)) <= 2
    # Speech energy sits below 4 kHz, so even 8 kHz keeps most of the waveform.
    n = min(len(audio.samples), len(speech))
    corr = np.corrcoef(audio.samples[:n], speech[:n])[0, 1]
    assert corr > (0.9 if rate == 8000 else 0.995)


def test_raw_pcm_uses_declared_rate_and_channels(speech: np.ndarray) -> None:
    pcm16 = (speech * 32767).astype("<i2")
    audio = decode_audio(pcm16.tobytes())
    assert audio.source_format == "pcm"
    _close(audio.samples, speech, 1e-4)

    stereo = np.repeat(pcm16[:, None], 2, axis=1)
    audio = decode_audio(stereo.tobytes(), sample_rate=16000, channels=2)
    _close(audio.samples, speech, 1e-4)

    audio8k = decode_audio(pcm16.tobytes(), sample_rate=8000)
    assert audio8k.duration == pytest.approx(2 * len(speech) / TARGET_RATE, abs=1e-3)


@pytest.mark.parametrize(("fmt", "bits"), [("FLAC", 16), ("OGG", None), ("MP3", None)])
def test_compressed_formats(speech: np.ndarray, fmt: str, bits: int | None) -> None:
    buffer = io.BytesIO()
    soundfile.write(buffer, speech, TARGET_RATE, format=fmt)
    audio = decode_audio(buffer.getvalue())
    assert audio.source_format == fmt.lower() and audio.source_bits == bits
    assert abs(audio.duration - len(speech) / TARGET_RATE) < 0.1


def test_format_comes_from_bytes_not_names(speech: np.ndarray) -> None:
    # A WAV whose first sample bytes look like an MPEG frame sync is still raw PCM.
    pcm = bytearray((speech * 32767).astype("<i2").tobytes())
    pcm[0:2] = b"\xff\xfb"
    assert decode_audio(bytes(pcm)).source_format == "pcm"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 5000, "PNG"),
        (b"%PDF-1.4" + b"\0" * 5000, "PDF"),
        (b"\x01\x02\x03", "whole number"),
    ],
)
def test_garbage_is_refused_with_a_reason(data: bytes, message: str) -> None:
    with pytest.raises(InvalidAudio, match=message):
        decode_audio(data)


def test_truncated_wav_is_refused(speech: np.ndarray) -> None:
    data = wav_bytes(speech, TARGET_RATE)
    with pytest.raises(InvalidAudio, match="truncated"):
        decode_audio(data[: len(data) // 2])


def test_wav_header_that_lies_about_its_layout(speech: np.ndarray) -> None:
    data = bytearray(wav_bytes(speech, TARGET_RATE))
    struct.pack_into("<H", data, 32, 3)  # block align 3 for 16-bit mono
    with pytest.raises(InvalidAudio, match="inconsistent"):
        decode_audio(bytes(data))


def test_absurd_sample_rate(speech: np.ndarray) -> None:
    data = bytearray(wav_bytes(speech, TARGET_RATE))
    struct.pack_into("<I", data, 24, 1_000_000)
    with pytest.raises(InvalidAudio, match="1000000 Hz"):
        decode_audio(bytes(data))
    with pytest.raises(InvalidAudio, match="4000 Hz"):
        decode_audio((speech * 32767).astype("<i2").tobytes(), sample_rate=4000)


def test_nan_samples_are_refused(speech: np.ndarray) -> None:
    broken = speech.copy()
    broken[100] = np.nan
    with pytest.raises(InvalidAudio, match="NaN"):
        decode_audio(wav_bytes(broken, TARGET_RATE, "FLOAT"))


def test_too_long_and_too_short(speech: np.ndarray) -> None:
    with pytest.raises(AudioTooLong, match="at most 2 s"):
        decode_audio(wav_bytes(speech, TARGET_RATE), max_seconds=2)
    with pytest.raises(InvalidAudio, match="ms long"):
        decode_audio(wav_bytes(speech[:800], TARGET_RATE))


def test_corrupt_flac_is_refused(speech: np.ndarray) -> None:
    buffer = io.BytesIO()
    soundfile.write(buffer, speech, TARGET_RATE, format="FLAC")
    data = buffer.getvalue()
    with pytest.raises(InvalidAudio, match="FLAC"):
        decode_audio(data[:40] + bytes(len(data) - 40))
