"""DER through pyannote.metrics, on turns whose errors are known by construction."""

from __future__ import annotations

import pytest

from voiceprint.eval.der import rttm_turns, score

S = 16000


def test_each_kind_of_error_is_counted_in_seconds() -> None:
    reference = [(0, 4 * S, "a"), (4 * S, 8 * S, "b"), (6 * S, 7 * S, "c")]  # c overlaps b
    hypothesis = [(0, 3 * S, "x"), (3 * S, 4 * S, "y"), (4 * S, 9 * S, "y")]
    full = score(reference, hypothesis, 10 * S)
    assert full.scored_s == pytest.approx(9.0)
    assert full.missed_s == pytest.approx(1.0)  # c, under b
    assert full.false_alarm_s == pytest.approx(1.0)  # 8-9 s
    assert full.confusion_s == pytest.approx(1.0)  # 3-4 s: a, said to be y (b)
    assert full.der == pytest.approx(3 / 9)
    forgiving = score(reference, hypothesis, 10 * S, collar=0.5, skip_overlap=True)
    assert forgiving.missed_s == 0 and forgiving.der < full.der
    assert (full + full).der == pytest.approx(full.der)


def test_rttm_lines_become_turns() -> None:
    text = (
        "SPEAKER meeting 1 0.500 1.250 <NA> <NA> alice <NA> <NA>\n"
        "SPEAKER meeting 1 1.000 0.500 <NA> <NA> bob <NA> <NA>\n"
    )
    assert rttm_turns(text) == [(8000, 28000, "alice"), (16000, 24000, "bob")]
