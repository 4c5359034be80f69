"""Typed audio errors. Each message tells the caller what was wrong and what to send instead."""

from __future__ import annotations


class AudioError(ValueError):
    """Base class: the audio cannot be used."""


class InvalidAudio(AudioError):
    """Empty, truncated, corrupt, mislabelled or unsupported audio."""


class AudioTooLong(AudioError):
    def __init__(self, seconds: float, limit: float) -> None:
        super().__init__(f"audio is {seconds:.1f} s long; at most {limit:.0f} s is accepted")
        self.seconds = seconds
        self.limit = limit


class NotEnoughSpeech(AudioError):
    def __init__(self, speech_s: float, needed_s: float, purpose: str) -> None:
        super().__init__(
            f"{speech_s:.1f} s of speech found, {needed_s:.1f} s needed for {purpose}; "
            "send a longer recording of one person speaking"
        )
        self.speech_s = speech_s
        self.needed_s = needed_s


class StreamTooLong(AudioError):
    """A live stream carried more than its format allows."""


class PoorQuality(AudioError):
    """Speech is present but unusable for a voiceprint (several voices, clipping, noise)."""
