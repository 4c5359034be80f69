"""The speaker encoder: 16 kHz waveform in, 192-dim embedding out, for any model in ``models``.

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

from voiceprint.embedding.models import ModelSpec
from voiceprint.memory import unmap_large_blocks

# ONNX Runtime's memory arena keeps what its largest run took until the process ends:
# after one 20 s clip the process held 85 MB more than after 3 s ones. A run over this
# many feature frames (12 s of speech, one clip or a batch: the diarizer batches eight
# 1.5 s windows) gives its share back as it ends, about 10 % slower; runs of a usual
# probe keep theirs and run at full speed.
KEEP_FRAMES = 1200

# The shortest clip either network can embed: ECAPA reflect-pads its convs by up to
# 4 frames (needs 5 frames); CAM++ needs 3 frames for a standard deviation after its
# stride-2 layer. 800 samples (50 ms) gives both enough.
MIN_SAMPLES = 800


def _providers() -> list[str]:
    available = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


class SpeakerEncoder:
    def __init__(
        self,
        onnx_path: Path,
        spec: ModelSpec,
        *,
        threads: int | None = None,
        spinning: bool = False,
    ) -> None:
        # numpy's BLAS threads busy-wait after each call and take the cores ONNX Runtime
        # needs (a 3 s clip went from 82 to 145 ms); the numpy work here is tiny, so one
        # BLAS thread serves it best. This is process-wide, as BLAS thread pools are.
        threadpool_limits(limits=1, user_api="blas")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # ONNX Runtime's pool threads busy-wait for the next piece of work by default. In a
        # server they then burn the cores that HTTP, the database and the next request's
        # decoding need, and on shared cores they wait for a preempted peer: spinning
        # doubled the server's CPU per identify (bench/api_load.py, README).
        options.add_session_config_entry("session.intra_op.allow_spinning", str(int(spinning)))
        self.spec = spec
        self._session = ort.InferenceSession(str(onnx_path), options, providers=_providers())
        self._shrinking = ort.RunOptions()
        self._shrinking.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        # What the arena gives back then leaves the process only if glibc unmaps it.
        unmap_large_blocks()

    @property
    def model_id(self) -> str:
        return self.spec.model_id

    @property
    def dim(self) -> int:
        return self.spec.dim

    @property
    def device(self) -> str:
        return "cuda" if "CUDAExecutionProvider" in self._session.get_providers() else "cpu"

    def embed(self, wave: np.ndarray) -> np.ndarray:
        """Embedding of one clip (float32 [192], not length-normalised)."""
        return self.embed_batch([wave])[0]

    def embed_batch(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        """Embeddings of several clips (float32 [n, 192]), each as if embedded alone.

        A model that masks padding gets one padded batch (as SpeechBrain pads one);
        otherwise clips of equal length are batched together.
        """
        for wave in waves:
            if len(wave) < MIN_SAMPLES:
                raise ValueError(f"clip of {len(wave)} samples is too short to embed")
        feats = [self.spec.features(w) for w in waves]
        out = np.zeros((len(feats), self.dim), dtype=np.float32)
        if not feats:
            return out
        if self.spec.masks_padding:
            out[:] = self._run_padded(feats)
            return out
        for frames in {f.shape[0] for f in feats}:
            rows = [i for i, f in enumerate(feats) if f.shape[0] == frames]
            out[rows] = self._run({"feats": np.stack([feats[i] for i in rows])})
        return out

    def _run_padded(self, feats: list[np.ndarray]) -> np.ndarray:
        frames = max(f.shape[0] for f in feats)
        batch = np.zeros((len(feats), frames, feats[0].shape[1]), dtype=np.float32)
        for i, f in enumerate(feats):
            batch[i, : f.shape[0]] = f
        lengths = np.array([f.shape[0] / frames for f in feats], dtype=np.float32)
        return self._run({"feats": batch, "lengths": lengths})

    def _run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        clips, frames, _ = feeds["feats"].shape
        give_back = self._shrinking if clips * frames > KEEP_FRAMES else None
        (embeddings,) = self._session.run(["embedding"], feeds, give_back)
        return embeddings
