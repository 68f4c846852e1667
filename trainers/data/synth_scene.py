"""Procedural synthetic video clips that stand in for K400 (appearance) and SSv2 (motion).

Every clip carries two labels:

* appearance (K400-like): the main object's identity, shape x texture. Five achiral shapes whose
  outline shows their rotation (rectangle, isosceles triangle, plus-cross, 5-point star, arrow),
  each "solid" or "striped"; stripes live in the object's local frame and rotate with it. Colour
  is a per-clip nuisance, always chosen to contrast with the background.
* motion (SSv2-like): how the main object moves (MOTION_CLASSES).

Image convention: frames are (T, H, W, 3) RGB uint8, x is the column index (to the right), y the
row index (DOWNWARDS); pixel (row i, column j) has its centre at (x=j, y=i). "up" means decreasing
y. Angles are measured with atan2(dy, dx) in these pixel coordinates, so an increasing angle is a
CLOCKWISE turn on screen; rotate_cw has an increasing angle. A horizontal mirror maps x to
size-1-x (np.flip on the W axis) and an angle a to pi-a (every shape is symmetric about its local
x axis), which turns clockwise into counter-clockwise.

The single-frame guarantee. A motion class must not be readable from any single frame, so each
class is rendered from a canonical generator through the symmetry that defines it:
move_left, move_down, rotate_ccw and shrink are the EXACT time reversal (frame order reversed,
distractors, background, camera drift and noise included) of a sample of move_right, move_up,
rotate_cw and grow drawn from the same seed; left_then_right is the exact horizontal mirror of a
right_then_left sample. Hence c and reverse(c) show the same multiset of frames per sample. For
mirror(c), every random process is drawn from a mirror- (and up/down-) symmetric law: initial angle
uniform in [0, 2pi), positions symmetric about the frame centre, paths centred on their midpoint in
time (x_t = m + D(tau_t - mean tau)), drift/spin directions uniform or sign-symmetric, background
wave vectors isotropic. So the law of a frame taken at a random time is the same for c, reverse(c)
and mirror(c). Across different class pairs (e.g. a rotating vs a translating object) the laws
of positions and sizes differ slightly; only the direction within a pair is guaranteed invisible.
A side effect callers should know: the same seed gives the reversed/mirrored twin clip for the
paired class, so a data set should use a distinct seed per clip.

Rendering is numpy only. Shapes are unions of convex pieces in local coordinates (unit radius,
area centroid at the origin). A half-plane's signed distance is affine in pixel coordinates, so all
planes of all frames are one matrix product; min over a piece's planes and max over pieces gives an
approximate signed distance in pixels, and clip(d + 0.5, 0, 1) is an anti-aliased coverage.
"""

from __future__ import annotations

import functools
import math
import statistics
from dataclasses import dataclass

import numpy as np

from trainers.data.synth_shapes import SHAPE_PLANES

SHAPES: tuple[str, ...] = ("rectangle", "triangle", "cross", "star", "arrow")
TEXTURES: tuple[str, ...] = ("solid", "striped")
APPEARANCE_CLASSES: tuple[str, ...] = tuple(f"{s}_{t}" for s in SHAPES for t in TEXTURES)
MOTION_CLASSES: tuple[str, ...] = (
    "move_right", "move_left", "move_up", "move_down", "rotate_cw",
    "rotate_ccw", "grow", "shrink", "right_then_left", "left_then_right",
)
_M = {name: i for i, name in enumerate(MOTION_CLASSES)}
MOTION_MIRROR: tuple[int, ...] = tuple(_M[n] for n in (
    "move_left", "move_right", "move_up", "move_down", "rotate_ccw",
    "rotate_cw", "grow", "shrink", "left_then_right", "right_then_left"))
MOTION_REVERSE: tuple[int, ...] = tuple(_M[n] for n in (
    "move_left", "move_right", "move_down", "move_up", "rotate_ccw",
    "rotate_cw", "shrink", "grow", "right_then_left", "left_then_right"))
APPEARANCE_MIRROR: tuple[int, ...] = tuple(range(len(APPEARANCE_CLASSES)))
APPEARANCE_REVERSE: tuple[int, ...] = tuple(range(len(APPEARANCE_CLASSES)))

# class -> (canonical generator, time-reverse its output, mirror its output)
_RECIPE: dict[int, tuple[int, bool, bool]] = {
    _M["move_right"]: (_M["move_right"], False, False), _M["move_left"]: (_M["move_right"], True, False),
    _M["move_up"]: (_M["move_up"], False, False), _M["move_down"]: (_M["move_up"], True, False),
    _M["rotate_cw"]: (_M["rotate_cw"], False, False), _M["rotate_ccw"]: (_M["rotate_cw"], True, False),
    _M["grow"]: (_M["grow"], False, False), _M["shrink"]: (_M["grow"], True, False),
    _M["right_then_left"]: (_M["right_then_left"], False, False),
    _M["left_then_right"]: (_M["right_then_left"], False, True),
}


@dataclass(frozen=True)
class SceneConfig:
    """Difficulty knobs. Lengths are fractions of the frame size; speeds are per clip unless noted."""

    object_radius: tuple[float, float] = (0.18, 0.30)
    distractor: bool = True
    distractor_radius: tuple[float, float] = (0.08, 0.13)
    background: bool = True
    background_contrast: float = 0.25  # 0..1; texture std is about contrast * 64 grey levels
    noise_std: float = 6.0  # per pixel and channel, 0..255 units (Gaussian quantised to 2**16 levels)
    camera_drift: bool = True
    camera_drift_fraction: float = 0.2  # max drift over the clip / shortest object translation
    translation: tuple[float, float] = (0.25, 0.45)  # path length of translating classes
    rotation_deg_per_frame: tuple[float, float] = (3.0, 8.0)
    scale_ratio: tuple[float, float] = (1.3, 1.7)  # large / small radius for grow and shrink
    # The background texture moves rigidly with the main object (its translation, its rotation and its
    # scaling about its centre), as if the camera tracked a scene the object is part of: the motion class
    # is then carried by every pixel, not by the few the object covers.
    world_motion: bool = False
    # The world-motion background texture: a sum of this many plane waves with wavelengths between the frame size divided by
    # the bounds (cycles per frame), amplitudes falling as 1/frequency (a 1/f, natural-image-like spectrum).
    background_waves: int = 6
    background_cycles: tuple[float, float] = (0.8, 2.5)
    background_pink: bool = False  # amplitudes 1/f (True) or equal (False, the original texture)


@dataclass
class RenderedClip:
    frames: np.ndarray  # (T, H, W, 3) uint8 RGB
    object_mask: np.ndarray  # (T, H, W) float32 coverage of the main object
    states: np.ndarray  # (T, 4) float64: x, y, angle (unwrapped, + = clockwise), radius in px


_STRIPE_PERIOD = 0.45  # local units (object radii)
_ROT_EPS = 0.02  # rad; non-rotating classes have exactly zero angle change
_SCALE_EPS = 0.05  # log radius ratio; the smallest grow is log(1.3)


def _rngs(seed: int | np.random.SeedSequence, n: int) -> list[np.random.Generator]:
    # Independent streams per component, so switching a distractor off leaves the rest of the
    # clip unchanged; built without SeedSequence.spawn, which would mutate the caller's object.
    if isinstance(seed, np.random.SeedSequence):
        entropy, key = seed.entropy, tuple(seed.spawn_key)
    else:
        entropy, key = int(seed), ()
    return [np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=key + (i,))) for i in range(n)]


def _luma(c: np.ndarray) -> float:
    return float(c @ np.array([0.299, 0.587, 0.114]))


def _contrasting(rng: np.random.Generator, bg: np.ndarray, min_diff: float) -> np.ndarray:
    for _ in range(64):
        c = rng.uniform(0.0, 255.0, 3)
        if abs(_luma(c) - _luma(bg)) >= min_diff:
            return c
    return np.full(3, 0.0 if _luma(bg) > 127.5 else 255.0)


def _stripe_colour(a: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """A second stripe colour pushed away from the background, or halfway to it if a is extreme."""
    far = np.full(3, 255.0 if _luma(a) > _luma(bg) else 0.0)
    b = a + 0.6 * (far - a)
    return b if abs(_luma(b) - _luma(a)) >= 40.0 else a + 0.5 * (bg - a)


def _main_trajectory(canon: int, rng: np.random.Generator, t: int, size: int, sc: SceneConfig) -> np.ndarray:
    """(T, 4) states of the canonical generator, before camera drift."""
    tau = np.linspace(0.0, 1.0, t)
    r_lo, r_hi = (f * size for f in sc.object_radius)
    theta0 = rng.uniform(0.0, 2.0 * math.pi)
    if canon == _M["grow"]:
        ratio = rng.uniform(*sc.scale_ratio)
        small = rng.uniform(r_lo, r_hi / ratio) if r_hi / ratio > r_lo else math.sqrt(r_lo * r_hi / ratio)
        scale = small * ratio**tau
    else:
        scale = np.full(t, rng.uniform(r_lo, r_hi))
    # Centre at least 0.75 radius from the border keeps the object mostly visible.
    lo, hi = 0.75 * scale.max(), size - 1 - 0.75 * scale.max()
    angle = np.full(t, theta0)
    x = np.full(t, rng.uniform(lo, hi))
    y = np.full(t, rng.uniform(lo, hi))
    if canon in (_M["move_right"], _M["move_up"], _M["right_then_left"]):
        path = tau if canon != _M["right_then_left"] else 1.0 - np.abs(2.0 * tau - 1.0)
        path = path - path.mean()  # centred in time: frame positions symmetric about the midpoint
        length = min(rng.uniform(*sc.translation) * size, (hi - lo) / (2 * np.abs(path).max()))
        mid = rng.uniform(lo + length * np.abs(path).max(), hi - length * np.abs(path).max())
        if canon == _M["move_up"]:
            y = mid - length * path
        else:
            x = mid + length * path
    elif canon == _M["rotate_cw"]:
        angle = theta0 + math.radians(rng.uniform(*sc.rotation_deg_per_frame)) * np.arange(t)
    return np.stack([x, y, angle, scale], axis=1)


def _object_layer(
    shape: int, striped: bool, phase: float, states: np.ndarray, grid: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None]:
    """Coverage (T, P) and stripe weight (T, P) (None for solid) of one object over all frames."""
    normals, offsets = SHAPE_PLANES[shape]
    pieces, planes, _ = normals.shape
    x, y, ang, scale = (states[:, i : i + 1] for i in range(4))
    c, s = np.cos(ang), np.sin(ang)
    n = normals.reshape(-1, 2)
    # n.R(-a)(p - c)/s <= o  <=>  (R(a)n).(p - c) <= s*o: the signed distance is affine in p.
    nx, ny = c * n[:, 0] - s * n[:, 1], s * n[:, 0] + c * n[:, 1]
    const = scale * offsets.reshape(-1) + nx * x + ny * y
    coef = np.stack([-nx, -ny, const], axis=-1).astype(np.float32).reshape(-1, 3)
    d = (coef @ grid).reshape(len(states), pieces, planes, -1).min(axis=2).max(axis=1)
    cover = np.clip(d + 0.5, 0.0, 1.0)
    if not striped:
        return cover, None
    k = 2.0 * math.pi / (_STRIPE_PERIOD * scale)
    coef = np.concatenate([c * k, s * k, phase - (c * x + s * y) * k], axis=1).astype(np.float32)
    # Slope of the clipped sine about one pixel: stripes are anti-aliased like the outline.
    stripe = np.clip(0.5 + (1.0 / k).astype(np.float32) * np.sin(coef @ grid), 0.0, 1.0)
    return cover, stripe


def _composite(img: np.ndarray, cover: np.ndarray, stripe: np.ndarray | None, a: np.ndarray, b: np.ndarray) -> None:
    """Paint a layer over img (T, H, W, 3) in place, only inside the box the layer ever touches."""
    rows, cols = np.nonzero(cover.any(axis=(0, 2)))[0], np.nonzero(cover.any(axis=(0, 1)))[0]
    if len(rows) == 0:
        return
    box = (slice(None), slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    a32, b32 = a.astype(np.float32), b.astype(np.float32)
    view = img[box]
    paint = a32 - view if stripe is None else stripe[box][..., None] * (b32 - a32) + (a32 - view)
    paint *= cover[box][..., None]
    view += paint


@functools.lru_cache(maxsize=4)
def _normal_table(std: float) -> np.ndarray:
    """Gaussian quantiles at 65536 levels (tails at 4.3 std): a table lookup on random uint16s is
    3x faster than rng.standard_normal, which dominated the render time."""
    dist = statistics.NormalDist(0.0, std)
    return np.array([dist.inv_cdf((i + 0.5) / 65536) for i in range(65536)], dtype=np.float32)


def _as_images(cover: np.ndarray, stripe: np.ndarray | None, size: int) -> tuple[np.ndarray, np.ndarray | None]:
    shape = (len(cover), size, size)
    return cover.reshape(shape), None if stripe is None else stripe.reshape(shape)


def _background(rng: np.random.Generator, t: int, size: int, shift: np.ndarray) -> np.ndarray:
    """Smooth isotropic texture (T, H, W) of std about 0.5, drifting rigidly by `shift` (T, 2)."""
    waves = 6
    freq = rng.uniform(0.8, 2.5, waves) * 2.0 * math.pi / size
    direction = rng.uniform(0.0, 2.0 * math.pi, waves)
    kx, ky = freq * np.cos(direction), freq * np.sin(direction)
    phase = rng.uniform(0.0, 2.0 * math.pi, waves)
    coords = np.arange(size, dtype=np.float64)
    # cos(kx x + ky y + psi_t) = Re(e^{i(ky y + psi_t)} e^{i kx x}): one batched matmul for all frames.
    psi = phase - shift[:, :1] * kx - shift[:, 1:] * ky  # (T, K)
    rows = np.exp(1j * (ky[None, None, :] * coords[None, :, None] + psi[:, None, :]))  # (T, H, K)
    cols = np.exp(1j * kx[:, None] * coords[None, :])  # (K, W)
    left = np.concatenate([rows.real, -rows.imag], axis=2).astype(np.float32)
    right = np.concatenate([cols.real, cols.imag], axis=0).astype(np.float32)
    return (left @ right) * np.float32(0.5 / math.sqrt(waves / 2))


def _world_background(rng: np.random.Generator, states: np.ndarray, size: int, sc: SceneConfig) -> np.ndarray:
    """Texture (T, H, W) of std about 0.5 that moves rigidly with `states` (x, y, angle, radius): each pixel
    is mapped back to where it was at time 0 relative to the object, and the texture is read there."""
    waves = sc.background_waves
    cycles = np.exp(rng.uniform(*np.log(sc.background_cycles), waves))
    freq = cycles * 2.0 * math.pi / size
    direction = rng.uniform(0.0, 2.0 * math.pi, waves)
    phase = rng.uniform(0.0, 2.0 * math.pi, waves)
    amplitude = 1.0 / cycles if sc.background_pink else np.ones(waves)
    amplitude *= 0.5 / math.sqrt((amplitude**2).sum() / 2)
    x, y, angle, radius = (states[:, i, None, None] for i in range(4))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    turn, zoom = angle - angle[0], radius[0] / radius
    dx, dy = (xx - x) * zoom, (yy - y) * zoom
    c, s = np.cos(turn), np.sin(turn)
    # R(-turn) (p - centre_t) * zoom + centre_0: the point of the scene under pixel p at time 0.
    wx, wy = c * dx + s * dy + x[0], -s * dx + c * dy + y[0]
    kx, ky = freq * np.cos(direction), freq * np.sin(direction)
    out = np.zeros((len(states), size, size))
    for k in range(waves):
        out += amplitude[k] * np.cos(kx[k] * wx + ky[k] * wy + phase[k])
    return out.astype(np.float32)


def render_clip(
    appearance: int, motion: int, seed: int | np.random.SeedSequence, frames: int, size: int,
    scene: SceneConfig = SceneConfig(),
) -> RenderedClip:
    """Render one clip; the same arguments always give bit-identical arrays."""
    if not 0 <= appearance < len(APPEARANCE_CLASSES) or not 0 <= motion < len(MOTION_CLASSES):
        raise ValueError(f"appearance {appearance} or motion {motion} out of range")
    if frames < 3 or size < 8:
        raise ValueError(f"need frames >= 3 and size >= 8, got frames={frames}, size={size}")
    canon, reverse, mirror = _RECIPE[motion]
    r_main, r_cam, r_col, r_bg, r_dis, r_noise = _rngs(seed, 6)
    t, p = frames, size * size
    states = _main_trajectory(canon, r_main, t, size, scene)
    centred = np.arange(t) - (t - 1) / 2.0
    drift_dir, drift_len = r_cam.uniform(0.0, 2.0 * math.pi), r_cam.uniform(0.0, 1.0)
    drift_len *= scene.camera_drift_fraction * scene.translation[0] * size * scene.camera_drift
    cam = np.outer(centred / (t - 1), drift_len * np.array([math.cos(drift_dir), math.sin(drift_dir)]))
    states[:, :2] += cam

    bg_colour = r_col.uniform(30.0, 225.0, 3)
    obj_a = _contrasting(r_col, bg_colour, 80.0)
    obj_b = _stripe_colour(obj_a, bg_colour)
    phase = r_col.uniform(0.0, 2.0 * math.pi)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    grid = np.stack([xx.ravel(), yy.ravel(), np.ones(p, np.float32)])

    if not scene.background:
        img = np.empty((t, size, size, 3), np.float32)
        img[:] = bg_colour.astype(np.float32)
    else:
        bg_dir = r_bg.uniform(0.0, 2.0 * math.pi)
        bg_len = r_bg.uniform(0.05, 0.3) * size
        shift = np.outer(centred / (t - 1), bg_len * np.array([math.cos(bg_dir), math.sin(bg_dir)])) + cam
        tint = np.clip(1.0 + 0.3 * r_bg.standard_normal(3), 0.4, 1.6).astype(np.float32)
        if scene.world_motion:
            texture = _world_background(r_bg, states, size, scene)[..., None]
        else:
            texture = _background(r_bg, t, size, shift)[..., None]
        img = texture * (np.float32(scene.background_contrast * 127.5) * tint) + bg_colour.astype(np.float32)
    if scene.distractor:
        other = int(r_dis.integers(0, len(APPEARANCE_CLASSES) - 1))
        other += other >= appearance
        radius = r_dis.uniform(*scene.distractor_radius) * size
        mid = r_dis.uniform(0.15 * size, 0.85 * size, 2)
        heading, path = r_dis.uniform(0.0, 2.0 * math.pi), r_dis.uniform(0.1, 0.4) * size
        velocity = path / (t - 1) * np.array([math.cos(heading), math.sin(heading)])
        spin = math.radians(r_dis.uniform(-6.0, 6.0))
        d_states = np.empty((t, 4))
        d_states[:, :2] = mid + np.outer(centred, velocity) + cam
        d_states[:, 2] = r_dis.uniform(0.0, 2.0 * math.pi) + spin * centred
        d_states[:, 3] = radius
        d_a = _contrasting(r_dis, bg_colour, 50.0)
        d_cover, d_stripe = _object_layer(other // 2, other % 2 == 1, r_dis.uniform(0.0, 2.0 * math.pi), d_states, grid)
        _composite(img, *_as_images(d_cover, d_stripe, size), d_a, _stripe_colour(d_a, bg_colour))
    mask, stripe = _as_images(*_object_layer(appearance // 2, appearance % 2 == 1, phase, states, grid), size)
    _composite(img, mask, stripe, obj_a, obj_b)
    if scene.noise_std > 0:
        levels = np.frombuffer(r_noise.bytes(2 * img.size), np.uint16).reshape(img.shape)
        img += _normal_table(float(scene.noise_std)).take(levels)
    img += np.float32(0.5)  # so that the truncating cast rounds
    out = np.clip(img, 0.0, 255.0, out=img).astype(np.uint8)

    if reverse:
        out, mask, states = out[::-1], mask[::-1], states[::-1]
    if mirror:
        out, mask, states = out[:, :, ::-1], mask[:, :, ::-1], states.copy()
        states[:, 0] = size - 1 - states[:, 0]
        states[:, 2] = math.pi - states[:, 2]
    return RenderedClip(np.ascontiguousarray(out), np.ascontiguousarray(mask), np.ascontiguousarray(states))


def motion_class_from_states(states: np.ndarray) -> int:
    """The label oracle: a MOTION_CLASSES index from a (T, 4) state trajectory.

    Rotation is decided by the sign of the angle change, size change by the radius ratio; otherwise
    the dominant axis of the excursion from the first frame decides, and a horizontal excursion whose
    net displacement is under half its peak (camera drift aside) is an out-and-back.
    """
    st = np.asarray(states, dtype=np.float64)
    x, y, angle, scale = st.T
    turn = angle[-1] - angle[0]
    if abs(turn) > _ROT_EPS:
        return _M["rotate_cw"] if turn > 0 else _M["rotate_ccw"]
    growth = math.log(scale[-1] / scale[0])
    if abs(growth) > _SCALE_EPS:
        return _M["grow"] if growth > 0 else _M["shrink"]
    ex, ey = x - x[0], y - y[0]
    if np.abs(ex).max() >= np.abs(ey).max():
        peak = ex[np.argmax(np.abs(ex))]
        if abs(ex[-1]) < 0.5 * abs(peak):
            return _M["right_then_left"] if peak > 0 else _M["left_then_right"]
        return _M["move_right"] if ex[-1] > 0 else _M["move_left"]
    return _M["move_down"] if ey[-1] > 0 else _M["move_up"]
