"""Who spoke when, on real recordings and on conversations built from real speech.

Real recordings: the AMI meeting openings of ``../shared/data/conversations``
(human references in RTTM), each sent to a real server (``format=rttm``, an
empty group) and scored with pyannote.metrics "full" (collar 0, overlap
scored: the AMI convention) and "forgiving" (0.25 s each side, overlap left
out); beside it one peer in the same run (``sherpa_peer``: sherpa-onnx with the
same models; skipped, loudly, when it is not installed).

Built conversations (``voiceprint.eval.conversations``: 2-5 speakers, turns of 1-15 s,
pauses of 0.2-1.5 s or none, some with noise) are built from the speakers the
calibration did not see (speechocean762 21-40, commonvoice_zh 26-50,
LibriSpeech); in each, all speakers but one are enrolled from recordings the
conversation does not use (a conversation may mix sets), in two ways: as the
README advises (recordings added until there are 5 s of speech, at most 3) and
from one recording each (it prints the median speech enrolled). Through the service
(as the server runs it) it reports, over all conversations: DER (250 ms
collar, no overlap in these conversations), the share of conversations with a
wrong speaker count, and the share of speech time attributed to the right
enrolled person (or to an unknown label for the speaker who is not enrolled),
this last also per set of the speaker; beside it the baseline that identifies
each VAD segment alone. Then the real server diarizes a 10-minute
conversation: its time and the server's peak RSS. Prints tables and writes
bench/results/diarization.json.

Harder built conversations (``--harder``, 30): a share of the changes overlap and
listeners' 0.3-1 s backchannels lie over others' turns; two in three among the
wide-band speakers above, one in three among the real callers of ``telephone``
that the calibration did not see (sent at 8 kHz, as a line gives a call). They go
through the server as the real recordings do and are scored the same way (full and
forgiving), with the peer and the floors.

    .venv/bin/python bench/diarization.py [--conversations 30] [--harder 30]
        [--real-only | --harder-only]

``--real-only`` runs the real recordings alone (and the peer): a quick loop;
``--harder-only`` the harder built conversations alone.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import soundfile
import soxr

from bench_server import PREFIX, BenchServer, bench_server
from sherpa_peer import NAME as PEER
from sherpa_peer import SherpaPeer, peer
from voiceprint.audio.errors import NotEnoughSpeech
from voiceprint.audio.vad import SpeechDetector
from voiceprint.auth.tokens import Principal, authenticate, mint_token
from voiceprint.config import Settings, get_settings
from voiceprint.diarization.reconstruction import heard_per_frame, runs
from voiceprint.diarization.segmentation import FRAME_STEP
from voiceprint.engine import VoiceEngine
from voiceprint.eval import conversations
from voiceprint.eval.corpus import Utterance, load_corpus
from voiceprint.eval.der import DerScore, rttm_turns, score
from voiceprint.service.conversations import DiarizeOptions
from voiceprint.service.factory import build_runtime, load_models
from voiceprint.service.recordings import AudioUpload
from voiceprint.service.voiceprints import VoiceprintService

ROOT = Path(__file__).resolve().parent.parent
INDEX = ROOT.parent / "shared" / "data" / "index.tsv"
REAL = ROOT.parent / "shared" / "data" / "conversations"
SETS = ("speechocean762", "commonvoice_zh", "librispeech")
FRAME = 160
# The README's advice: "Enrol 5 s or more of speech, or 2-3 recordings per person".
ADVISED_SPEECH = 5 * 16000
MAX_RECORDINGS = 3
ENROLMENTS = ("as advised", "one recording")
METHODS = ("diarization", "baseline")
# Floors, not systems: the speakers the segmentation hears in each frame (the count the
# reconstruction adds beyond the VAD's speech), and that with the VAD's speech as at
# least one, each labelled with the reference's own speakers.
FLOORS = ("floor: segmentation's count", "floor: VAD or segmentation's count")


def wav(wave: np.ndarray, rate: int = 16000) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, wave, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def frames_of(turns: list[tuple[int, int, str]], length: int) -> list[str | None]:
    out: list[str | None] = [None] * (-(-length // FRAME))
    for start, end, who in turns:
        for i in range(start // FRAME, end // FRAME):
            out[i] = who
    return out


def identity_share(conv: conversations.Conversation, hyp: list[tuple[int, int, str]],
                   enrolled: dict[str, str]) -> dict[str, list[float]]:  # fmt: skip
    """Per set of the speaker: seconds of reference speech, and of it attributed rightly
    (feature id, or an unknown label for a stranger)."""
    ref = frames_of([(t.start, t.end, t.speaker) for t in conv.turns], len(conv.wave))
    said = frames_of(hyp, len(conv.wave))
    by_set: dict[str, list[float]] = {}
    for truth, label in zip(ref, said, strict=True):
        if truth is None:
            continue
        expected = enrolled.get(truth)
        right = (label == expected) if expected else (label is not None and label.startswith("?"))
        counts = by_set.setdefault(truth.split("/")[0], [0.0, 0.0])
        counts[0] += 0.01
        counts[1] += 0.01 * right
    return by_set


def enrolment(
    conv: conversations.Conversation,
    recordings: list[Utterance],
    detector: SpeechDetector,
    advised: bool,
) -> tuple[list[bytes], float]:
    """The speaker's first recording; as advised, more of the recordings the conversation
    does not use until there are ADVISED_SPEECH of speech (at most MAX_RECORDINGS). And
    the seconds of speech in them."""
    chosen: list[bytes] = []
    speech = 0
    for utterance in recordings:
        if chosen and (not advised or speech >= ADVISED_SPEECH or len(chosen) == MAX_RECORDINGS):
            break
        if utterance.key in conv.used:
            continue
        wave = utterance.samples()
        chosen.append(wav(wave))
        speech += sum(seg.end - seg.start for seg in detector.segments(wave))
    return chosen, speech / 16000


def diarized(
    service: VoiceprintService, caller: Principal, group: int, wave: np.ndarray
) -> list[tuple[int, int, str]]:
    """(start, end, label) of each turn: a voiceprint's id, or "?S1"... for an unknown voice."""
    view = service.diarize(caller, group, AudioUpload(wav(wave)), DiarizeOptions())
    return [
        (int(t.start_ms * 16), int(t.end_ms * 16),
         str(t.match.feature_id) if t.match else f"?{t.speaker}")
        for t in view.turns
    ]  # fmt: skip


def segments_identified(
    service: VoiceprintService,
    caller: Principal,
    group: int,
    wave: np.ndarray,
    detector: SpeechDetector,
) -> list[tuple[int, int, str]]:
    """The baseline: every VAD segment identified alone."""
    turns = []
    for seg in detector.segments(wave):
        piece = wave[seg.start : seg.end]
        if len(piece) < 8000:
            continue
        try:
            matches = service.identify(caller, group, AudioUpload(wav(piece)), 1).matches
        except NotEnoughSpeech:
            continue  # the segment stays unlabelled: missed speech for the baseline
        best = matches[0] if matches and matches[0].is_match else None
        turns.append((seg.start, seg.end, str(best.feature_id) if best else "?unknown"))
    return turns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=30)
    parser.add_argument(
        "--real-only", action="store_true", help="only the real recordings (and the peer)"
    )
    parser.add_argument("--harder", type=int, default=30, help="harder built conversations")
    parser.add_argument(
        "--harder-only", action="store_true", help="only the harder built ones (and the peer)"
    )
    args = parser.parse_args()
    settings = get_settings().model_copy(update={"inference_threads": 2})
    models = load_models(settings, progress=False)
    if args.real_only:
        with bench_server(inference_threads="2") as server:
            real_recordings(server, peer(models.paths), models.voice)
        return
    fitted = set(models.scorer.calibration.speakers)
    by_speaker = held_out_speakers(fitted, SETS)
    calls = held_out_speakers(fitted, ("telephone",))
    harder = harder_conversations(models.voice.detector, by_speaker, calls, args.harder)
    if args.harder_only:
        with bench_server(inference_threads="2") as server:
            harder_through_server(server, peer(models.paths), models.voice, harder)
        return
    rng = random.Random(0)
    detector = models.voice.detector
    convs = [
        conversations.build(
            by_speaker,
            detector,
            rng,
            speakers=rng.randint(2, 5),
            turns=rng.randint(6, 14),
            noisy=rng.random() < 0.3,
        )
        for _ in range(args.conversations)
    ]
    tmp = Path(tempfile.mkdtemp(prefix="voiceprint-diarize-"))
    runtime = build_runtime(Settings(data_dir=tmp, max_features_per_group=10), models)
    service = runtime.service
    with runtime.sessions() as session, session.begin():
        token = mint_token(session, user="bench", workspace="bench").token
    with runtime.sessions() as session:
        caller = authenticate(session, f"Bearer {token}")

    rows: dict[str, list] = {
        f"{method}, enrolled {how}": [] for how in ENROLMENTS for method in METHODS
    }
    enrolled_s: dict[str, dict[str, list[float]]] = {how: {} for how in ENROLMENTS}
    for conv in convs:
        ref = [(t.start, t.end, t.speaker) for t in conv.turns]
        for how in ENROLMENTS:
            group = service.create_group(caller, "conv", "")
            enrolled = {}
            for speaker in conv.speakers[:-1]:  # the last one stays a stranger
                recordings, seconds = enrolment(
                    conv, by_speaker[speaker], detector, how == "as advised"
                )
                enrolled_s[how].setdefault(speaker.split("/")[0], []).append(seconds)
                fid = service.create_feature(
                    caller, group, speaker[-20:], "", [AudioUpload(r) for r in recordings]
                ).feature_id
                enrolled[speaker] = str(fid)
            answers = {
                "diarization": diarized(service, caller, group, conv.wave),
                "baseline": segments_identified(service, caller, group, conv.wave, detector),
            }
            for method, turns in answers.items():
                # collar 0.5: 0.25 s each side of a boundary (no overlap in these)
                scored = score(ref, turns, len(conv.wave), collar=0.5)
                found = len({label for _, _, label in turns})
                rows[f"{method}, enrolled {how}"].append({
                    "scored_s": scored.scored_s, "errors_s": scored.der * scored.scored_s,
                    "count_wrong": found != len(conv.speakers),
                    "speech_by_set": identity_share(conv, turns, enrolled),
                })  # fmt: skip
            service.delete_group(caller, group)

    print(
        f"{args.conversations} conversations, {sum(len(c.speakers) for c in convs)} speakers in all"
    )
    for how, by_set in enrolled_s.items():
        medians = ", ".join(f"{s} {np.median(by_set[s]):.1f} s" for s in SETS if s in by_set)
        print(f"speech enrolled {how}, median per speaker: {medians}")
    print(
        "| method | DER | wrong speaker count | speech attributed rightly | "
        + " | ".join(f"... of {s} speakers" for s in SETS)
        + " |"
    )
    print("|---" * (4 + len(SETS)) + "|")
    summary = {}
    for name, items in rows.items():
        der = sum(r["errors_s"] for r in items) / sum(r["scored_s"] for r in items)
        wrong = sum(r["count_wrong"] for r in items) / len(items)
        speech = {s: np.zeros(2) for s in ("all", *SETS)}
        for r in items:
            for set_name, counts in r["speech_by_set"].items():
                speech[set_name] += counts
                speech["all"] += counts
        right = {s: float(c[1] / c[0]) if c[0] else float("nan") for s, c in speech.items()}
        summary[name] = {"der": der, "count_wrong": wrong, "identity": right}
        print(
            f"| {name} | {100 * der:.1f} % | {100 * wrong:.0f} % | {100 * right['all']:.1f} % | "
            + " | ".join(f"{100 * right[s]:.1f} %" for s in SETS)
            + " |"
        )

    long_wave = np.concatenate([c.wave for c in convs])[: 600 * 16000]
    with bench_server(inference_threads="2") as server:
        other = peer(models.paths)
        real = real_recordings(server, other, models.voice)
        built_harder = harder_through_server(server, other, models.voice, harder)
        seconds, peak = ten_minutes_through(server, long_wave)
    length = len(long_wave) / 16000
    print(
        f"{length:.0f} s of conversation diarized by a server in {seconds:.1f} s (real-time "
        f"factor {seconds / length:.3f}); the server's peak RSS {peak:.0f} MB"
    )
    out = ROOT / "bench/results/diarization.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "real": real,
                "harder": built_harder,
                "summary": summary,
                "rows": rows,
                "enrolled_speech_s": enrolled_s,
                "ten_minutes_s": seconds,
                "server_peak_rss_mb": peak,
            },
            indent=2,
        )
    )
    print(f"wrote {out}")


def labelled_by_reference(
    heard: np.ndarray, reference: list[tuple[int, int, str]]
) -> list[tuple[int, int, str]]:
    """The best turns any labelling of ``heard`` (speakers heard in each segmentation frame)
    can give: in each frame that many of the reference's speakers there, and where the
    reference has fewer, a speaker nobody is."""
    names = sorted({who for _, _, who in reference})
    labels = [*names, *(f"nobody {i + 1}" for i in range(max(heard, default=0)))]
    spoken = np.zeros((len(heard), len(labels)), dtype=bool)
    for start, end, who in reference:
        spoken[round(start / FRAME_STEP) : round(end / FRAME_STEP), names.index(who)] = True
    active = np.zeros_like(spoken)
    for frame in np.flatnonzero(heard):
        there = np.flatnonzero(spoken[frame])[: heard[frame]]
        active[frame, there] = True
        active[frame, len(names) : len(names) + heard[frame] - len(there)] = True
    return [(a * FRAME_STEP, b * FRAME_STEP, labels[s]) for a, b, s in runs(active)]


def hearing_floors(
    voice: VoiceEngine, wave: np.ndarray, reference: list[tuple[int, int, str]]
) -> dict[str, list[tuple[int, int, str]]]:
    """What the segmentation (and the VAD) hear, labelled by the reference: the missed
    speech and false alarm no clustering or naming can take below."""
    heard = heard_per_frame(voice.segmenter.segment(wave), -(-len(wave) // FRAME_STEP))
    vad = np.zeros_like(heard)
    for seg in voice.detector.segments(wave):
        vad[seg.start // FRAME_STEP : -(-seg.end // FRAME_STEP)] = 1
    return {
        FLOORS[0]: labelled_by_reference(heard, reference),
        FLOORS[1]: labelled_by_reference(np.maximum(heard, vad), reference),
    }


def held_out_speakers(fitted: set[str], sets: tuple[str, ...]) -> dict[str, list[Utterance]]:
    """The recordings of each speaker of ``sets`` the calibration did not see (3 or more)."""
    by_speaker: dict[str, list[Utterance]] = {}
    for u in load_corpus(INDEX):
        key = f"{u.set}/{u.speaker}"
        if u.set in sets and key not in fitted:
            by_speaker.setdefault(key, []).append(u)
    return {k: v for k, v in by_speaker.items() if len(v) >= 3}


def harder_conversations(
    detector: SpeechDetector,
    wide: dict[str, list[Utterance]],
    calls: dict[str, list[Utterance]],
    count: int,
) -> dict[str, list[tuple[str, bytes, np.ndarray, list[tuple[int, int, str]]]]]:
    """Conversations with overlapping changes (3 in 10) and 1-3 backchannels each: two in
    three among wide-band speakers (some noisy), one in three among real callers of
    ``telephone`` (8 kHz lines, decoded to 16 kHz as the server does)."""
    rng = random.Random(1)  # apart from the other built conversations' draws
    out: dict[str, list] = {"wide-band": [], "telephone": []}
    for i in range(count):
        kind = "telephone" if i % 3 == 2 else "wide-band"
        conv = conversations.build(
            calls if kind == "telephone" else wide,
            detector,
            rng,
            speakers=rng.randint(2, 3 if kind == "telephone" else 4),
            turns=rng.randint(6, 12),
            noisy=kind == "wide-band" and rng.random() < 0.3,
            overlap=0.3,
            backchannels=rng.randint(1, 3),
        )
        reference = [(t.start, t.end, t.speaker) for t in conv.turns]
        body, wave = wav(conv.wave), conv.wave
        if kind == "telephone":
            # A call reaches the server as a line gives it, at 8 kHz. Sent at 16 kHz, the
            # joins of the pieces click above 4 kHz, and the server would not hear a line.
            line = soxr.resample(conv.wave, 16000, 8000)
            body, wave = wav(line, 8000), soxr.resample(line, 8000, 16000)
        out[kind].append((f"{kind} {i}", body, wave, reference))
    return out


def harder_through_server(
    server: BenchServer,
    other: SherpaPeer | None,
    voice: VoiceEngine,
    harder: dict[str, list[tuple[str, bytes, np.ndarray, list[tuple[int, int, str]]]]],
) -> dict[str, dict[str, list[dict]]]:
    """The harder built conversations, scored as the real recordings are, by kind."""
    out = {}
    for kind, recordings in harder.items():
        out[kind] = through_server(server, other, voice, recordings)
        print_scored(f"harder built conversations, {kind}", out[kind])
    return out


def real_recordings(
    server: BenchServer, other: SherpaPeer | None, voice: VoiceEngine
) -> dict[str, list[dict]]:
    """Each real recording through the server (and the peer), as the file is."""
    recordings = [
        (path.stem, path.read_bytes(), soundfile.read(path, dtype="float32")[0],
         rttm_turns(path.with_suffix(".rttm").read_text()))
        for path in sorted(REAL.glob("*.wav"))
    ]  # fmt: skip
    rows = through_server(server, other, voice, recordings)
    print_scored(f"real recordings ({REAL.name}/)", rows, each=True)
    return rows


def through_server(
    server: BenchServer,
    other: SherpaPeer | None,
    voice: VoiceEngine,
    recordings: list[tuple[str, bytes, np.ndarray, list[tuple[int, int, str]]]],
) -> dict[str, list[dict]]:
    """Each (name, file, wave, reference) sent to the server (``format=rttm``, an empty
    group) and given to the peer, scored full and forgiving, beside the floors of what
    the segmentation hears (``hearing_floors``)."""
    group = httpx.post(
        f"{server.url}{PREFIX}", json={"name": "conversations"}, headers=server.headers
    ).json()["data"]["id"]
    rows: dict[str, list[dict]] = {"voiceprint": []}
    if other:
        rows[PEER] = []
    rows.update({floor: [] for floor in FLOORS})
    for name, body, wave, reference in recordings:
        start = time.perf_counter()
        reply = httpx.post(
            f"{server.url}{PREFIX}/{group}/speaker_diarize", files={"file": body},
            data={"format": "rttm"}, headers=server.headers, timeout=600,
        )  # fmt: skip
        answers = {"voiceprint": (rttm_turns(reply.text), time.perf_counter() - start)}
        if other:
            start = time.perf_counter()
            answers[PEER] = (other.turns(wave), time.perf_counter() - start)
        answers.update(
            (floor, (turns, 0.0)) for floor, turns in hearing_floors(voice, wave, reference).items()
        )
        for system, (turns, seconds) in answers.items():
            rows[system].append({
                "file": name, "audio_s": len(wave) / 16000, "seconds": seconds,
                "full": vars(score(reference, turns, len(wave))),
                "forgiving": vars(score(reference, turns, len(wave), collar=0.5,
                                        skip_overlap=True)),
                "speakers": len({who for _, _, who in turns}),
                "reference_speakers": len({who for _, _, who in reference}),
            })  # fmt: skip
    return rows


def _cells(full: DerScore, forgiving: DerScore) -> str:
    return (
        f"{100 * full.der:.1f} % | {100 * full.share(full.missed_s):.1f} % | "
        f"{100 * full.share(full.false_alarm_s):.1f} % | "
        f"{100 * full.share(full.confusion_s):.1f} % | {100 * forgiving.der:.1f} %"
    )


def print_scored(title: str, rows: dict[str, list[dict]], *, each: bool = False) -> None:
    """The table of ``through_server``'s rows: all recordings pooled (and ``each`` alone)."""
    print(f"{title}: DER full = collar 0, overlap scored")
    print("| system | recording | DER full | missed | false alarm | confusion | DER forgiving "
          "| speakers found / in the reference |")  # fmt: skip
    print("|---" * 8 + "|")
    for system, items in rows.items() if each else ():
        for r in items:
            full, forgiving = DerScore(**r["full"]), DerScore(**r["forgiving"])
            print(f"| {system} | {r['file']} | {_cells(full, forgiving)} | "
                  f"{r['speakers']} / {r['reference_speakers']} |")  # fmt: skip
    for system, items in rows.items():
        full = sum((DerScore(**r["full"]) for r in items), DerScore(0, 0, 0, 0))
        forgiving = sum((DerScore(**r["forgiving"]) for r in items), DerScore(0, 0, 0, 0))
        right = sum(r["speakers"] == r["reference_speakers"] for r in items)
        empty = sum(r["speakers"] == 0 for r in items)
        rtf = sum(r["seconds"] for r in items) / sum(r["audio_s"] for r in items)
        print(f"| **{system}** | all {len(items)} | {_cells(full, forgiving)} | right in "
              f"{right} of {len(items)}, {empty} empty; real-time factor {rtf:.3f} |")  # fmt: skip


def ten_minutes_through(server: BenchServer, wave: np.ndarray) -> tuple[float, float]:
    """Seconds the server (two inference threads) takes to diarize ``wave``, and its
    peak resident memory in MB (VmHWM) by then."""
    group = httpx.post(
        f"{server.url}{PREFIX}", json={"name": "long"}, headers=server.headers
    ).json()["data"]["id"]
    body = wav(wave)
    start = time.perf_counter()
    reply = httpx.post(
        f"{server.url}{PREFIX}/{group}/speaker_diarize", files={"file": body},
        headers=server.headers, timeout=600,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    assert reply.json()["code"] == 0, reply.text[:300]
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    peak = next(line for line in status.splitlines() if line.startswith("VmHWM"))
    return seconds, int(peak.split()[1]) / 1024


if __name__ == "__main__":
    main()
