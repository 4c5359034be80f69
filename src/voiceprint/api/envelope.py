"""The Coze response envelope and the per-request log id.

Every response body is ``{"code", "msg", "data"?, "detail": {"logid"}}``; the
log id middleware puts the same id in the ``X-Tt-Logid`` header of every response.
"""

from __future__ import annotations

import contextvars
import secrets
import time
from typing import Any

from starlette.responses import JSONResponse

LOGID_HEADER = "X-Tt-Logid"
current_logid: contextvars.ContextVar[str] = contextvars.ContextVar("logid", default="-")


def new_logid() -> str:
    """Unique and sortable by time: UTC ``YYYYMMDDhhmmss`` + 16 hex characters."""
    return time.strftime("%Y%m%d%H%M%S", time.gmtime()) + secrets.token_hex(8)


def envelope(code: int = 0, msg: str = "", data: Any = None, status: int = 200) -> JSONResponse:
    logid = current_logid.get()
    body: dict[str, Any] = {"code": int(code), "msg": msg}
    if data is not None:
        body["data"] = data
    body["detail"] = {"logid": logid}
    return JSONResponse(body, status_code=status)
