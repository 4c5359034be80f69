"""Scores on real speech: calibrated meaning, conditions, several samples."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import models_of, read_speech, speech_files, wav_bytes
from voiceprint.audio.decode import Audio, decode_audio
from voiceprint.embedding.models import MODELS
from voiceprint.engine import SpeechPolicy, VoiceEngine
from voiceprint.eval.conditions import telephone
from voiceprint.scoring.scorer import (
    MATCH_THRESHOLD,
    Calibration,
    Curve,
    Gallery,
    Scorer,
    Voices,
    combine,
    mutual_alike,
)
from voiceprint.service.factory import Models

SPEAKERS = ("1688", "2033", "3080", "533")
PROBE = SpeechPolicy("test", 0.5)


def _voices(engine: VoiceEngine, narrowband: bool = False) -> dict[str, list[Voices]]:
    """Four LibriSpeech speakers, four recordings each, as recorded or through a phone line."""
    result = {}
    for speaker in SPEAKERS:
        result[speaker] = []
        for path in speech_files("librispeech", speaker)[:4]:
            wave = read_speech(path)[0]
            wave = telephone(wave) if narrowband else wave
            sample = engine.analyse(Audio(wave, "flac", 16000, 1), PROBE)
            assert sample.narrowband is narrowband
            result[speaker].append(Voices.of(sample.embedding, sample.narrowband))
    return result


@pytest.fixture(scope="module")
def wide(models: Models) -> dict[str, list[Voices]]:
    return _voices(models.voice)


@pytest.fixture(scope="module")
def narrow(models: Models) -> dict[str, list[Voices]]:
    return _voices(models.voice, narrowband=True)


@pytest.mark.parametrize("name", list(MODELS))
def test_packaged_calibrations_are_fitted_and_documented(name: str) -> None:
    calibration = models_of(name).scorer.calibration
    assert calibration.slope > 0 and calibration.fitted_on
    assert len(calibration.speakers) >= 20  # evaluations leave these out


def test_the_default_model_has_its_own_curves_for_telephone_speech(models: Models) -> None:
    c = models.scorer.calibration
    assert c.narrowband is not None and c.mixed is not None
    # Narrow-band strangers sound alike (a higher bar); narrow against wide scores low.
    assert c.mixed.threshold < c.threshold < c.narrowband.threshold


@pytest.mark.parametrize("condition", ["wide", "narrow", "mixed"])
def test_same_speaker_scores_above_50_and_strangers_below(
    models: Models, wide: dict[str, list[Voices]], narrow: dict[str, list[Voices]], condition: str
) -> None:
    enrolled_from = narrow if condition == "narrow" else wide
    probes_from = wide if condition == "wide" else narrow
    # Two recordings each, as the README advises; the other two are the probes.
    enrolled = Voices.concat([Voices.concat(enrolled_from[s][:2]).combined() for s in SPEAKERS])
    for index, speaker in enumerate(SPEAKERS):
        for probe in probes_from[speaker][2:]:
            scores = models.scorer.scores(probe, enrolled)
            assert scores.argmax() == index
            assert scores[index] >= MATCH_THRESHOLD
            assert np.all(np.delete(scores, index) < MATCH_THRESHOLD)
            assert np.all((scores >= 0) & (scores <= 100))


def test_scores_follow_each_conditions_curve() -> None:
    c = Calibration(
        threshold=0.5, slope=30, method="cosine", narrowband=Curve(0.7, 25), mixed=Curve(0.45, 25)
    )
    raw = np.array([0.5, 0.7, 0.45])
    assert c.to_score(raw, np.array([0, 2, 1])) == pytest.approx([50.0, 50.0, 50.0])
    assert c.to_score(np.array(0.6), 0) > 50 > c.to_score(np.array(0.6), 2)
    plain = Calibration(threshold=0.5, slope=30, method="cosine")  # one curve for all
    assert plain.to_score(np.array(0.5), 2) == pytest.approx(50.0)


def test_only_wideband_recordings_are_centred_where_narrowband_has_curves_of_its_own(
    models: Models, wide: dict[str, list[Voices]], narrow: dict[str, list[Voices]]
) -> None:
    packaged = models.scorer.calibration
    assert packaged.domain_mean and packaged.centre_narrowband is False
    mean = np.asarray(packaged.domain_mean, np.float32)
    for voices in (wide["1688"][0], narrow["1688"][0]):
        prepared = models.scorer.gallery(voices).vectors[0]
        unit = voices.vectors[0] / np.linalg.norm(voices.vectors[0])
        expected = unit if voices.narrowband[0] else (unit - mean) / np.linalg.norm(unit - mean)
        assert prepared == pytest.approx(expected, abs=1e-5)
    # A calibration without such curves (ECAPA's) centres every recording.
    every = Scorer(None, Calibration(0.5, 30, method="cosine", domain_mean=packaged.domain_mean))
    narrow_unit = narrow["1688"][0].vectors[0] / np.linalg.norm(narrow["1688"][0].vectors[0])
    assert not np.allclose(every.gallery(narrow["1688"][0]).vectors[0], narrow_unit, atol=1e-3)


def test_several_samples_make_a_steadier_voiceprint(
    models: Models, wide: dict[str, list[Voices]]
) -> None:
    vectors = [v.vectors[0] for v in wide["1688"]]
    one = models.scorer.raw_matrix(np.stack(vectors[2:]), vectors[0])
    both = models.scorer.raw_matrix(np.stack(vectors[2:]), combine(np.stack(vectors[:2])))
    assert both.mean() > one.mean()


@pytest.mark.parametrize("method", ["asnorm", "shift"])
def test_a_cohort_normalisation_needs_a_cohort(method: str) -> None:
    with pytest.raises(ValueError, match="cohort"):
        Scorer(None, Calibration(threshold=0.0, slope=1.0, method=method))


def test_the_shift_lowers_wideband_pairs_by_their_cohort_level_only(
    wide: dict[str, list[Voices]], narrow: dict[str, list[Voices]]
) -> None:
    # The cohort: two of the speakers' other recordings; the probes: the rest.
    cohort = np.concatenate([wide[s][3].vectors for s in SPEAKERS[2:]])
    shift = Scorer(
        cohort, Calibration(threshold=0.0, slope=1.0, method="shift", top_k=1, shift=0.5)
    )
    plain = Scorer(None, Calibration(threshold=0.0, slope=1.0, method="cosine"))
    for side in (wide, narrow):
        probes = Voices.concat([side[s][0] for s in SPEAKERS[:2]])
        enrolled = Voices.concat([side[s][1] for s in SPEAKERS[:2]])
        p, e = shift.gallery(probes), shift.gallery(enrolled)
        cosine = plain.raw_between(plain.gallery(probes), plain.gallery(enrolled))
        shifted = shift.raw_between(p, e)
        if side is narrow:  # over a line the cohort measures the line: left alone
            np.testing.assert_allclose(shifted, cosine, atol=1e-6)
            continue
        # Each side's level: its closest cohort voice (top_k 1), and it is a real one.
        level = 0.5 * (p.cohort_mean[:, None] + e.cohort_mean[None, :])
        assert (level > 0.1).all()
        np.testing.assert_allclose(shifted, cosine - 0.5 * level, atol=1e-6)


def test_the_bar_rises_with_the_voiceprints_a_decision_is_among(models: Models) -> None:
    c = models.scorer.calibration
    curves = [c.wideband, c.narrowband, c.mixed, c.telephone]
    assert all(curve is not None and curve.per_decade > 0 for curve in curves)
    raw = np.array(c.threshold)
    assert c.to_score(raw, 0, 1) == pytest.approx(50.0)
    assert c.to_score(raw, 0, 1) > c.to_score(raw, 0, 10) > c.to_score(raw, 0, 1000)
    assert c.wideband.bar(1000) == pytest.approx(c.threshold + 3 * c.per_decade)


def _held_out_callers(models: Models) -> dict[str, list[Voices]]:
    """Real phone callers the calibration was not fitted on: their recordings, embedded."""
    fitted = set(models.scorer.calibration.speakers)
    callers: dict[str, list[Voices]] = {}
    for path in speech_files("telephone"):
        caller = path.parent.name
        if f"telephone/{caller}" in fitted:
            continue
        samples, rate = read_speech(path)
        audio = decode_audio(wav_bytes(samples, rate))
        sample = models.voice.analyse(audio, PROBE)
        callers.setdefault(caller, []).append(Voices.of(sample.embedding, sample.narrowband))
    return callers


@pytest.fixture(scope="module")
def callers(models: Models) -> dict[str, list[Voices]]:
    return _held_out_callers(models)


def test_real_calls_are_told_from_speech_only_resampled(
    models: Models, callers: dict[str, list[Voices]], narrow: dict[str, list[Voices]]
) -> None:
    c = models.scorer.calibration
    calls = Voices.concat([v for voices in callers.values() for v in voices])
    resampled = Voices.concat([v for voices in narrow.values() for v in voices])
    assert len(callers) >= 15 and calls.narrowband.all() and resampled.narrowband.all()
    assert c.over_a_line(calls.vectors).mean() >= 0.9
    assert not c.over_a_line(resampled.vectors).any()


def test_strangers_on_a_real_line_stay_below_50(
    models: Models, callers: dict[str, list[Voices]]
) -> None:
    """Held-out callers: a group of 10 enrolled from one call each, everyone else a stranger.
    With the resampled-speech curve alone most strangers reached 50 (issue 20: 73 %)."""
    names = sorted(callers)
    members, outsiders = names[:10], names[10:]
    enrolled = Voices.concat([callers[m][0] for m in members])
    strangers = Voices.concat([v for o in outsiders for v in callers[o]])
    best = models.scorer.score_matrix(strangers, enrolled).max(axis=1)
    assert len(best) >= 20 and (best >= MATCH_THRESHOLD).sum() <= 1
    # Scored on the curve of speech only resampled, the same strangers pass.
    c = models.scorer.calibration
    raw = models.scorer.raw_matrix(strangers.vectors, enrolled.vectors)
    assert (c.to_score(raw, 2, len(members)).max(axis=1) >= MATCH_THRESHOLD).mean() > 0.2
    probes = [(i, v) for i, m in enumerate(members) for v in callers[m][1:]]
    found = [models.scorer.scores(v, enrolled).argmax() == i for i, v in probes]
    assert np.mean(found) >= 0.9


def test_a_gallery_built_in_parts_scores_exactly_as_one_built_at_once(
    models: Models, wide: dict[str, list[Voices]], narrow: dict[str, list[Voices]]
) -> None:
    """What the embedding index relies on: rows prepared apart (a group read in batches, a
    voiceprint added later) give bit-identical scores, for every calibration condition."""
    scorer = models.scorer
    enrolled = Voices.concat([v for voices in (wide, narrow) for s in SPEAKERS for v in voices[s]])
    probes = Voices.concat([wide["1688"][0], narrow["2033"][1]])
    whole = scorer.score_matrix(probes, enrolled)
    parts = Gallery.concat(
        [scorer.gallery(enrolled.take(np.arange(a, b))) for a, b in ((0, 1), (1, 13), (13, 32))]
    )
    # Voices are scored as one group (``grouped``); a gallery as it is given.
    assert np.array_equal(scorer.score_matrix(probes, scorer.grouped(parts)), whole)
    middle = np.arange(5, 20)
    assert np.array_equal(
        scorer.score_matrix(probes, scorer.grouped(parts.take(middle))),
        scorer.score_matrix(probes, enrolled.take(middle)),
    )
    assert (
        len({int(c) for c in scorer.calibration.conditions(scorer.gallery(probes), parts).flat})
        >= 3
    )


def test_combining_many_voiceprints_at_once_equals_combining_each(
    wide: dict[str, list[Voices]], narrow: dict[str, list[Voices]]
) -> None:
    """A large group's read combines its samples by run length; the voiceprints are the
    ones combining each gives, bit for bit, narrow-band flags included."""
    samples = [v for s in SPEAKERS for v in wide[s][:3] + narrow[s][:2]]
    counts = np.array([1, 3, 2, 4, 1, 2, 3, 4])
    voices = Voices.concat(samples)
    runs = voices.combined_runs(counts)
    starts = np.cumsum(counts) - counts
    each = Voices.concat(
        [voices.take(np.arange(a, a + k)).combined() for a, k in zip(starts, counts, strict=True)]
    )
    assert np.array_equal(runs.vectors, each.vectors)
    assert np.array_equal(runs.narrowband, each.narrowband) and 0 < runs.narrowband.sum() < 8


def test_a_group_of_speech_only_resampled_is_not_taken_for_a_shared_line(
    models: Models,
) -> None:
    """The group check's other side: ten LibriSpeech readers through 8 kHz (one recording
    each, narrow-band, no line) sound far less alike than callers on one line do."""
    readers = sorted({path.parent.name for path in speech_files("librispeech")})
    voices = []
    for reader in readers[:10]:
        wave = telephone(read_speech(speech_files("librispeech", reader)[0])[0])
        sample = models.voice.analyse(Audio(wave, "flac", 16000, 1), PROBE)
        voices.append(Voices.of(sample.embedding, sample.narrowband))
    scorer = models.scorer
    gallery = scorer.gallery(Voices.concat(voices))
    assert gallery.narrowband.all() and not gallery.line.any()
    assert mutual_alike(gallery.vectors) < scorer.calibration.shared_line - 0.1
    assert not scorer.grouped(gallery).line.any()
