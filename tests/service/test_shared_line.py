"""A phone line the calibration's line direction does not know is told by the group itself.

The direction was fitted on the lines of ``telephone``; a deployment's callers may come
over another. The held-out real callers stand in for such a line here: the server runs a
calibration without the direction, so only the group's own voices can tell the line.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import read_speech, speech_files, wav_bytes
from tests.service import caller
from voiceprint.config import Settings
from voiceprint.scoring.scorer import Scorer
from voiceprint.service.factory import Models, Runtime, build_runtime
from voiceprint.service.recordings import AudioUpload

MEMBERS = 10


def _held_out_calls(models: Models) -> dict[str, list[AudioUpload]]:
    """Each held-out caller's calls, the first 8 s of each (a question's answer)."""
    fitted = set(models.scorer.calibration.speakers)
    calls: dict[str, list[AudioUpload]] = {}
    for path in speech_files("telephone"):
        if f"telephone/{path.parent.name}" not in fitted:
            wave, rate = read_speech(path)
            calls.setdefault(path.parent.name, []).append(
                AudioUpload(wav_bytes(wave[: 8 * rate], rate))
            )
    return dict(sorted(calls.items()))


def _runtime(path: Path, models: Models, shared_line: bool) -> Runtime:
    """A server whose calibration knows no line by its direction, with or without the
    group's check."""
    packaged = models.scorer.calibration
    calibration = replace(
        packaged, line_direction=(), shared_line=packaged.shared_line if shared_line else 0.0
    )
    unknown_line = Models(models.paths, models.voice, Scorer(None, calibration))
    return build_runtime(Settings(data_dir=path, max_features_per_group=20), unknown_line)


@pytest.fixture
def runtimes(tmp_path: Path, models: Models) -> Iterator[tuple[Runtime, Runtime]]:
    with_check = _runtime(tmp_path / "check", models, shared_line=True)
    without = _runtime(tmp_path / "none", models, shared_line=False)
    yield with_check, without
    for runtime in (with_check, without):
        runtime.database.dispose()


def test_a_group_on_a_line_the_direction_does_not_know_keeps_strangers_out(
    runtimes: tuple[Runtime, Runtime], models: Models
) -> None:
    assert models.scorer.calibration.shared_line > 0  # the packaged calibration has it
    calls = _held_out_calls(models)
    names = list(calls)
    members, outsiders = names[:MEMBERS], names[MEMBERS:]
    strangers = [call for name in outsiders for call in calls[name]]
    assert len(strangers) >= 20
    passed = []  # (strangers identified, strangers verified) per runtime
    for runtime in runtimes:
        service = runtime.service
        alice = caller(runtime)
        group = service.create_group(alice, "callers", "")
        ids = [
            service.create_feature(alice, group, name, "", [calls[name][0]]).feature_id
            for name in members
        ]
        answers = [service.identify(alice, group, call, top_k=1) for call in strangers]
        verified = [service.verify(alice, group, ids[0], call) for call in strangers]
        passed.append(
            (
                sum(a.matches[0].is_match for a in answers),
                sum(v.matches[0].is_match for v in verified),
            )
        )
        if runtime is runtimes[0]:  # with the check, the members are still found
            found = [
                service.identify(alice, group, call, top_k=1).matches[0].feature_id == ids[i]
                for i, name in enumerate(members)
                for call in calls[name][1:]
            ]
            assert np.mean(found) >= 0.9
    with_check, without = passed
    # The group's voices tell the line: at most one stranger passes identify or verify.
    assert with_check[0] <= 1 and with_check[1] <= 1
    # Without the check, the resampled-speech curve lets the line's strangers through
    # (4 of 26 of these 8 s calls; 45 % of whole calls, bench/decision_frontier.py).
    assert without[0] >= 0.1 * len(strangers)
    assert without[1] > with_check[1]
