"""Audio that arrives in pieces: bytes of a live stream -> 16 kHz mono float32, as it comes.

Raw PCM (signed 16-bit little-endian), G.711 A-law or mu-law, or a WAV stream
(its header first, then PCM) at 8-48 kHz and 1-32 channels. Bytes that do not
yet make a whole frame wait for the next piece; resampling keeps its state
across pieces, so the output equals decoding the whole stream at once.

An Ogg stream (Opus or Vorbis) is decoded by libsndfile, which reads a stream
cut anywhere up to its last complete packet: each piece decodes the stream so
far and hands on what is new. That costs more the longer the stream, so an Ogg
stream is limited to MAX_OGG_BYTES (about 15 minutes of speech at 64 kbit/s).
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import numpy as np
import soundfile
import soxr

from voiceprint.audio.errors import InvalidAudio, StreamTooLong
from voiceprint.audio.limits import MAX_CHANNELS, MAX_RATE, MIN_RATE, SAMPLE_RATE

FORMATS = ("pcm", "wav", "ogg")
MAX_OGG_BYTES = 8 * 1024 * 1024
OGG_STEP = 4096  # decode again once this many new bytes have arrived
CODECS = ("pcm", "g711a", "g711u")


def _ulaw_table() -> np.ndarray:
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    sign, exponent, mantissa = codes & 0x80, (codes >> 4) & 0x07, codes & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return (np.where(sign, -magnitude, magnitude) / 32768.0).astype(np.float32)


def _alaw_table() -> np.ndarray:
    codes = np.arange(256, dtype=np.int32) ^ 0x55
    sign, exponent, mantissa = codes & 0x80, (codes >> 4) & 0x07, codes & 0x0F
    magnitude = np.where(
        exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << (exponent - 1)
    )
    return (np.where(sign, magnitude, -magnitude) / 32768.0).astype(np.float32)


_G711 = {"g711u": _ulaw_table(), "g711a": _alaw_table()}


@dataclass(frozen=True)
class StreamFormat:
    format: str = "pcm"
    codec: str = "pcm"
    sample_rate: int = SAMPLE_RATE
    channels: int = 1

    def check(self) -> None:
        if self.format not in FORMATS:
            raise InvalidAudio(
                f"stream format {self.format!r} is not supported; use pcm, wav or ogg"
            )
        if self.codec not in CODECS:
            raise InvalidAudio(f"codec {self.codec!r} is not supported; use pcm, g711a or g711u")
        if not MIN_RATE <= self.sample_rate <= MAX_RATE:
            raise InvalidAudio(
                f"sample rate {self.sample_rate} Hz is not supported; use 8000..48000"
            )
        if not 1 <= self.channels <= MAX_CHANNELS:
            raise InvalidAudio(f"channel count {self.channels} is not supported; use 1..32")

    @property
    def frame_bytes(self) -> int:
        return self.channels * (2 if self.codec == "pcm" else 1)

    @property
    def source_bits(self) -> int | None:
        """Bits of the integer samples that arrive (as ``Audio.source_bits``): 16 for
        pcm; G.711's 8-bit codes are logarithmic, and Ogg is lossy."""
        return 16 if self.codec == "pcm" and self.format != "ogg" else None


class StreamDecoder:
    def __init__(self, stream_format: StreamFormat) -> None:
        stream_format.check()
        self.format = stream_format
        self._pending = b""
        self._header_done = stream_format.format != "wav"
        self._ogg = b""
        self._ogg_decoded_at = 0
        self._ogg_emitted = 0
        self._ogg_rate: int | None = None
        self._resampler = (
            None
            if stream_format.sample_rate == SAMPLE_RATE
            else soxr.ResampleStream(stream_format.sample_rate, SAMPLE_RATE, 1, dtype="float32")
        )

    def feed(self, data: bytes) -> np.ndarray:
        """The 16 kHz samples that ``data`` completes."""
        if self.format.format == "ogg":
            return self._feed_ogg(data, last=False)
        data = self._pending + data
        if not self._header_done:
            data = self._skip_wav_header(data)
            if not self._header_done:
                self._pending = data
                return np.zeros(0, np.float32)
        usable = len(data) - len(data) % self.format.frame_bytes
        self._pending = data[usable:]
        return self._resample(self._samples(data[:usable]), last=False)

    def flush(self) -> np.ndarray:
        """What the resampler still holds, at the end of the stream."""
        if self.format.format == "ogg":
            return self._feed_ogg(b"", last=True)
        self._pending = b""
        return self._resample(np.zeros(0, np.float32), last=True)

    def _feed_ogg(self, data: bytes, last: bool) -> np.ndarray:
        self._ogg += data
        if len(self._ogg) > MAX_OGG_BYTES:
            raise StreamTooLong(
                f"an ogg stream may carry {MAX_OGG_BYTES} bytes; start a new stream "
                "or send pcm, which has no such limit"
            )
        if not last and len(self._ogg) - self._ogg_decoded_at < OGG_STEP:
            return np.zeros(0, np.float32)
        self._ogg_decoded_at = len(self._ogg)
        if not self._ogg.startswith(b"OggS"):
            raise InvalidAudio("an ogg stream must start with an Ogg page ('OggS')")
        try:
            decoded, rate = soundfile.read(io.BytesIO(self._ogg), dtype="float32", always_2d=True)
        except Exception:  # not yet a whole header, or damaged: wait for more unless it ended
            if last:
                raise InvalidAudio("the ogg stream could not be decoded") from None
            return np.zeros(0, np.float32)
        if self._ogg_rate is None:
            self._ogg_rate = int(rate)
            if self._ogg_rate != SAMPLE_RATE:
                self._resampler = soxr.ResampleStream(
                    self._ogg_rate, SAMPLE_RATE, 1, dtype="float32"
                )
        fresh = decoded[self._ogg_emitted :].mean(axis=1, dtype=np.float32)
        self._ogg_emitted = len(decoded)
        return self._resample(fresh, last=last)

    def _samples(self, raw: bytes) -> np.ndarray:
        if self.format.codec == "pcm":
            values = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
        else:
            values = _G711[self.format.codec][np.frombuffer(raw, dtype=np.uint8)]
        return values.reshape(-1, self.format.channels).mean(axis=1, dtype=np.float32)

    def _resample(self, samples: np.ndarray, last: bool) -> np.ndarray:
        if self._resampler is None:
            return samples
        return self._resampler.resample_chunk(samples, last=last).astype(np.float32)

    def _skip_wav_header(self, data: bytes) -> bytes:
        """Drop a WAV header once it has fully arrived (up to the 'data' chunk's size)."""
        if len(data) < 12:
            return data
        if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
            raise InvalidAudio("a wav stream must start with a RIFF/WAVE header")
        pos = 12
        while pos + 8 <= len(data):
            chunk, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
            if chunk == b"data":
                self._header_done = True
                return data[pos + 8 :]
            pos += 8 + size + (size & 1)
            if pos > 65536:
                raise InvalidAudio("the wav stream's header is longer than 64 KB")
        return data


class StreamAudio:
    """The samples of a stream kept so far, addressed by their offset in the stream.

    A live turn can last minutes: appending writes into spare room (doubled when
    full) instead of copying everything kept for every piece. Slices are views;
    kept samples are never overwritten, only moved to a new array when it grows,
    or shrinks after a long turn is let go.
    """

    def __init__(self) -> None:
        self._data = np.zeros(SAMPLE_RATE, np.float32)
        self._head = 0  # index in _data of the first kept sample
        self._start = 0  # its offset in the stream
        self.end = 0  # offset just after the last sample received

    def append(self, samples: np.ndarray) -> None:
        kept = self.end - self._start
        if self._head + kept + len(samples) > len(self._data):
            self._move(2 * (kept + len(samples)))
        tail = self._head + kept
        self._data[tail : tail + len(samples)] = samples
        self.end += len(samples)

    def slice(self, start: int, end: int) -> np.ndarray:
        """Samples from ``start`` to ``end`` (stream offsets), clipped to those kept."""
        lo = max(start, self._start)
        hi = max(min(end, self.end), lo)
        return self._data[self._head + lo - self._start : self._head + hi - self._start]

    def trim(self, keep_from: int) -> None:
        """Forget the samples before ``keep_from``."""
        cut = min(keep_from, self.end) - self._start
        if cut > 0:
            self._head += cut
            self._start += cut
        kept = self.end - self._start
        if len(self._data) > 4 * max(kept, SAMPLE_RATE):
            self._move(2 * kept)

    def _move(self, size: int) -> None:
        """The kept samples into a new array of ``size`` (at least a second)."""
        kept = self.end - self._start
        data = np.zeros(max(size, SAMPLE_RATE), np.float32)
        data[:kept] = self._data[self._head : self._head + kept]
        self._data, self._head = data, 0
