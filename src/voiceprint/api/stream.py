"""The live identify stream: a WebSocket speaking Coze's event conventions.

``GET {group}/speaker_identify/stream``, upgraded. Every message is JSON
``{id, event_type, data}``; server events also carry ``detail.logid``.

Client events: ``speaker_identify.update`` (``input_audio``: format, codec,
sample_rate, channel; ``voice_print_config``: score, top_k),
``input_audio_buffer.append`` (``delta``: base64 audio), ``.complete``, ``.clear``.
Server events: ``speaker_identify.created`` / ``.updated``,
``input_audio_buffer.speech_started`` / ``.speech_stopped`` (``offset_ms``),
``speaker_identify.segment`` (``start_ms, end_ms, final, feature_score_list,
match``), ``input_audio_buffer.completed`` / ``.cleared``, and ``error``
(``code``, ``msg``: the codes of the HTTP API). Bad input gets an ``error`` and
the stream stays usable; refused connections (authentication 4100, permission
4101, no such group 4200, too many streams 4013) get an ``error`` and are
closed with that code as the close code (1013 for too many streams).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import secrets
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from voiceprint.api.errors import Code, code_of
from voiceprint.api.schemas import FeatureScore
from voiceprint.audio.errors import AudioError
from voiceprint.audio.stream import StreamFormat
from voiceprint.auth.tokens import AuthenticationFailed, Principal, authenticate
from voiceprint.logid import current_logid, new_logid
from voiceprint.service.errors import NotFound, PermissionDenied, ServiceError
from voiceprint.service.streams import (
    IdentifyStream,
    SpeechStarted,
    SpeechStopped,
    StreamConfig,
    StreamEvent,
    TurnAnswer,
)
from voiceprint.store.ids import parse_id

log = logging.getLogger("voiceprint.stream")
router = APIRouter(prefix="/v1/audio/voiceprint_groups")
MAX_FRAME = 1024 * 1024  # bytes of one client message (a base64 second of 48 kHz stereo is 256 KB)


class _Connection:
    def __init__(self, websocket: WebSocket) -> None:
        self.ws = websocket
        self.logid = new_logid()

    async def send(self, event_type: str, data: dict[str, Any] | None = None) -> None:
        message = {
            "id": secrets.token_hex(8),
            "event_type": event_type,
            "data": data or {},
            "detail": {"logid": self.logid},
        }
        await self.ws.send_text(json.dumps(message, ensure_ascii=False))

    async def error(self, code: int, msg: str) -> None:
        await self.send("error", {"code": int(code), "msg": msg})

    async def refuse(self, code: int, msg: str, close_code: int | None = None) -> None:
        await self.error(code, msg)
        await self.ws.close(code=close_code or int(code), reason=msg[:120])


def _config_data(config: StreamConfig) -> dict[str, Any]:
    audio = config.audio
    return {
        "input_audio": {
            "format": audio.format,
            "codec": audio.codec,
            "sample_rate": audio.sample_rate,
            "channel": audio.channels,
            "bit_depth": 16 if audio.codec == "pcm" else 8,
        },
        "voice_print_config": {"score": config.score, "top_k": config.top_k},
    }


def _parse_config(data: Any, current: StreamConfig) -> StreamConfig:
    if not isinstance(data, dict):
        raise ValueError("'data' must be an object")
    audio = data.get("input_audio") or {}
    voice = data.get("voice_print_config") or {}
    if not isinstance(audio, dict) or not isinstance(voice, dict):
        raise ValueError("'input_audio' and 'voice_print_config' must be objects")
    old = current.audio
    bit_depth = audio.get("bit_depth")
    if bit_depth not in (None, 8, 16):
        raise ValueError(f"bit_depth {bit_depth!r} is not supported; pcm is 16-bit, G.711 8-bit")
    fmt = StreamFormat(
        format=str(audio.get("format", old.format)),
        codec=str(audio.get("codec", old.codec)),
        sample_rate=int(audio.get("sample_rate", old.sample_rate)),
        channels=int(audio.get("channel", old.channels)),
    )
    return StreamConfig(
        fmt,
        top_k=int(voice.get("top_k", current.top_k)),
        score=float(voice.get("score", current.score)),
    )


def _event(event: StreamEvent, threshold: float) -> tuple[str, dict[str, Any]]:
    if isinstance(event, SpeechStarted):
        return "input_audio_buffer.speech_started", {"offset_ms": event.offset_ms}
    if isinstance(event, SpeechStopped):
        return "input_audio_buffer.speech_stopped", {"offset_ms": event.offset_ms}
    assert isinstance(event, TurnAnswer)
    scores = [FeatureScore.of(m, threshold).model_dump() for m in event.matches]
    return "speaker_identify.segment", {
        "start_ms": event.start_ms,
        "end_ms": event.end_ms,
        "final": event.final,
        "feature_score_list": scores,
        "match": event.match,
    }


@router.websocket("/{group_id}/speaker_identify/stream")
async def identify_stream(websocket: WebSocket, group_id: str) -> None:
    app = websocket.app
    conn = _Connection(websocket)
    current_logid.set(conn.logid)
    await websocket.accept()
    if app.state.live_streams >= app.state.settings.max_streams:
        await conn.refuse(
            Code.RATE_LIMITED,
            f"the server holds its maximum of {app.state.settings.max_streams} live streams; "
            "retry shortly",
            close_code=1013,
        )
        return
    app.state.live_streams += 1
    opened = None
    try:
        opened = await _open(conn, group_id)
        if opened is not None:
            stream = opened[2]
            await conn.send("speaker_identify.created", _config_data(stream.config))
            await _serve(conn, stream)
    except WebSocketDisconnect:
        pass
    finally:
        app.state.live_streams -= 1
        if opened is not None:
            await run_in_threadpool(app.state.service.close_stream, *opened[:2])


async def _open(conn: _Connection, group_id: str) -> tuple[Principal, int, IdentifyStream] | None:
    app = conn.ws.app
    header = conn.ws.headers.get("authorization") or conn.ws.query_params.get("authorization")
    gid = parse_id(group_id)
    try:
        with app.state.sessions() as session:
            caller = await run_in_threadpool(authenticate, session, header)
        if gid is None:
            raise NotFound(f"'{group_id}' is not a voiceprint group id")
        stream = await run_in_threadpool(app.state.service.open_stream, caller, gid)
        return caller, gid, stream
    except (AuthenticationFailed, PermissionDenied, NotFound) as exc:
        await conn.refuse(code_of(exc), str(exc))
        return None


async def _serve(conn: _Connection, stream: IdentifyStream) -> None:
    idle = conn.ws.app.state.settings.stream_idle_timeout_s
    while True:
        try:
            text = await asyncio.wait_for(conn.ws.receive_text(), idle)
        except asyncio.TimeoutError:
            await conn.refuse(
                Code.INVALID_PARAMETER, f"no message for {idle:g} s; stream closed", 1000
            )
            return
        except KeyError:  # a binary frame: starlette's receive_text finds no "text"
            await conn.error(Code.INVALID_PARAMETER, "send JSON text messages, not binary frames")
            continue
        if len(text) > MAX_FRAME:
            await conn.error(
                Code.AUDIO_TOO_LARGE,
                f"a message of {len(text)} bytes is over the {MAX_FRAME} byte limit; "
                "send audio in smaller pieces",
            )
            continue
        await _handle(conn, stream, text)


async def _handle(conn: _Connection, stream: IdentifyStream, text: str) -> None:
    try:
        message = json.loads(text)
        if not isinstance(message, dict) or not isinstance(message.get("event_type"), str):
            raise ValueError("a message is a JSON object with an 'event_type'")
        kind, data = message["event_type"], message.get("data") or {}
        if kind == "speaker_identify.update":
            await run_in_threadpool(stream.update, _parse_config(data, stream.config))
            await conn.send("speaker_identify.updated", _config_data(stream.config))
        elif kind == "input_audio_buffer.append":
            delta = data.get("delta") if isinstance(data, dict) else None
            if not isinstance(delta, str):
                raise ValueError("'data.delta' must be base64 audio")
            audio = base64.b64decode(delta, validate=True)
            for event in await run_in_threadpool(stream.append, audio):
                await conn.send(*_event(event, stream.config.score))
        elif kind == "input_audio_buffer.complete":
            for event in await run_in_threadpool(stream.complete):
                await conn.send(*_event(event, stream.config.score))
            await conn.send("input_audio_buffer.completed")
        elif kind == "input_audio_buffer.clear":
            stream.clear()
            await conn.send("input_audio_buffer.cleared")
        else:
            raise ValueError(
                f"unknown event_type {kind!r}; send speaker_identify.update or "
                "input_audio_buffer.append / .complete / .clear"
            )
    except (AudioError, ServiceError) as exc:  # before ValueError: AudioError is one
        await conn.error(code_of(exc), str(exc))
    except (ValueError, binascii.Error, TypeError) as exc:
        message = (
            "the message is not valid JSON" if isinstance(exc, json.JSONDecodeError) else str(exc)
        )
        await conn.error(Code.INVALID_PARAMETER, message or "invalid message")
