#!/usr/bin/env python
"""Build the reference solution `data/neo_hookean_beam.h5` for KINN's Neo-Hookean cantilever (example 4).

    beam [0, 4] x [0, 1], plane strain, compressible Neo-Hookean
        psi(F) = lam/2 (ln J)^2 - mu ln J + mu/2 (tr C - 2),  F = I + grad u,  J = det F,  C = F^T F,
    E = 1000, nu = 0.3 (lam = E nu / ((1 + nu)(1 - 2 nu)), mu = E / (2 (1 + nu)));
    u = 0 on x = 0; dead traction t = (0, -5) on x = 4; the other edges are free.
    Total potential Pi(u) = int psi dOmega - int_{x=4} t . u dGamma.

Method: finite elements with scikit-fem (no gmsh).

- Mesh: `MeshTri.init_tensor`, nx x ny uniform cells of [0, 4] x [0, 1], two triangles each (all diagonals
  the same way); level k has (nx0 2^k) x (ny0 2^k) cells, so every level's vertices are vertices of all
  finer levels.
- Solve: vector P2 Lagrange elements (`ElementVector(ElementTriP2())`), 4th-order quadrature. Newton's
  method on the residual R(u) = int P(F) : grad v - int t . v with the first Piola stress
      P = mu F + (lam ln J - mu) F^-T
  and its consistent tangent (G = F^-T)
      dP[A] = mu A + lam (G : A) G - (lam ln J - mu) G A^T G,
  clamped dofs removed, sparse LU. The load is applied in --steps equal increments (default 2), each
  solved to ||R_free|| <= --rtol ||f_free|| (relative to the full load vector; or below 1e-8 once the
  residual stagnates at the round-off floor, ~1e-10 on the finest mesh); a Newton step that would
  make J <= 0 at a quadrature point is halved. The residual norms of every iteration are printed
  (quadratic convergence shows the tangent is consistent).
- Stress: Cauchy sigma = P F^T / J in-plane; plane strain has F_zz = 1, so P_zz = lam ln J and
  sigma_zz = lam ln J / J; von Mises sqrt(((sxx-syy)^2 + (syy-szz)^2 + (szz-sxx)^2) / 2 + 3 sxy^2).
  At a stored vertex: the mean over the triangles around it of the P2 stress there.

Checks, printed: a refinement study over the levels evaluated at a common 101 x 26 grid of [0, 4] x [0, 1]
(each level by locating the points in its triangles), with the relative L2 differences of uy and of
von Mises to the finest level, observed rates and a Richardson estimate of the finest level's error; the
tip deflection uy(4, 0.5) on every level, against the linear FE solution of the same mesh and the
Euler-Bernoulli / Timoshenko beam values. It refuses to write the file if the estimated errors exceed
--tol-u / --tol-mises.

Stored (`points` layout, float64): `points` and `fields/ux`, `fields/uy` at the finest level's vertices,
`derived/{sxx,syy,sxy,szz,mises}` there, and `mesh/triangles` (counter-clockwise, int64).

Usage:  python scripts/make_neo_hookean_reference.py [--out data/neo_hookean_beam.h5] [--levels 6]
                                                     [--base 8 2] [--steps 2]
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kinn.pde import mechanics
from kinn.data.generators import richardson
from kinn.metrics import relative_l2 as rel_l2
from kinn.data.reference import write_points

ROOT = Path(__file__).resolve().parent.parent
LENGTH, HEIGHT = 4.0, 1.0
E, NU = 1000.0, 0.3
TRACTION = (0.0, -5.0)            # dead load on x = LENGTH, per unit length
ROUNDOFF_RTOL = 1e-8              # Newton also stops below this once the residual stops decreasing
CLAMP_ZONE = 0.2                  # von Mises is also compared away from the clamp, x >= CLAMP_ZONE


LAM, MU = mechanics.lame(E, NU, "strain")  # the plane-strain (3-D) Lame parameters


def kinematics(du):
    """F, J, G = F^-T from the displacement gradient du (2, 2, ...)."""
    F = np.array(du, dtype=np.float64, copy=True)
    F[0, 0] += 1.0
    F[1, 1] += 1.0
    J = F[0, 0] * F[1, 1] - F[0, 1] * F[1, 0]
    G = np.array([[F[1, 1], -F[1, 0]], [-F[0, 1], F[0, 0]]]) / J
    return F, J, G


def energy_density(du, lam: float, mu: float):
    F, J, _ = kinematics(du)
    lnj = np.log(J)
    return 0.5 * lam * lnj**2 - mu * lnj + 0.5 * mu * ((F * F).sum(axis=(0, 1)) - 2.0)


def piola(du, lam: float, mu: float):
    F, J, G = kinematics(du)
    return mu * F + (lam * np.log(J) - mu) * G


def cauchy(du, lam: float, mu: float):
    """sxx, syy, sxy, szz of sigma = P F^T / J (plane strain: szz = lam ln J / J)."""
    F, J, G = kinematics(du)
    P = mu * F + (lam * np.log(J) - mu) * G
    s = np.einsum("ij...,kj...->ik...", P, F) / J
    return s[0, 0], s[1, 1], 0.5 * (s[0, 1] + s[1, 0]), lam * np.log(J) / J


def von_mises(sxx, syy, sxy, szz):
    return np.sqrt(0.5 * ((sxx - syy) ** 2 + (syy - szz) ** 2 + (szz - sxx) ** 2) + 3.0 * sxy**2)


# ----------------------------------------------------------------------------------------------------
# Forms
# ----------------------------------------------------------------------------------------------------
def _forms():
    from skfem import BilinearForm, Functional, LinearForm
    from skfem.helpers import ddot, grad

    @LinearForm
    def residual(v, w):
        return ddot(np.asarray(w["P"]), grad(v))

    @BilinearForm
    def tangent(du, v, w):
        G, c = np.asarray(w["G"]), np.asarray(w["c"])
        A, B = grad(du), grad(v)
        GAtG = np.einsum("ij...,kj...,kl...->il...", G, A, G)
        return w["mu"] * ddot(A, B) + w["lam"] * ddot(G, A) * ddot(G, B) - c * ddot(GAtG, B)

    @Functional
    def energy(w):
        return energy_density(grad(w["u0"]), w["lam"], w["mu"])

    @LinearForm
    def traction(v, w):
        return TRACTION[0] * v[0] + TRACTION[1] * v[1]

    return residual, tangent, energy, traction


@dataclass
class Level:
    nx: int
    ny: int
    mesh: object = None
    basis: object = None
    u: np.ndarray = None           # Newton solution
    u_lin: np.ndarray = None       # linear-elastic solution (the first Newton step at full load)
    history: list = field(default_factory=list)   # (step, iteration, ||R_free|| / ||f_free||)
    newton_iterations: int = 0
    seconds: float = 0.0

    @property
    def ndofs(self) -> int:
        return self.basis.N


class Problem:
    """One mesh: assembly of the residual, tangent and energy (kept for the tests)."""

    def __init__(self, nx: int, ny: int):
        from skfem import Basis, ElementTriP2, ElementVector, FacetBasis, MeshTri

        self.lam, self.mu = LAM, MU
        self.mesh = MeshTri.init_tensor(np.linspace(0.0, LENGTH, nx + 1), np.linspace(0.0, HEIGHT, ny + 1))
        elem = ElementVector(ElementTriP2())
        self.basis = Basis(self.mesh, elem, intorder=4)
        right = FacetBasis(self.mesh, elem, intorder=4,
                           facets=self.mesh.facets_satisfying(lambda x: np.isclose(x[0], LENGTH)))
        self.residual_form, self.tangent_form, self.energy_form, traction = _forms()
        self.f = traction.assemble(right)
        self.fixed = self.basis.get_dofs(lambda x: np.isclose(x[0], 0.0)).all()
        self.free = np.setdiff1d(np.arange(self.basis.N), self.fixed)

    def grad_q(self, u):
        """Displacement gradient at the quadrature points, (2, 2, nelems, nqp)."""
        return np.asarray(self.basis.interpolate(u).grad)

    def internal(self, u):
        return self.residual_form.assemble(self.basis, P=piola(self.grad_q(u), self.lam, self.mu))

    def tangent(self, u):
        du = self.grad_q(u)
        _, J, G = kinematics(du)
        return self.tangent_form.assemble(self.basis, G=G, c=self.lam * np.log(J) - self.mu,
                                          lam=self.lam, mu=self.mu)

    def potential(self, u, load: float = 1.0) -> float:
        """Pi(u) = int psi - load * f . u."""
        return float(self.energy_form.assemble(self.basis, u0=self.basis.interpolate(u), lam=self.lam,
                                               mu=self.mu) - load * self.f @ u)

    def min_j(self, u) -> float:
        return float(kinematics(self.grad_q(u))[1].min())

    def linear_solve(self):
        from scipy.sparse.linalg import splu

        fr = self.free
        u = np.zeros(self.basis.N)
        K = self.tangent(u).tocsr()[fr][:, fr]
        u[fr] = splu(K.tocsc()).solve(self.f[fr])
        return u

    def newton(self, steps: int = 2, rtol: float = 1e-10, maxit: int = 30, verbose: bool = False):
        """Solve R(u) = 0 by Newton in `steps` load increments; returns (u, history)."""
        from scipy.sparse.linalg import splu

        fr = self.free
        fnorm = np.linalg.norm(self.f[fr])
        u = np.zeros(self.basis.N)
        hist = []
        for step in range(1, steps + 1):
            load = step / steps
            for it in range(maxit + 1):
                r = self.internal(u) - load * self.f
                rn = float(np.linalg.norm(r[fr]) / fnorm)
                hist.append((step, it, rn))
                if verbose:
                    print(f"    load {load:.3f}  iteration {it:2d}  ||R|| / ||f|| = {rn:.3e}", flush=True)
                if rn <= rtol:
                    break
                if it and rn <= ROUNDOFF_RTOL and rn > 0.25 * hist[-2][2]:
                    break  # stagnating at the round-off floor (~1e-10 on the finest meshes)
                if it == maxit:
                    raise RuntimeError(f"Newton did not converge at load {load} ({rn:.1e})")
                K = self.tangent(u).tocsr()[fr][:, fr]
                du = np.zeros_like(u)
                du[fr] = -splu(K.tocsc()).solve(r[fr])
                alpha = 1.0
                while self.min_j(u + alpha * du) <= 0.0:
                    alpha *= 0.5
                    if alpha < 1e-6:
                        raise RuntimeError("Newton step inverts elements")
                u = u + alpha * du
        return u, hist


def solve(level: Level, steps: int = 2, rtol: float = 1e-10, verbose: bool = True) -> Level:
    t0 = time.perf_counter()
    prob = Problem(level.nx, level.ny)
    level.u, level.history = prob.newton(steps, rtol, verbose=verbose)
    level.u_lin = prob.linear_solve()
    level.mesh, level.basis = prob.mesh, prob.basis
    level.newton_iterations = len(level.history) - steps
    level.seconds = time.perf_counter() - t0
    return level


# ----------------------------------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------------------------------
def _values(basis, u, X, tind):
    """Value (2, ...) and gradient (2, 2, ...) of the vector P2 field u at local points X in tind."""
    mapping, scalar, edofs = basis.mapping, basis.elem.elem, basis.element_dofs
    val, grad = 0.0, 0.0
    idx = slice(None) if tind is None else tind
    for k in range(edofs.shape[0] // 2):
        phi = scalar.gbasis(mapping, X, k, tind=tind)[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            value, gradient = np.asarray(phi.value), np.asarray(phi.grad)
        cx, cy = u[edofs[2 * k, idx]], u[edofs[2 * k + 1, idx]]
        if value.ndim == 2:
            cx, cy = cx[:, None], cy[:, None]
        val = val + np.array([cx * value, cy * value])
        grad = grad + np.array([cx * gradient, cy * gradient])
    return val, grad


def _quantities(val, grad, lam, mu):
    sxx, syy, sxy, szz = cauchy(grad, lam, mu)
    return {"ux": val[0], "uy": val[1], "sxx": sxx, "syy": syy, "sxy": sxy, "szz": szz,
            "mises": von_mises(sxx, syy, sxy, szz)}


def evaluate(level: Level, xy: np.ndarray, u=None) -> dict[str, np.ndarray]:
    """ux, uy, stresses and von Mises at points xy (n, 2) (one containing triangle each)."""
    u = level.u if u is None else u
    pts = np.clip(xy, [1e-12, 1e-12], [LENGTH - 1e-12, HEIGHT - 1e-12]).T
    tind = level.mesh.element_finder()(pts[0], pts[1])
    X = level.basis.mapping.invF(pts[:, :, None], tind=tind)
    val, grad = _values(level.basis, u, X, tind)
    lam, mu = LAM, MU
    return {k: v[..., 0] for k, v in _quantities(val, grad, lam, mu).items()}


def vertex_values(level: Level) -> dict[str, np.ndarray]:
    """Displacements at the vertices and stresses averaged over the triangles around each vertex."""
    X = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])        # the reference triangle's corners
    val, grad = _values(level.basis, level.u, X, None)      # (2, nel, 3), (2, 2, nel, 3)
    lam, mu = LAM, MU
    q = _quantities(val, grad, lam, mu)
    # corner c of element e is the vertex of the mapped X[:, c]; MeshTri maps X to t[0], t[1], t[2]
    t = level.mesh.t
    nv = level.mesh.nvertices
    cnt = np.bincount(t.ravel(), minlength=nv)
    out = {}
    for k in ("sxx", "syy", "sxy", "szz"):
        out[k] = np.bincount(t.ravel(), weights=q[k].T.ravel(), minlength=nv) / cnt
    out["mises"] = von_mises(out["sxx"], out["syy"], out["sxy"], out["szz"])
    dofs = level.basis.nodal_dofs                            # (2, nvertices)
    out["ux"], out["uy"] = level.u[dofs[0]], level.u[dofs[1]]
    return out


def beam_estimates() -> tuple[float, float]:
    """Linear tip deflection magnitudes: Euler-Bernoulli P L^3 / (3 E' I), E' = E / (1 - nu^2), and
    Timoshenko (plus P L / (kappa G A), kappa = 5/6)."""
    p, ep, inertia = -TRACTION[1] * HEIGHT, E / (1 - NU**2), HEIGHT**3 / 12
    eb = p * LENGTH**3 / (3 * ep * inertia)
    return eb, eb + p * LENGTH / (5 / 6 * MU * HEIGHT)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(ROOT / "data" / "neo_hookean_beam.h5"), help="output HDF5 file")
    p.add_argument("--levels", type=int, default=6, help="number of mesh levels (the last is stored)")
    p.add_argument("--base", type=int, nargs=2, default=(8, 2), metavar=("NX", "NY"),
                   help="cells along x and y on the coarsest level")
    p.add_argument("--steps", type=int, default=2, help="load increments")
    p.add_argument("--rtol", type=float, default=1e-10, help="Newton tolerance, ||R_free|| / ||f_free||")
    p.add_argument("--tol-u", type=float, default=1e-4, help="largest accepted estimated rel. L2 error of uy")
    p.add_argument("--tol-mises", type=float, default=1e-3, help="... and of von Mises at x >= 0.2")
    a = p.parse_args(argv)
    if a.levels < 3:
        p.error("--levels must be >= 3 (the error estimate needs three levels)")
    t_start = time.perf_counter()

    levels = []
    for k in range(a.levels):
        lev = Level(a.base[0] * 2**k, a.base[1] * 2**k)
        print(f"level {k}: {lev.nx} x {lev.ny} cells", flush=True)
        solve(lev, a.steps, a.rtol, verbose=True)
        levels.append(lev)
        print(f"  {lev.mesh.nvertices} vertices, {lev.mesh.nelements} triangles, {lev.ndofs} dofs (P2), "
              f"{lev.newton_iterations} Newton iterations, {lev.seconds:.1f} s", flush=True)
    fine = levels[-1]

    # Common points: a 101 x 26 grid (spacing 0.04).
    gx, gy = np.meshgrid(np.linspace(0, LENGTH, 101), np.linspace(0, HEIGHT, 26), indexing="ij")
    grid = np.column_stack([gx.ravel(), gy.ravel()])
    vals = [evaluate(lev, grid) for lev in levels]
    tip = np.array([[LENGTH, 0.5 * HEIGHT]])
    tips = [float(evaluate(lev, tip)["uy"][0]) for lev in levels]
    tips_lin = [float(evaluate(lev, tip, lev.u_lin)["uy"][0]) for lev in levels]
    tips_ux = [float(evaluate(lev, tip)["ux"][0]) for lev in levels]

    away = grid[:, 0] >= CLAMP_ZONE        # von Mises is singular at the clamped corners (0, 0), (0, 1)
    uy = [v["uy"] for v in vals]
    mis = [v["mises"] for v in vals]
    misa = [v["mises"][away] for v in vals]
    du = [rel_l2(q, uy[-1]) for q in uy[:-1]]
    dm = [rel_l2(q, mis[-1]) for q in mis[:-1]]
    dma = [rel_l2(q, misa[-1]) for q in misa[:-1]]

    def rate(d, k):
        return f"{np.log2(d[k - 1] / d[k]):5.2f}" if 0 < k < len(d) else "     "

    print(f"\nrefinement study at the 101 x 26 grid: relative L2 difference to the finest level "
          f"(von Mises: all points / x >= {CLAMP_ZONE:g})")
    print("  level  cells      dofs   uy         rate   Mises all  rate   Mises x>=.2 rate   uy(4, 0.5)     linear FE")
    for k, lev in enumerate(levels):
        f = (lambda d, k=k: f"{d[k]:.3e}" if k < len(d) else "(stored) ")
        print(f"  {k:5d} {lev.nx:4d}x{lev.ny:<4d} {lev.ndofs:7d}  {f(du)}  {rate(du, k)}  {f(dm)}  {rate(dm, k)}  "
              f"{f(dma)}  {rate(dma, k)}  {tips[k]:.10f}  {tips_lin[k]:.10f}")
    l2 = np.linalg.norm
    eu, pu = richardson(*uy[-3:], l2)
    em, pm = richardson(*mis[-3:], l2)
    ema, pma = richardson(*misa[-3:], l2)
    eu, em, ema = eu / l2(uy[-1]), em / l2(mis[-1]), ema / l2(misa[-1])
    max_err, rate_u = richardson(*(np.concatenate([v["ux"], v["uy"]]) for v in vals[-3:]),
                                 lambda d: float(np.abs(d).max()))
    et, pt = richardson(*(np.array(t) for t in tips[-3:]), lambda d: float(abs(d)))
    print(f"estimated error of the finest level (Richardson, observed rates): relative L2 uy {eu:.1e} "
          f"(rate {pu:.2f}), von Mises {em:.1e} (rate {pm:.2f}) on all points, {ema:.1e} (rate {pma:.2f}) at "
          f"x >= {CLAMP_ZONE:g}; max abs ux, uy {max_err:.1e} (rate {rate_u:.2f}); tip uy {et:.1e} "
          f"(rate {pt:.2f})")
    eb, timo = beam_estimates()
    print(f"\ntip (4, 0.5): uy = {tips[-1]:.8f}, ux = {tips_ux[-1]:.8f} (Neo-Hookean); linear FE uy = "
          f"{tips_lin[-1]:.8f}; beam theory: Euler-Bernoulli -{eb:.4f}, Timoshenko -{timo:.4f}; "
          f"nonlinear / linear FE = {tips[-1] / tips_lin[-1]:.4f}")

    vv = vertex_values(fine)
    xy = fine.mesh.p.T.copy()
    clamped = np.isclose(xy[:, 0], 0.0)
    print(f"max |u| on x = 0: {max(np.abs(vv['ux'][clamped]).max(), np.abs(vv['uy'][clamped]).max()):.1e}; "
          f"max von Mises at the vertices {vv['mises'].max():.2f} (at {xy[np.argmax(vv['mises'])]}, "
          f"the clamped corners are stress singularities); min J {Problem(fine.nx, fine.ny).min_j(fine.u):.4f}")

    if not (eu <= a.tol_u and ema <= a.tol_mises):
        print(f"FAILED: estimated errors exceed --tol-u {a.tol_u:g} / --tol-mises {a.tol_mises:g}; not writing",
              file=sys.stderr)
        return 1

    base = levels[0]
    attrs = {
        "problem": "neo_hookean_beam",
        "method": (f"scikit-fem, plane-strain compressible Neo-Hookean (KINN's psi), vector P2 triangles on a "
                   f"structured {fine.nx}x{fine.ny}-cell mesh ({fine.mesh.nelements} triangles, "
                   f"{fine.mesh.nvertices} vertices, {fine.ndofs} dofs), Newton with the consistent tangent in "
                   f"{a.steps} load steps to ||R|| <= {a.rtol:g} ||f||, sparse LU; values at the vertices, "
                   f"Cauchy stresses (szz = lam ln J / J) averaged over the triangles around each vertex."),
        "accuracy": (f"refinement study over {a.levels} levels ({base.nx}x{base.ny} to {fine.nx}x{fine.ny} cells) "
                     f"on a 101x26 grid: relative L2 difference of the previous level to this one {du[-1]:.1e} in "
                     f"uy and {dm[-1]:.1e} in von Mises ({dma[-1]:.1e} at x >= {CLAMP_ZONE:g}); Richardson estimate of this "
                     f"level's error {eu:.1e} (uy) and {em:.1e} (von Mises; {ema:.1e} at x >= {CLAMP_ZONE:g}, away "
                     f"from the clamped-corner singularities) relative L2, max abs "
                     f"{max_err:.1e} in ux, uy; tip uy(4, 0.5) = {tips[-1]:.6f} (linear FE {tips_lin[-1]:.6f})."),
        "accuracy_estimate": float(max_err),
        "created_by": "scripts/make_neo_hookean_reference.py",
        "E": E,
        "nu": NU,
        "traction": np.array(TRACTION, dtype=np.float64),
        "length": LENGTH,
        "height": HEIGHT,
        "plane": "strain",
        "element_order": 2,
        "mesh_cells": np.array([fine.nx, fine.ny], dtype=np.int64),
        "tip_uy": tips[-1],
        "tip_uy_linear": tips_lin[-1],
    }
    tri = fine.mesh.t.T.copy()
    e1, e2 = xy[tri[:, 1]] - xy[tri[:, 0]], xy[tri[:, 2]] - xy[tri[:, 0]]
    cw = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0] < 0
    tri[cw] = tri[cw][:, [0, 2, 1]]
    out = Path(a.out)
    write_points(out, xy, {"ux": vv["ux"], "uy": vv["uy"]}, attrs,
                 {k: vv[k] for k in ("sxx", "syy", "sxy", "szz", "mises")}, tri)
    print(f"\nwrote {out} ({out.stat().st_size / 1024:.0f} KiB, {len(xy)} points); "
          f"total {time.perf_counter() - t_start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
