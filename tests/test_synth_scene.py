import math

import numpy as np
import pytest

from trainers.data.synth_scene import (
    APPEARANCE_CLASSES,
    APPEARANCE_MIRROR,
    APPEARANCE_REVERSE,
    MOTION_CLASSES,
    MOTION_MIRROR,
    MOTION_REVERSE,
    SceneConfig,
    motion_class_from_states,
    render_clip,
)

M = {name: i for i, name in enumerate(MOTION_CLASSES)}
PLAIN = SceneConfig(distractor=False, background=False, noise_std=0.0, camera_drift=False)
T, S = 16, 64


def mirrored_states(states: np.ndarray, size: int) -> np.ndarray:
    out = states.copy()
    out[:, 0] = size - 1 - out[:, 0]
    out[:, 2] = -out[:, 2]
    return out


def object_weights(frames: np.ndarray) -> np.ndarray:
    """Binary object pixels of a plain scene (uniform background, no noise), from the pixels alone."""
    bg = np.median(frames.reshape(len(frames), -1, 3), axis=1)[:, None, None, :]
    return (np.abs(frames.astype(np.float64) - bg).sum(-1) > 10.0).astype(np.float64)


def centroids(weights: np.ndarray) -> np.ndarray:
    """(T, 2) x, y centroids of (T, H, W) weights; x is the column index, y the row index."""
    ys, xs = np.mgrid[0 : weights.shape[1], 0 : weights.shape[2]]
    total = weights.sum(axis=(1, 2))
    return np.stack([(weights * xs).sum(axis=(1, 2)) / total, (weights * ys).sum(axis=(1, 2)) / total], 1)


def principal_angle(weights: np.ndarray) -> np.ndarray:
    """Orientation of the long axis from second moments, in the y-down atan2(dy, dx) convention."""
    ys, xs = np.mgrid[0 : weights.shape[1], 0 : weights.shape[2]]
    c = centroids(weights)
    dx = xs[None] - c[:, 0, None, None]
    dy = ys[None] - c[:, 1, None, None]
    mu20, mu02, mu11 = ((weights * v).sum(axis=(1, 2)) for v in (dx * dx, dy * dy, dx * dy))
    return 0.5 * np.arctan2(2.0 * mu11, mu20 - mu02)


def wrap_half_pi(a: np.ndarray) -> np.ndarray:
    return (a + math.pi / 2) % math.pi - math.pi / 2


def test_class_tables_match_the_declared_symmetries():
    assert len(APPEARANCE_CLASSES) == 10 and len(MOTION_CLASSES) == 10
    assert APPEARANCE_CLASSES[:2] == ("rectangle_solid", "rectangle_striped")
    assert APPEARANCE_MIRROR == APPEARANCE_REVERSE == tuple(range(10))
    for table in (MOTION_MIRROR, MOTION_REVERSE):
        assert all(table[table[c]] == c for c in range(10))
    assert MOTION_MIRROR[M["move_right"]] == M["move_left"] and MOTION_MIRROR[M["move_up"]] == M["move_up"]
    assert MOTION_REVERSE[M["move_up"]] == M["move_down"] and MOTION_REVERSE[M["grow"]] == M["shrink"]
    assert MOTION_MIRROR[M["rotate_cw"]] == MOTION_REVERSE[M["rotate_cw"]] == M["rotate_ccw"]
    assert MOTION_MIRROR[M["right_then_left"]] == M["left_then_right"]
    assert MOTION_REVERSE[M["right_then_left"]] == M["right_then_left"]


def test_shapes_dtypes_and_determinism():
    clip = render_clip(3, 5, 7, T, 48)
    assert clip.frames.shape == (T, 48, 48, 3) and clip.frames.dtype == np.uint8
    assert clip.object_mask.shape == (T, 48, 48) and clip.object_mask.dtype == np.float32
    assert clip.states.shape == (T, 4) and clip.states.dtype == np.float64
    assert 0.0 <= clip.object_mask.min() and clip.object_mask.max() <= 1.0
    again = render_clip(3, 5, 7, T, 48)
    for a, b in ((clip.frames, again.frames), (clip.object_mask, again.object_mask), (clip.states, again.states)):
        assert np.array_equal(a, b)
    seq = np.random.SeedSequence(7)
    first, second = render_clip(3, 5, seq, T, 48), render_clip(3, 5, seq, T, 48)
    assert np.array_equal(first.frames, second.frames)  # the caller's SeedSequence is not consumed
    other = render_clip(3, 5, 8, T, 48)
    assert not np.array_equal(clip.frames, other.frames)
    assert not np.array_equal(clip.states, other.states)
    with pytest.raises(ValueError):
        render_clip(10, 0, 0, T, 48)


@pytest.mark.parametrize("motion", range(10))
def test_oracle_recovers_label_reversal_and_mirror(motion):
    for seed in range(6):
        states = render_clip(seed % 10, motion, seed, T, S).states
        assert motion_class_from_states(states) == motion
        assert motion_class_from_states(states[::-1]) == MOTION_REVERSE[motion]
        assert motion_class_from_states(mirrored_states(states, S)) == MOTION_MIRROR[motion]


def test_paired_classes_are_exact_reversal_and_mirror_twins():
    right, left = render_clip(4, M["move_right"], 11, T, S), render_clip(4, M["move_left"], 11, T, S)
    assert np.array_equal(left.frames, right.frames[::-1])
    assert np.array_equal(left.object_mask, right.object_mask[::-1])
    out, back = render_clip(4, M["right_then_left"], 11, T, S), render_clip(4, M["left_then_right"], 11, T, S)
    assert np.array_equal(back.frames, out.frames[:, :, ::-1])
    assert np.allclose(back.states[:, 0], S - 1 - out.states[:, 0])


@pytest.mark.parametrize("name", ["move_right", "move_left", "move_up", "move_down"])
def test_mask_centroid_moves_in_labelled_direction_and_mirrors(name):
    want = {"move_right": (1, 0), "move_left": (-1, 0), "move_up": (0, -1), "move_down": (0, 1)}
    for seed in range(4):
        clip = render_clip(seed, M[name], seed, T, S, PLAIN)
        step = centroids(clip.object_mask)[-1] - centroids(clip.object_mask)[0]
        assert np.allclose(np.sign(np.round(step / 4.0)), want[name]), step  # >= 2 px along, < 2 across
        assert np.linalg.norm(step) > 0.15 * S
        flipped = centroids(object_weights(np.flip(clip.frames, axis=2)))
        fstep = flipped[-1] - flipped[0]
        mirror = want[MOTION_CLASSES[MOTION_MIRROR[M[name]]]]
        assert np.allclose(np.sign(np.round(fstep / 4.0)), mirror), fstep


@pytest.mark.parametrize("name", ["right_then_left", "left_then_right"])
def test_out_and_back_pixels(name):
    sign = 1 if name == "right_then_left" else -1
    for seed in range(4):
        clip = render_clip(seed, M[name], seed, T, S, PLAIN)
        cx = centroids(clip.object_mask)[:, 0]
        assert sign * (cx[T // 2] - cx[0]) > 0.12 * S and sign * (cx[T // 2] - cx[-1]) > 0.12 * S
        assert abs(cx[-1] - cx[0]) < 2.0
        fx = centroids(object_weights(np.flip(clip.frames, axis=2)))[:, 0]
        assert -sign * (fx[T // 2] - fx[0]) > 0.12 * S


def test_mask_area_grows_and_shrinks():
    for seed in range(4):
        grow = render_clip(seed, M["grow"], seed, T, S, PLAIN).object_mask.sum(axis=(1, 2))
        shrink = render_clip(seed, M["shrink"], seed + 50, T, S, PLAIN).object_mask.sum(axis=(1, 2))
        assert grow[-1] > 1.4 * grow[0] and np.all(np.diff(grow) > -1.0)
        assert shrink[0] > 1.4 * shrink[-1] and np.all(np.diff(shrink) < 1.0)


@pytest.mark.parametrize("name", ["rotate_cw", "rotate_ccw"])
def test_rectangle_principal_axis_turns_with_labelled_sign(name):
    sign = 1 if name == "rotate_cw" else -1  # clockwise on screen = increasing atan2(dy, dx), y down
    for appearance in (0, 1):
        for seed in range(4):
            clip = render_clip(appearance, M[name], seed, T, S, PLAIN)
            phi = principal_angle(clip.object_mask)
            turn = wrap_half_pi(phi[3] - phi[0])
            assert sign * turn > math.radians(6), turn
            # The rectangle's long axis is its local x axis, so the moments see the state angle (mod pi).
            assert np.abs(wrap_half_pi(phi - clip.states[:, 2])).max() < 0.1
            mirror = principal_angle(object_weights(np.flip(clip.frames, axis=2)))
            assert -sign * wrap_half_pi(mirror[3] - mirror[0]) > math.radians(6)


def test_rotation_speed_stays_below_half_the_symmetry_angle_at_step_two():
    for seed in range(20):
        angle = render_clip(seed % 10, M["rotate_cw"] + seed % 2, seed, T, 32).states[:, 2]
        per_frame = np.abs(np.diff(angle))
        assert per_frame.min() >= math.radians(3) - 1e-9 and 2 * per_frame.max() < math.radians(36)


def test_main_object_is_large_and_stays_in_frame():
    coverage, inside = [], []
    for seed in range(40):
        clip = render_clip(seed % 10, seed % 10, seed, 8, S)
        coverage.append(clip.object_mask.mean())
        assert clip.object_mask.sum(axis=(1, 2)).min() > 0.02 * S * S  # never (almost) out of view
        xy = clip.states[:, :2]
        inside.append(np.all((xy >= 0) & (xy <= S - 1)))
    assert np.mean(coverage) > 0.05
    assert all(inside)


def test_camera_drift_is_small_against_object_motion():
    scene = SceneConfig()
    bound = scene.camera_drift_fraction * scene.translation[0] * S
    for seed in range(10):
        xy = render_clip(0, M["rotate_cw"], seed, T, S).states[:, :2]
        assert np.linalg.norm(xy[-1] - xy[0]) <= bound + 1e-9
        still = render_clip(0, M["rotate_cw"], seed, T, S, SceneConfig(camera_drift=False)).states[:, :2]
        assert np.ptp(still, axis=0).max() == 0.0
        moving = render_clip(0, M["move_right"], seed, T, S).states[:, :2]
        assert np.linalg.norm(moving[-1] - moving[0]) >= 0.25 * S - bound


def test_switches_change_the_scene_but_not_the_main_object():
    full = render_clip(6, M["grow"], 3, T, S)
    for change in (dict(distractor=False), dict(background=False), dict(noise_std=0.0)):
        other = render_clip(6, M["grow"], 3, T, S, SceneConfig(**change))
        assert np.array_equal(other.object_mask, full.object_mask)
        assert np.array_equal(other.states, full.states)
        assert not np.array_equal(other.frames, full.frames)
    plain = render_clip(6, M["grow"], 3, T, S, PLAIN)
    away = plain.frames[plain.object_mask == 0]
    assert len(np.unique(away, axis=0)) == 1  # a plain scene's background is one colour


@pytest.mark.parametrize("appearance", [0, 1, 8, 9])
def test_texture_solid_is_one_colour_striped_is_two(appearance):
    clip = render_clip(appearance, M["rotate_cw"], 5, 4, S, PLAIN)
    solid_core = clip.frames[clip.object_mask == 1.0]
    colours = np.unique(solid_core, axis=0)
    if appearance % 2 == 0:
        assert len(colours) == 1
    else:  # two stripe colours plus their anti-aliased blends; both extremes well represented
        lum = solid_core.astype(float) @ [0.299, 0.587, 0.114]
        lo, hi = lum.min(), lum.max()
        assert hi - lo > 30
        assert (lum < lo + 5).mean() > 0.2 and (lum > hi - 5).mean() > 0.2


@pytest.mark.parametrize("pair", [("move_right", "move_left"), ("right_then_left", "left_then_right")])
def test_single_frame_carries_no_direction_on_average(pair):
    """Independent samples of a mirror/reversal pair: frame positions match in law and sit on the
    frame centre on average (the mirror of one class is the other), although the first frames
    alone tell the direction apart: the statistic has the power to see a leak."""
    size, centre = 32, (32 - 1) / 2
    cx = {name: np.stack([centroids(render_clip(s % 10, M[name], base + s, 8, size, PLAIN).object_mask)[:, 0]
                          for s in range(200)]) for name, base in zip(pair, (0, 10_000))}
    one, two = cx[pair[0]], cx[pair[1]]
    assert abs(one.mean() - two.mean()) < 1.0  # standard error about 0.25 px
    assert abs(one.mean() - centre) < 0.8 and abs(two.mean() - centre) < 0.8
    assert abs(one.std() - two.std()) < 1.0
    assert two[:, 0].mean() - one[:, 0].mean() > 5.0  # first frames do differ


def test_single_frame_carries_no_size_trend_on_average():
    areas = {name: np.mean([render_clip(s % 10, M[name], base + s, 8, 32, PLAIN).object_mask.sum(axis=(1, 2))
                            for s in range(200)]) for name, base in (("grow", 0), ("shrink", 10_000))}
    assert abs(areas["grow"] / areas["shrink"] - 1.0) < 0.05


def test_oracle_on_handmade_trajectories():
    t = np.linspace(0.0, 1.0, 9)
    base = np.stack([np.full(9, 20.0), np.full(9, 20.0), np.zeros(9), np.full(9, 10.0)], 1)
    cases = {
        "move_right": (0, 15 * t), "move_up": (1, -15 * t),
        "right_then_left": (0, 15 * (1 - np.abs(2 * t - 1))), "rotate_ccw": (2, -t), "grow": (3, 10 * t),
    }
    for name, (column, delta) in cases.items():
        states = base.copy()
        states[:, column] += delta
        assert MOTION_CLASSES[motion_class_from_states(states)] == name


def test_world_motion_background_moves_rigidly_with_the_object():
    from trainers.data.synth_scene import _world_background

    size, dx = 24, 3
    states = np.zeros((3, 4))
    states[:, 0] = [8.0, 8.0 + dx, 8.0 + 2 * dx]  # the object translates right by dx pixels per frame
    states[:, 1], states[:, 3] = 12.0, 5.0
    sc = SceneConfig(world_motion=True, background_waves=12, background_cycles=(1.0, 6.0), background_pink=True)
    texture = _world_background(np.random.default_rng(0), states, size, sc)
    assert texture.shape == (3, size, size) and 0.2 < texture.std() < 1.0
    np.testing.assert_allclose(texture[1][:, dx:], texture[0][:, :-dx], atol=1e-5)  # moved with the object
    np.testing.assert_allclose(texture[2][:, 2 * dx:], texture[0][:, : -2 * dx], atol=1e-5)
    turned = states.copy()
    turned[:, 0], turned[:, 2] = 12.0, [0.0, math.pi / 2, math.pi]  # a quarter turn per frame about (12, 12)
    texture = _world_background(np.random.default_rng(0), turned, 25, sc)  # 25 px: (12, 12) is the centre
    np.testing.assert_allclose(texture[2], texture[0][::-1, ::-1], atol=1e-4)  # a half turn by frame 2
