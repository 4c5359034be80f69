"""Embedding speed and memory: voiceprint's ONNX engine, and SpeechBrain's torch side by side.

Each engine runs in its own process (so peak RSS is its own) on the same real
speech, cut to 3 s and 10 s, with the same thread count. Prints a table and
writes bench/results/embedding_speed.json.

    .venv/bin/python bench/embedding_speed.py [--threads 2] [--speechbrain-python PY]

``--speechbrain-python`` names the interpreter of the optional reference
environment (see bench/speechbrain_reference.py); without it only ONNX runs.
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


def worker_onnx(threads: int) -> dict[str, float]:
    from voiceprint.config import get_settings
    from voiceprint.embedding.encoder import SpeakerEncoder
    from voiceprint.embedding.provision import pull_models

    paths = pull_models(get_settings().model_dir, progress=False)
    start = time.perf_counter()
    encoder = SpeakerEncoder(paths.embedding_onnx, threads=threads)
    load_ms = (time.perf_counter() - start) * 1000
    three, ten = _clip(3), _clip(10)
    batch = [three] * BATCH
    return {
        "load_ms": load_ms,
        "ms_3s": _time(lambda: encoder.embed(three)),
        "ms_10s": _time(lambda: encoder.embed(ten)),
        "batch_ms": _time(lambda: encoder.embed_batch(batch), repeats=10),
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


def _run_worker(python: str, kind: str, threads: int, env: dict[str, str]) -> dict[str, float]:
    result = subprocess.run(
        [python, __file__, "--worker", kind, "--threads", str(threads)],
        capture_output=True,
        text=True,
        env={**os.environ, **env, "PYTHONPATH": str(ROOT / "src")},
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--speechbrain-python", help="interpreter with torch + speechbrain")
    parser.add_argument(
        "--speechbrain-files", help="folder with the checkpoint files SpeechBrain loads"
    )
    parser.add_argument("--worker", choices=["onnx", "speechbrain"], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/embedding_speed.json")
    args = parser.parse_args()

    if args.worker == "onnx":
        print(json.dumps(worker_onnx(args.threads)))
        return
    if args.worker == "speechbrain":
        print(json.dumps(worker_speechbrain(args.threads)))
        return

    results = {"onnx (voiceprint)": _run_worker(sys.executable, "onnx", args.threads, {})}
    if args.speechbrain_python:
        env = {"VOICEPRINT_SPEECHBRAIN_FILES": args.speechbrain_files or ""}
        results["torch (SpeechBrain)"] = _run_worker(
            args.speechbrain_python, "speechbrain", args.threads, env
        )

    print(f"{os.cpu_count()} CPUs, {args.threads} threads; medians of {REPEATS} runs")
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
    if len(results) == 2:
        onnx, torch_ = results.values()
        print(f"3 s clip: ONNX takes {onnx['ms_3s'] / torch_['ms_3s']:.2f}x SpeechBrain's time")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"threads": args.threads, "results": results}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
