"""What audio the service takes: the working sample rate and the limits on input.

The request bodies (``api/bodies.py``) and the decoder both read these, so a
raw-PCM field and a WAV header are held to the same rule.
"""

from __future__ import annotations

SAMPLE_RATE = 16_000  # every model and the VAD work on 16 kHz mono
MIN_RATE = 8_000
MAX_RATE = 48_000
MAX_CHANNELS = 32
MIN_SECONDS = 0.1


def to_ms(samples: int) -> int:
    """Milliseconds of ``samples`` at SAMPLE_RATE, rounded."""
    return round(samples * 1000 / SAMPLE_RATE)
