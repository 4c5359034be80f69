"""Recognition through the HTTP API, per set, as users meet it.

Starts a real server (SQLite, the configured model), and for each set deals
the speakers with two or more utterances into groups of 10 (seed 0), enrols
each member with ``POST …/features`` and identifies every other utterance with
``POST …/speaker_identify`` (``top_k`` = the group). Two enrolments, each its own
row: the member's first utterance alone, and as the README advises (further
utterances added with ``POST …/samples`` while the answer says the voiceprint
lacks ``enough_speech``, 6 s, at most 3 recordings in all and never the speaker's
last; the probes are then the utterances left):

* genuine probes: the members' other utterances (top-1; rejected: own score < 50);
* strangers: the set's utterances of people outside the group, single-utterance
  distractors included (accepted: best score >= 50); in a set whose speakers all fit in one
  group (FSDD, AISHELL's two), each speaker in turn is also the stranger to a group of
  the others;
* EER over the returned scores (own voiceprint vs the others).

Large groups (``--large 100 300 1000``): one group of N voiceprints of the speakers of
every wide-band set and the one-recording ``cohort`` speakers (the calibration's own
included: they are never strangers). A third of the held-out speakers, drawn at random, are
the strangers: every utterance of theirs probes the group. The others are members, one
voiceprint each of their first recording; beyond as many voiceprints as members (there are
not 1000 distinct people here), members' further recordings become voiceprints of their own,
round by round. A stranger gets N chances there, so this is where the decision for the
group shows.

The speakers the model's calibration was fitted on are left out (``--fitting-speakers``:
only they are measured, to see how far the held-out figures generalise). With
``--condition narrowband`` every upload is sent as an 8 kHz WAV, as a phone line
delivers it (the real ``telephone`` set is sent as it is); with ``--condition 16k-16bit``
every upload, calls included, as a 16 kHz 16-bit WAV (dithered, 6 dB quieter), as many
tools store audio. Prints a table and
writes bench/results/api_accuracy-<model>-<condition>.json.

    .venv/bin/python bench/api_accuracy.py [--condition narrowband] [--sets fsdd ...] \
        [--large 100 400] [--fitting-speakers]
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import httpx
import numpy as np
import soundfile
import soxr

from bench_server import PREFIX, BenchServer, bench_server
from voiceprint.config import get_settings
from voiceprint.embedding.models import model_spec
from voiceprint.embedding.provision import ModelPaths
from voiceprint.eval.conditions import AS_RECORDED, CONDITIONS, NARROWBAND
from voiceprint.eval.corpus import Utterance, load_corpus
from voiceprint.eval.metrics import eer
from voiceprint.scoring.ranking import TOO_LITTLE_SPEECH
from voiceprint.scoring.scorer import Calibration

ROOT = Path(__file__).resolve().parent.parent
INDEX = ROOT.parent / "shared" / "data" / "index.tsv"
SETS = ("speechocean762", "librispeech", "commonvoice_zh", "aishell", "fsdd", "telephone")
WIDEBAND_SETS = ("speechocean762", "librispeech", "commonvoice_zh", "aishell", "cohort")
GROUP_SIZE = 10
# The README's advice: add recordings until the answer says there is enough speech,
# in up to 3 recordings.
ADVISED_RECORDINGS = 3
ONE, ADVISED = "one recording", "as advised"
# A large group's members probe it with up to this many recordings each (not their
# voiceprints'), and read this many best matches (their other voiceprints among them).
MEMBER_PROBES = 2
MEMBER_TOP_K = 10


# Every upload stored as many tools store audio: 16 kHz, 16-bit samples with TPDF dither,
# 6 dB below the recording (a phone call included: the line's band, the rounding noise above).
STORED_16K = "16k-16bit"


def upload(utterance: Utterance, condition: str) -> bytes:
    """The bytes a user would send: the original file, or a WAV of joined, phone-line or
    re-stored audio."""
    if condition == STORED_16K:
        step = 2.0**-15
        wave = utterance.samples() * 0.5
        dither = np.random.default_rng(len(wave)).triangular(-step, 0.0, step, len(wave))
        return wav_of(np.clip(wave + dither, -1.0, 1.0), 16000)
    if (condition == AS_RECORDED or utterance.set == "telephone") and len(utterance.paths) == 1:
        return utterance.paths[0].read_bytes()
    wave, rate = utterance.samples(), 16000
    if condition == NARROWBAND:
        wave, rate = soxr.resample(wave, 16000, 8000), 8000
    return wav_of(wave, rate)


def wav_of(wave: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, wave, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def groups_of(speakers: list[str]) -> list[list[str]]:
    order = list(np.random.default_rng(0).permutation(speakers))
    groups = [order[i : i + GROUP_SIZE] for i in range(0, len(order), GROUP_SIZE)]
    if len(groups) > 1 and len(groups[-1]) < 2:
        groups[-2].extend(groups.pop())
    return groups


def identify(
    client: httpx.Client, group: str, data: bytes, top_k: int
) -> tuple[dict[str, float], str] | None:
    """The scores by voiceprint and the decision; None when the probe is refused."""
    r = client.post(
        f"{PREFIX}/{group}/speaker_identify", files={"file": data}, data={"top_k": str(top_k)}
    )
    body = r.json()
    if body["code"] != 0:
        return None  # refused (e.g. too little speech); counted apart
    scores = {m["feature_id"]: m["score"] for m in body["data"]["feature_score_list"]}
    return scores, body["data"]["decision"]


def enrol(
    client: httpx.Client,
    group: str,
    name: str,
    utterances: list[Utterance],
    condition: str,
    how: str = ONE,
) -> tuple[str, int] | None:
    """A voiceprint of the speaker's first utterance and, as advised, more of them while
    the answer lacks ``enough_speech``; its id and how many utterances it used."""
    r = client.post(
        f"{PREFIX}/{group}/features",
        data={"name": name[:20]},
        files={"file": upload(utterances[0], condition)},
    ).json()
    if r["code"] != 0:
        return None
    feature, enough, used = r["data"]["id"], r["data"]["enough_speech"], 1
    most = min(ADVISED_RECORDINGS, len(utterances) - 1) if how == ADVISED else 1
    while not enough and used < most:
        r = client.post(
            f"{PREFIX}/{group}/features/{feature}/samples",
            files={"file": upload(utterances[used], condition)},
        ).json()
        used += 1
        # A refused recording (e.g. too little speech) is passed over, as a user would.
        enough = r["code"] == 0 and r["data"]["enough_speech"]
    return feature, used


def strangers_best(
    client: httpx.Client, group: str, utterances: list[Utterance], condition: str, enrolled: int
) -> list[list[float] | None]:
    """Each stranger's scores against the group (None where the probe is refused); none
    when nobody is enrolled, where a stranger has no chance to pass (nor a valid top_k)."""
    if enrolled == 0:
        return []
    out: list[list[float] | None] = []
    for u in utterances:
        answer = identify(client, group, upload(u, condition), enrolled)
        out.append(None if answer is None else list(answer[0].values()))
    return out


def evaluate_set(
    server: BenchServer, name: str, utterances: list[Utterance], condition: str, how: str
) -> dict[str, object]:
    by_speaker: dict[str, list[Utterance]] = {}
    for u in utterances:
        by_speaker.setdefault(u.speaker, []).append(u)
    eligible = sorted(s for s, us in by_speaker.items() if len(us) >= 2)
    target: list[float] = []
    nontarget: list[float] = []
    genuine = correct = rejected = undecided = refused = 0
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=120) as client:
        groups = groups_of(eligible)
        best: list[list[float] | None] = []
        for members in groups:
            group = client.post(PREFIX, json={"name": f"{name}"[:20]}).json()["data"]["id"]
            enrolled: dict[str, tuple[str, int]] = {}
            for speaker in members:
                made = enrol(client, group, speaker, by_speaker[speaker], condition, how)
                if made is None:
                    refused += 1
                else:
                    enrolled[speaker] = made
            for speaker, (feature, used) in enrolled.items():
                for u in by_speaker[speaker][used:]:
                    answer = identify(client, group, upload(u, condition), len(enrolled))
                    if answer is None:
                        refused += 1
                        continue
                    scores, decision = answer
                    genuine += 1
                    own = scores[feature]
                    target.append(own)
                    nontarget.extend(s for f, s in scores.items() if f != feature)
                    correct += max(scores, key=scores.__getitem__) == feature
                    rejected += own < 50
                    undecided += own < 50 and decision == TOO_LITTLE_SPEECH
            outsiders = [u for s, us in by_speaker.items() if s not in members for u in us]
            outside = strangers_best(client, group, outsiders, condition, len(enrolled))
            nontarget.extend(v for b in outside if b is not None for v in b)
            best += outside
            client.delete(f"{PREFIX}/{group}")
            # A set too small for a stranger beside a whole group (FSDD's 6 speakers): each
            # speaker in turn is the stranger to a group of all the others. Their scores are
            # decided among fewer voiceprints, so they count as strangers, not in the EER.
            if len(groups) == 1:
                for outsider in members:
                    group = client.post(PREFIX, json={"name": f"{name}"[:20]}).json()["data"]["id"]
                    others = [s for s in members if s != outsider]
                    made = [enrol(client, group, s, by_speaker[s], condition, how) for s in others]
                    count = sum(m is not None for m in made)
                    best += strangers_best(client, group, by_speaker[outsider], condition, count)
                    client.delete(f"{PREFIX}/{group}")
        refused += sum(b is None for b in best)
        scored = [b for b in best if b is not None]
        strangers, accepted = len(scored), sum(max(b) >= 50 for b in scored)
    set_eer, _ = eer(np.array(target), np.array(nontarget)) if target else (float("nan"), 0)
    return {
        "set": name,
        "enrolment": how,
        "speakers": len(eligible),
        "genuine_probes": genuine,
        "stranger_probes": strangers,
        "refused": refused,
        "trials": [len(target), len(nontarget)],
        "eer": set_eer,
        "top1": correct / genuine if genuine else None,
        "false_reject": rejected / genuine if genuine else None,
        "too_little_speech": undecided / genuine if genuine else None,
        "stranger_accept": accepted / strangers if strangers else None,
    }


def evaluate_large_group(
    server: BenchServer,
    corpus: list[Utterance],
    held_out: set[tuple[str, str]],
    size: int,
    condition: str,
) -> dict[str, object]:
    """Strangers and members against one group of ``size`` voiceprints of the wide-band
    speakers."""
    by_speaker: dict[tuple[str, str], list[Utterance]] = {}
    for u in corpus:
        if u.set in WIDEBAND_SETS:
            by_speaker.setdefault((u.set, u.speaker), []).append(u)
    order = [tuple(s) for s in np.random.default_rng(0).permutation(sorted(by_speaker))]
    unseen = [who for who in order if who in held_out]
    strangers_are = set(unseen[: len(unseen) // 3])
    members = [who for who in order if who not in strangers_are]
    # First recordings of every member, then second ones, and so on, up to ``size``.
    rounds = max(len(by_speaker[who]) for who in members)
    candidates = [
        (who, by_speaker[who][r])
        for r in range(rounds)
        for who in members
        if r < len(by_speaker[who])
    ]
    strangers = accepted = refused = genuine = correct = rejected = 0
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=120) as client:
        group = client.post(PREFIX, json={"name": f"large {size}"}).json()["data"]["id"]
        whose: dict[str, tuple[str, str]] = {}  # each voiceprint's person
        used: set[str] = set()  # the keys of the recordings enrolled
        for who, u in candidates:  # a refused recording (e.g. too little speech) is passed over
            if len(whose) == size:
                break
            made = enrol(client, group, who[1], [u], condition)
            if made is not None:
                whose[made[0]] = who
                used.add(u.key)
        for who in order:
            if who not in strangers_are:
                continue
            for u in by_speaker[who]:
                answer = identify(client, group, upload(u, condition), 1)
                if answer is None:
                    refused += 1
                    continue
                scores, _ = answer
                strangers += 1
                accepted += max(scores.values()) >= 50
        # Members' recordings that are not voiceprints, at most MEMBER_PROBES each: the
        # probe is recognised when one of its person's voiceprints scores 50 or more.
        for who in dict.fromkeys(whose.values()):
            for u in [u for u in by_speaker[who] if u.key not in used][:MEMBER_PROBES]:
                answer = identify(client, group, upload(u, condition), MEMBER_TOP_K)
                if answer is None:
                    refused += 1
                    continue
                scores, _ = answer
                genuine += 1
                correct += whose[max(scores, key=scores.__getitem__)] == who
                rejected += not any(whose[f] == who and s >= 50 for f, s in scores.items())
        client.delete(f"{PREFIX}/{group}")
    return {
        "voiceprints": len(whose),
        "people": len(set(whose.values())),
        "stranger_probes": strangers,
        "stranger_people": len(strangers_are),
        "member_probes": genuine,
        "refused": refused,
        "stranger_accept": accepted / strangers if strangers else None,
        "top1": correct / genuine if genuine else None,
        "false_reject": rejected / genuine if genuine else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--condition", choices=(*CONDITIONS, STORED_16K), default=AS_RECORDED)
    parser.add_argument("--sets", nargs="*", default=list(SETS))
    parser.add_argument("--large", nargs="*", type=int, default=[], metavar="N")
    parser.add_argument(
        "--fitting-speakers",
        action="store_true",
        help="measure the calibration's own speakers instead of the held-out ones",
    )
    args = parser.parse_args()

    settings = get_settings()
    paths = ModelPaths(settings.model_dir, model_spec(settings.model))
    fitted = set(Calibration.load(paths.calibration).speakers)
    everyone = load_corpus(INDEX)
    corpus = [u for u in everyone if (f"{u.set}/{u.speaker}" in fitted) == args.fitting_speakers]
    unseen = {(u.set, u.speaker) for u in everyone if f"{u.set}/{u.speaker}" not in fitted}
    rows, large = [], []
    # groups_of folds a last lone speaker into the group before it: GROUP_SIZE + 1.
    biggest = str(max([GROUP_SIZE + 1, *args.large]))
    with bench_server(max_features_per_group=biggest) as server:
        for name in args.sets:
            in_set = [u for u in corpus if u.set == name]
            for how in (ONE, ADVISED):
                rows.append(evaluate_set(server, name, in_set, args.condition, how))
            print(f"done: {name}", flush=True)
        for size in args.large:
            large.append(evaluate_large_group(server, everyone, unseen, size, args.condition))

    def pct(value: object) -> str:
        return "-" if value is None else f"{100 * float(value):.1f} %"  # type: ignore[arg-type]

    who = "the calibration's own speakers" if args.fitting_speakers else "held-out speakers"
    print(f"model {settings.model}, audio {args.condition}, groups of {GROUP_SIZE}, {who}")
    print(
        "| set | enrolment | speakers | trials (same / diff) | EER | top-1 (probes) "
        "| rejected at 50 (of them: too little speech) | strangers accepted at 50 | refused |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        t, n = r["trials"]  # type: ignore[misc]
        print(
            f"| {r['set']} | {r['enrolment']} | {r['speakers']} | {t} / {n} | {pct(r['eer'])} "
            f"| {pct(r['top1'])} ({r['genuine_probes']}) | {pct(r['false_reject'])} "
            f"({pct(r['too_little_speech'])}) "
            f"| {pct(r['stranger_accept'])} of {r['stranger_probes']} | {r['refused']} |"
        )
    if large:
        print(
            "\n| voiceprints in the group (people) | strangers accepted at 50 per identify call "
            "(people) | members' probes: top-1 | rejected at 50 | refused |"
        )
        print("|---|---|---|---|---|")
        for r in large:
            print(
                f"| {r['voiceprints']} ({r['people']}) | {pct(r['stranger_accept'])} of "
                f"{r['stranger_probes']} ({r['stranger_people']}) | {pct(r['top1'])} of "
                f"{r['member_probes']} | {pct(r['false_reject'])} | {r['refused']} |"
            )
    speakers = "-fitting" if args.fitting_speakers else ""
    out = ROOT / f"bench/results/api_accuracy-{settings.model}-{args.condition}{speakers}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {"model": settings.model, "condition": args.condition, "sets": rows, "large": large}
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
