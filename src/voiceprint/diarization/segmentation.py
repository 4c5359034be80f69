"""Local speakers, overlap included: pyannote segmentation-3.0 on ONNX Runtime.

The model reads 10 s of 16 kHz audio and gives, every 270 samples (16.9 ms),
log-probabilities of 7 powerset classes: nobody, one of three local speakers
alone, or two of them at once. "Local" means numbered within the window only;
the diarizer finds out who they are. Windows slide by ``STEP``; the last one
ends where the recording ends, and a recording shorter than a window is padded
with silence (which the model reads as nobody).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from voiceprint.audio.limits import SAMPLE_RATE

WINDOW = 10 * SAMPLE_RATE
# 5 s: every moment is seen by two windows. A 1 s step (pyannote's) read 5x the audio
# for no gain in DER on the AMI openings; the 10-minute budget could not hold it.
STEP = 5 * SAMPLE_RATE
FRAME_STEP = 270  # samples between the model's frames (SincNet's strides)
FRAME_SIZE = 991  # samples one frame sees
FRAME_OFFSET = (FRAME_SIZE - FRAME_STEP) // 2  # frame f stands for the FRAME_STEP around its centre
LOCAL_SPEAKERS = 3
# Which local speakers each powerset class holds.
POWERSET = np.array(
    [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1]], dtype=bool
)
BATCH = 2  # windows per inference: 8 ran 25 % faster and held 140 MB more on 10 minutes


@dataclass(frozen=True)
class Segmentation:
    starts: np.ndarray  # [windows]: the sample each window starts at
    activity: np.ndarray  # [windows, frames, LOCAL_SPEAKERS] bool: who speaks in each frame
    # [windows, frames, LOCAL_SPEAKERS]: the probability that each speaks (sum of the classes
    # that hold them), which ranks speakers where windows disagree
    speaking: np.ndarray

    @property
    def frames(self) -> int:
        return self.activity.shape[1]

    def frame_samples(self, window: int) -> np.ndarray:
        """The first sample each frame of ``window`` stands for."""
        return self.starts[window] + FRAME_OFFSET + FRAME_STEP * np.arange(self.frames)


def window_starts(length: int) -> np.ndarray:
    if length <= WINDOW:
        return np.zeros(1, dtype=np.int64)
    starts = list(range(0, length - WINDOW + 1, STEP))
    if length - WINDOW - starts[-1] < FRAME_STEP:
        # A window less than a frame later would hear the same frames again (a 30 s
        # recording of 480,001 samples read its last 10 s twice): this one ends it instead.
        starts[-1] = length - WINDOW
    else:
        starts.append(length - WINDOW)
    return np.array(starts, dtype=np.int64)


class Segmenter:
    def __init__(
        self, onnx_path: Path, *, threads: int | None = None, spinning: bool = False
    ) -> None:
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        # As for the speaker encoder: idle pool threads sleep (VOICEPRINT_INFERENCE_SPINNING).
        options.add_session_config_entry("session.intra_op.allow_spinning", str(int(spinning)))
        self._session = ort.InferenceSession(
            str(onnx_path), options, providers=["CPUExecutionProvider"]
        )

    def log_probs(self, windows: np.ndarray) -> np.ndarray:
        """[windows, WINDOW] audio -> [windows, frames, 7] powerset log-probabilities."""
        rows = [
            self._session.run(None, {"input": windows[i : i + BATCH, None, :]})[0]
            for i in range(0, len(windows), BATCH)
        ]
        return np.concatenate(rows)

    def activity(self, wave: np.ndarray) -> np.ndarray:
        """Who speaks in each frame of ``wave`` (a window at most; the live stream's few
        seconds are read as they are, which costs in proportion to their length):
        [frames, LOCAL_SPEAKERS] bool."""
        if len(wave) < FRAME_SIZE:
            return np.zeros((0, LOCAL_SPEAKERS), dtype=bool)
        probs = self.log_probs(np.ascontiguousarray(wave[None, :WINDOW], dtype=np.float32))
        return POWERSET[probs[0].argmax(axis=-1)]

    def segment(self, wave: np.ndarray) -> Segmentation:
        starts = window_starts(len(wave))
        padded = np.zeros(int(starts[-1]) + WINDOW, np.float32)
        padded[: len(wave)] = wave
        # A batch at a time: the whole recording's windows at once held 5x its audio.
        probs = np.exp(
            np.concatenate([
                self.log_probs(np.stack([padded[s : s + WINDOW] for s in starts[i : i + BATCH]]))
                for i in range(0, len(starts), BATCH)
            ])
        )  # fmt: skip
        return Segmentation(
            starts, POWERSET[probs.argmax(axis=-1)], probs @ POWERSET.astype(np.float32)
        )
