"""The voiceprint-api contract that xiaozhi-esp32-server and its manager-api speak.

Routes under ``/voiceprint`` translate that contract's shapes to ``Speakers`` calls:
the ``key`` is one of our API tokens, a ``speaker_id`` one voiceprint of the
token's xiaozhi group. Answers and errors take the shapes those clients read:
``{"success": true, "msg"}`` for a change, ``{"speaker_id", "score"}`` for an
identification and FastAPI's ``{"detail": "..."}`` (plus our ``code``) for a refusal.

The client's ``score`` is 0-1 and its default threshold 0.4, ours 0-100 with a
match from 50, so ``client_score`` maps 0-50 onto 0-0.4 and 50-100 onto 0.4-1
(both linear): the client's default and this service's decision then agree.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from voiceprint.api.bodies import multipart_doc, parse_model, read_fields
from voiceprint.api.errors import ERROR_TABLE
from voiceprint.api.routes import Caller, authenticate_request, get_caller
from voiceprint.auth.tokens import Principal
from voiceprint.logid import current_logid
from voiceprint.metrics import REFUSED
from voiceprint.scoring.scorer import MATCH_THRESHOLD
from voiceprint.service.errors import InvalidParameter, NotFound
from voiceprint.service.recordings import AudioUpload
from voiceprint.service.speakers import Speakers, speaker_id_of, speaker_ids_of

CLIENT_THRESHOLD = 0.4  # xiaozhi-server's default similarity_threshold


def client_score(score: float) -> float:
    """Our 0-100 score on the client's 0-1 scale: ``MATCH_THRESHOLD`` lands on 0.4."""
    if score <= MATCH_THRESHOLD:
        scaled = score / MATCH_THRESHOLD * CLIENT_THRESHOLD
    else:
        above = (score - MATCH_THRESHOLD) / (100 - MATCH_THRESHOLD)
        scaled = CLIENT_THRESHOLD + above * (1 - CLIENT_THRESHOLD)
    return round(min(max(scaled, 0.0), 1.0), 4)


def refusal(exc: Exception) -> Response | None:
    """The answer to an error of the one table, in the shape these clients read."""
    for kind, code, status in ERROR_TABLE:
        if isinstance(exc, kind):
            REFUSED.labels(str(int(code))).inc()
            body = {
                "detail": str(exc) or "the request body is too large",
                "code": int(code),
                "logid": current_logid.get(),
            }
            return JSONResponse(body, status_code=status)
    return None


class XiaozhiRoute(APIRoute):
    """Refusals in ``{"detail"}`` rather than the Coze envelope, for these routes only."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await handle(request)
            except Exception as exc:
                answer = refusal(exc)
                if answer is None:
                    raise
                return answer

        return handler


router = APIRouter(prefix="/voiceprint", tags=["xiaozhi"], route_class=XiaozhiRoute)


async def _speakers(request: Request) -> Speakers:
    return request.app.state.speakers


def _key(request: Request, key: Annotated[str | None, Query()] = None) -> Principal:
    # The health check sends the key in the query; other clients may send the header.
    if key is None:
        return get_caller(request)
    return authenticate_request(request, f"Bearer {key}")


KeyCaller = Annotated[Principal, Depends(_key)]
Directory = Annotated[Speakers, Depends(_speakers)]


class RegisterForm(BaseModel):
    speaker_id: str = Field(description="The id the client knows this voice by (≤ 255)")


class IdentifyForm(BaseModel):
    speaker_ids: str = Field(description="Candidate speaker_ids, comma-separated")


Form = TypeVar("Form", RegisterForm, IdentifyForm)


def _multipart(model: type[BaseModel]) -> dict[str, Any]:
    doc = multipart_doc(model, file_required=True)
    schema = doc["requestBody"]["content"]["multipart/form-data"]["schema"]
    schema["properties"]["file"] = {
        "type": "string",
        "format": "binary",
        "description": "One recording: WAV as xiaozhi sends it, or FLAC, Ogg, MP3",
    }
    return doc


async def _form(request: Request, model: type[Form]) -> tuple[Form, AudioUpload]:
    body = await read_fields(request, request.app.state.settings.max_upload_bytes)
    fields = parse_model(model, body.fields)
    if len(body.files) != 1:
        raise InvalidParameter("send exactly one 'file' part with the audio (WAV)")
    return fields, AudioUpload(body.files[0])


@router.get("/health", summary="Status and how many voiceprints the key's group holds")
async def health(caller: KeyCaller, speakers: Directory) -> dict[str, Any]:
    count = await run_in_threadpool(speakers.count, caller)
    return {"total_voiceprints": count, "status": "healthy"}


@router.post(
    "/register",
    summary="Enrol speaker_id from a recording (replaces its voice)",
    openapi_extra=_multipart(RegisterForm),
)
async def register(request: Request, caller: Caller, speakers: Directory) -> dict[str, Any]:
    form, audio = await _form(request, RegisterForm)
    speaker_id = speaker_id_of(form.speaker_id)
    await run_in_threadpool(speakers.register, caller, speaker_id, [audio])
    return {"success": True, "msg": f"已登记: {speaker_id}"}


@router.post(
    "/identify",
    summary="Which of speaker_ids is speaking ('' when nobody matches)",
    openapi_extra=_multipart(IdentifyForm),
)
async def identify(request: Request, caller: Caller, speakers: Directory) -> dict[str, Any]:
    form, audio = await _form(request, IdentifyForm)
    candidates = speaker_ids_of(form.speaker_ids)
    found = await run_in_threadpool(speakers.identify, caller, candidates, audio)
    return {"speaker_id": found.speaker_id or "", "score": client_score(found.score)}


@router.delete("/{speaker_id}", summary="Delete speaker_id's voiceprint and audio for good")
async def delete(speaker_id: str, caller: Caller, speakers: Directory) -> dict[str, Any]:
    speaker_id = speaker_id.strip()
    if not await run_in_threadpool(speakers.delete, caller, speaker_id):
        raise NotFound(f"no voiceprint has speaker_id {speaker_id!r}")
    return {"success": True, "msg": f"已删除: {speaker_id}"}
