"""Moving the speakers of a running voiceprint-api (xiaozhi) here.

voiceprint-api keeps only another model's embeddings, no audio, so its voices
cannot come along: each id becomes a voiceprint without a recording (the
clients keep their ids), and people must enrol again, unless the operator still
has their recordings; then those enrol the ids they are named after.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from voiceprint.audio.errors import AudioError
from voiceprint.auth.tokens import Principal
from voiceprint.service.errors import ServiceError
from voiceprint.service.recordings import AudioUpload
from voiceprint.service.speakers import Speakers, speaker_id_of


@dataclass
class MigrationReport:
    read: int = 0
    dimensions: set[int] = field(default_factory=set)
    added: list[str] = field(default_factory=list)  # new here
    enrolled: list[str] = field(default_factory=list)  # from the operator's recordings
    to_enrol: list[str] = field(default_factory=list)  # still without a voice
    refused: list[tuple[str, str]] = field(default_factory=list)  # (id or file, why)
    unmatched: list[str] = field(default_factory=list)  # recordings of no id in the export

    def __str__(self) -> str:
        dims = "/".join(str(d) for d in sorted(self.dimensions)) or "no"
        lines = [
            f"read {self.read} voiceprints ({dims}-dimensional embeddings of voiceprint-api's "
            "model, which this server cannot use; it keeps the ids)",
            f"new ids here: {len(self.added)}",
            f"enrolled from recordings: {len(self.enrolled)}" + _listed(self.enrolled),
        ]
        if self.to_enrol:
            lines.append(
                f"without a voice, these people must enrol again ({len(self.to_enrol)}; "
                "register them from xiaozhi, or run this again with --audio-dir):"
                + _listed(self.to_enrol)
            )
        for name, why in self.refused:
            lines.append(f"refused {name}: {why}")
        if self.unmatched:
            lines.append("recordings of no id in the export, left out:" + _listed(self.unmatched))
        return "\n".join(lines)


def _listed(names: Sequence[str]) -> str:
    return "".join(f"\n  {name}" for name in names)


def recordings_by_speaker(folder: Path) -> dict[str, list[Path]]:
    """speaker_id -> its recordings: ``<id>.<ext>`` files and ``<id>/`` folders of them."""
    found: dict[str, list[Path]] = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            files = [p for p in sorted(entry.iterdir()) if p.is_file() and p.name[0] != "."]
            found.setdefault(entry.name, []).extend(files)
        elif entry.is_file():
            found.setdefault(entry.stem, []).append(entry)
    return found


def migrate_speakers(
    speakers: Speakers,
    caller: Principal,
    exported: Sequence[tuple[str, int]],
    audio_dir: Path | None = None,
) -> MigrationReport:
    """Import ``(speaker_id, dimensions)`` rows for ``caller``; enrol those with recordings."""
    report = MigrationReport(read=len(exported))
    ids = []
    for raw, dimensions in exported:
        report.dimensions.add(dimensions)
        try:
            ids.append(speaker_id_of(raw))
        except ServiceError as exc:
            report.refused.append((repr(raw), str(exc)))
    report.added = speakers.add_ids(caller, ids)
    recordings = recordings_by_speaker(audio_dir) if audio_dir else {}
    report.unmatched = sorted(set(recordings) - set(ids))
    for speaker_id in ids:
        files = recordings.get(speaker_id)
        if not files:
            continue
        try:
            uploads = [AudioUpload(path.read_bytes()) for path in files]
            speakers.register(caller, speaker_id, uploads)
        except (OSError, AudioError, ServiceError) as exc:
            report.refused.append((speaker_id, str(exc)))
        else:
            report.enrolled.append(speaker_id)
    report.to_enrol = speakers.unvoiced(caller, ids)
    return report
