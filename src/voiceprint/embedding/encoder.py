"""The speaker encoder: 16 kHz waveform in, 192-dim ECAPA embedding out.

One ``SpeakerEncoder`` is created per process and shared: ONNX Runtime
sessions are thread-safe, so callers may run ``embed`` from a thread pool
(e.g. ``asyncio.to_thread``) without blocking an event loop or taking a lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
from threadpoolctl import threadpool_limits

from voiceprint.embedding.features import fbank
from voiceprint.embedding.provision import ECAPA_MODEL_ID

# Conv layers reflect-pad by up to 4 frames, which needs at least 5 frames (40 ms).
MIN_SAMPLES = 800


def _providers() -> list[str]:
    available = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


class SpeakerEncoder:
    model_id = ECAPA_MODEL_ID
    dim = 192

    def __init__(self, onnx_path: Path, *, threads: int | None = None) -> None:
        # numpy's BLAS threads busy-wait after each call and take the cores ONNX Runtime
        # needs (a 3 s clip went from 82 to 145 ms); the numpy work here is tiny, so one
        # BLAS thread serves it best. This is process-wide, as BLAS thread pools are.
        threadpool_limits(limits=1, user_api="blas")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(onnx_path), options, providers=_providers())

    @property
    def device(self) -> str:
        return "cuda" if "CUDAExecutionProvider" in self._session.get_providers() else "cpu"

    def embed(self, wave: np.ndarray) -> np.ndarray:
        """Embedding of one clip (float32 [192], not length-normalised)."""
        return self.embed_batch([wave])[0]

    def embed_batch(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        """Embeddings of several clips at once (float32 [n, 192]).

        Clips are padded to the longest; the network masks the padding, as
        SpeechBrain does for a padded batch.
        """
        if not waves:
            return np.zeros((0, self.dim), dtype=np.float32)
        for wave in waves:
            if len(wave) < MIN_SAMPLES:
                raise ValueError(f"clip of {len(wave)} samples is too short to embed")
        feats = [fbank(w) for w in waves]
        frames = max(f.shape[0] for f in feats)
        batch = np.zeros((len(feats), frames, feats[0].shape[1]), dtype=np.float32)
        for i, f in enumerate(feats):
            batch[i, : f.shape[0]] = f
        lengths = np.array([f.shape[0] / frames for f in feats], dtype=np.float32)
        (embeddings,) = self._session.run(["embedding"], {"feats": batch, "lengths": lengths})
        return embeddings
