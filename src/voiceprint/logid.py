"""The log id of the work in hand (a request, a stream, a command): in logs and the audit trail."""

from __future__ import annotations

import contextvars
import secrets
import time

current_logid: contextvars.ContextVar[str] = contextvars.ContextVar("logid", default="-")


def new_logid() -> str:
    """Unique and sortable by time: UTC ``YYYYMMDDhhmmss`` + 16 hex characters."""
    return time.strftime("%Y%m%d%H%M%S", time.gmtime()) + secrets.token_hex(8)
