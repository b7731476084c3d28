#!/usr/bin/env python
"""Build the reference solution `data/plate_hole.h5` for KINN's plate with a hole (example 2).

    quarter plate [0, 20]^2 minus the quarter disk r < 5, linear elasticity, plane stress,
    E = 1000, nu = 0.3;  u_x = 0 on x = 0, u_y = 0 on y = 0 (symmetry);
    traction t = (100, 0) on x = 20; the hole and the top edge y = 20 are traction-free.

Method: finite elements with scikit-fem (no gmsh).

- Mesh: a structured mapped mesh. The region is split by the diagonal from (5/sqrt2, 5/sqrt2) to (20, 20)
  into two patches; in each, x(s, xi) = (1 - g(xi)) A(s) + g(xi) B(s) blends linearly between the arc
  A(s) (angle s pi/4) and the straight outer edge B(s) (x = 20 or y = 20), with the radial grading
  g(xi) = (exp(a xi) - 1) / (exp(a) - 1) (geometric spacing towards the hole). One parameter rectangle
  u in [0, 2] (u <= 1 the lower patch, u >= 1 the upper one, mirrored) x xi in [0, 1] carries a uniform
  grid of 2 ns x nr cells, two triangles each; level k has ns = ns0 2^k, nr = nr0 2^k (element size
  halved per level, every level's vertices are vertices of all finer levels).
- Geometry: an isoparametric quadratic mesh (`MeshTri2`): the vertices and the mid-side nodes are both
  placed by the blending map, so the hole is a piecewise quadratic interpolant of the circle (max radial
  error printed: 2e-10 at the default finest level).
- Solve: vector P3 Lagrange elements by default (`--order 2` for P2), skfem's `linear_elasticity` with
  the plane-stress Lame parameter lambda* = 2 lambda mu / (lambda + 2 mu); the symmetry conditions
  constrain only the normal component; the traction is a facet linear form on x = 20; sparse LU.
- Stress at a point: the P3 stress of every element that contains the point, averaged (at a vertex: the
  mean over the elements around it).

Checks, printed: a refinement study over the levels, all evaluated at the stored points (the finest
level's vertices; coarser levels are evaluated there by inverting their element maps), with the relative
L2 differences of |U| = sqrt(ux^2 + uy^2) and von Mises sqrt(sxx^2 - sxx syy + syy^2 + 3 sxy^2) to the
finest level, the observed rates and a Richardson estimate of the finest level's error; the force
balance int sxx dy over x = 0 (= 100 x 20 = 2000) and int syy dx over y = 0 (= 0); the stress
concentration sxx(0, 5); and the same solver with the outer edges moved to 400, where Kirsch's
infinite-plate values sxx(0, 5) = 300, syy(5, 0) = -100 must come out. It refuses to write the file if
the estimated errors exceed --tol-u / --tol-mises.

Stored (`points` layout, float64): `points` and `fields/ux`, `fields/uy` at the finest level's vertices,
`derived/{sxx,syy,sxy,mises}` there, and `mesh/triangles`, the finest level's triangles on those points
(straight-sided, counter-clockwise, int64).

Usage:  python scripts/make_plate_hole_reference.py [--out data/plate_hole.h5] [--levels 5]
                                                    [--base 4 6] [--order 3] [--grading 2.3]
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kinn.pde import mechanics
from kinn.data.generators import richardson
from kinn.metrics import relative_l2 as rel_l2
from kinn.data.reference import write_points

ROOT = Path(__file__).resolve().parent.parent
RADIUS, HALF = 5.0, 20.0          # hole radius, half-width of the plate (quarter plate [0, HALF]^2)
E, NU = 1000.0, 0.3               # Young's modulus, Poisson's ratio (plane stress)
TRACTION = (100.0, 0.0)           # on x = HALF
GRADING = 2.3                     # a in g(xi) = (exp(a xi) - 1) / (exp(a) - 1)


LAM, MU = mechanics.lame(E, NU, "stress")  # the plane-stress Lame parameters, lambda* = E nu / (1 - nu^2)


def blend_map(u, xi, half: float = HALF, radius: float = RADIUS, grading: float = GRADING):
    """Physical (x, y) of parameter points (u, xi), u in [0, 2], xi in [0, 1] (see the module doc).

    u <= 1: the lower patch (below the diagonal), angle u pi/4 on the arc, outer edge x = half;
    u >= 1: its mirror image in the diagonal with s = 2 - u, outer edge y = half. u = 1 is the diagonal
    in both, so the map is continuous there; xi = 0 is the arc, exactly on the circle.
    """
    u, xi = np.broadcast_arrays(np.asarray(u, dtype=float), np.asarray(xi, dtype=float))
    s = np.where(u <= 1.0, u, 2.0 - u)
    g = np.expm1(grading * xi) / np.expm1(grading) if grading else xi
    th = s * (np.pi / 4.0)
    x = (1.0 - g) * radius * np.cos(th) + g * half
    y = (1.0 - g) * radius * np.sin(th) + g * half * s
    return np.where(u <= 1.0, x, y), np.where(u <= 1.0, y, x)


# ----------------------------------------------------------------------------------------------------
# Mesh and solve
# ----------------------------------------------------------------------------------------------------
@dataclass
class Level:
    ns: int                 # cells per patch along the arc (2 ns in all)
    nr: int                 # cells in the radial direction
    half: float
    grading: float
    mesh: object = None     # skfem.MeshTri2
    basis: object = None    # skfem.Basis (vector P2/P3)
    u: np.ndarray = None    # solution vector
    seconds: float = 0.0

    @property
    def ndofs(self) -> int:
        return self.basis.N


def param_vertices(ns: int, nr: int) -> np.ndarray:
    """Parameter coordinates (2, (2ns+1)(nr+1)) of the vertices; vertex (i, j) has index i (nr+1) + j."""
    i, j = np.meshgrid(np.arange(2 * ns + 1), np.arange(nr + 1), indexing="ij")
    return np.array([i.ravel() / ns, j.ravel() / nr])


def make_mesh(ns: int, nr: int, half: float = HALF, grading: float = GRADING):
    """The isoparametric quadratic mesh of one level (a skfem MeshTri2).

    Cell (i, j) of the 2ns x nr parameter grid holds the triangles 2 (i nr + j) and 2 (i nr + j) + 1,
    (v00, v10, v11) and (v00, v11, v01). The mid-side nodes are placed by the blending map too (curved
    edges).
    """
    from skfem import MeshTri1, MeshTri2

    pp = param_vertices(ns, nr)
    i, j = np.meshgrid(np.arange(2 * ns), np.arange(nr), indexing="ij")
    v00 = (i * (nr + 1) + j).ravel()
    v10, v01, v11 = v00 + nr + 1, v00 + 1, v00 + nr + 2
    t = np.empty((3, 2 * v00.size), dtype=np.int64)
    t[:, 0::2] = [v00, v10, v11]
    t[:, 1::2] = [v00, v11, v01]
    # Each triangle's vertex indices ascending: skfem orients the edges (and so matches the two P3 edge
    # nodes of neighbouring triangles) by vertex index; unsorted, P3 is not conforming.
    t = np.sort(t, axis=0)
    m2 = MeshTri2.from_mesh(MeshTri1(pp, t))
    assert np.array_equal(m2.t, t), "skfem reordered the triangles"
    xy = np.array(blend_map(m2.doflocs[0], m2.doflocs[1], half, grading=grading))
    return MeshTri2(xy, m2.t)


def solve(level: Level, order: int = 3) -> Level:
    """Assemble and solve one level in place; returns it."""
    from scipy.sparse.linalg import splu
    from skfem import Basis, ElementTriP2, ElementTriP3, ElementVector, FacetBasis, LinearForm, condense
    from skfem.models.elasticity import linear_elasticity

    t0 = time.perf_counter()
    mesh = make_mesh(level.ns, level.nr, level.half, level.grading)
    elem = ElementVector({2: ElementTriP2, 3: ElementTriP3}[order]())
    basis = Basis(mesh, elem, intorder=2 * order)
    lam, mu = LAM, MU
    K = linear_elasticity(lam, mu).assemble(basis)
    half = level.half
    right = FacetBasis(mesh, elem, facets=mesh.facets_satisfying(lambda x: np.isclose(x[0], half)),
                       intorder=2 * order)

    @LinearForm
    def traction(v, w):
        return TRACTION[0] * v[0] + TRACTION[1] * v[1]

    f = traction.assemble(right)
    fixed = np.concatenate([basis.get_dofs(lambda x: np.isclose(x[0], 0.0)).all("u^1"),
                            basis.get_dofs(lambda x: np.isclose(x[1], 0.0)).all("u^2")])
    A, b, u, free = condense(K, f, D=fixed)
    u = np.array(u, dtype=np.float64)
    u[free] = splu(A.tocsc(), permc_spec="MMD_AT_PLUS_A").solve(b)
    level.mesh, level.basis, level.u = mesh, basis, u
    level.seconds = time.perf_counter() - t0
    return level


# ----------------------------------------------------------------------------------------------------
# Evaluation at points given by their parameter coordinates
# ----------------------------------------------------------------------------------------------------
def evaluate(level: Level, pu: np.ndarray, pxi: np.ndarray, newton: int = 12) -> dict[str, np.ndarray]:
    """ux, uy, sxx, syy, sxy of a solved level at the physical points blend_map(pu, pxi).

    The candidate triangles come from the points' parameter cells (and the neighbouring cells when a
    point lies on a cell boundary); each candidate's isoparametric map is inverted by Newton's method.
    The values are averaged over every triangle that contains the point (to 1e-9 in barycentric
    coordinates); a point just outside the mesh (on the arc, where a coarse mesh's quadratic edge
    deviates from the circle by ~1e-6) takes the nearest triangle, extended.
    """
    ns, nr = level.ns, level.nr
    pu, pxi = np.asarray(pu, dtype=float), np.asarray(pxi, dtype=float)
    n = pu.size
    target = np.array(blend_map(pu, pxi, level.half, grading=level.grading))
    eps = 1e-9
    cells = []
    for du in (-eps, eps):
        for dx in (-eps, eps):
            ci = np.clip(np.floor(pu * ns + du), 0, 2 * ns - 1).astype(np.int64)
            cj = np.clip(np.floor(pxi * nr + dx), 0, nr - 1).astype(np.int64)
            cells.append(ci * nr + cj)
    cand = np.concatenate([2 * np.stack(cells, 1), 2 * np.stack(cells, 1) + 1], 1)  # (n, 8)
    cand.sort(axis=1)
    dup = np.zeros_like(cand, dtype=bool)
    dup[:, 1:] = cand[:, 1:] == cand[:, :-1]
    tind = cand.ravel()
    xt = np.repeat(target, cand.shape[1], axis=1)[:, :, None]           # (2, n*8, 1)
    mapping = level.basis.mapping
    X = np.full((2, tind.size, 1), 1.0 / 3.0)
    for _ in range(newton):
        dX = np.einsum("ijkl,jkl->ikl", mapping.invDF(X, tind), xt - mapping.F(X, tind))
        X = X + dX
        if np.abs(dX).max() < 1e-14:
            break
    resid = np.abs(mapping.F(X, tind) - xt).max(axis=0).reshape(n, -1)
    bary = np.stack([1.0 - X[0, :, 0] - X[1, :, 0], X[0, :, 0], X[1, :, 0]]).min(axis=0).reshape(n, -1)
    bary[dup] = -np.inf
    best = bary.max(axis=1, keepdims=True)
    take = bary >= np.minimum(best, 0.0) - eps
    if resid[take].max() > 1e-10:
        raise RuntimeError(f"inverse element map did not converge (residual {resid[take].max():.1e})")

    # Value and gradient of both components in each candidate triangle (scalar shape functions).
    scalar = level.basis.elem.elem
    edofs = level.basis.element_dofs                                   # (2 * nloc, nelems)
    val = np.zeros((2, tind.size))
    grad = np.zeros((2, 2, tind.size))
    for k in range(edofs.shape[0] // 2):
        phi = scalar.gbasis(mapping, X, k, tind=tind)[0]
        with warnings.catch_warnings():  # skfem >= 10 calls `.value` unnecessary; older versions need it
            warnings.simplefilter("ignore", DeprecationWarning)
            value, gradient = np.asarray(phi.value)[:, 0], np.asarray(phi.grad)[:, :, 0]
        for c in range(2):
            coef = level.u[edofs[2 * k + c, tind]]
            val[c] += coef * value
            grad[c] += coef * gradient
    lam, mu = LAM, MU
    exx, eyy, gxy = grad[0, 0], grad[1, 1], grad[0, 1] + grad[1, 0]
    q = {"ux": val[0], "uy": val[1],
         "sxx": lam * (exx + eyy) + 2 * mu * exx, "syy": lam * (exx + eyy) + 2 * mu * eyy, "sxy": mu * gxy}
    w = take / take.sum(axis=1, keepdims=True)
    return {k: (v.reshape(n, -1) * w).sum(axis=1) for k, v in q.items()}


def von_mises(sxx, syy, sxy):
    """Plane-stress von Mises stress."""
    return np.sqrt(sxx**2 - sxx * syy + syy**2 + 3.0 * sxy**2)


# ----------------------------------------------------------------------------------------------------
# Checks
# ----------------------------------------------------------------------------------------------------
def section_forces(level: Level, order: int) -> tuple[float, float]:
    """(int sxx dy over x = 0, int syy dx over y = 0) from the finite-element stresses (per thickness)."""
    from skfem import FacetBasis, Functional
    from skfem.helpers import sym_grad

    lam, mu = LAM, MU
    out = []
    for axis in (0, 1):
        fb = FacetBasis(level.mesh, level.basis.elem, intorder=2 * order,
                        facets=level.mesh.facets_satisfying(lambda x, a=axis: np.isclose(x[a], 0.0)))

        @Functional
        def normal_stress(w, a=axis):
            eps = sym_grad(w["u"])
            return lam * (eps[0, 0] + eps[1, 1]) + 2 * mu * eps[a, a]

        out.append(float(normal_stress.assemble(fb, u=fb.interpolate(level.u))))
    return out[0], out[1]


def arc_error(level: Level) -> float:
    """Max | |x| - R | over the hole's boundary edges of the quadratic mesh (11 points per edge)."""
    from skfem import FacetBasis

    m = level.mesh
    facets = m.facets_satisfying(lambda x: np.hypot(x[0], x[1]) < RADIUS + 1e-9)
    q = np.linspace(0.0, 1.0, 11)
    fb = FacetBasis(m, level.basis.elem, facets=facets, quadrature=(q[None, :], np.full(q.size, 1 / q.size)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        xq = np.asarray(fb.global_coordinates().value)
    return float(np.abs(np.hypot(xq[0], xq[1]) - RADIUS).max())


def kirsch_check(order: int, ns: int = 32, nr: int = 48) -> tuple[float, float]:
    """sxx(0, 5) and syy(5, 0) with the outer edges at 400 (hole radius 5): Kirsch gives 300 and -100."""
    lev = solve(Level(ns, nr, half=400.0, grading=5.0), order)
    out = evaluate(lev, np.array([2.0, 0.0]), np.array([0.0, 0.0]))
    return float(out["sxx"][0]), float(out["syy"][1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(ROOT / "data" / "plate_hole.h5"), help="output HDF5 file")
    p.add_argument("--levels", type=int, default=5, help="number of mesh levels (the last is stored)")
    p.add_argument("--base", type=int, nargs=2, default=(4, 6), metavar=("NS", "NR"),
                   help="cells per patch along the arc and radially on the coarsest level")
    p.add_argument("--order", type=int, default=3, choices=(2, 3), help="Lagrange element order")
    p.add_argument("--grading", type=float, default=GRADING, help="radial grading exponent a")
    p.add_argument("--tol-u", type=float, default=1e-5, help="largest accepted estimated rel. L2 error of |U|")
    p.add_argument("--tol-mises", type=float, default=1e-4, help="... and of von Mises")
    a = p.parse_args(argv)
    if a.levels < 3:
        p.error("--levels must be >= 3 (the error estimate needs three levels)")
    t_start = time.perf_counter()

    levels = []
    for k in range(a.levels):
        lev = solve(Level(a.base[0] * 2**k, a.base[1] * 2**k, HALF, a.grading), a.order)
        levels.append(lev)
        print(f"level {k}: {2 * lev.ns} x {lev.nr} cells, {lev.mesh.nvertices} vertices, "
              f"{lev.mesh.nelements} triangles, {lev.ndofs} dofs (P{a.order}), {lev.seconds:.1f} s", flush=True)
    fine = levels[-1]

    # Stored points: the finest level's vertices; every level is evaluated there.
    pp = param_vertices(fine.ns, fine.nr)
    xy = fine.mesh.p[:, :fine.mesh.nvertices].T.copy()
    assert np.allclose(np.array(blend_map(pp[0], pp[1], grading=a.grading)).T, xy, atol=1e-12, rtol=0)
    t0 = time.perf_counter()
    vals = [evaluate(lev, pp[0], pp[1]) for lev in levels]
    print(f"evaluated all levels at the {len(xy)} stored points ({time.perf_counter() - t0:.1f} s)")
    mag = [np.hypot(v["ux"], v["uy"]) for v in vals]
    mis = [von_mises(v["sxx"], v["syy"], v["sxy"]) for v in vals]

    print("\nrefinement study at the stored points: relative L2 difference to the finest level")
    print("  level   cells      dofs     |U|        rate   von Mises  rate   max|dux|,|duy|")
    du = [rel_l2(m, mag[-1]) for m in mag[:-1]]
    dm = [rel_l2(m, mis[-1]) for m in mis[:-1]]
    dmax = [max(np.abs(v["ux"] - vals[-1]["ux"]).max(), np.abs(v["uy"] - vals[-1]["uy"]).max()) for v in vals[:-1]]
    for k in range(len(levels) - 1):
        ru = f"{np.log2(du[k - 1] / du[k]):5.2f}" if k else "     "
        rm = f"{np.log2(dm[k - 1] / dm[k]):5.2f}" if k else "     "
        lev = levels[k]
        print(f"  {k:5d} {2 * lev.ns:4d}x{lev.nr:<4d} {lev.ndofs:8d}  {du[k]:.3e} {ru}  {dm[k]:.3e} {rm}  {dmax[k]:.2e}")
    # Richardson: rate p from the last three levels, error of the finest ~ |v_fine - v_prev| / (2^p - 1).
    l2, amax = np.linalg.norm, lambda d: float(np.abs(d).max())
    est = {"|U|": richardson(*mag[-3:], l2), "von Mises": richardson(*mis[-3:], l2)}
    est = {k: (e / l2(q[-1]), p) for (k, (e, p)), q in zip(est.items(), (mag, mis))}
    stack = lambda v, names: np.concatenate([v[c] for c in names])
    max_err, rate_uv = richardson(*(stack(v, ("ux", "uy")) for v in vals[-3:]), amax)
    max_err_s, rate_s = richardson(*(stack(v, ("sxx", "syy", "sxy")) for v in vals[-3:]), amax)
    print(f"estimated error of the finest level (Richardson, observed rates): relative L2 |U| "
          f"{est['|U|'][0]:.1e} (rate {est['|U|'][1]:.2f}), von Mises {est['von Mises'][0]:.1e} "
          f"(rate {est['von Mises'][1]:.2f}); max abs ux, uy {max_err:.1e} (rate {rate_uv:.2f}; "
          f"max |U| = {mag[-1].max():.4f}); max abs stress {max_err_s:.1e} (rate {rate_s:.2f})")

    # Sanity checks.
    fx, fy = section_forces(fine, a.order)
    v = vals[-1]
    on_x0, on_y0 = np.isclose(xy[:, 0], 0.0), np.isclose(xy[:, 1], 0.0)
    ix = np.flatnonzero(on_x0)[np.argsort(xy[on_x0, 1])]
    trap = float(0.5 * np.sum((v["sxx"][ix][1:] + v["sxx"][ix][:-1]) * np.diff(xy[ix, 1])))
    i05 = int(np.argmin(np.hypot(xy[:, 0], xy[:, 1] - RADIUS)))
    i50 = int(np.argmin(np.hypot(xy[:, 0] - RADIUS, xy[:, 1])))
    s05 = [float(q["sxx"][i05]) for q in vals]
    geo = arc_error(fine)
    t0 = time.perf_counter()
    k_sxx, k_syy = kirsch_check(a.order)
    print(f"\nforce balance: int sxx dy over x = 0: {fx:.6f} (FE stresses), {trap:.4f} (trapezoid over the stored "
          f"nodal sxx); expected {TRACTION[0] * HALF:.0f}.  int syy dx over y = 0: {fy:.2e} (expected 0)")
    print(f"stress concentration: sxx(0, 5) = {s05[-1]:.4f} (levels: {', '.join(f'{s:.3f}' for s in s05)}); "
          f"syy(5, 0) = {v['syy'][i50]:.4f}; max von Mises {mis[-1].max():.4f}")
    print(f"  Kirsch check, same solver with the outer edges at 400: sxx(0, 5) = {k_sxx:.3f} (300), "
          f"syy(5, 0) = {k_syy:.3f} (-100)  ({time.perf_counter() - t0:.1f} s)")
    print(f"geometry: max radial error of the quadratic hole boundary = {geo:.1e}")
    print(f"symmetry: max |ux| on x = 0: {np.abs(v['ux'][on_x0]).max():.1e}, max |uy| on y = 0: "
          f"{np.abs(v['uy'][on_y0]).max():.1e}; max |sxy| there: "
          f"{max(np.abs(v['sxy'][on_x0]).max(), np.abs(v['sxy'][on_y0]).max()):.1e}")

    if not (est["|U|"][0] <= a.tol_u and est["von Mises"][0] <= a.tol_mises):
        print(f"FAILED: estimated errors exceed --tol-u {a.tol_u:g} / --tol-mises {a.tol_mises:g}; not writing",
              file=sys.stderr)
        return 1

    base = levels[0]
    attrs = {
        "problem": "plate_hole",
        "method": (f"scikit-fem, plane-stress linear elasticity with isoparametric P{a.order} triangles on a "
                   f"structured graded mesh (two blended patches, grading {a.grading:g}), {fine.mesh.nelements} "
                   f"triangles, {fine.mesh.nvertices} vertices, {fine.ndofs} dofs; sparse LU; values at the "
                   f"vertices, stresses averaged over the triangles around each vertex."),
        "accuracy": (f"refinement study over {a.levels} levels ({2 * base.ns}x{base.nr} to {2 * fine.ns}x{fine.nr} "
                     f"cells), at the stored points: relative L2 difference of the previous level to this one "
                     f"{du[-1]:.1e} in |U| and {dm[-1]:.1e} in von Mises; Richardson estimate of this level's "
                     f"error {est['|U|'][0]:.1e} (|U|) and {est['von Mises'][0]:.1e} (von Mises) relative L2, "
                     f"max abs {max_err:.1e} in ux, uy and {max_err_s:.1e} in the stresses; "
                     f"int sxx dy over x = 0 = {fx:.4f} (2000)."),
        "accuracy_estimate": float(max_err),
        "created_by": "scripts/make_plate_hole_reference.py",
        "E": E,
        "nu": NU,
        "traction": np.array(TRACTION, dtype=np.float64),
        "radius": RADIUS,
        "half_width": HALF,
        "plane": "stress",
        "element_order": a.order,
        "grading": a.grading,
        "mesh_cells": np.array([fine.ns, fine.nr], dtype=np.int64),  # per patch: along the arc, radially
    }
    tri = fine.mesh.t.T.copy()  # stored counter-clockwise (skfem keeps each triangle's indices ascending)
    e1, e2 = xy[tri[:, 1]] - xy[tri[:, 0]], xy[tri[:, 2]] - xy[tri[:, 0]]
    cw = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0] < 0
    tri[cw] = tri[cw][:, [0, 2, 1]]
    out = Path(a.out)
    write_points(out, xy, {"ux": v["ux"], "uy": v["uy"]}, attrs,
                 {"sxx": v["sxx"], "syy": v["syy"], "sxy": v["sxy"], "mises": mis[-1]}, tri)
    print(f"\nwrote {out} ({out.stat().st_size / 1024:.0f} KiB, {len(xy)} points); "
          f"total {time.perf_counter() - t_start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
