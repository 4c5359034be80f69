import numpy as np

from voiceprint.audio.limits import SAMPLE_RATE
from voiceprint.audio.stream import StreamAudio


def test_slices_by_stream_offset_across_growth_and_trims() -> None:
    whole = np.arange(40 * SAMPLE_RATE, dtype=np.float32)
    audio = StreamAudio()
    kept_from = 0
    earlier: list[tuple[np.ndarray, np.ndarray]] = []
    rng = np.random.default_rng(0)
    for piece in np.array_split(whole, 397):  # uneven pieces, about 100 ms each
        audio.append(piece)
        if rng.random() < 0.1:
            kept_from = int(rng.integers(kept_from, audio.end + 1))
            audio.trim(kept_from)
        start = int(rng.integers(kept_from, audio.end))
        view = audio.slice(start, start + SAMPLE_RATE)
        np.testing.assert_array_equal(view, whole[start : min(start + SAMPLE_RATE, audio.end)])
        earlier.append((view, view.copy()))
    assert audio.end == len(whole)
    # What was sliced earlier still holds the same samples after later growth and trims.
    for view, copy in earlier:
        np.testing.assert_array_equal(view, copy)


def test_a_slice_is_clipped_to_the_samples_kept() -> None:
    audio = StreamAudio()
    audio.append(np.arange(3 * SAMPLE_RATE, dtype=np.float32))
    audio.trim(SAMPLE_RATE)
    np.testing.assert_array_equal(
        audio.slice(0, SAMPLE_RATE + 5), np.arange(SAMPLE_RATE, SAMPLE_RATE + 5)
    )
    assert len(audio.slice(2 * SAMPLE_RATE, 10 * SAMPLE_RATE)) == SAMPLE_RATE
    audio.trim(10 * SAMPLE_RATE)  # beyond the end: everything is let go, offsets stay right
    audio.append(np.ones(10, np.float32))
    assert audio.end == 3 * SAMPLE_RATE + 10
    np.testing.assert_array_equal(audio.slice(3 * SAMPLE_RATE, audio.end), np.ones(10))


def test_memory_is_given_back_after_a_long_turn() -> None:
    audio = StreamAudio()
    for _ in range(600):  # a minute of continuous speech
        audio.append(np.zeros(SAMPLE_RATE // 10, np.float32))
    held = audio._data.nbytes
    assert held >= 60 * SAMPLE_RATE * 4
    audio.trim(audio.end - SAMPLE_RATE // 2)
    assert audio._data.nbytes <= 4 * SAMPLE_RATE * 4
