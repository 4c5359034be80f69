"""The ASGI application: routes, error mapping, middleware, startup."""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

from voiceprint.api.bodies import describe_validation
from voiceprint.api.envelope import envelope
from voiceprint.api.errors import ERROR_TABLE, Code, code_of
from voiceprint.api.links import SECRET_NAME, LinkSigner
from voiceprint.api.middleware import BodyLimitMiddleware, LogIdMiddleware
from voiceprint.api.routes import across_router, router
from voiceprint.api.stream import router as stream_router
from voiceprint.api.xiaozhi import router as xiaozhi_router
from voiceprint.auth.ratelimit import RateLimiter
from voiceprint.config import Settings, get_settings
from voiceprint.metrics import LIVE_STREAMS, MODEL, REFUSED, STORED, registry
from voiceprint.service.factory import Models, build_runtime
from voiceprint.service.speakers import Speakers
from voiceprint.service.voiceprints import VoiceprintService
from voiceprint.store.models import Feature, Group
from voiceprint.store.secrets import shared_secret

CONSOLE = Path(__file__).resolve().parent.parent / "console"
# Multipart boundaries and text fields around the audio.
BODY_OVERHEAD = 64 * 1024
EXPIRY_EVERY_S = 3600.0
log = logging.getLogger(__name__)

Handler = Callable[[Request, Exception], Coroutine[Any, Any, Response]]


def _answer_with(code: Code, status: int) -> Handler:
    async def handler(_: Request, exc: Exception) -> Response:
        REFUSED.labels(str(int(code))).inc()
        return envelope(code, str(exc) or "the request body is too large", status=status)

    return handler


def _may_scrape(request: Request, token: str | None) -> bool:
    if token:
        sent = request.headers.get("authorization", "")
        return hmac.compare_digest(sent.encode(), f"Bearer {token}".encode())
    return request.client is not None and request.client.host in ("127.0.0.1", "::1")


def _count_stored(app: FastAPI) -> None:
    with app.state.sessions() as session:
        STORED.labels("groups").set(session.scalar(select(func.count()).select_from(Group)) or 0)
        voiceprints = session.scalar(select(func.count()).select_from(Feature)) or 0
        STORED.labels("voiceprints").set(voiceprints)


async def _expire_unused(service: VoiceprintService) -> None:
    """VOICEPRINT_EXPIRE_UNUSED_DAYS: at start and every hour (every replica; deletes of the
    same voiceprint by two of them are one delete)."""
    if service.settings.expire_unused_days <= 0:
        return
    while True:
        try:
            await run_in_threadpool(service.expire_unused)
        except Exception:  # a database hiccup; try again next time
            log.exception("expiring unused voiceprints failed")
        await asyncio.sleep(EXPIRY_EVERY_S)


def create_app(settings: Settings | None = None, models: Models | None = None) -> FastAPI:
    """The server; ``models`` lets tests share already loaded models."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await run_in_threadpool(build_runtime, settings, models, code_of)
        app.state.service = runtime.service
        app.state.models = runtime.models
        app.state.sessions = runtime.sessions
        app.state.speakers = Speakers(runtime.service, runtime.sessions)
        app.state.links = LinkSigner(
            shared_secret(runtime.sessions, SECRET_NAME), settings.audio_url_ttl_seconds
        )
        expiry = asyncio.create_task(_expire_unused(runtime.service))
        yield
        expiry.cancel()
        runtime.database.dispose()

    app = FastAPI(
        title="voiceprint",
        summary="Self-hosted speaker recognition speaking the Coze voiceprint API",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_minute)
    app.state.failed_auth_limiter = RateLimiter(
        settings.failed_auth_per_minute, "failed authentications"
    )
    app.include_router(router)
    app.include_router(across_router)
    app.include_router(stream_router)
    app.include_router(xiaozhi_router)
    # The console: static files bundled in the package, talking to the API above.
    app.mount("/console", StaticFiles(directory=CONSOLE, html=True), name="console")
    app.state.live_streams = 0

    @app.get("/health", tags=["operations"], summary="Liveness and model information")
    async def health(request: Request) -> Response:
        voice = request.app.state.models.voice
        return envelope(data={"status": "ok", "model": voice.model_id, "device": voice.device})

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        """Prometheus text: with VOICEPRINT_METRICS_TOKEN as a bearer token, or from loopback."""
        if not _may_scrape(request, settings.metrics_token):
            return envelope(
                Code.AUTHENTICATION_FAILED,
                "metrics need 'Authorization: Bearer <VOICEPRINT_METRICS_TOKEN>' "
                "(or, without that setting, a request from this machine)",
                status=401,
            )
        await run_in_threadpool(_count_stored, request.app)
        voice = request.app.state.models.voice
        MODEL.labels(voice.model_id, voice.device).set(1)
        LIVE_STREAMS.set(request.app.state.live_streams)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(_: Request, exc: RequestValidationError) -> Response:
        return envelope(Code.INVALID_PARAMETER, describe_validation(list(exc.errors())), status=400)

    @app.exception_handler(HTTPException)
    async def on_http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404:
            return envelope(
                Code.NOT_FOUND, f"no such endpoint: {request.method} {request.url.path}", status=404
            )
        if exc.status_code == 405:
            return envelope(
                Code.INVALID_PARAMETER,
                f"method {request.method} is not allowed on {request.url.path}",
                status=405,
            )
        return envelope(Code.INVALID_PARAMETER, str(exc.detail), status=exc.status_code)

    for kind, code, status in ERROR_TABLE:
        app.add_exception_handler(kind, _answer_with(code, status))

    app.add_middleware(
        BodyLimitMiddleware,
        limit=settings.max_upload_bytes + BODY_OVERHEAD,
        timeout_s=settings.request_body_timeout_s,
        long_limit=settings.max_diarize_bytes + BODY_OVERHEAD,
        long_suffix="/speaker_diarize",
    )
    app.add_middleware(LogIdMiddleware)
    return app
