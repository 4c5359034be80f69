"""Scores on real speech: calibrated meaning, normalisation, several samples."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import read_speech, speech_files
from voiceprint.audio.decode import Audio
from voiceprint.embedding.provision import ModelPaths
from voiceprint.engine import SpeechPolicy, VoiceEngine
from voiceprint.scoring.scorer import MATCH_THRESHOLD, Calibration, Scorer, combine


@pytest.fixture(scope="module")
def scorer(model_paths: ModelPaths) -> Scorer:
    return Scorer(np.load(model_paths.cohort), Calibration.load())


@pytest.fixture(scope="module")
def voices(engine: VoiceEngine) -> dict[str, list[np.ndarray]]:
    """Embeddings of four LibriSpeech speakers, four recordings each."""
    result = {}
    for speaker in ("1688", "2033", "3080", "533"):
        result[speaker] = [
            engine.analyse(
                Audio(read_speech(p)[0], "flac", 16000, 1), SpeechPolicy("test", 0.5)
            ).embedding
            for p in speech_files("librispeech", speaker)[:4]
        ]
    return result


def test_packaged_calibration_is_fitted_and_documented() -> None:
    calibration = Calibration.load()
    assert calibration.method == "asnorm" and calibration.slope > 0
    assert len(calibration.domain_mean) == 192
    assert "speechocean762" in calibration.fitted_on
    assert len(calibration.speakers) == 20


def test_same_speaker_scores_above_50_and_strangers_below(
    scorer: Scorer, voices: dict[str, list[np.ndarray]]
) -> None:
    speakers = list(voices)
    enrolled = np.stack([voices[s][0] for s in speakers])
    for index, speaker in enumerate(speakers):
        for probe in voices[speaker][1:]:
            scores = scorer.scores(probe, enrolled)
            assert scores.argmax() == index
            assert scores[index] >= MATCH_THRESHOLD
            assert np.all(np.delete(scores, index) < MATCH_THRESHOLD)
            assert np.all((scores >= 0) & (scores <= 100))


def test_scores_follow_the_calibration_curve(scorer: Scorer) -> None:
    c = scorer.calibration
    assert c.to_score(np.array(c.threshold)) == pytest.approx(50.0)
    assert c.to_score(np.array(c.threshold + 1)) > 50 > c.to_score(np.array(c.threshold - 1))


def test_several_samples_make_a_steadier_voiceprint(
    scorer: Scorer, voices: dict[str, list[np.ndarray]]
) -> None:
    one = scorer.raw_matrix(np.stack(voices["1688"][2:]), voices["1688"][0])
    both = scorer.raw_matrix(np.stack(voices["1688"][2:]), combine(np.stack(voices["1688"][:2])))
    assert both.mean() > one.mean()
