"""Uploaded recordings: analysed by the voice engine, kept on disk, removed for good.

Audio files are written before the database transaction that records them and
removed again if it fails; files a transaction replaced or deleted are removed
only after it has committed (``delete``). Either way no row points at a
missing file and no file outlives its row for long (``BlobStore.sweep``
removes what a crash left). Bytes go in and out through the ``Vault``, which
seals them when the installation has an encryption key.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from voiceprint.audio.decode import Audio, decode_audio
from voiceprint.audio.limits import SAMPLE_RATE
from voiceprint.audio.quality import is_narrowband, rounding_power, upper_band_db
from voiceprint.audio.vad import off_threshold
from voiceprint.clock import now
from voiceprint.diarization.diarizer import Diarizer
from voiceprint.engine import QUALITY_REVISION, SpeechPolicy, VoiceEngine, VoiceSample
from voiceprint.metrics import STAGE
from voiceprint.scoring.scorer import Voices
from voiceprint.service.conversations import Conversation, DiarizeOptions
from voiceprint.service.inference import InferenceGate
from voiceprint.service.views import StoredAudio
from voiceprint.store.ids import new_id
from voiceprint.store.models import Sample
from voiceprint.store.vault import Vault


@dataclass(frozen=True)
class AudioUpload:
    """One uploaded recording and how to read it if it is raw PCM."""

    data: bytes
    sample_rate: int = SAMPLE_RATE
    channels: int = 1


class Recordings:
    def __init__(
        self, voice: VoiceEngine, gate: InferenceGate, vault: Vault, max_audio_seconds: float
    ) -> None:
        self._voice = voice
        self._gate = gate
        self.vault = vault
        self._max_audio_seconds = max_audio_seconds

    @property
    def model_id(self) -> str:
        return self._voice.model_id

    @property
    def voice(self) -> VoiceEngine:
        return self._voice

    def analyse(self, uploads: Sequence[AudioUpload], policy: SpeechPolicy) -> list[VoiceSample]:
        """Decode each upload and run it through the voice engine, one inference slot each."""
        results = []
        for upload in uploads:
            audio = _decode(upload, self._max_audio_seconds)
            with self._gate.slot():
                results.append(self._voice.analyse(audio, policy))
        return results

    @contextmanager
    def storing(
        self, uploads: Sequence[AudioUpload], analysed: Sequence[VoiceSample], workspace_id: int
    ) -> Iterator[list[Sample]]:
        """Write the audio files; remove them again if the block that records them fails."""
        created_at = now()
        samples: list[Sample] = []
        try:
            for upload, voice in zip(uploads, analysed, strict=True):
                sample = Sample(
                    id=new_id(),
                    audio_format=voice.source.source_format,
                    source_rate=voice.source.source_rate,
                    source_channels=voice.source.source_channels,
                    model_id=self.model_id,
                    speech_seconds=round(voice.speech_s, 3),
                    quality=voice.quality,
                    quality_revision=QUALITY_REVISION,
                    created_at=created_at,
                )
                self.vault.fill(sample, upload.data, voice.embedding, workspace_id)
                samples.append(sample)
            yield samples
        except BaseException:
            self.delete([s.audio_key for s in samples])
            raise

    def diarize(
        self,
        upload: AudioUpload,
        diarizer: Diarizer,
        options: DiarizeOptions,
        max_seconds: float,
    ) -> Conversation:
        """Decode a long recording and find who spoke when (one inference slot throughout)."""
        audio = _decode(upload, max_seconds)
        with self._gate.slot():
            detector = self._voice.detector
            # Nothing at the usual threshold: before answering "nobody spoke", listen at
            # the level where Silero lets speech already under way go on (distant talkers
            # in a meeting room: one AMI opening held 5.8 s of speech and no segment).
            segments = detector.segments(audio.samples) or detector.segments(
                audio.samples, threshold=off_threshold(detector.threshold)
            )
            rounding = rounding_power(audio.source_bits, audio.source_rate)
            narrowband = is_narrowband(upper_band_db(audio.samples, segments, rounding))
            diarization = diarizer.diarize(
                audio.samples,
                segments,
                num_speakers=options.num_speakers,
                min_speakers=options.min_speakers,
                max_speakers=options.max_speakers,
                phone_line=narrowband,
            )
        return Conversation(audio.duration, diarization, Voices.of(diarization.voices, narrowband))

    def read(self, sample: Sample) -> StoredAudio:
        return StoredAudio(self.vault.audio(sample), sample.audio_format)

    def delete(self, keys: Sequence[str]) -> None:
        self.vault.delete(keys)


def _decode(upload: AudioUpload, max_seconds: float) -> Audio:
    with STAGE.labels("decode").time():
        return decode_audio(
            upload.data,
            sample_rate=upload.sample_rate,
            channels=upload.channels,
            max_seconds=max_seconds,
        )
