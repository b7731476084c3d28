"""Geometry and point sampling: thin glue over `deepxde.geometry`.

kinn does not re-implement geometry. Domains are deepxde objects (`Interval`, `Rectangle`, `Disk`,
`Polygon`, CSG by `|`, `&`, `-`, and `GeometryXTime` for time-dependent problems); this module imports
deepxde safely and turns its numpy samples into float64 arrays.

Two deepxde traps are handled here, once:
- importing deepxde prints its backend choice to stdout (which would corrupt `kinn solve --json`) and,
  on a CUDA machine, changes torch's default device; both are undone.
- deepxde samples in float32 unless told otherwise; its sampling precision is set to float64 without
  touching torch's global default dtype (which `deepxde.config.set_default_float` would change).
"""
from __future__ import annotations

import contextlib
import io
import os
import zlib

import numpy as np
import torch

from kinn.errors import KinnError
from kinn.pde import lattice
from kinn.run.config import SAMPLERS

os.environ.setdefault("DDE_BACKEND", "pytorch")
_device = torch.get_default_device()
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    import deepxde
    from deepxde import geometry as _g
if torch.get_default_device() != _device:  # deepxde moved it to CUDA; installing a device mode costs every op
    torch.set_default_device(None if _device.type == "cpu" else _device)
deepxde.config.real.set_float64()

Interval, Rectangle, Cuboid, Hypercube = _g.Interval, _g.Rectangle, _g.Cuboid, _g.Hypercube
Disk, Ellipse, Polygon, Triangle, Sphere = _g.Disk, _g.Ellipse, _g.Polygon, _g.Triangle, _g.Sphere
TimeDomain, GeometryXTime = _g.TimeDomain, _g.GeometryXTime



def is_timedependent(domain) -> bool:
    return isinstance(domain, GeometryXTime)


def space(domain):
    """The spatial part of a domain (the domain itself when it has no time axis)."""
    return domain.geometry if is_timedependent(domain) else domain


def bbox(domain) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper corners of the domain's bounding box, time included as the last coordinate."""
    if is_timedependent(domain):
        lo, hi = bbox(domain.geometry)
        t = domain.timedomain
        return np.append(lo, t.t0), np.append(hi, t.t1)
    lo, hi = domain.bbox
    return np.atleast_1d(np.asarray(lo, float)), np.atleast_1d(np.asarray(hi, float))


@contextlib.contextmanager
def numpy_seed(seed: int):
    """Run deepxde's sampling (which draws from numpy's global RNG) from `seed`, then restore the state."""
    state = np.random.get_state()
    np.random.seed(seed % 2**32)
    try:
        yield
    finally:
        np.random.set_state(state)


def seed_stream(seed: int, purpose: str, k: int = 0) -> int:
    """Independent, reproducible seeds for each random stream of a run (training draw k, evaluation,
    jitter at step k, batches of epoch k): the same for every family, so a seed gives all the same points."""
    return int(np.random.SeedSequence([seed, zlib.crc32(purpose.encode()), k]).generate_state(1)[0])


def _check_sampler(sampler: str) -> None:
    if sampler not in SAMPLERS:
        raise KinnError(f"unknown sampler '{sampler}'; valid: {', '.join(SAMPLERS)}")


def is_box(domain) -> bool:
    """Whether the domain (its spatial part, for space-time) is an interval, rectangle or cuboid."""
    return type(space(domain)) in (Interval, Rectangle, Cuboid, Hypercube)


def interior(domain, n: int, sampler: str = "pseudo") -> np.ndarray:
    """n points inside the domain (space-time for time-dependent problems), shape (n, d).

    sampler "lattice": the nodes of a regular lattice over the domain's box with about n nodes, ends
    included, in the order `kinn.pde.lattice.nodes` gives (lattice families need them so)."""
    _check_sampler(sampler)
    if sampler == "lattice":
        if not is_box(domain):
            raise KinnError(f"sampler 'lattice' needs a box domain, not a {type(space(domain)).__name__}")
        lo, hi = bbox(domain)
        return lattice.nodes(lo, hi, lattice.shape_for(n, len(lo)))
    return np.asarray(domain.random_points(n, random=sampler), dtype=np.float64)


def boundary(domain, n: int, on=None, sampler: str = "pseudo") -> np.ndarray:
    """n points on the (spatial) boundary, restricted to the part where `on(x)` is True.

    deepxde samples the whole boundary; a part is selected by rejection, drawing more until n are found.
    """
    _check_sampler(sampler)
    if isinstance(domain, Interval):  # two ends: take each selected end equally often (a draw could miss one)
        ends = np.array([[domain.l], [domain.r]], dtype=np.float64)
        ends = ends if on is None else ends[np.asarray(on(ends), dtype=bool)]
        if not len(ends):
            raise KinnError(f"the boundary part selected by {on!r} contains neither end of the interval")
        return np.resize(ends, (n, 1))
    if sampler == "lattice":  # equispaced along the boundary
        x = np.asarray(domain.uniform_boundary_points(n), dtype=np.float64)
        x = x if on is None else x[np.asarray(on(x), dtype=bool)]
        if not len(x):
            raise KinnError(f"no equispaced boundary points fall on the part selected by {on!r}")
        return x
    chunks, found = [], 0
    for _ in range(50):
        x = np.asarray(domain.random_boundary_points(max(n, 16), random=sampler), dtype=np.float64)
        if on is not None:
            x = x[np.asarray(on(x), dtype=bool)]
        chunks.append(x)
        found += len(x)
        if found >= n:
            return np.concatenate(chunks)[:n]
    raise KinnError(f"could not sample {n} points on the boundary part selected by {on!r}: "
                    f"only {found} of {50 * max(n, 16)} boundary samples fell on it; check its selector")


def initial(domain, n: int) -> np.ndarray:
    """n points on the initial slice t = t0 of a time-dependent domain, shape (n, d + 1)."""
    if not is_timedependent(domain):
        raise KinnError("an initial condition needs a time-dependent domain (GeometryXTime)")
    return np.asarray(domain.random_initial_points(n), dtype=np.float64)


def normals(domain, x: np.ndarray) -> np.ndarray:
    """Outward unit normals at boundary points x (spatial components only), shape (n, d_space)."""
    return np.asarray(domain.boundary_normal(x), dtype=np.float64)[:, : space(domain).dim]


def read_mesh(path) -> tuple[np.ndarray, np.ndarray]:
    """The triangles of a mesh file meshio reads (Gmsh, VTU, XDMF, ...): points (P, 2) in the plane and
    cells (M, 3), every triangle block concatenated. A clear error when meshio cannot read the file or it
    holds no triangles."""
    import meshio

    try:  # meshio raises many kinds (unknown format, corrupt or missing file) and, for some, exits
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as said:
            mesh = meshio.read(path)
    except (Exception, SystemExit) as e:
        why = str(e) if isinstance(e, Exception) else " ".join(said.getvalue().split()) or "unknown format"
        raise KinnError(f"cannot read mesh file {path}: {why}") from None
    cells = [block.data for block in mesh.cells if block.type == "triangle"]
    if not cells:
        kinds = sorted({block.type for block in mesh.cells}) or ["none"]
        raise KinnError(f"mesh file {path} has no triangle cells (it has: {', '.join(kinds)}); "
                        "triangle quadrature needs a triangulated 2-D domain")
    points = np.asarray(mesh.points, dtype=np.float64)
    if points.shape[1] > 2 and np.any(points[:, 2:] != 0):
        raise KinnError(f"mesh file {path} is not planar (non-zero z coordinates)")
    return points[:, :2], np.concatenate(cells).astype(np.int64)


def triangulate(domain, n: int, n_boundary: int) -> tuple[np.ndarray, np.ndarray]:
    """A triangulation of a 2-D domain: Delaunay triangles over about n quasi-random (Hammersley) points
    inside, n_boundary on the boundary and the corners of a box or polygon, without the triangles whose centroid lies outside
    (across a hole or a re-entrant corner). Curved boundaries become chords: an O(h²) area error."""
    from scipy.spatial import Delaunay

    if space(domain).dim != 2 or is_timedependent(domain):
        raise KinnError("triangulate needs a 2-D domain without a time axis")
    pts = [boundary(domain, n_boundary, None, "Hammersley"), interior(domain, n, "Hammersley")]
    if is_box(domain):  # corners are vertices, or the triangles would cut them off
        lo, hi = bbox(domain)
        pts.append(np.array([[a, b] for a in (lo[0], hi[0]) for b in (lo[1], hi[1])]))
    elif isinstance(domain, (Polygon, Triangle)):  # its corners, for the same reason
        pts.append(np.asarray(domain.vertices, float))
    pts = np.concatenate(pts)
    pts = np.unique(pts.round(12), axis=0)
    cells = Delaunay(pts).simplices
    return pts, cells[inside(domain, pts[cells].mean(1))]


def on_boundary(domain, x: np.ndarray) -> np.ndarray:
    """Boolean mask of points on the domain's boundary."""
    return np.asarray(domain.on_boundary(x), dtype=bool)


def inside(domain, x: np.ndarray) -> np.ndarray:
    """Boolean mask of points inside or on the domain."""
    return np.asarray(domain.inside(x), dtype=bool)


def at(dim: int, value: float, atol: float = 1e-8):
    """A boundary-part selector for `Dirichlet(on=...)`: points whose coordinate `dim` equals `value`."""

    def on(x: np.ndarray) -> np.ndarray:
        return np.isclose(x[:, dim], value, atol=atol)

    on.__qualname__ = f"at(dim={dim}, value={value})"
    return on
