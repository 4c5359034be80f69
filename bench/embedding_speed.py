"""Embedding speed and memory: voiceprint's ONNX engine and the model's own torch side by side.

Each engine runs in its own process (so peak RSS is its own) on the same real
speech, cut to 3 s and 10 s, with the same thread count. The ONNX row also
times the VAD on a 5 s clip. Prints a table and writes
bench/results/embedding_speed-<model>.json.

    .venv/bin/python bench/embedding_speed.py [--model campplus-zh-en] [--threads 2] \
        [--reference-python PY (--campplus-checkpoint FILE | --speechbrain-files DIR)]

``--reference-python`` names the interpreter of the optional reference
environment of the model (bench/campplus_reference.py: 3D-Speaker's CAM++ with
Kaldi fbank; bench/speechbrain_reference.py: SpeechBrain's ECAPA); without it
only ONNX runs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
SPEECH = DATA / "librispeech/1688/1688-142285-0000.flac"  # 15 s of read speech
RATE = 16_000
REPEATS = 30
BATCH = 8


def _clip(seconds: float) -> np.ndarray:
    wave, rate = soundfile.read(SPEECH, dtype="float32")
    assert rate == RATE
    return wave[: int(seconds * RATE)]


def _time(fn, repeats: int = REPEATS) -> float:  # type: ignore[no-untyped-def]
    fn()
    fn()  # warm-up
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_onnx(model: str, threads: int) -> dict[str, float]:
    from voiceprint.audio.vad import SpeechDetector
    from voiceprint.config import get_settings
    from voiceprint.embedding.encoder import SpeakerEncoder
    from voiceprint.embedding.provision import pull_models

    paths = pull_models(get_settings().model_dir, model, progress=False)
    start = time.perf_counter()
    encoder = SpeakerEncoder(paths.embedding_onnx, paths.spec, threads=threads)
    load_ms = (time.perf_counter() - start) * 1000
    detector = SpeechDetector(paths.vad_onnx)
    three, five, ten = _clip(3), _clip(5), _clip(10)
    batch = [three] * BATCH
    return {
        "load_ms": load_ms,
        "ms_3s": _time(lambda: encoder.embed(three)),
        "ms_10s": _time(lambda: encoder.embed(ten)),
        "batch_ms": _time(lambda: encoder.embed_batch(batch), repeats=10),
        "vad_5s_ms": _time(lambda: detector.segments(five)),
        "peak_rss_mb": _peak_rss_mb(),
    }


def worker_campplus(threads: int) -> dict[str, float]:
    # Imported before the clock starts, so "load" is the model's alone, as for ONNX.
    import torch

    from campplus_reference import load_campplus, reference_fbank

    torch.set_num_threads(threads)
    start = time.perf_counter()
    model = load_campplus(Path(os.environ["VOICEPRINT_CAMPPLUS_CHECKPOINT"]))
    load_ms = (time.perf_counter() - start) * 1000
    three, ten = _clip(3), _clip(10)

    def embed(wave: np.ndarray, n: int = 1) -> None:
        feats = torch.from_numpy(reference_fbank(wave).astype(np.float32))[None]
        model(feats.repeat(n, 1, 1))

    with torch.inference_mode():
        return {
            "load_ms": load_ms,
            "ms_3s": _time(lambda: embed(three)),
            "ms_10s": _time(lambda: embed(ten)),
            "batch_ms": _time(lambda: embed(three, BATCH), repeats=10),
            "peak_rss_mb": _peak_rss_mb(),
        }


def worker_speechbrain(threads: int) -> dict[str, float]:
    import tempfile

    # Imported before the clock starts, so "load" is the model's alone, as for ONNX.
    import speechbrain.inference.speaker  # noqa: F401
    import torch

    from speechbrain_reference import load_speechbrain

    torch.set_num_threads(threads)
    files = Path(os.environ["VOICEPRINT_SPEECHBRAIN_FILES"])
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        model = load_speechbrain(files, Path(tmp))
        load_ms = (time.perf_counter() - start) * 1000
        three, ten = torch.from_numpy(_clip(3))[None], torch.from_numpy(_clip(10))[None]
        batch = three.repeat(BATCH, 1)
        with torch.inference_mode():
            return {
                "load_ms": load_ms,
                "ms_3s": _time(lambda: model.encode_batch(three)),
                "ms_10s": _time(lambda: model.encode_batch(ten)),
                "batch_ms": _time(lambda: model.encode_batch(batch), repeats=10),
                "peak_rss_mb": _peak_rss_mb(),
            }


def _run_worker(
    python: str, kind: str, model: str, threads: int, env: dict[str, str]
) -> dict[str, float]:
    result = subprocess.run(
        [python, __file__, "--worker", kind, "--model", model, "--threads", str(threads)],
        capture_output=True,
        text=True,
        env={**os.environ, **env, "PYTHONPATH": str(ROOT / "src")},
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="default: VOICEPRINT_MODEL")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reference-python", help="interpreter of the reference environment")
    parser.add_argument("--campplus-checkpoint", help="3D-Speaker's CAM++ state dict (.pt)")
    parser.add_argument("--speechbrain-files", help="folder of SpeechBrain's ECAPA checkpoint")
    parser.add_argument(
        "--worker", choices=["onnx", "speechbrain", "campplus"], help=argparse.SUPPRESS
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    if args.worker:
        workers = {
            "onnx": lambda: worker_onnx(args.model, args.threads),
            "speechbrain": lambda: worker_speechbrain(args.threads),
            "campplus": lambda: worker_campplus(args.threads),
        }
        print(json.dumps(workers[args.worker]()))
        return

    from voiceprint.config import get_settings

    args.model = args.model or get_settings().model
    results = {
        "onnx (voiceprint)": _run_worker(sys.executable, "onnx", args.model, args.threads, {})
    }
    if args.reference_python:
        if args.model == "ecapa-voxceleb":
            name, kind = "torch (SpeechBrain)", "speechbrain"
            env = {"VOICEPRINT_SPEECHBRAIN_FILES": args.speechbrain_files or ""}
        else:
            name, kind = "torch (3D-Speaker)", "campplus"
            env = {"VOICEPRINT_CAMPPLUS_CHECKPOINT": args.campplus_checkpoint or ""}
        results[name] = _run_worker(args.reference_python, kind, args.model, args.threads, env)

    print(f"{args.model}: {os.cpu_count()} CPUs, {args.threads} threads; medians of {REPEATS} runs")
    print(
        f"| engine | load | 3 s clip | 10 s clip | real-time factor (10 s) "
        f"| batch of {BATCH} x 3 s | clips/s (batch) | peak RSS |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| {name} | {r['load_ms']:.0f} ms | {r['ms_3s']:.1f} ms | {r['ms_10s']:.1f} ms "
            f"| {r['ms_10s'] / 10000:.4f} | {r['batch_ms']:.0f} ms "
            f"| {BATCH / r['batch_ms'] * 1000:.1f} | {r['peak_rss_mb']:.0f} MB |"
        )
    onnx = results["onnx (voiceprint)"]
    print(f"VAD (Silero) on a 5 s clip: {onnx['vad_5s_ms']:.1f} ms")
    if len(results) == 2:
        reference = list(results.values())[1]
        for key, label in (("ms_3s", "3 s"), ("ms_10s", "10 s")):
            print(
                f"{label} clip: ONNX takes {onnx[key] / reference[key]:.2f}x the reference's time"
            )
    out = args.out or ROOT / f"bench/results/embedding_speed-{args.model}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps({"model": args.model, "threads": args.threads, "results": results}, indent=2)
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
