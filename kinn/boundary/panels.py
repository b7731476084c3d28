"""Boundary geometry as closed loops of panels (straight segments and circular arcs).

    outer = box((0, 0), (2, 1), per_edge=10)                    # a Boundary: one counter-clockwise loop
    plate = box((0, 0), (4, 4), 8, holes=[((2, 2), 1, 16)])    # ... with a clockwise circular hole
    x, n = panel.point(t), panel.normal(t)                      # t in [0, 1], (T, 2) each

Every panel is parametrised at constant speed over t ∈ [0, 1] (ds = length · dt), so "n equal
sub-panels" means equal in parameter and in length. The outward normal is the unit tangent rotated
clockwise, (t_y, −t_x): outward for a counter-clockwise outer loop and for clockwise holes, which is why
`Boundary` insists on those orientations.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from kinn.errors import KinnError


def _column(t) -> np.ndarray:
    return np.asarray(t, dtype=float).reshape(-1, 1)


class Panel(ABC):
    """A smooth boundary piece x(t), t ∈ [0, 1], travelled at constant speed `length`."""

    tag: str

    @property
    @abstractmethod
    def length(self) -> float:
        """Arc length (exact)."""

    @abstractmethod
    def point(self, t) -> np.ndarray:
        """(T, 2) points x(t)."""

    @abstractmethod
    def tangent(self, t) -> np.ndarray:
        """(T, 2) unit tangents dx/dt / length."""

    @abstractmethod
    def separation(self, t0: float, t) -> np.ndarray:
        """(T, 2) x(t) − x(t0), computed without the cancellation of subtracting two points (the kernels
        divide by its length squared next to the source)."""

    @abstractmethod
    def piece(self, t0: float, t1: float) -> "Panel":
        """The sub-panel covering parameters [t0, t1] (same direction and tag)."""

    @abstractmethod
    def project(self, points, t0=0.0, t1=1.0) -> np.ndarray:
        """(P,) the parameter of the point of the panel nearest to each of `points` (P, 2), or of its
        piece [t0, t1] (scalars, or (P,) arrays: one piece per point)."""

    def distance(self, points, t0=0.0, t1=1.0) -> np.ndarray:
        """(P,) exact Euclidean distance from each of `points` (P, 2) to the panel (or its piece)."""
        p = np.asarray(points, dtype=float).reshape(-1, 2)
        return np.hypot(*(p - self.point(self.project(p, t0, t1))).T)

    @abstractmethod
    def moment(self) -> float:
        """½ ∫ (x dy − y dx) along the panel: a loop's signed area is the sum over its panels."""

    def normal(self, t) -> np.ndarray:
        """(T, 2) unit normals (t_y, −t_x): the tangent rotated clockwise."""
        tan = self.tangent(t)
        return np.stack([tan[:, 1], -tan[:, 0]], axis=1)

    @property
    def start(self) -> np.ndarray:
        """(2,) x(0)."""
        return self.point(0.0)[0]

    @property
    def end(self) -> np.ndarray:
        """(2,) x(1)."""
        return self.point(1.0)[0]

    def split(self, n: int, ratio: float = 1.0) -> list["Panel"]:
        """n sub-panels in order, each `ratio` times as long as the one before: equal for ratio 1, graded
        geometrically toward the end for ratio < 1 (toward the start for ratio > 1), e.g. toward a
        singular point such as a crack tip. The pieces cover the panel exactly, ends included."""
        if int(n) != n or n < 1:
            raise KinnError(f"a panel splits into a positive whole number of pieces, got {n!r}")
        if not (np.isfinite(ratio) and ratio > 0):
            raise KinnError(f"a panel's grading ratio is a positive number, got {ratio!r}")
        lengths = float(ratio) ** np.arange(int(n))
        edges = np.concatenate([[0.0], np.cumsum(lengths) / lengths.sum()])
        edges[-1] = 1.0  # exact end, whatever the rounding of the sum
        return [self.piece(a, b) for a, b in zip(edges[:-1], edges[1:])]


@dataclass(frozen=True, eq=False)
class Segment(Panel):
    """The straight panel x(t) = a + t (b − a)."""

    a: tuple
    b: tuple
    tag: str = ""

    def __post_init__(self):
        object.__setattr__(self, "a", np.asarray(self.a, dtype=float).reshape(2))
        object.__setattr__(self, "b", np.asarray(self.b, dtype=float).reshape(2))
        if not self.length > 0:
            raise KinnError(f"a segment needs two distinct ends, got {self.a.tolist()} twice")

    @property
    def length(self) -> float:
        return float(np.hypot(*(self.b - self.a)))

    def point(self, t) -> np.ndarray:
        return self.a + _column(t) * (self.b - self.a)

    def tangent(self, t) -> np.ndarray:
        return np.broadcast_to((self.b - self.a) / self.length, (_column(t).shape[0], 2)).copy()

    def separation(self, t0: float, t) -> np.ndarray:
        return (_column(t) - t0) * (self.b - self.a)

    def piece(self, t0: float, t1: float) -> "Segment":
        ends = self.point([t0, t1])
        return Segment(ends[0], ends[1], self.tag)

    def project(self, points, t0=0.0, t1=1.0) -> np.ndarray:
        p = np.asarray(points, dtype=float).reshape(-1, 2)
        d = self.b - self.a
        return np.clip((p - self.a) @ d / (d @ d), t0, t1)

    def moment(self) -> float:
        return 0.5 * float(self.a[0] * self.b[1] - self.a[1] * self.b[0])


@dataclass(frozen=True, eq=False)
class Arc(Panel):
    """The circular panel x(t) = center + radius (cos θ, sin θ), θ = theta0 + t (theta1 − theta0):
    counter-clockwise when theta1 > theta0, clockwise when the sweep is negative (|sweep| < 2π)."""

    center: tuple
    radius: float
    theta0: float
    theta1: float
    tag: str = ""

    def __post_init__(self):
        object.__setattr__(self, "center", np.asarray(self.center, dtype=float).reshape(2))
        object.__setattr__(self, "radius", float(self.radius))
        object.__setattr__(self, "theta0", float(self.theta0))
        object.__setattr__(self, "theta1", float(self.theta1))
        if not self.radius > 0:
            raise KinnError(f"an arc needs a positive radius, got {self.radius}")
        if not 0 < abs(self.sweep) < 2 * np.pi + 1e-12:
            raise KinnError(f"an arc sweeps between 0 and 2π radians, got {self.sweep}")

    @property
    def sweep(self) -> float:
        """theta1 − theta0: positive counter-clockwise, negative clockwise."""
        return self.theta1 - self.theta0

    @property
    def length(self) -> float:
        return self.radius * abs(self.sweep)

    def _theta(self, t) -> np.ndarray:
        return self.theta0 + _column(t)[:, 0] * self.sweep

    def point(self, t) -> np.ndarray:
        th = self._theta(t)
        return self.center + self.radius * np.stack([np.cos(th), np.sin(th)], axis=1)

    def tangent(self, t) -> np.ndarray:
        th = self._theta(t)
        return np.sign(self.sweep) * np.stack([-np.sin(th), np.cos(th)], axis=1)

    def separation(self, t0: float, t) -> np.ndarray:
        # cos θ − cos θ₀ = −2 sin(m) sin(h), sin θ − sin θ₀ = 2 cos(m) sin(h), m = (θ + θ₀)/2, h = (θ − θ₀)/2
        th, th0 = self._theta(t), self.theta0 + t0 * self.sweep
        m, h = 0.5 * (th + th0), 0.5 * (th - th0)
        return 2.0 * self.radius * np.sin(h)[:, None] * np.stack([-np.sin(m), np.cos(m)], axis=1)

    def piece(self, t0: float, t1: float) -> "Arc":
        return Arc(self.center, self.radius, self.theta0 + t0 * self.sweep, self.theta0 + t1 * self.sweep,
                   self.tag)

    def project(self, points, t0=0.0, t1=1.0) -> np.ndarray:
        p = np.asarray(points, dtype=float).reshape(-1, 2)
        t0, t1 = np.broadcast_to(t0, len(p)), np.broadcast_to(t1, len(p))
        rel = p - self.center
        # Parameter of each point's direction, measured from theta0 in the sweep's direction: [0, 2π/|sweep|).
        t = np.mod(np.sign(self.sweep) * (np.arctan2(rel[:, 1], rel[:, 0]) - self.theta0), 2 * np.pi) \
            / abs(self.sweep)
        nearer_start = np.hypot(*(p - self.point(t0)).T) <= np.hypot(*(p - self.point(t1)).T)
        return np.where((t >= t0) & (t <= t1), t, np.where(nearer_start, t0, t1))

    def moment(self) -> float:
        (cx, cy), r, a, b = self.center, self.radius, self.theta0, self.theta1
        return 0.5 * (r * r * (b - a) + r * (cx * (np.sin(b) - np.sin(a)) - cy * (np.cos(b) - np.cos(a))))

    def segment_winding(self, points) -> np.ndarray:
        """(P,) ±1 for points strictly inside the circular segment between the arc and its chord (+1
        when the arc is counter-clockwise), else 0: what the winding angle along the arc adds to the
        angle along its chord."""
        p = np.asarray(points, dtype=float).reshape(-1, 2)
        chord = self.end - self.start
        side = chord[0] * (p[:, 1] - self.start[1]) - chord[1] * (p[:, 0] - self.start[0])
        mid = self.point(0.5)[0] - self.start
        arc_side = chord[0] * mid[1] - chord[1] * mid[0]
        inside = (np.hypot(*(p - self.center).T) < self.radius) & (side * arc_side > 0)
        return np.sign(self.sweep) * inside


def _chord_angle(a: np.ndarray, b: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(P,) signed angle in (−π, π] swept by x − p as x runs straight from a to b."""
    u, v = a - points, b - points
    return np.arctan2(u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0], (u * v).sum(1))


class Loop:
    """A closed chain of panels: panel i ends where panel i + 1 starts (and the last where the first
    starts), within 1e-12 × the loop's size."""

    def __init__(self, panels: Sequence[Panel]):
        self.panels = list(panels)
        if not self.panels or not all(isinstance(p, Panel) for p in self.panels):
            raise KinnError("a loop needs a non-empty list of panels (Segment or Arc)")
        # Size: the extent of the loop, sampled inside the panels too (a circle of one arc has one end).
        samples = np.concatenate([p.point(np.linspace(0, 1, 5)) for p in self.panels])
        self.size = float(np.ptp(samples, axis=0).max())
        for i, p in enumerate(self.panels):
            following = self.panels[(i + 1) % len(self.panels)]
            gap = float(np.hypot(*(p.end - following.start)))
            if gap > 1e-12 * self.size:
                raise KinnError(f"the loop does not close: panel {i} ends at {p.end.tolist()} but panel "
                                f"{(i + 1) % len(self.panels)} starts at {following.start.tolist()} "
                                f"(gap {gap:.3g}; allowed 1e-12 × size)")

    @property
    def signed_area(self) -> float:
        """Area enclosed, positive for a counter-clockwise loop, negative for a clockwise one."""
        return float(sum(p.moment() for p in self.panels))

    @property
    def length(self) -> float:
        """Total arc length of the loop."""
        return float(sum(p.length for p in self.panels))

    def winding(self, points) -> np.ndarray:
        """(P,) winding number of the loop around each point (±1 inside, 0 outside), exact for arcs:
        the angle along each chord plus 2π for points between an arc and its chord."""
        p = np.asarray(points, dtype=float).reshape(-1, 2)
        total = np.zeros(len(p))
        for panel in self.panels:
            if isinstance(panel, Arc):
                # Halves keep each chord proper even for a full circle made of one arc.
                for half in panel.split(2):
                    total += 2 * np.pi * half.segment_winding(p) + _chord_angle(half.start, half.end, p)
            else:
                total += _chord_angle(panel.start, panel.end, p)
        return np.rint(total / (2 * np.pi))

    def refine(self, n) -> "Loop":
        """Every panel split in n pieces (n an int, or {tag: pieces}; tags not named stay whole)."""
        return Loop([q for p in self.panels for q in p.split(_pieces(n, p.tag))])


def _pieces(n, tag: str) -> int:
    if isinstance(n, dict):
        return int(n.get(tag, 1))
    return int(n)


class Boundary:
    """The boundary of a bounded 2-D domain: `loops[0]` the outer loop (counter-clockwise), the others
    holes (clockwise, inside the outer loop). `panels` lists all panels, loop by loop."""

    def __init__(self, loops: Sequence[Loop]):
        self.loops = [lp if isinstance(lp, Loop) else Loop(lp) for lp in loops]
        if not self.loops:
            raise KinnError("a boundary needs at least one loop (the outer one)")
        if self.loops[0].signed_area <= 0:
            raise KinnError(f"the outer loop (loop 0) is clockwise (signed area {self.loops[0].signed_area:.4g});"
                            " allowed: counter-clockwise, with holes clockwise")
        for i, hole in enumerate(self.loops[1:], 1):
            if hole.signed_area >= 0:
                raise KinnError(f"hole loop {i} is counter-clockwise (signed area {hole.signed_area:.4g}); "
                                "allowed: holes clockwise, the outer loop (loop 0) counter-clockwise")
            probe = np.array([x for p in hole.panels for x in p.point([0.0, 0.5])])
            if not (self.loops[0].winding(probe) == 1).all():
                raise KinnError(f"hole loop {i} is not inside the outer loop (loop 0); allowed: holes "
                                "strictly inside the outer loop")
        self.panels = [p for lp in self.loops for p in lp.panels]

    @property
    def tags(self) -> list[str]:
        """The panels' tags in order of first appearance."""
        return list(dict.fromkeys(p.tag for p in self.panels))

    @property
    def area(self) -> float:
        """The domain's area: the outer loop's minus the holes'."""
        return float(sum(lp.signed_area for lp in self.loops))

    @property
    def perimeter(self) -> float:
        """Total length of all loops."""
        return float(sum(lp.length for lp in self.loops))

    @property
    def size(self) -> float:
        """The outer loop's largest extent along x or y (the scale of tolerances)."""
        return self.loops[0].size

    def refine(self, n) -> "Boundary":
        """Every panel split in n equal pieces; n an int, or {tag: pieces} (tags not named stay whole)."""
        if isinstance(n, dict) and set(n) - set(self.tags):
            raise KinnError(f"unknown tags {sorted(set(n) - set(self.tags))}; valid: {self.tags}")
        return Boundary([lp.refine(n) for lp in self.loops])

    def contains(self, points) -> np.ndarray:
        """(P,) True for points inside the domain (inside the outer loop, outside every hole). Points on
        the boundary itself fall on either side: test `distance` for those."""
        return sum(lp.winding(points) for lp in self.loops) > 0.5

    def nearest(self, points) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For each point (P, 2): the nearest panel's index (P,), the parameter there (P,) and the
        distance (P,)."""
        p = np.asarray(points, dtype=float).reshape(-1, 2)
        params = np.array([panel.project(p) for panel in self.panels])                     # (panels, P)
        dist = np.array([np.hypot(*(p - panel.point(t)).T) for panel, t in zip(self.panels, params)])
        best = np.argmin(dist, axis=0)
        cols = np.arange(len(p))
        return best, params[best, cols], dist[best, cols]

    def distance(self, points) -> np.ndarray:
        """(P,) distance from each point (P, 2) to the nearest panel."""
        return self.nearest(points)[2]


def _per_edge(value, count: int, what: str) -> list:
    values = list(value) if isinstance(value, (list, tuple, np.ndarray)) else [value] * count
    if len(values) != count:
        raise KinnError(f"{what}: expected one value per edge ({count}), got {len(values)}")
    return values


def polygon(vertices, per_edge=1, tags=None, ratio=1.0) -> Boundary:
    """The polygon through `vertices` (V, 2), listed counter-clockwise; edge i runs from vertex i to
    vertex i + 1, split in per_edge[i] panels (an int: the same for every edge) tagged tags[i]
    (default "edge{i}"), each panel ratio[i] times as long as the one before (`Panel.split`; a number:
    the same for every edge; < 1 grades edge i toward vertex i + 1, > 1 toward vertex i)."""
    v = np.asarray(vertices, dtype=float).reshape(-1, 2)
    pieces = _per_edge(per_edge, len(v), "per_edge")
    ratios = _per_edge(ratio, len(v), "ratio")
    names = _per_edge(tags if tags is not None else [f"edge{i}" for i in range(len(v))], len(v), "tags")
    panels = [q for i in range(len(v))
              for q in Segment(v[i], v[(i + 1) % len(v)], names[i]).split(pieces[i], ratios[i])]
    return Boundary([Loop(panels)])


def circle(center, radius: float, n: int, clockwise: bool = False, tag: str = "circle") -> Loop:
    """A full circle of n equal arc panels starting at angle 0 (clockwise for a hole)."""
    sweep = -2 * np.pi if clockwise else 2 * np.pi
    return Loop(Arc(center, radius, 0.0, sweep, tag).split(n))


def box(lo, hi, per_edge=1, holes=()) -> Boundary:
    """The rectangle [lo, hi] with edges tagged bottom, right, top, left (per_edge: an int or four), and
    circular holes given as (center, radius, n_arc), tagged hole0, hole1, ..."""
    (x0, y0), (x1, y1) = lo, hi
    outer = polygon([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], per_edge, ["bottom", "right", "top", "left"])
    loops = [circle(c, r, n, clockwise=True, tag=f"hole{i}") for i, (c, r, n) in enumerate(holes)]
    return Boundary(outer.loops + loops)
