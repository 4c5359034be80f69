"""The HTTP routes: translate requests to service calls and results to Coze envelopes."""

from __future__ import annotations

import contextlib
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, BeforeValidator, WithJsonSchema
from starlette.concurrency import run_in_threadpool

from voiceprint.api import schemas
from voiceprint.api.bodies import (
    Diarize,
    FeatureCreate,
    FeatureUpdate,
    GroupCreate,
    GroupUpdate,
    Identify,
    IdentifyAcross,
    PcmFields,
    multipart_doc,
    parse_model,
    read_fields,
)
from voiceprint.api.envelope import envelope
from voiceprint.api.links import LinkSigner
from voiceprint.auth.ratelimit import RateLimited
from voiceprint.auth.tokens import AuthenticationFailed, Principal, authenticate
from voiceprint.service.conversations import DiarizeOptions, rttm
from voiceprint.service.errors import InvalidParameter, PermissionDenied
from voiceprint.service.recordings import AudioUpload
from voiceprint.service.views import Page
from voiceprint.service.voiceprints import VoiceprintService
from voiceprint.store.ids import parse_id

PREFIX = "/v1/audio/voiceprint_groups"
router = APIRouter(prefix=PREFIX, tags=["voiceprints"])
# Beyond Coze, outside its paths: recognition over several groups.
across_router = APIRouter(prefix="/v1/audio", tags=["voiceprints"])

AUDIO_TYPES = {
    "wav": "audio/wav",
    "pcm": "audio/L16",
    "flac": "audio/flac",
    "ogg": "audio/ogg",
    "mp3": "audio/mpeg",
}


def _id(value: Any) -> int:
    parsed = parse_id(value) if isinstance(value, str) else None
    if parsed is None:
        raise ValueError(f"must be a positive integer id; got {value!r}")
    return parsed


# Ids travel as decimal strings (as Coze sends them); the rule for reading one lives here.
Id = Annotated[
    int,
    BeforeValidator(_id),
    WithJsonSchema({"type": "string", "pattern": "^[1-9][0-9]{0,18}$"}),
]


async def _service(request: Request) -> VoiceprintService:
    # async: a plain attribute read needs no trip through the thread pool.
    return request.app.state.service


async def _links(request: Request) -> LinkSigner:
    return request.app.state.links


def get_caller(request: Request) -> Principal:
    return authenticate_request(request, request.headers.get("authorization"))


def authenticate_request(request: Request, authorization: str | None) -> Principal:
    """The caller behind ``authorization``, within the per-address and per-token limits."""
    # A client that keeps failing to authenticate is refused before any database read.
    client = request.client.host if request.client else "-"
    failures = request.app.state.failed_auth_limiter
    failures.ensure_left(client, "address")
    try:
        with request.app.state.sessions() as session:
            caller = authenticate(session, authorization)
    except AuthenticationFailed:
        with contextlib.suppress(RateLimited):
            failures.check(client, "address")
        raise
    request.app.state.rate_limiter.check(caller.token_id)
    return caller


Caller = Annotated[Principal, Depends(get_caller)]
Service = Annotated[VoiceprintService, Depends(_service)]
Links = Annotated[LinkSigner, Depends(_links)]
# Bounded so that the offset (page_num - 1) * page_size fits every database's integers.
PageNum = Annotated[int, Query(ge=1, le=2**31 - 1, description="Page number, from 1")]
PageSize = Annotated[int, Query(ge=1, le=200, description="Items per page, 1..200")]


def _ok(data: BaseModel | None = None) -> Response:
    return envelope(data=None if data is None else data.model_dump())


def _base_url(request: Request) -> str:
    configured = request.app.state.settings.public_url
    return (configured or str(request.base_url)).rstrip("/")


FormModel = TypeVar("FormModel", bound=PcmFields)


async def _audio_form(
    request: Request,
    model: type[FormModel],
    files: Literal["optional", "required", "one"],
    max_file_bytes: int | None = None,
) -> tuple[FormModel, list[AudioUpload]]:
    """The validated fields and the audio parts of a voiceprint request."""
    limit = max_file_bytes or request.app.state.settings.max_upload_bytes
    body = await read_fields(request, limit)
    fields = parse_model(model, body.fields)
    if files == "one" and len(body.files) != 1:
        raise InvalidParameter("send exactly one 'file' part with the audio")
    if files == "required" and not body.files:
        raise InvalidParameter("'file' is required: send the audio as a multipart file part")
    return fields, [AudioUpload(data, fields.sample_rate, fields.channel) for data in body.files]


# --- groups -------------------------------------------------------------------------------


@router.post("", response_model=schemas.CreatedResponse, summary="Create a voiceprint group")
async def create_group(body: GroupCreate, caller: Caller, service: Service) -> Response:
    group_id = await run_in_threadpool(service.create_group, caller, body.name, body.desc)
    return _ok(schemas.Created(id=str(group_id)))


@router.get("", response_model=schemas.GroupListResponse, summary="List voiceprint groups")
async def list_groups(
    caller: Caller,
    service: Service,
    page_num: PageNum = 1,
    page_size: PageSize = 10,
    name: Annotated[str | None, Query(description="Name prefix")] = None,
    user_id: Annotated[Id | None, Query(description="Only your own account id")] = None,
    group_id: Annotated[Id | None, Query(description="Exact group id")] = None,
) -> Response:
    items, total = await run_in_threadpool(
        service.list_groups,
        caller,
        Page(page_num, page_size),
        name_prefix=name,
        user_id=user_id,
        group_id=group_id,
    )
    return _ok(schemas.GroupList(items=[schemas.GroupItem.of(g) for g in items], total=total))


@router.put("/{group_id}", response_model=schemas.EmptyResponse, summary="Update a group")
async def update_group(
    group_id: Id, caller: Caller, service: Service, body: GroupUpdate | None = None
) -> Response:
    body = body or GroupUpdate()
    await run_in_threadpool(service.update_group, caller, group_id, body.name, body.desc)
    return _ok()


@router.delete("/{group_id}", response_model=schemas.EmptyResponse, summary="Delete a group")
async def delete_group(group_id: Id, caller: Caller, service: Service) -> Response:
    await run_in_threadpool(service.delete_group, caller, group_id)
    return _ok()


# --- voiceprints --------------------------------------------------------------------------


@router.post(
    "/{group_id}/features",
    response_model=schemas.FeatureCreatedResponse,
    summary="Create a voiceprint from one or more recordings",
    openapi_extra=multipart_doc(FeatureCreate, file_required=True),
)
async def create_feature(
    group_id: Id, request: Request, caller: Caller, service: Service
) -> Response:
    body, audio = await _audio_form(request, FeatureCreate, files="required")
    enrolment = await run_in_threadpool(
        service.create_feature, caller, group_id, body.name, body.desc, audio
    )
    return _ok(schemas.FeatureCreated.of(enrolment))


@router.get(
    "/{group_id}/features",
    response_model=schemas.FeatureListResponse,
    summary="List the voiceprints of a group",
)
async def list_features(
    group_id: Id,
    request: Request,
    caller: Caller,
    service: Service,
    links: Links,
    page_num: PageNum = 1,
    page_size: PageSize = 10,
) -> Response:
    items, total = await run_in_threadpool(
        service.list_features, caller, group_id, Page(page_num, page_size)
    )
    base = _base_url(request)
    listed = []
    for feature in items:
        expires, signature = links.sign(feature.id)
        audio_url = (
            f"{base}{PREFIX}/{feature.group_id}/features/{feature.id}/audio"
            f"?expires={expires}&signature={signature}"
        )
        listed.append(schemas.FeatureItem.of(feature, audio_url))
    return _ok(schemas.FeatureList(items=listed, total=total))


@router.put(
    "/{group_id}/features/{feature_id}",
    response_model=schemas.CreatedResponse,
    summary="Rename a voiceprint and/or replace its audio",
    openapi_extra=multipart_doc(FeatureUpdate, file_required=False),
)
async def update_feature(
    group_id: Id, feature_id: Id, request: Request, caller: Caller, service: Service
) -> Response:
    body, audio = await _audio_form(request, FeatureUpdate, files="optional")
    await run_in_threadpool(
        service.update_feature, caller, group_id, feature_id, body.name, body.desc, audio
    )
    return _ok(schemas.Created(id=str(feature_id)))


@router.delete(
    "/{group_id}/features/{feature_id}",
    response_model=schemas.EmptyResponse,
    summary="Delete a voiceprint and its stored audio",
)
async def delete_feature(
    group_id: Id, feature_id: Id, caller: Caller, service: Service
) -> Response:
    await run_in_threadpool(service.delete_feature, caller, group_id, feature_id)
    return _ok()


@router.post(
    "/{group_id}/features/{feature_id}/samples",
    response_model=schemas.SampleCountResponse,
    summary="Add recordings to a voiceprint (beyond Coze)",
    openapi_extra=multipart_doc(PcmFields, file_required=True),
)
async def add_samples(
    group_id: Id, feature_id: Id, request: Request, caller: Caller, service: Service
) -> Response:
    _, audio = await _audio_form(request, PcmFields, files="required")
    enrolment = await run_in_threadpool(service.add_samples, caller, group_id, feature_id, audio)
    return _ok(schemas.SampleCount.of(enrolment))


@router.get(
    "/{group_id}/features/{feature_id}/audio",
    summary="Download the stored original recording (the target of audio_url)",
    response_class=Response,
    responses={200: {"content": {"audio/wav": {}}}},
)
async def feature_audio(
    group_id: Id,
    feature_id: Id,
    request: Request,
    service: Service,
    links: Links,
    expires: int | None = None,
    signature: str | None = None,
) -> Response:
    if signature is None:
        caller = await run_in_threadpool(get_caller, request)
        audio = await run_in_threadpool(service.feature_audio, caller, group_id, feature_id)
    elif expires is not None and links.verify(feature_id, expires, signature):
        audio = await run_in_threadpool(service.linked_audio, group_id, feature_id)
    else:
        raise PermissionDenied("the audio link is invalid or has expired")
    return Response(
        audio.data,
        media_type=AUDIO_TYPES.get(audio.format, "application/octet-stream"),
        headers={
            "Cache-Control": "private, no-store",
            # Stored bytes are whatever a client uploaded: never let a browser render them.
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": f'attachment; filename="voiceprint-{feature_id}.{audio.format}"',
        },
    )


# --- recognition --------------------------------------------------------------------------


@router.post(
    "/{group_id}/speaker_identify",
    response_model=schemas.IdentifyResponse,
    summary="Who in this group is speaking?",
    openapi_extra=multipart_doc(Identify, file_required=True),
)
async def speaker_identify(
    group_id: Id, request: Request, caller: Caller, service: Service
) -> Response:
    body, (audio,) = await _audio_form(request, Identify, files="one")
    recognition = await run_in_threadpool(service.identify, caller, group_id, audio, body.top_k)
    return _ok(schemas.FeatureScoreList.of(recognition))


@across_router.post(
    "/speaker_identify",
    response_model=schemas.IdentifyAcrossResponse,
    summary="Who in these groups is speaking? (several groups at once, beyond Coze)",
    openapi_extra=multipart_doc(IdentifyAcross, file_required=True),
)
async def speaker_identify_across(request: Request, caller: Caller, service: Service) -> Response:
    body, (audio,) = await _audio_form(request, IdentifyAcross, files="one")
    recognition = await run_in_threadpool(
        service.identify_across, caller, body.group_ids, audio, body.top_k
    )
    return _ok(schemas.GroupFeatureScoreList.of(recognition))


@router.post(
    "/{group_id}/speaker_diarize",
    response_model=schemas.DiarizedResponse,
    summary="Who spoke when in a recording, named from the group (beyond Coze)",
    description="JSON in the usual envelope, or RTTM text with format=rttm. Recordings up to "
    "VOICEPRINT_MAX_DIARIZE_BYTES (100 MB) and VOICEPRINT_MAX_DIARIZE_SECONDS (30 min).",
    openapi_extra=multipart_doc(Diarize, file_required=True),
)
async def speaker_diarize(
    group_id: Id, request: Request, caller: Caller, service: Service
) -> Response:
    settings = request.app.state.settings
    body, (audio,) = await _audio_form(request, Diarize, "one", settings.max_diarize_bytes)
    options = DiarizeOptions(body.num_speakers, body.min_speakers, body.max_speakers, body.top_k)
    view = await run_in_threadpool(service.diarize, caller, group_id, audio, options)
    if body.format == "rttm":
        return Response(rttm(view, f"group{group_id}"), media_type="text/plain; charset=utf-8")
    return _ok(schemas.Diarized.of(view))


@router.post(
    "/{group_id}/features/{feature_id}/verify",
    response_model=schemas.VerifyResponse,
    summary="Is this recording the voiceprint's speaker? (1:1, beyond Coze)",
    openapi_extra=multipart_doc(PcmFields, file_required=True),
)
async def verify(
    group_id: Id, feature_id: Id, request: Request, caller: Caller, service: Service
) -> Response:
    _, (audio,) = await _audio_form(request, PcmFields, files="one")
    recognition = await run_in_threadpool(service.verify, caller, group_id, feature_id, audio)
    return _ok(schemas.Verification.of(recognition))
