"""Labelled speech for evaluation: an ``index.tsv`` (set, speaker, path) or speaker folders."""

from __future__ import annotations

import csv
import hashlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import soxr

from voiceprint.audio.decode import decode_audio
from voiceprint.audio.limits import SAMPLE_RATE

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3", ".pcm"}
# Clips shorter than this are joined (in order, per speaker) into utterances of ~CONCAT files.
SHORT_CLIP_S = 1.5
CONCAT = 5


@dataclass(frozen=True)
class Utterance:
    set: str
    speaker: str
    paths: tuple[Path, ...]

    @property
    def key(self) -> str:
        return hashlib.sha1("|".join(str(p) for p in self.paths).encode()).hexdigest()

    def samples(self) -> np.ndarray:
        """16 kHz mono samples; several short files are joined end to end.

        Files are joined at their own rate and resampled once, so the joins stay within
        the recordings' band (8 kHz clips joined after resampling click above 4 kHz).
        """
        if len(self.paths) == 1:
            return decode_audio(self.paths[0].read_bytes()).samples
        clips = [soundfile.read(p, dtype="float32", always_2d=True) for p in self.paths]
        rates = {rate for _, rate in clips}
        if len(rates) > 1:
            return np.concatenate([decode_audio(p.read_bytes()).samples for p in self.paths])
        joined = np.concatenate([c.mean(axis=1) for c, _ in clips]).astype(np.float32)
        rate = rates.pop()
        if rate == SAMPLE_RATE:
            return joined
        return soxr.resample(joined, rate, SAMPLE_RATE).astype(np.float32)


def load_corpus(path: Path) -> list[Utterance]:
    files = _index_files(path) if path.is_file() else _folder_files(path)
    by_speaker: dict[tuple[str, str], list[Path]] = defaultdict(list)
    for set_name, speaker, file in files:
        by_speaker[(set_name, speaker)].append(file)
    utterances = []
    for (set_name, speaker), paths in by_speaker.items():
        paths.sort()
        if np.median([soundfile.info(str(p)).duration for p in paths[:CONCAT]]) < SHORT_CLIP_S:
            chunks = [tuple(paths[i : i + CONCAT]) for i in range(0, len(paths), CONCAT)]
        else:
            chunks = [(p,) for p in paths]
        utterances.extend(Utterance(set_name, speaker, chunk) for chunk in chunks)
    return utterances


def _index_files(index: Path) -> list[tuple[str, str, Path]]:
    with index.open() as f:
        return [
            (row["set"], row["speaker"], index.parent / row["path"])
            for row in csv.DictReader(f, delimiter="\t")
        ]


def _folder_files(root: Path) -> list[tuple[str, str, Path]]:
    return [
        (root.name, speaker_dir.name, file)
        for speaker_dir in sorted(p for p in root.iterdir() if p.is_dir())
        for file in sorted(speaker_dir.rglob("*"))
        if file.suffix.lower() in AUDIO_SUFFIXES
    ]
