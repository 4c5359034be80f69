"""Every error code of the API, and which exception maps to which. The one table.

Codes 0-5000 are Coze's; 43xx are this project's (the README lists them too).
"""

from __future__ import annotations

from enum import IntEnum

from voiceprint.audio.errors import (
    AudioTooLong,
    InvalidAudio,
    NotEnoughSpeech,
    PoorQuality,
    StreamTooLong,
)
from voiceprint.auth.ratelimit import RateLimited
from voiceprint.auth.tokens import AuthenticationFailed
from voiceprint.service.errors import (
    FeatureQuotaExceeded,
    GroupQuotaExceeded,
    InvalidParameter,
    NotFound,
    Overloaded,
    PermissionDenied,
    SampleQuotaExceeded,
    StaleVoiceprints,
)
from voiceprint.store.crypto import DamagedData


class Code(IntEnum):
    OK = 0
    INVALID_PARAMETER = 4000
    RATE_LIMITED = 4013
    AUTHENTICATION_FAILED = 4100
    PERMISSION_DENIED = 4101
    NOT_FOUND = 4200
    AUDIO_INVALID = 4301
    AUDIO_TOO_LARGE = 4302
    NOT_ENOUGH_SPEECH = 4303
    FEATURE_QUOTA_EXCEEDED = 4304
    GROUP_QUOTA_EXCEEDED = 4305
    AUDIO_QUALITY_TOO_LOW = 4306
    VOICEPRINTS_NEED_REEMBEDDING = 4307
    SAMPLE_QUOTA_EXCEEDED = 4308
    STORED_DATA_DAMAGED = 4309
    INTERNAL_ERROR = 5000


class UploadTooLarge(Exception):
    """The request body or one file in it is over the configured size limit."""


# exception type -> (code, HTTP status). Each row gets its own handler; Starlette picks the
# handler of the nearest class in the exception's MRO, so the rows must not overlap.
ERROR_TABLE: list[tuple[type[Exception], Code, int]] = [
    (AuthenticationFailed, Code.AUTHENTICATION_FAILED, 401),
    (PermissionDenied, Code.PERMISSION_DENIED, 403),
    (NotFound, Code.NOT_FOUND, 404),
    (InvalidParameter, Code.INVALID_PARAMETER, 400),
    (UploadTooLarge, Code.AUDIO_TOO_LARGE, 413),
    (StreamTooLong, Code.AUDIO_TOO_LARGE, 413),
    (NotEnoughSpeech, Code.NOT_ENOUGH_SPEECH, 400),
    (PoorQuality, Code.AUDIO_QUALITY_TOO_LOW, 400),
    (InvalidAudio, Code.AUDIO_INVALID, 400),
    (AudioTooLong, Code.AUDIO_INVALID, 400),
    (FeatureQuotaExceeded, Code.FEATURE_QUOTA_EXCEEDED, 403),
    (GroupQuotaExceeded, Code.GROUP_QUOTA_EXCEEDED, 403),
    (SampleQuotaExceeded, Code.SAMPLE_QUOTA_EXCEEDED, 403),
    (StaleVoiceprints, Code.VOICEPRINTS_NEED_REEMBEDDING, 409),
    (Overloaded, Code.RATE_LIMITED, 429),
    (RateLimited, Code.RATE_LIMITED, 429),
    (DamagedData, Code.STORED_DATA_DAMAGED, 500),
]


def code_of(exc: BaseException) -> Code:
    """The code a caller is answered for ``exc`` (5000 for anything unexpected)."""
    for kind, code, _ in ERROR_TABLE:
        if isinstance(exc, kind):
            return code
    return Code.INTERNAL_ERROR
