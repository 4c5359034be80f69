"""All settings, read once from ``VOICEPRINT_*`` environment variables.

Every setting has a default, so ``voiceprint serve`` needs none. The table in
``docs/configuration.md`` lists them; this class is the source of truth.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from platformdirs import user_cache_dir, user_data_dir
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VOICEPRINT_", extra="ignore")

    data_dir: Path = Field(
        default_factory=lambda: Path(user_data_dir("voiceprint")),
        description="Where the SQLite database and the stored original audio live.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db. "
        "Default: SQLite file voiceprint.db inside data_dir.",
    )
    blob_store: Literal["files", "database"] = Field(
        default="files",
        description="Where recordings are stored: files under data_dir/audio, or database "
        "(in the database itself, e.g. PostgreSQL bytea), so that servers on several machines "
        "share nothing but the database.",
    )
    model_dir: Path = Field(
        default_factory=lambda: Path(user_cache_dir("voiceprint")) / "models",
        description="Cache of the converted ONNX models (fetched on first use).",
    )
    model: Literal["campplus-zh-en", "ecapa-voxceleb"] = Field(
        default="campplus-zh-en",
        description="Speaker model: campplus-zh-en (3D-Speaker CAM++, Chinese and English) "
        "or ecapa-voxceleb (SpeechBrain ECAPA-TDNN). After a change, run `voiceprint reembed`.",
    )
    reembed_on_start: bool = Field(
        default=True,
        description="At start, re-embed voiceprints another model made (from their stored "
        "audio), and measure again quality reports an earlier analysis measured. Off: "
        "voiceprints of another model answer 4307 until `voiceprint reembed` runs.",
    )
    host: str = Field(default="127.0.0.1", description="Address `voiceprint serve` binds to.")
    port: int = Field(default=8000, description="Port `voiceprint serve` listens on.")
    public_url: str | None = Field(
        default=None,
        description="Base URL clients reach the server at, used in audio_url. "
        "Default: taken from each request.",
    )

    max_upload_bytes: int = Field(
        default=4 * 1024 * 1024,
        description="Audio per request (all files together), refused while it arrives.",
    )
    max_audio_seconds: float = Field(default=180.0, description="Longest audio accepted.")
    max_diarize_bytes: int = Field(
        default=100 * 1024 * 1024, description="Largest recording `speaker_diarize` accepts."
    )
    max_diarize_seconds: float = Field(
        default=1800.0, description="Longest recording `speaker_diarize` accepts (30 min)."
    )
    min_enroll_speech_s: float = Field(
        default=1.0, description="Least speech (seconds, after VAD) in an enrolment recording."
    )
    min_probe_speech_s: float = Field(
        default=0.5, description="Least speech (seconds, after VAD) to identify or verify."
    )
    max_features_per_group: int = Field(default=10, description="Voiceprints per group.")
    max_groups_per_workspace: int = Field(default=1000, description="Groups per workspace.")
    max_groups_per_identify: int = Field(
        default=100, description="Groups one identify across groups may search (beyond Coze)."
    )
    max_samples_per_feature: int = Field(
        default=10, description="Recordings per voiceprint (each is stored and embedded)."
    )

    index_max_mb: int = Field(
        default=1024,
        description="Memory for the embedding index (each group's voiceprints held ready "
        "for scoring, about 0.8 MB per 1000 voiceprints); least recently used groups are "
        "dropped beyond it. 0: no index, every identify reads its group from the database.",
    )

    inference_threads: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        description="ONNX Runtime threads per inference.",
    )
    inference_spinning: bool = Field(
        default=False,
        description="ONNX Runtime's threads busy-wait between pieces of an inference instead "
        "of sleeping. Off, they leave the cores to the rest of each request (HTTP, database, "
        "decoding); on may shave a little latency on a machine that does nothing else.",
    )
    inference_workers: int = Field(
        default=1, description="Inferences run at once; each uses inference_threads threads."
    )
    inference_queue: int = Field(
        default=32, description="Requests allowed to wait for inference before 429 is answered."
    )
    rate_limit_per_minute: int = Field(
        default=0, description="Requests per minute per token (0: no limit); beyond, 429/4013."
    )
    failed_auth_per_minute: int = Field(
        default=30,
        description="Failed authentications per minute per client address (0: no limit); "
        "beyond, that address gets 429/4013 without a database read.",
    )
    request_body_timeout_s: float = Field(
        default=60.0,
        description="Seconds a request body may take to arrive in full; slower uploads get "
        "408/4000 and free their worker.",
    )
    max_streams: int = Field(
        default=16,
        description="Live identify streams one server holds at once; beyond, a new stream gets "
        "an error event (4013) and is closed (1013, try again later).",
    )
    stream_idle_timeout_s: float = Field(
        default=30.0, description="A live stream with no message for this long is closed."
    )
    metrics_token: str | None = Field(
        default=None,
        description="Bearer token Prometheus sends to /metrics. Unset: /metrics answers only "
        "requests from this machine (127.0.0.1, ::1).",
    )
    log_format: Literal["text", "json"] = Field(
        default="text", description="Log lines as text, or as one JSON object each."
    )
    audio_url_ttl_seconds: int = Field(
        default=3600, description="How long a signed audio_url stays valid."
    )
    encryption_key: SecretStr | None = Field(
        default=None,
        description="Master key (base64 of 32 bytes; `voiceprint keys generate` makes one). "
        "It wraps each workspace's data key, which encrypts stored audio and embeddings "
        "(AES-256-GCM). Unset, with no key file: stored in clear, and a warning at start.",
    )
    encryption_key_file: Path | None = Field(
        default=None, description="A file holding the master key, instead of the variable."
    )
    expire_unused_days: int = Field(
        default=0,
        description="Delete voiceprints (audio, embedding and all) that no identify or verify "
        "has matched for this many days, counted from enrolment if never matched; 0: never.",
    )

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'voiceprint.db'}"

    @property
    def audio_dir(self) -> Path:
        return self.data_dir / "audio"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
