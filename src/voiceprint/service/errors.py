"""Domain errors. The HTTP layer maps each to a Coze code in one table (api/errors.py)."""

from __future__ import annotations


class ServiceError(Exception):
    """Base class; the message is safe to show to the caller."""


class InvalidParameter(ServiceError):
    pass


class NotFound(ServiceError):
    pass


class PermissionDenied(ServiceError):
    pass


class FeatureQuotaExceeded(ServiceError):
    pass


class GroupQuotaExceeded(ServiceError):
    pass


class SampleQuotaExceeded(ServiceError):
    pass


class Overloaded(ServiceError):
    pass


class StaleVoiceprints(ServiceError):
    """Voiceprints made by another model than the one the server runs."""

    def __init__(self, feature_ids: list[int], model_id: str) -> None:
        shown = ", ".join(str(i) for i in feature_ids[:5]) + (
            " ..." if len(feature_ids) > 5 else ""
        )
        super().__init__(
            f"voiceprint(s) {shown} were made by another speaker model than the one this "
            f"server runs ({model_id}); an administrator must run `voiceprint reembed` "
            "(the stored recordings are re-used: nobody needs to enrol again)"
        )
        self.feature_ids = feature_ids
