"""ASGI middleware: log id, access log and crash envelope for every request; the body limit."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voiceprint.api.envelope import LOGID_HEADER, envelope
from voiceprint.api.errors import Code
from voiceprint.logid import current_logid, new_logid
from voiceprint.metrics import LATENCY, REQUESTS

log = logging.getLogger("voiceprint.access")


class LogIdMiddleware:
    """Give each request a log id, put it in the ``X-Tt-Logid`` header of whatever answers,
    log one line per request, and turn an unhandled error into a 5000 envelope.

    Handling the crash here, rather than leaving it to Starlette's outermost error
    middleware, keeps the header on that answer too and the connection open after it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        logid = new_logid()
        current_logid.set(logid)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_logid(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"x-tt-logid"]
                headers.append((LOGID_HEADER.lower().encode(), logid.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_logid)
        except Exception as exc:
            log.error("unhandled error", exc_info=exc)
            if response_started:  # too late for an envelope; the server closes the connection
                raise
            crash = envelope(
                Code.INTERNAL_ERROR, "internal error; quote the logid when reporting it", status=500
            )
            await crash(scope, receive, send_with_logid)
        finally:
            elapsed = time.perf_counter() - started
            # The route's template, not the path: ids would make a series per voiceprint.
            route = getattr(scope.get("route"), "path", "unmatched")
            REQUESTS.labels(route, scope["method"], str(status)).inc()
            LATENCY.labels(route).observe(elapsed)
            # Path only: query strings may carry link signatures.
            log.info("%s %s %d %.1fms", scope["method"], scope["path"], status, elapsed * 1000)


class BodyLimitMiddleware:
    """Refuse bodies over ``limit`` bytes while they arrive, never buffering more than that,
    and bodies that take longer than ``timeout_s`` to arrive (a slow client must not hold
    a worker: slowloris)."""

    def __init__(
        self, app: ASGIApp, limit: int, timeout_s: float, long_limit: int, long_suffix: str
    ) -> None:
        self.app = app
        self.default_limit = limit
        self.timeout_s = timeout_s
        # Paths ending in ``long_suffix`` (whole conversations) get ``long_limit`` instead.
        self.long_limit = long_limit
        self.long_suffix = long_suffix

    @staticmethod
    def _too_large(size: str, limit: int) -> Any:
        return envelope(
            Code.AUDIO_TOO_LARGE,
            f"request body is {size}; the limit is {limit} bytes "
            f"({limit / 1048576:.0f} MB) of audio per request",
            status=413,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.long_limit if scope["path"].endswith(self.long_suffix) else self.default_limit
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._too_large(f"{int(declared)} bytes", limit)(scope, receive, send)
            return

        received = 0
        refused = False
        deadline = time.monotonic() + self.timeout_s

        async def limited_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            try:
                message = await asyncio.wait_for(receive(), deadline - time.monotonic())
            except asyncio.TimeoutError:  # builtin TimeoutError only from Python 3.11
                refused = True
                too_slow = envelope(
                    Code.INVALID_PARAMETER,
                    f"the request body did not arrive within {self.timeout_s:g} s; "
                    "send it faster or smaller",
                    status=408,
                )
                await too_slow(scope, receive, send)
                return {"type": "http.disconnect"}
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    await self._too_large(f"over {limit} bytes", limit)(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:  # the 413 has been sent; drop what the app says after it
                await send(message)

        await self.app(scope, limited_receive, guarded_send)
