"""Request bodies: the shapes clients send, validated, and read from JSON or multipart alike.

``cozepy`` sends multipart fields as parts without file names, numbers as text
parts, and an update without a file as a JSON body (``{}`` when nothing
changes), so every voiceprint endpoint accepts both encodings through
``read_fields``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, WithJsonSchema
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect, Request

from voiceprint.api.errors import UploadTooLarge
from voiceprint.audio.limits import MAX_CHANNELS, MAX_RATE, MIN_RATE, SAMPLE_RATE
from voiceprint.service.errors import InvalidParameter
from voiceprint.store.ids import parse_id

Name = Annotated[str, Field(min_length=1, max_length=20, description="1..20 characters")]
Desc = Annotated[str, Field(max_length=500, description="0..500 characters")]
SampleRate = Annotated[
    int,
    Field(
        ge=MIN_RATE,
        le=MAX_RATE,
        description=f"Raw PCM only: samples per second (default {SAMPLE_RATE})",
    ),
]
Channels = Annotated[
    int, Field(ge=1, le=MAX_CHANNELS, description="Raw PCM only: channels (default 1)")
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class GroupCreate(_Body):
    name: Name
    desc: Desc = ""


class GroupUpdate(_Body):
    name: Name | None = None
    desc: Desc | None = None


class PcmFields(_Body):
    sample_rate: SampleRate = SAMPLE_RATE
    channel: Channels = 1


class FeatureCreate(PcmFields):
    name: Name
    desc: Desc = ""


class FeatureUpdate(PcmFields):
    name: Name | None = None
    desc: Desc | None = None


class Diarize(PcmFields):
    num_speakers: (
        Annotated[int, Field(ge=1, le=64, description="Known number of speakers")] | None
    ) = None
    min_speakers: Annotated[int, Field(ge=1, le=64, description="At least this many")] = 1
    max_speakers: Annotated[int, Field(ge=1, le=64, description="At most this many")] | None = None
    top_k: Annotated[int, Field(ge=1, description="Voiceprint matches per speaker")] = 1
    format: Literal["json", "rttm"] = "json"


TopK = Annotated[int, Field(ge=1, description="How many best matches to return")]


class Identify(PcmFields):
    top_k: TopK | None = None


def _ids(value: Any) -> list[int]:
    items = value.split(",") if isinstance(value, str) else value
    ids = [parse_id(item.strip()) if isinstance(item, str) else None for item in items or []]
    if not ids or None in ids:
        raise ValueError(f"must be comma-separated positive integer ids; got {value!r}")
    return ids  # type: ignore[return-value]


GroupIds = Annotated[
    list[int],
    BeforeValidator(_ids),
    WithJsonSchema({"type": "string", "pattern": "^[1-9][0-9]{0,18}(,[1-9][0-9]{0,18})*$"}),
    Field(description="The groups to search, comma-separated ids"),
]


class IdentifyAcross(PcmFields):
    group_ids: GroupIds
    top_k: TopK | None = None


def describe_validation(errors: list[Any]) -> str:
    """One readable sentence per invalid field."""
    parts = []
    for error in errors:
        if error.get("type") == "json_invalid":
            return "the request body is not valid JSON"
        where = ".".join(str(x) for x in error["loc"] if x not in ("body", "query", "path"))
        # A validator's own sentence arrives as "Value error, <sentence>".
        msg = error["msg"].removeprefix("Value error, ")
        parts.append(f"'{where}': {msg}" if where else msg)
    return "invalid parameter: " + "; ".join(parts)


def parse_model(model: type[BaseModel], fields: dict[str, Any]) -> Any:
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        raise InvalidParameter(describe_validation(exc.errors())) from None


@dataclass
class ParsedBody:
    """The text fields of a request body and the bytes of its ``file`` parts."""

    fields: dict[str, Any]
    files: list[bytes]


async def read_fields(request: Request, max_file_bytes: int) -> ParsedBody:
    """Fields and ``file`` parts of a multipart, urlencoded or JSON body."""
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        try:
            form = await request.form(max_files=16, max_fields=64)
        except MultiPartException as exc:
            raise InvalidParameter(f"malformed multipart body: {exc.message}") from None
        except ClientDisconnect:
            raise UploadTooLarge() from None
        fields: dict[str, Any] = {}
        files: list[bytes] = []
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                if key != "file":
                    raise InvalidParameter(f"unexpected file part '{key}'; send audio as 'file'")
                data = await value.read()
                if len(data) > max_file_bytes:
                    raise UploadTooLarge(
                        f"file is {len(data)} bytes; the limit is {max_file_bytes} bytes"
                    )
                files.append(data)
            elif key == "file":
                raise InvalidParameter("'file' must be a file part with the audio bytes")
            else:
                fields[key] = value
        return ParsedBody(fields, files)
    raw = await request.body()
    if not raw.strip():
        return ParsedBody({}, [])
    if content_type and "json" not in content_type:
        raise InvalidParameter(
            f"content type '{content_type}' is not accepted; send multipart/form-data or JSON"
        )
    try:
        data = json.loads(raw)
    except ValueError:
        raise InvalidParameter("the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidParameter("the JSON body must be an object")
    if "file" in data:
        raise InvalidParameter("audio cannot be sent in JSON; send multipart/form-data")
    return ParsedBody(data, [])


def multipart_doc(model: type[BaseModel], file_required: bool) -> dict[str, Any]:
    """OpenAPI description of a multipart body: the model's fields plus ``file`` parts."""
    schema = model.model_json_schema()
    schema["properties"]["file"] = {
        "type": "array",
        "items": {"type": "string", "format": "binary"},
        "description": "Audio: WAV, raw PCM s16le, FLAC, Ogg or MP3; several parts give "
        "several samples (VOICEPRINT_MAX_UPLOAD_BYTES, 4 MB by default, in all per request).",
    }
    if file_required:
        schema.setdefault("required", []).append("file")
    return {
        "requestBody": {
            "required": file_required,
            "content": {"multipart/form-data": {"schema": schema}},
        }
    }
