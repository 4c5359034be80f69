"""The HTTP routes: translate requests to service calls and results to Coze envelopes."""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from voiceprint.api import schemas
from voiceprint.api.bodies import (
    FeatureCreate,
    FeatureUpdate,
    GroupCreate,
    GroupUpdate,
    Identify,
    PcmFields,
    multipart_doc,
    parse_model,
    read_fields,
)
from voiceprint.api.envelope import envelope
from voiceprint.auth.tokens import Principal, authenticate
from voiceprint.service.errors import InvalidParameter
from voiceprint.service.voiceprints import (
    AudioUpload,
    Creator,
    FeatureView,
    GroupView,
    Match,
    Page,
    SampleView,
    VoiceprintService,
)

PREFIX = "/v1/audio/voiceprint_groups"
router = APIRouter(prefix=PREFIX, tags=["voiceprints"])

AUDIO_TYPES = {
    "wav": "audio/wav",
    "pcm": "audio/L16",
    "flac": "audio/flac",
    "ogg": "audio/ogg",
    "mp3": "audio/mpeg",
}


async def _service(request: Request) -> VoiceprintService:
    # async: a plain attribute read needs no trip through the thread pool.
    return request.app.state.service


def get_caller(request: Request) -> Principal:
    with request.app.state.sessions() as session:
        caller = authenticate(session, request.headers.get("authorization"))
    request.app.state.rate_limiter.check(caller.token_id)
    return caller


Caller = Annotated[Principal, Depends(get_caller)]
Service = Annotated[VoiceprintService, Depends(_service)]
PageNum = Annotated[int, Query(ge=1, description="Page number, from 1")]
PageSize = Annotated[int, Query(ge=1, le=200, description="Items per page, 1..200")]


def parse_id(value: str, field: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 2**63:
        raise InvalidParameter(f"'{field}' must be a positive integer id; got {value!r}")
    return int(value)


def _user_info(creator: Creator) -> dict[str, str]:
    return {"id": str(creator.id), "name": creator.name, "nickname": creator.name, "avatar_url": ""}


def _group_item(group: GroupView) -> dict[str, Any]:
    return {
        "id": str(group.id),
        "name": group.name,
        "desc": group.desc,
        "icon_url": "",
        "user_info": _user_info(group.creator),
        "created_at": group.created_at,
        "updated_at": group.updated_at,
        "feature_count": group.feature_count,
    }


def _feature_item(feature: FeatureView, base_url: str) -> dict[str, Any]:
    audio_url = (
        f"{base_url}{PREFIX}/{feature.group_id}/features/{feature.id}/audio"
        f"?expires={feature.audio_expires}&signature={feature.audio_signature}"
    )
    return {
        "id": str(feature.id),
        "group_id": str(feature.group_id),
        "name": feature.name,
        "desc": feature.desc,
        "icon_url": "",
        "audio_url": audio_url,
        "user_info": _user_info(feature.creator),
        "created_at": feature.created_at,
        "updated_at": feature.updated_at,
        "samples": [_sample_item(s) for s in feature.samples],
    }


def _sample_item(sample: SampleView) -> dict[str, Any]:
    return {"speech_seconds": sample.speech_seconds, "quality": sample.quality}


def _match_item(match: Match) -> dict[str, Any]:
    return {
        "feature_id": str(match.feature_id),
        "feature_name": match.name,
        "feature_desc": match.desc,
        "score": match.score,
        "match": match.is_match,
    }


def _base_url(request: Request) -> str:
    configured = request.app.state.settings.public_url
    return (configured or str(request.base_url)).rstrip("/")


FormModel = TypeVar("FormModel", bound=PcmFields)


async def _audio_form(
    request: Request, model: type[FormModel], files: Literal["optional", "required", "one"]
) -> tuple[FormModel, list[AudioUpload]]:
    """The validated fields and the audio parts of a voiceprint request."""
    upload = await read_fields(request, request.app.state.settings.max_upload_bytes)
    body = parse_model(model, upload.fields)
    if files == "one" and len(upload.files) != 1:
        raise InvalidParameter("send exactly one 'file' part with the audio")
    if files == "required" and not upload.files:
        raise InvalidParameter("'file' is required: send the audio as a multipart file part")
    return body, [AudioUpload(data, body.sample_rate, body.channel) for data in upload.files]


# --- groups -------------------------------------------------------------------------------


@router.post("", response_model=schemas.CreatedResponse, summary="Create a voiceprint group")
async def create_group(body: GroupCreate, caller: Caller, service: Service) -> Response:
    group_id = await run_in_threadpool(service.create_group, caller, body.name, body.desc)
    return envelope(data={"id": str(group_id)})


@router.get("", response_model=schemas.GroupListResponse, summary="List voiceprint groups")
async def list_groups(
    caller: Caller,
    service: Service,
    page_num: PageNum = 1,
    page_size: PageSize = 10,
    name: Annotated[str | None, Query(description="Name prefix")] = None,
    user_id: Annotated[str | None, Query(description="Only your own account id")] = None,
    group_id: Annotated[str | None, Query(description="Exact group id")] = None,
) -> Response:
    items, total = await run_in_threadpool(
        service.list_groups,
        caller,
        Page(page_num, page_size),
        name_prefix=name,
        user_id=parse_id(user_id, "user_id") if user_id is not None else None,
        group_id=parse_id(group_id, "group_id") if group_id is not None else None,
    )
    return envelope(data={"items": [_group_item(g) for g in items], "total": total})


@router.put("/{group_id}", response_model=schemas.EmptyResponse, summary="Update a group")
async def update_group(
    group_id: str, caller: Caller, service: Service, body: GroupUpdate | None = None
) -> Response:
    gid = parse_id(group_id, "group_id")
    body = body or GroupUpdate()
    await run_in_threadpool(service.update_group, caller, gid, body.name, body.desc)
    return envelope()


@router.delete("/{group_id}", response_model=schemas.EmptyResponse, summary="Delete a group")
async def delete_group(group_id: str, caller: Caller, service: Service) -> Response:
    await run_in_threadpool(service.delete_group, caller, parse_id(group_id, "group_id"))
    return envelope()


# --- voiceprints --------------------------------------------------------------------------


@router.post(
    "/{group_id}/features",
    response_model=schemas.FeatureCreatedResponse,
    summary="Create a voiceprint from one or more recordings",
    openapi_extra=multipart_doc(FeatureCreate, file_required=True),
)
async def create_feature(
    group_id: str, request: Request, caller: Caller, service: Service
) -> Response:
    gid = parse_id(group_id, "group_id")
    body, audio = await _audio_form(request, FeatureCreate, files="required")
    feature_id, samples = await run_in_threadpool(
        service.create_feature, caller, gid, body.name, body.desc, audio
    )
    return envelope(data={"id": str(feature_id), "samples": [_sample_item(s) for s in samples]})


@router.get(
    "/{group_id}/features",
    response_model=schemas.FeatureListResponse,
    summary="List the voiceprints of a group",
)
async def list_features(
    group_id: str,
    request: Request,
    caller: Caller,
    service: Service,
    page_num: PageNum = 1,
    page_size: PageSize = 10,
) -> Response:
    gid = parse_id(group_id, "group_id")
    items, total = await run_in_threadpool(
        service.list_features, caller, gid, Page(page_num, page_size)
    )
    base = _base_url(request)
    return envelope(data={"items": [_feature_item(f, base) for f in items], "total": total})


@router.put(
    "/{group_id}/features/{feature_id}",
    response_model=schemas.CreatedResponse,
    summary="Rename a voiceprint and/or replace its audio",
    openapi_extra=multipart_doc(FeatureUpdate, file_required=False),
)
async def update_feature(
    group_id: str, feature_id: str, request: Request, caller: Caller, service: Service
) -> Response:
    gid, fid = parse_id(group_id, "group_id"), parse_id(feature_id, "feature_id")
    body, audio = await _audio_form(request, FeatureUpdate, files="optional")
    await run_in_threadpool(service.update_feature, caller, gid, fid, body.name, body.desc, audio)
    return envelope(data={"id": str(fid)})


@router.delete(
    "/{group_id}/features/{feature_id}",
    response_model=schemas.EmptyResponse,
    summary="Delete a voiceprint and its stored audio",
)
async def delete_feature(
    group_id: str, feature_id: str, caller: Caller, service: Service
) -> Response:
    gid, fid = parse_id(group_id, "group_id"), parse_id(feature_id, "feature_id")
    await run_in_threadpool(service.delete_feature, caller, gid, fid)
    return envelope()


@router.post(
    "/{group_id}/features/{feature_id}/samples",
    response_model=schemas.SampleCountResponse,
    summary="Add recordings to a voiceprint (beyond Coze)",
    openapi_extra=multipart_doc(PcmFields, file_required=True),
)
async def add_samples(
    group_id: str, feature_id: str, request: Request, caller: Caller, service: Service
) -> Response:
    gid, fid = parse_id(group_id, "group_id"), parse_id(feature_id, "feature_id")
    _, audio = await _audio_form(request, PcmFields, files="required")
    count = await run_in_threadpool(service.add_samples, caller, gid, fid, audio)
    return envelope(data={"id": str(fid), "sample_count": count})


@router.get(
    "/{group_id}/features/{feature_id}/audio",
    summary="Download the stored original recording (the target of audio_url)",
    response_class=Response,
    responses={200: {"content": {"audio/wav": {}}}},
)
async def feature_audio(
    group_id: str,
    feature_id: str,
    request: Request,
    service: Service,
    expires: int | None = None,
    signature: str | None = None,
) -> Response:
    gid, fid = parse_id(group_id, "group_id"), parse_id(feature_id, "feature_id")
    caller = None
    if signature is None:
        caller = await run_in_threadpool(get_caller, request)
    audio = await run_in_threadpool(
        service.feature_audio, gid, fid, caller=caller, expires=expires, signature=signature
    )
    return Response(
        audio.data,
        media_type=AUDIO_TYPES.get(audio.format, "application/octet-stream"),
        headers={"Cache-Control": "private, no-store"},
    )


# --- recognition --------------------------------------------------------------------------


@router.post(
    "/{group_id}/speaker_identify",
    response_model=schemas.IdentifyResponse,
    summary="Who in this group is speaking?",
    openapi_extra=multipart_doc(Identify, file_required=True),
)
async def speaker_identify(
    group_id: str, request: Request, caller: Caller, service: Service
) -> Response:
    gid = parse_id(group_id, "group_id")
    body, (audio,) = await _audio_form(request, Identify, files="one")
    matches = await run_in_threadpool(service.identify, caller, gid, audio, body.top_k)
    return envelope(data={"feature_score_list": [_match_item(m) for m in matches]})


@router.post(
    "/{group_id}/features/{feature_id}/verify",
    response_model=schemas.VerifyResponse,
    summary="Is this recording the voiceprint's speaker? (1:1, beyond Coze)",
    openapi_extra=multipart_doc(PcmFields, file_required=True),
)
async def verify(
    group_id: str, feature_id: str, request: Request, caller: Caller, service: Service
) -> Response:
    gid, fid = parse_id(group_id, "group_id"), parse_id(feature_id, "feature_id")
    _, (audio,) = await _audio_form(request, PcmFields, files="one")
    match = await run_in_threadpool(service.verify, caller, gid, fid, audio)
    decision = "same_speaker" if match.is_match else "different_speaker"
    return envelope(data={"score": match.score, "match": match.is_match, "decision": decision})
