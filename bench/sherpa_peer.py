"""A peer for bench/diarization.py: sherpa-onnx's offline diarization with the same models.

sherpa-onnx (pyannote segmentation-3.0 + a speaker embedding, clustered) reads
its settings from ONNX metadata, so the project's own segmentation-3.0 and
CAM++ files are copied with that metadata added; its clustering and duration
settings are those of its own examples. Not a project dependency: install it
with ``.venv/bin/pip install sherpa-onnx==2.0.1``; without it the bench says so
and skips the peer.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx

from voiceprint.audio.limits import SAMPLE_RATE
from voiceprint.embedding.provision import ModelPaths

NAME = "sherpa-onnx 2.0.1 (segmentation-3.0 + the same CAM++)"
INSTALL = ".venv/bin/pip install sherpa-onnx==2.0.1"


def _with_metadata(source: Path, target: Path, metadata: dict[str, object]) -> Path:
    model = onnx.load(str(source))
    for key, value in metadata.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, str(value)
    onnx.save(model, str(target))
    return target


class SherpaPeer:
    def __init__(self, paths: ModelPaths, threads: int = 2) -> None:
        import sherpa_onnx  # only here: the peer is optional

        folder = Path(tempfile.mkdtemp(prefix="voiceprint-sherpa-"))
        segmentation = _with_metadata(
            paths.segmentation_onnx,
            folder / "segmentation.onnx",
            {
                "model_type": "pyannote-segmentation-3.0",
                "version": 1,
                "num_speakers": 3,
                "powerset_max_classes": 2,
                "num_classes": 7,
                "sample_rate": SAMPLE_RATE,
                "window_size": 10 * SAMPLE_RATE,
                "receptive_field_size": 991,
                "receptive_field_shift": 270,
            },
        )
        embedding = _with_metadata(
            paths.embedding_onnx,
            folder / "embedding.onnx",
            {
                "framework": "3d-speaker",
                "sample_rate": SAMPLE_RATE,
                "output_dim": 192,
                "normalize_samples": 1,
                "feature_normalize_type": "global-mean",
                "language": "Chinese-English",
            },
        )
        config = sherpa_onnx.OfflineSpeakerDiarizationConfig(
            segmentation=sherpa_onnx.OfflineSpeakerSegmentationModelConfig(
                pyannote=sherpa_onnx.OfflineSpeakerSegmentationPyannoteModelConfig(
                    model=str(segmentation)
                ),
                num_threads=threads,
            ),
            embedding=sherpa_onnx.SpeakerEmbeddingExtractorConfig(
                model=str(embedding), num_threads=threads
            ),
            clustering=sherpa_onnx.FastClusteringConfig(num_clusters=-1, threshold=0.5),
            min_duration_on=0.3,
            min_duration_off=0.5,
        )
        if not config.validate():
            raise RuntimeError("sherpa-onnx refused its diarization config")
        self._diarizer = sherpa_onnx.OfflineSpeakerDiarization(config)

    def turns(self, wave: np.ndarray) -> list[tuple[int, int, str]]:
        result = self._diarizer.process(wave.astype(np.float32)).sort_by_start_time()
        return [
            (round(s.start * SAMPLE_RATE), round(s.end * SAMPLE_RATE), f"P{s.speaker}")
            for s in result
        ]


def peer(paths: ModelPaths) -> SherpaPeer | None:
    try:
        return SherpaPeer(paths)
    except ImportError:
        print(f"!! sherpa-onnx is not installed: the peer is skipped ({INSTALL})")
        return None
