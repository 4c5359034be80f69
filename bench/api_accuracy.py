"""Recognition through the HTTP API, per set, as users meet it.

Starts a real server (SQLite, the configured model), and for each set deals
the speakers with two or more utterances into groups of 10 (seed 0), enrols
each member's first utterance with ``POST …/features`` and identifies every
other utterance with ``POST …/speaker_identify`` (``top_k`` = the group):

* genuine probes: the members' other utterances (top-1; rejected: own score < 50);
* strangers: the set's utterances of people outside the group, single-utterance
  distractors included (accepted: best score >= 50);
* EER over the returned scores (own voiceprint vs the others).

The speakers the model's calibration was fitted on are left out. With
``--condition narrowband`` every upload is sent as an 8 kHz WAV, as a phone line
delivers it. Prints a table and writes bench/results/api_accuracy-<model>-<condition>.json.

    .venv/bin/python bench/api_accuracy.py [--condition narrowband] [--sets fsdd ...]
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
from voiceprint.scoring.scorer import Calibration

ROOT = Path(__file__).resolve().parent.parent
INDEX = ROOT.parent / "shared" / "data" / "index.tsv"
SETS = ("speechocean762", "librispeech", "commonvoice_zh", "aishell", "fsdd")
GROUP_SIZE = 10


def upload(utterance: Utterance, condition: str) -> bytes:
    """The bytes a user would send: the original file, or a WAV of joined or phone-line audio."""
    if condition == AS_RECORDED and len(utterance.paths) == 1:
        return utterance.paths[0].read_bytes()
    wave, rate = utterance.samples(), 16000
    if condition == NARROWBAND:
        wave, rate = soxr.resample(wave, 16000, 8000), 8000
    buffer = io.BytesIO()
    soundfile.write(buffer, wave, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def groups_of(speakers: list[str]) -> list[list[str]]:
    order = list(np.random.default_rng(0).permutation(speakers))
    groups = [order[i : i + GROUP_SIZE] for i in range(0, len(order), GROUP_SIZE)]
    if len(groups) > 1 and len(groups[-1]) < 2:
        groups[-2].extend(groups.pop())
    return groups


def identify(client: httpx.Client, group: str, data: bytes, top_k: int) -> dict[str, float] | None:
    r = client.post(
        f"{PREFIX}/{group}/speaker_identify", files={"file": data}, data={"top_k": str(top_k)}
    )
    body = r.json()
    if body["code"] != 0:
        return None  # refused (e.g. too little speech); counted apart
    return {m["feature_id"]: m["score"] for m in body["data"]["feature_score_list"]}


def evaluate_set(
    server: BenchServer, name: str, utterances: list[Utterance], condition: str
) -> dict[str, object]:
    by_speaker: dict[str, list[Utterance]] = {}
    for u in utterances:
        by_speaker.setdefault(u.speaker, []).append(u)
    eligible = sorted(s for s, us in by_speaker.items() if len(us) >= 2)
    target: list[float] = []
    nontarget: list[float] = []
    genuine = correct = rejected = strangers = accepted = refused = 0
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=120) as client:
        for members in groups_of(eligible):
            group = client.post(PREFIX, json={"name": f"{name}"[:20]}).json()["data"]["id"]
            enrolled: dict[str, str] = {}
            for speaker in members:
                r = client.post(
                    f"{PREFIX}/{group}/features",
                    data={"name": speaker[:20]},
                    files={"file": upload(by_speaker[speaker][0], condition)},
                ).json()
                if r["code"] == 0:
                    enrolled[speaker] = r["data"]["id"]
                else:
                    refused += 1
            for speaker, feature in enrolled.items():
                for u in by_speaker[speaker][1:]:
                    scores = identify(client, group, upload(u, condition), len(enrolled))
                    if scores is None:
                        refused += 1
                        continue
                    genuine += 1
                    own = scores[feature]
                    target.append(own)
                    nontarget.extend(s for f, s in scores.items() if f != feature)
                    correct += max(scores, key=scores.__getitem__) == feature
                    rejected += own < 50
            outsiders = [u for s, us in by_speaker.items() if s not in members for u in us]
            for u in outsiders:
                scores = identify(client, group, upload(u, condition), len(enrolled))
                if scores is None:
                    refused += 1
                    continue
                strangers += 1
                nontarget.extend(scores.values())
                accepted += max(scores.values()) >= 50
            client.delete(f"{PREFIX}/{group}")
    set_eer, _ = eer(np.array(target), np.array(nontarget)) if target else (float("nan"), 0)
    return {
        "set": name,
        "speakers": len(eligible),
        "genuine_probes": genuine,
        "stranger_probes": strangers,
        "refused": refused,
        "trials": [len(target), len(nontarget)],
        "eer": set_eer,
        "top1": correct / genuine if genuine else None,
        "false_reject": rejected / genuine if genuine else None,
        "stranger_accept": accepted / strangers if strangers else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--condition", choices=CONDITIONS, default=AS_RECORDED)
    parser.add_argument("--sets", nargs="+", default=list(SETS))
    args = parser.parse_args()

    settings = get_settings()
    paths = ModelPaths(settings.model_dir, model_spec(settings.model))
    left_out = set(Calibration.load(paths.calibration).speakers)
    corpus = [u for u in load_corpus(INDEX) if f"{u.set}/{u.speaker}" not in left_out]
    rows = []
    with bench_server() as server:
        for name in args.sets:
            in_set = [u for u in corpus if u.set == name]
            rows.append(evaluate_set(server, name, in_set, args.condition))
            print(f"done: {name}", flush=True)

    def pct(value: object) -> str:
        return "-" if value is None else f"{100 * float(value):.1f} %"  # type: ignore[arg-type]

    print(f"model {settings.model}, audio {args.condition}, groups of {GROUP_SIZE}, one recording")
    print(
        "| set | speakers | trials (same / diff) | EER | top-1 (probes) | rejected at 50 "
        "| strangers accepted at 50 | refused |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        t, n = r["trials"]  # type: ignore[misc]
        print(
            f"| {r['set']} | {r['speakers']} | {t} / {n} | {pct(r['eer'])} | {pct(r['top1'])} "
            f"({r['genuine_probes']}) | {pct(r['false_reject'])} | {pct(r['stranger_accept'])} "
            f"of {r['stranger_probes']} | {r['refused']} |"
        )
    out = ROOT / f"bench/results/api_accuracy-{settings.model}-{args.condition}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {"model": settings.model, "condition": args.condition, "sets": rows}
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
