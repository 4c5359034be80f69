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


class Overloaded(ServiceError):
    pass
