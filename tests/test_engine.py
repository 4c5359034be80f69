"""Speech-aware input: what an enrolment or a probe must contain, cut and mixed from real speech."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import call_in_16_bits, read_speech, speech_files, wav_bytes
from voiceprint.audio.decode import Audio, decode_audio
from voiceprint.audio.errors import NotEnoughSpeech, PoorQuality
from voiceprint.audio.quality import rounding_power
from voiceprint.embedding.provision import ModelPaths
from voiceprint.engine import SpeechPolicy, VoiceEngine

RATE = 16_000
ENROLMENT = SpeechPolicy("enrolment", min_speech_s=1.0, check_enrolment=True)
PROBE = SpeechPolicy("identification", min_speech_s=0.5)


def _speech(speaker: str, index: int = 0) -> np.ndarray:
    return read_speech(speech_files("librispeech", speaker)[index])[0]


def _long_speech(speaker: str) -> np.ndarray:
    """12 s of one speaker: recordings joined end to end."""
    return np.concatenate([_speech(speaker, i) for i in range(3)])[: 12 * RATE]


def _audio(wave: np.ndarray) -> Audio:
    return Audio(wave.astype(np.float32), "wav", RATE, 1)


def _enrol(engine: VoiceEngine, wave: np.ndarray):  # type: ignore[no-untyped-def]
    return engine.analyse(_audio(wave), ENROLMENT)


def test_clean_single_speaker_enrols_with_a_quality_report(engine: VoiceEngine) -> None:
    sample = _enrol(engine, _speech("1688"))
    q = sample.quality
    assert 8 < q["speech_s"] < q["duration_s"] == pytest.approx(15.0, abs=0.01)
    assert q["snr_db"] > 15 and q["clipping_ratio"] == 0.0
    assert -30 < q["level_dbfs"] < -10
    assert q["voice_consistency"] > 0.5
    assert sample.embedding.shape == (192,)


def test_too_little_speech_says_how_much(engine: VoiceEngine) -> None:
    speech = _speech("2414")
    wave = np.concatenate(
        [np.zeros(RATE), speech[int(0.5 * RATE) : int(1.1 * RATE)], np.zeros(RATE)]
    )
    with pytest.raises(NotEnoughSpeech, match=r"0\.\d s of speech found, 1\.0 s needed") as exc:
        _enrol(engine, wave)
    assert exc.value.speech_s < 1.0


def test_silence_and_noise_only_are_not_speech(engine: VoiceEngine) -> None:
    with pytest.raises(NotEnoughSpeech, match=r"0\.0 s of speech"):
        _enrol(engine, np.zeros(3 * RATE))
    noise = np.random.default_rng(1).standard_normal(3 * RATE) * 0.1
    with pytest.raises(NotEnoughSpeech):
        _enrol(engine, noise)


@pytest.mark.parametrize(("first", "second"), [("1998", "2414"), ("3005", "3080")])
def test_two_voices_in_one_enrolment_are_refused(
    engine: VoiceEngine, first: str, second: str
) -> None:
    for speaker in (first, second):
        assert _enrol(engine, _long_speech(speaker)).quality["voice_consistency"] > 0.5
    joined = np.concatenate([_long_speech(first)[: 6 * RATE], _long_speech(second)[: 6 * RATE]])
    with pytest.raises(PoorQuality, match="more than one voice"):
        _enrol(engine, joined)


def test_clipped_and_noisy_recordings_are_refused(engine: VoiceEngine) -> None:
    speech = _speech("1688")[: 8 * RATE]
    with pytest.raises(PoorQuality, match="clipped"):
        _enrol(engine, np.clip(speech * 30, -1, 1))
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(len(speech)) * np.sqrt(np.mean(speech**2))  # 0 dB SNR
    with pytest.raises(PoorQuality, match="background noise"):
        _enrol(engine, speech + noise)


def test_probes_need_less_speech_and_skip_enrolment_checks(engine: VoiceEngine) -> None:
    speech = _speech("2414")[: int(1.2 * RATE)]
    probe = engine.analyse(_audio(speech), PROBE)
    assert probe.quality["voice_consistency"] is None
    assert 0.5 <= probe.speech_s <= 1.2


def test_long_recordings_are_embedded_from_the_first_speech_for_30_s(engine: VoiceEngine) -> None:
    speech = np.concatenate([_speech("1688", i) for i in range(8)])
    assert len(speech) > 45 * RATE  # longer than the 30 s that are embedded
    lead = np.zeros(5 * RATE, dtype=np.float32)
    sample = engine.analyse(_audio(np.concatenate([lead, speech])), SpeechPolicy("t", 1.0))
    first = engine.detector.segments(speech)[0].start
    expected = engine.encoder.embed(speech[first : first + 30 * RATE])
    cosine = (
        sample.embedding @ expected / np.linalg.norm(sample.embedding) / np.linalg.norm(expected)
    )
    assert cosine > 0.999
    assert sample.quality["duration_s"] > 50  # the report still covers the whole recording


def test_spinning_threads_change_no_embedding(engine: VoiceEngine, model_paths: ModelPaths) -> None:
    """VOICEPRINT_INFERENCE_SPINNING only changes how ONNX Runtime's idle threads wait:
    the same threads split the same work, so embeddings are equal bit for bit."""
    spinning = VoiceEngine.from_paths(model_paths, threads=2, spinning=True)
    wave = _speech("2033")
    assert np.array_equal(spinning.encoder.embed(wave), engine.encoder.embed(wave))


def test_a_call_stored_at_16_khz_in_16_bits_is_still_narrowband(engine: VoiceEngine) -> None:
    stored = decode_audio(call_in_16_bits())
    assert stored.source_bits == 16
    assert engine.analyse(stored, PROBE).quality["narrowband"]
    # Taken for speech, the rounding noise alone made the call wide-band.
    as_floats = Audio(stored.samples, "wav", RATE, 1)
    assert not engine.analyse(as_floats, PROBE).quality["narrowband"]


def test_wideband_speech_in_16_bits_stays_wideband(engine: VoiceEngine) -> None:
    stored = decode_audio(wav_bytes(_speech("1688") * 0.1, RATE))  # 20 dB quieter
    assert stored.source_bits == 16
    assert not engine.analyse(stored, PROBE).quality["narrowband"]


def test_rounding_noise_is_what_lands_in_the_16_khz_band() -> None:
    step = 2.0**-15
    assert rounding_power(16, 16000) == pytest.approx(3 * step**2 / 12)
    # At 48 kHz the noise spreads to 24 kHz: a third of it lies below 8 kHz.
    assert rounding_power(16, 48000) == pytest.approx(step**2 / 12)
    assert rounding_power(24, 16000) == pytest.approx(3 * 2.0**-46 / 12)
    assert rounding_power(None, 16000) == 0.0
