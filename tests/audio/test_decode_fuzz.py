"""Fuzzing the decoder: whatever the bytes, only typed audio errors may come out.

Random bytes, and real recordings in every accepted container with bytes
flipped, cut, inserted or header fields rewritten. Derandomised, so a run is
reproducible; a failure prints its falsifying example, which then belongs in
``REGRESSIONS`` below. ``HYPOTHESIS_PROFILE=fuzz`` runs many more cases.
"""

from __future__ import annotations

import io
import os
import struct

import numpy as np
import pytest
import soundfile
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.conftest import read_speech, speech_files, wav_bytes
from voiceprint.audio.decode import decode_audio
from voiceprint.audio.errors import AudioError

settings.register_profile(
    "ci", max_examples=150, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)  # fmt: skip
settings.register_profile(
    "fuzz", max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

_speech = read_speech(speech_files("librispeech", "2414")[0])[0][:8000]


def _encoded(fmt: str) -> bytes:
    if fmt == "PCM":
        return (_speech * 32767).astype("<i2").tobytes()
    if fmt == "WAV":
        return wav_bytes(_speech, 16000)
    buffer = io.BytesIO()
    soundfile.write(buffer, _speech, 16000, format=fmt)
    return buffer.getvalue()


SAMPLES = {fmt: _encoded(fmt) for fmt in ("WAV", "PCM", "FLAC", "OGG", "MP3")}
# Falsifying examples found so far, kept so they are tried on every run.
REGRESSIONS = [
    b"RIFF$\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x80>\x00\x00\x00\x00\x00\x00"
    b"\x00\x00\x00\x00data\x00\x00\x00\x00",  # 0 bits per sample: was a ZeroDivisionError
]


def _check(data: bytes, sample_rate: int = 16000, channels: int = 1) -> None:
    try:
        audio = decode_audio(data, sample_rate=sample_rate, channels=channels, max_seconds=180)
    except AudioError as exc:
        assert str(exc) and "object at 0x" not in str(exc)
        return
    assert audio.samples.dtype == np.float32 and np.all(np.isfinite(audio.samples))


@given(st.binary(max_size=4096), st.sampled_from([8000, 16000, 44100]), st.integers(1, 4))
@example(REGRESSIONS[0], 16000, 1)
def test_random_bytes(data: bytes, rate: int, channels: int) -> None:
    _check(data, rate, channels)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(SAMPLES[draw(st.sampled_from(sorted(SAMPLES)))])
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "zero"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "cut":
            del data[at : at + draw(st.integers(1, 4096))]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif data:
            data[at : at + 64] = bytes(len(data[at : at + 64]))
    return bytes(data)


@given(mutated())
def test_mutated_recordings(data: bytes) -> None:
    _check(data)


@given(
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFF),
    st.integers(0, 2**32 - 1),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFF),
    st.integers(0, 2**32 - 1),
)
def test_wav_headers_with_any_fields(
    tag: int, channels: int, rate: int, block_align: int, bits: int, data_size: int
) -> None:
    fmt = struct.pack("<HHIIHH", tag, channels, rate, 0, block_align, bits)
    payload = SAMPLES["PCM"][:4000]
    body = (
        b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
        + b"data" + struct.pack("<I", data_size) + payload
    )  # fmt: skip
    _check(b"RIFF" + struct.pack("<I", len(body)) + body)


@pytest.mark.parametrize("fmt", sorted(SAMPLES))
def test_the_unmutated_recordings_decode(fmt: str) -> None:
    audio = decode_audio(SAMPLES[fmt])
    assert abs(audio.duration - 0.5) < 0.1
