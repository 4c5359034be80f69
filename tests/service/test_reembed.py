"""Quality reports an earlier analysis measured are measured again at start, from the
stored audio, and nothing is embedded again: a call stored at 16 kHz in 16 bits, enrolled
before the band test took the rounding noise off, becomes narrow-band."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sqlalchemy import select

from tests.conftest import call_in_16_bits
from tests.service import caller
from voiceprint.config import Settings
from voiceprint.engine import QUALITY_REVISION
from voiceprint.service.factory import Models, build_runtime
from voiceprint.service.recordings import AudioUpload
from voiceprint.service.reembed import stale_samples
from voiceprint.service.views import Page
from voiceprint.store.models import Sample


def test_an_earlier_quality_report_is_measured_again_at_start(
    tmp_path: Path, models: Models
) -> None:
    settings = Settings(data_dir=tmp_path)
    runtime = build_runtime(settings, models)
    alice = caller(runtime, "alice", "calls")
    group = runtime.service.create_group(alice, "callers", "")
    runtime.service.create_feature(alice, group, "c", "", [AudioUpload(call_in_16_bits())])
    # What the analysis before revision 2 stored for this recording.
    with runtime.sessions() as session, session.begin():
        sample = session.scalars(select(Sample)).one()
        assert sample.quality["narrowband"] and sample.quality_revision == QUALITY_REVISION
        assert sample.key_generation is None  # stored in clear: its bytes can be written
        level = sample.quality["level_dbfs"]
        sample.quality = {**sample.quality, "narrowband": False}
        sample.quality_revision = 1
        # A marker in place of the embedding: embedding the recording again would replace it.
        marker = (-np.frombuffer(sample.embedding, "<f4")).tobytes()
        sample.embedding = marker
    runtime.database.dispose()

    restarted = build_runtime(settings, models)
    with restarted.sessions() as session:
        sample = session.scalars(select(Sample)).one()
        assert sample.quality_revision == QUALITY_REVISION
        assert sample.quality["narrowband"] is True and sample.quality["level_dbfs"] == level
        assert sample.embedding == marker  # the same model's: not embedded again
    (feature,), _ = restarted.service.list_features(alice, group, Page(1, 10))
    assert feature.samples[0].quality["narrowband"] is True
    restarted.database.dispose()

    again = build_runtime(settings, models)  # nothing left to do
    with again.sessions() as session:
        sample = session.scalars(select(Sample)).one()
        assert sample.quality_revision == QUALITY_REVISION and sample.embedding == marker
    assert stale_samples(again.sessions, models.voice.model_id) == []
    again.database.dispose()
