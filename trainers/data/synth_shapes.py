"""The synthetic scene's shapes (trainers/data/synth_scene.py) as planes: each shape a union of convex pieces in
local coordinates (unit radius, area centroid at the origin), one row of half-planes per piece, in the order of
synth_scene.SHAPES."""

from __future__ import annotations

import math

import numpy as np


def _convex_planes(vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Outward unit normals n and offsets o of a convex polygon: inside is n.u <= o."""
    e = np.roll(vertices, -1, axis=0) - vertices
    n = np.stack([e[:, 1], -e[:, 0]], axis=1)
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    off = (n * vertices).sum(1)
    inward = n @ vertices.mean(0) > off
    n[inward] *= -1.0
    off[inward] *= -1.0
    return n, off


def _star_pieces() -> list[list[tuple[float, float]]]:
    # A pentagram with inner/outer ratio cos72/cos36: each tip's sides extend exactly along inner
    # pentagon edges, so "tip wedge cut by a line near the centre" is a convex piece inside the
    # star, and the five pieces cover it (every inner point is on the centre side of some tip).
    # The cut lies `past` beyond the centre (the piece stays inside up to 0.118) so that no seam of
    # half coverage appears where all five pieces meet.
    inner = math.cos(2 * math.pi / 5) / math.cos(math.pi / 5)
    past = 0.08
    pieces = []
    for k in range(5):
        a = 2 * math.pi * k / 5
        tip = np.array([math.cos(a), math.sin(a)])
        corner = []
        for side in (-1, 1):
            b = a + side * math.pi / 5
            q = inner * np.array([math.cos(b), math.sin(b)])
            s = (tip @ tip + past) / (tip @ tip - tip @ q)  # where tip + s(q - tip) meets n.u = -past
            corner.append(tuple(tip + s * (q - tip)))
        pieces.append([tuple(tip), corner[0], corner[1]])
    return pieces


def _rect(x0: float, x1: float, h: float) -> list[tuple[float, float]]:
    return [(x0, -h), (x1, -h), (x1, h), (x0, h)]


_SHAPE_PIECES: tuple[list[list[tuple[float, float]]], ...] = (
    [_rect(-0.862, 0.862, 0.507)],  # aspect 1.7, corner radius 1
    [[(1.0, 0.0), (-0.55, 0.62), (-0.55, -0.62)]],
    [_rect(-0.95, 0.95, 0.3), [(-0.3, -0.95), (0.3, -0.95), (0.3, 0.95), (-0.3, 0.95)]],
    _star_pieces(),
    [_rect(-1.0, 0.25, 0.25), [(1.0, 0.0), (0.1, 0.6), (0.1, -0.6)]],
)


def _build_shape(pieces: list[list[tuple[float, float]]]) -> tuple[np.ndarray, np.ndarray]:
    """Planes (pieces, planes, 2) and offsets (pieces, planes), centred on the area centroid."""
    polys = [np.asarray(p, dtype=np.float64) for p in pieces]
    g = np.linspace(-1.2, 1.2, 241)
    gx, gy = np.meshgrid(g, g)
    pts = np.stack([gx.ravel(), gy.ravel()], 1)
    inside = np.zeros(len(pts), dtype=bool)
    for p in polys:
        n, o = _convex_planes(p)
        inside |= np.all(pts @ n.T <= o, axis=1)
    centre = pts[inside].mean(0)
    radius = max(np.linalg.norm(p - centre, axis=1).max() for p in polys)
    planes = [_convex_planes((p - centre) / radius) for p in polys]
    width = max(len(o) for _, o in planes)
    # Repeating a plane leaves the piece unchanged and lets all pieces share one array.
    n = np.stack([np.concatenate([n, n[[-1] * (width - len(n))]]) for n, _ in planes])
    o = np.stack([np.concatenate([o, o[[-1] * (width - len(o))]]) for _, o in planes])
    return n.astype(np.float32), o.astype(np.float32)


SHAPE_PLANES = tuple(_build_shape(p) for p in _SHAPE_PIECES)
