"""The Coze response envelope and the per-request log id.

Every response body is ``{"code", "msg", "data"?, "detail": {"logid"}}``; the
log id middleware puts the same id in the ``X-Tt-Logid`` header of every response.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from voiceprint.logid import current_logid

LOGID_HEADER = "X-Tt-Logid"


def envelope(code: int = 0, msg: str = "", data: Any = None, status: int = 200) -> JSONResponse:
    logid = current_logid.get()
    body: dict[str, Any] = {"code": int(code), "msg": msg}
    if data is not None:
        body["data"] = data
    body["detail"] = {"logid": logid}
    return JSONResponse(body, status_code=status)
