"""Checks of the stored plate-with-a-hole reference `data/plate_hole.h5` (KINN example 2).

The file is built by `scripts/make_plate_hole_reference.py` (~16 s); these tests do not rebuild it. They
check the documented layout, the boundary conditions and the force balance on the stored values, that
`kinn.data.reference` reads it, and (where scikit-fem is installed) that the script's solver on a coarse
mesh agrees with the stored values.
"""
from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data" / "plate_hole.h5"
R, HALF = 5.0, 20.0
SXX_05 = 358.32  # this script's converged sxx at (0, 5); Kirsch's infinite plate gives 300


@pytest.fixture(scope="module")
def ref():
    if not DATA.exists():
        pytest.fail(f"{DATA} is missing; run: python scripts/make_plate_hole_reference.py")
    with h5py.File(DATA, "r") as f:
        out = {k: f[k][()] for k in ("points", "fields/ux", "fields/uy", "derived/sxx", "derived/syy",
                                      "derived/sxy", "derived/mises", "mesh/triangles")}
        out["dtypes"] = {k: f[k].dtype for k in ("points", "fields/ux", "fields/uy", "derived/mises")}
        out["attrs"] = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
    return out


@pytest.fixture(scope="module")
def script(load_script):
    return load_script("make_plate_hole_reference")


def trapezoid(y, x):
    """The trapezoid rule (np.trapezoid needs numpy >= 2)."""
    return float(0.5 * np.sum((y[1:] + y[:-1]) * np.diff(x)))


def on(p, axis, value):
    return np.isclose(p[:, axis], value, rtol=0, atol=1e-12)


def test_layout_and_attributes(ref):
    p = ref["points"]
    n = len(p)
    assert p.shape == (n, 2) and 10_000 <= n <= 30_000
    for k in ("fields/ux", "fields/uy", "derived/sxx", "derived/syy", "derived/sxy", "derived/mises"):
        assert ref[k].shape == (n,) and np.all(np.isfinite(ref[k])), k
    assert all(d == np.float64 for d in ref["dtypes"].values())
    t = ref["mesh/triangles"]
    assert t.ndim == 2 and t.shape[1] == 3 and np.issubdtype(t.dtype, np.integer)
    assert t.min() == 0 and t.max() == n - 1
    a = ref["attrs"]
    assert a["problem"] == "plate_hole" and a["layout"] == "points" and a["coord_names"] == "x,y"
    assert a["created_by"] == "scripts/make_plate_hole_reference.py"
    assert isinstance(a["method"], str) and "scikit-fem" in a["method"]
    assert isinstance(a["accuracy"], str) and "Richardson" in a["accuracy"]
    assert 0 < float(a["accuracy_estimate"]) < 1e-5
    assert a["E"] == 1000.0 and a["nu"] == 0.3
    assert np.array_equal(np.asarray(a["traction"]), [100.0, 0.0])


def test_geometry(ref):
    p, t = ref["points"], ref["mesh/triangles"]
    r = np.hypot(p[:, 0], p[:, 1])
    assert p.min() >= 0.0 and p.max() <= HALF
    assert r.min() >= R - 1e-12
    hole = np.isclose(r, R, rtol=0, atol=1e-12)
    assert hole.sum() > 50 and on(p, 1, HALF).sum() > 20 and on(p, 0, HALF).sum() > 20
    for corner in ([0, R], [R, 0], [HALF, 0], [HALF, HALF], [0, HALF]):
        assert np.hypot(*(p - corner).T).min() < 1e-12, corner
    # Triangles: counter-clockwise, covering the plate minus the hole (the chords cut off ~1e-4 of the arc).
    e1, e2 = p[t[:, 1]] - p[t[:, 0]], p[t[:, 2]] - p[t[:, 0]]
    area = 0.5 * (e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])
    assert area.min() > 0
    assert area.sum() == pytest.approx(HALF**2 - np.pi * R**2 / 4, rel=1e-5)


def test_symmetry_conditions(ref):
    p = ref["points"]
    x0, y0 = on(p, 0, 0.0), on(p, 1, 0.0)
    assert x0.sum() > 20 and y0.sum() > 20
    assert np.abs(ref["fields/ux"][x0]).max() < 1e-10
    assert np.abs(ref["fields/uy"][y0]).max() < 1e-10
    assert np.abs(ref["derived/sxy"][x0 | y0]).max() < 1e-2  # no shear on a symmetry plane


def test_traction_conditions(ref):
    p, sxx, syy, sxy = ref["points"], ref["derived/sxx"], ref["derived/syy"], ref["derived/sxy"]
    top, right = on(p, 1, HALF), on(p, 0, HALF)
    assert np.abs(syy[top]).max() < 1e-2 and np.abs(sxy[top]).max() < 1e-2
    assert np.abs(sxx[right] - 100.0).max() < 1e-2 and np.abs(sxy[right]).max() < 1e-2
    hole = np.isclose(np.hypot(p[:, 0], p[:, 1]), R, rtol=0, atol=1e-12)
    c, s = p[hole, 0] / R, p[hole, 1] / R
    srr = sxx[hole] * c * c + 2 * sxy[hole] * c * s + syy[hole] * s * s
    srt = (syy[hole] - sxx[hole]) * c * s + sxy[hole] * (c * c - s * s)
    assert np.abs(srr).max() < 1e-2 and np.abs(srt).max() < 1e-2


def test_mises_is_derived_from_the_stresses(ref):
    sxx, syy, sxy = ref["derived/sxx"], ref["derived/syy"], ref["derived/sxy"]
    mises = np.sqrt(sxx**2 - sxx * syy + syy**2 + 3 * sxy**2)
    np.testing.assert_allclose(ref["derived/mises"], mises, rtol=1e-12, atol=1e-12)


def test_stress_concentration(ref):
    """sxx at the top of the hole: above Kirsch's 300 (the plate is only 4 hole diameters wide and long)."""
    p = ref["points"]
    i = int(np.argmin(np.hypot(p[:, 0], p[:, 1] - R)))
    assert np.allclose(p[i], [0.0, R], rtol=0, atol=1e-12)
    sxx = ref["derived/sxx"][i]
    assert 300.0 < sxx and sxx == pytest.approx(SXX_05, abs=0.05)
    assert ref["derived/mises"][i] == pytest.approx(sxx, abs=1e-2)  # uniaxial hoop stress on a free edge
    assert ref["derived/mises"].max() == pytest.approx(sxx, abs=1e-2)  # the largest anywhere


def test_force_balance(ref):
    """int sxx dy over x = 0 carries the load 100 x 20; int syy dx over y = 0 vanishes."""
    p = ref["points"]
    x0 = np.flatnonzero(on(p, 0, 0.0))
    x0 = x0[np.argsort(p[x0, 1])]
    assert trapezoid(ref["derived/sxx"][x0], p[x0, 1]) == pytest.approx(2000.0, rel=1e-3)
    y0 = np.flatnonzero(on(p, 1, 0.0))
    y0 = y0[np.argsort(p[y0, 0])]
    assert abs(trapezoid(ref["derived/syy"][y0], p[y0, 0])) < 0.5  # vs 2000 carried across x = 0


def test_kinn_reference_reads_it():
    # scipy's Delaunay computes its barycentric transforms with one tiny LAPACK call per triangle: with
    # OpenBLAS threads on busy cores that took ~25 s for this file instead of 0.03 s. So one thread, set
    # after scipy's OpenBLAS is loaded (threadpoolctl limits only the libraries loaded already).
    import scipy.interpolate  # noqa: F401

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = contextlib.nullcontext
    with threadpool_limits(1):
        _check_reference()


def _check_reference():
    from kinn.data.reference import Reference

    r = Reference(DATA, ("ux", "uy"), ("x", "y"))
    with h5py.File(DATA, "r") as f:
        np.testing.assert_array_equal(r.points, f["points"][()])
        np.testing.assert_array_equal(r.node_values, np.stack([f["fields/ux"][()], f["fields/uy"][()]], 1))
    idx = np.random.default_rng(0).choice(len(r.points), 200, replace=False)
    np.testing.assert_allclose(r(r.points[idx]), r.node_values[idx], rtol=0, atol=1e-12)
    # Between the nodes (inside the plate) it interpolates without complaint.
    x = np.random.default_rng(1).uniform(0, HALF, (100, 2))
    x = x[np.hypot(x[:, 0], x[:, 1]) > R + 0.01]
    assert np.all(np.isfinite(r(x)))


def test_coarse_solve_agrees(ref, script):
    """The script's solver on a coarse mesh (16 x 12 cells, P3): force balance, and the stored values."""
    pytest.importorskip("skfem")
    lev = script.solve(script.Level(8, 12, script.HALF, script.GRADING), order=3)
    fx, fy = script.section_forces(lev, order=3)
    assert fx == pytest.approx(2000.0, rel=1e-4) and abs(fy) < 0.5  # 2000.03, -0.11 here
    # Nodal values at the coarse mesh's own vertices come back exactly through `evaluate`.
    pv = script.param_vertices(lev.ns, lev.nr)
    own = script.evaluate(lev, pv[0], pv[1])
    np.testing.assert_allclose(own["ux"], lev.u[lev.basis.nodal_dofs[0]], rtol=0, atol=1e-13)
    np.testing.assert_allclose(own["uy"], lev.u[lev.basis.nodal_dofs[1]], rtol=0, atol=1e-13)
    # At the stored points (the finest mesh's vertices) it agrees with the file to its own error
    # (measured 6e-6 in |U| and 2e-4 in von Mises at this level).
    a = ref["attrs"]
    ns, nr = (int(v) for v in a["mesh_cells"])
    pp = script.param_vertices(ns, nr)
    xy = np.array(script.blend_map(pp[0], pp[1], grading=float(a["grading"]))).T
    np.testing.assert_allclose(xy, ref["points"], rtol=0, atol=1e-12)
    got = script.evaluate(lev, pp[0], pp[1])
    U, U_ref = np.hypot(got["ux"], got["uy"]), np.hypot(ref["fields/ux"], ref["fields/uy"])
    assert np.linalg.norm(U - U_ref) / np.linalg.norm(U_ref) < 3e-5
    mises = script.von_mises(got["sxx"], got["syy"], got["sxy"])
    assert np.linalg.norm(mises - ref["derived/mises"]) / np.linalg.norm(ref["derived/mises"]) < 1e-3


def test_kirsch_limit(script):
    """The same solver with the outer edges far away reproduces Kirsch's infinite-plate values."""
    pytest.importorskip("skfem")
    sxx, syy = script.kirsch_check(order=3, ns=16, nr=24)
    assert sxx == pytest.approx(300.0, rel=2e-3) and syy == pytest.approx(-100.0, rel=3e-3)
