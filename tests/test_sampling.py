import numpy as np
import pytest

from trainers.data.sampling import clip_span, frame_indices


def test_eval_takes_the_centre():
    indices, short = frame_indices(100, 16, 4, random_start=False)
    assert not short
    span = clip_span(16, 4)
    assert indices[0] == (100 - span) // 2 and np.all(np.diff(indices) == 4)


def test_train_start_is_random_and_in_range():
    rng = np.random.default_rng(0)
    starts = set()
    for _ in range(200):
        indices, _ = frame_indices(40, 8, 2, random_start=True, rng=rng)
        assert indices[0] >= 0 and indices[-1] < 40 and np.all(np.diff(indices) == 2)
        starts.add(int(indices[0]))
    assert starts == set(range(40 - clip_span(8, 2) + 1))


def test_short_video_pads_with_its_last_strided_frame():
    indices, short = frame_indices(7, 6, 2, random_start=True, rng=np.random.default_rng(0), short_clip="pad")
    assert short and indices.tolist() == [0, 2, 4, 6, 6, 6]
    indices, _ = frame_indices(6, 6, 2, random_start=False, short_clip="pad")
    assert indices.tolist() == [0, 2, 4, 4, 4, 4]


def test_short_video_loops():
    indices, short = frame_indices(5, 6, 2, random_start=False, short_clip="loop")
    assert short and indices.tolist() == [0, 2, 4, 1, 3, 0]


def test_no_frames_is_an_error():
    with pytest.raises(ValueError):
        frame_indices(0, 4, 1, random_start=False)
