"""Bytes in, 16 kHz mono float32 out.

The container is recognised from the bytes, never from a file name: RIFF/WAVE
is parsed here (so lying headers and truncation are caught precisely), FLAC,
Ogg and MP3 go through libsndfile, and anything else is raw signed 16-bit
little-endian PCM with the caller's sample rate and channel count.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import numpy as np
import soundfile
import soxr

from voiceprint.audio.errors import AudioTooLong, InvalidAudio
from voiceprint.audio.limits import MAX_CHANNELS, MAX_RATE, MIN_RATE, MIN_SECONDS, SAMPLE_RATE

_WAVE_FORMAT_PCM = 0x0001
_WAVE_FORMAT_FLOAT = 0x0003
_WAVE_FORMAT_EXTENSIBLE = 0xFFFE

# Magic numbers of common files that are not audio, to refuse them by name
# rather than decoding them as noise-like raw PCM.
_NOT_AUDIO = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"%PDF": "a PDF document",
    b"PK\x03\x04": "a ZIP archive",
    b"GIF8": "a GIF image",
}


@dataclass(frozen=True)
class Audio:
    """Decoded audio, resampled to 16 kHz mono."""

    samples: np.ndarray  # float32, 16 kHz mono, nominally within [-1, 1]
    source_format: str  # "wav", "pcm", "flac", "ogg", "mp3"
    source_rate: int
    source_channels: int
    # Bits of the source's integer samples (their rounding is a noise floor the speech
    # never had); None for float and lossy sources.
    source_bits: int | None = None

    @property
    def duration(self) -> float:
        return len(self.samples) / SAMPLE_RATE


def decode_audio(
    data: bytes,
    *,
    sample_rate: int = SAMPLE_RATE,
    channels: int = 1,
    max_seconds: float | None = None,
) -> Audio:
    """Decode any supported audio; ``sample_rate``/``channels`` describe raw PCM only."""
    if not data:
        raise InvalidAudio("the audio file is empty")
    fmt = sniff_format(data)
    if fmt == "wav":
        samples, rate, bits = _decode_wav(data)
    elif fmt == "pcm":
        samples, rate = _decode_pcm(data, sample_rate, channels)
        bits = 16
    else:
        samples, rate, bits = _decode_compressed(data, fmt)
    n_channels = samples.shape[1]
    _check_rate(rate)
    if not np.all(np.isfinite(samples)):
        raise InvalidAudio("the audio contains NaN or infinite sample values")
    seconds = samples.shape[0] / rate
    if max_seconds is not None and seconds > max_seconds:
        raise AudioTooLong(seconds, max_seconds)
    if seconds < MIN_SECONDS:
        raise InvalidAudio(
            f"the audio is {seconds * 1000:.0f} ms long; at least {MIN_SECONDS * 1000:.0f} ms "
            "is needed"
        )
    # No float64 copies: a 30-minute recording is 115 MB as float32 alone.
    mono = samples[:, 0] if n_channels == 1 else samples.mean(axis=1, dtype=np.float32)
    if rate != SAMPLE_RATE:
        mono = soxr.resample(mono, rate, SAMPLE_RATE).astype(np.float32)
    return Audio(mono, fmt, rate, n_channels, bits)


def sniff_format(data: bytes) -> str:
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "wav"
    if data[:4] == b"RIFF" or data[:4] == b"RIFX" or data[:4] == b"RF64":
        raise InvalidAudio("RIFF file is not a little-endian WAVE file; send a standard WAV")
    if data[:4] == b"fLaC":
        return "flac"
    if data[:4] == b"OggS":
        return "ogg"
    if data[:3] == b"ID3" or _starts_with_mp3_frames(data):
        return "mp3"
    for magic, what in _NOT_AUDIO.items():
        if data.startswith(magic):
            raise InvalidAudio(f"the file looks like {what}, not audio; send WAV or raw PCM")
    return "pcm"


_MP3_BITRATES_KBPS = {
    3: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),  # MPEG-1
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),  # MPEG-2
    0: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),  # MPEG-2.5
}
_MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _mp3_frame_length(data: bytes, pos: int) -> int | None:
    """Length of the MPEG-1/2 layer III frame whose header starts at ``pos``, if valid."""
    if pos + 4 > len(data) or data[pos] != 0xFF or data[pos + 1] & 0xE0 != 0xE0:
        return None
    version = (data[pos + 1] >> 3) & 0b11
    layer = (data[pos + 1] >> 1) & 0b11
    bitrate_index = data[pos + 2] >> 4
    rate_index = (data[pos + 2] >> 2) & 0b11
    if version == 1 or layer != 0b01 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    bitrate = _MP3_BITRATES_KBPS[version][bitrate_index] * 1000
    rate = _MP3_RATES[version][rate_index]
    padding = (data[pos + 2] >> 1) & 1
    return (144 if version == 3 else 72) * bitrate // rate + padding


def _starts_with_mp3_frames(data: bytes, frames: int = 3) -> bool:
    """Several consecutive valid frame headers: raw PCM practically never looks like that."""
    pos = 0
    for _ in range(frames):
        length = _mp3_frame_length(data, pos)
        if not length:
            return False
        pos += length
    return True


def _check_rate(rate: int) -> None:
    if not MIN_RATE <= rate <= MAX_RATE:
        raise InvalidAudio(f"sample rate {rate} Hz is not supported; use {MIN_RATE}..{MAX_RATE} Hz")


def _check_channels(channels: int) -> None:
    if not 1 <= channels <= MAX_CHANNELS:
        raise InvalidAudio(f"channel count {channels} is not supported; use 1..{MAX_CHANNELS}")


def _decode_pcm(data: bytes, sample_rate: int, channels: int) -> tuple[np.ndarray, int]:
    _check_rate(sample_rate)
    _check_channels(channels)
    frame_bytes = 2 * channels
    if len(data) % frame_bytes:
        raise InvalidAudio(
            f"raw PCM of {len(data)} bytes is not a whole number of {channels}-channel "
            "16-bit frames; send signed 16-bit little-endian PCM or a WAV file"
        )
    samples = np.frombuffer(data, dtype="<i2").reshape(-1, channels)
    return samples.astype(np.float32) / 32768.0, sample_rate


def _decode_wav(data: bytes) -> tuple[np.ndarray, int, int | None]:
    fmt_chunk: memoryview | None = None
    payload: memoryview | None = None
    declared_riff = struct.unpack_from("<I", data, 4)[0]
    if declared_riff + 8 > len(data) + 1:  # a pad byte may be missing at the very end
        raise InvalidAudio(
            f"WAV header declares {declared_riff + 8} bytes but the file has {len(data)}: "
            "the file is truncated"
        )
    pos = 12
    view = memoryview(data)  # chunks are read in place, not copied
    while pos + 8 <= len(data):
        chunk_id = data[pos : pos + 4]
        size = struct.unpack_from("<I", data, pos + 4)[0]
        body = view[pos + 8 : pos + 8 + size]
        if chunk_id == b"fmt ":
            fmt_chunk = body
        elif chunk_id == b"data":
            if len(body) < size:
                raise InvalidAudio(
                    f"WAV data chunk declares {size} bytes but only {len(body)} are present: "
                    "the file is truncated"
                )
            payload = body
            break
        pos += 8 + size + (size & 1)
    if fmt_chunk is None or len(fmt_chunk) < 16:
        raise InvalidAudio("WAV file has no valid 'fmt ' chunk")
    if payload is None:
        raise InvalidAudio("WAV file has no 'data' chunk")

    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", fmt_chunk)
    if tag == _WAVE_FORMAT_EXTENSIBLE and len(fmt_chunk) >= 26:
        tag = struct.unpack_from("<H", fmt_chunk, 24)[0]
    _check_channels(channels)
    _check_rate(rate)
    width = bits // 8
    if bits not in (8, 16, 24, 32, 64):
        raise InvalidAudio(
            f"WAV header says {bits} bits per sample; use PCM 8/16/24/32-bit or 32-bit float"
        )
    if block_align != width * channels:
        raise InvalidAudio(
            f"WAV header is inconsistent: {bits} bits x {channels} channels but "
            f"block align {block_align}"
        )
    usable = len(payload) - len(payload) % block_align
    raw = payload[:usable]
    if tag == _WAVE_FORMAT_PCM and bits in (8, 16, 24, 32):
        samples = _pcm_to_float(raw, width)
    elif tag == _WAVE_FORMAT_FLOAT and bits == 32:
        samples = np.frombuffer(raw, dtype="<f4").astype(np.float32)
    elif tag == _WAVE_FORMAT_FLOAT and bits == 64:
        samples = np.frombuffer(raw, dtype="<f8").astype(np.float32)
    else:
        raise InvalidAudio(
            f"WAV encoding (format tag {tag}, {bits} bits) is not supported; "
            "use PCM 8/16/24/32-bit or 32-bit float"
        )
    return samples.reshape(-1, channels), rate, bits if tag == _WAVE_FORMAT_PCM else None


def _pcm_to_float(raw: memoryview, width: int) -> np.ndarray:
    if width == 1:  # 8-bit WAV is unsigned
        return (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    if width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        value = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        value = np.where(value & 0x800000, value - 0x1000000, value)
        return value.astype(np.float32) / float(1 << 23)
    dtype = {2: "<i2", 4: "<i4"}[width]
    samples = np.frombuffer(raw, dtype=dtype).astype(np.float32)
    samples *= 1.0 / float(1 << (8 * width - 1))
    return samples


# libsndfile's lossless integer subtypes (FLAC), by bits; lossy ones have no such floor.
_SUBTYPE_BITS = {"PCM_S8": 8, "PCM_U8": 8, "PCM_16": 16, "PCM_24": 24, "PCM_32": 32}


def _decode_compressed(data: bytes, fmt: str) -> tuple[np.ndarray, int, int | None]:
    try:
        with soundfile.SoundFile(io.BytesIO(data)) as source:
            samples = source.read(dtype="float32", always_2d=True)
            rate, bits = source.samplerate, _SUBTYPE_BITS.get(source.subtype)
    except Exception as exc:  # libsndfile's failures on hostile bytes are not one type
        # Its own words only: str(exc) names the in-memory file object, an internal.
        reason = getattr(exc, "error_string", "") or "corrupt, truncated or not supported"
        raise InvalidAudio(
            f"the {fmt.upper()} stream could not be decoded ({reason}); send a valid "
            f"{fmt.upper()} file or WAV"
        ) from None
    return samples, int(rate), bits
