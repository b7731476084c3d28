"""Checks of the stored Neo-Hookean cantilever reference `data/neo_hookean_beam.h5` (KINN example 4).

The file is built by `scripts/make_neo_hookean_reference.py` (~1 min); these tests do not rebuild it. They
check the layout and attributes, the clamp, the tip deflection against beam theory, and (where scikit-fem
is installed) that the script's Newton solver converges on a coarse mesh and lowers the potential.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data" / "neo_hookean_beam.h5"
E, NU, P, L = 1000.0, 0.3, 5.0, 4.0


@pytest.fixture(scope="module")
def ref():
    if not DATA.exists():
        pytest.skip(f"{DATA} is missing; run: python scripts/make_neo_hookean_reference.py")
    with h5py.File(DATA, "r") as f:
        out = {k: f[k][()] for k in ("points", "fields/ux", "fields/uy", "derived/mises", "mesh/triangles")}
        out["attrs"] = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
    return out


@pytest.fixture(scope="module")
def script(load_script):
    return load_script("make_neo_hookean_reference")


def test_layout_and_attributes(ref):
    a = ref["attrs"]
    assert a["problem"] == "neo_hookean_beam"
    assert a["layout"] == "points"
    assert a["coord_names"] == "x,y"
    for key in ("method", "accuracy", "created_by"):
        assert isinstance(a[key], str) and a[key]
    assert a["created_by"].endswith("make_neo_hookean_reference.py")
    assert 0 < float(a["accuracy_estimate"]) < 1e-2
    assert float(a["E"]) == E and float(a["nu"]) == NU
    np.testing.assert_array_equal(np.asarray(a["traction"]), [0.0, -P])
    n = len(ref["points"])
    assert ref["points"].shape == (n, 2) and ref["points"].dtype == np.float64
    for k in ("fields/ux", "fields/uy", "derived/mises"):
        assert ref[k].shape == (n,) and np.isfinite(ref[k]).all()
    tri = ref["mesh/triangles"]
    assert tri.ndim == 2 and tri.shape[1] == 3 and tri.min() == 0 and tri.max() == n - 1
    p = ref["points"]
    assert p[:, 0].min() == 0.0 and p[:, 0].max() == L and p[:, 1].min() == 0.0 and p[:, 1].max() == 1.0
    e1, e2 = p[tri[:, 1]] - p[tri[:, 0]], p[tri[:, 2]] - p[tri[:, 0]]
    area = 0.5 * (e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])
    assert (area > 0).all() and np.isclose(area.sum(), L * 1.0)  # counter-clockwise, covers the beam


def test_clamped_nodes(ref):
    x0 = np.isclose(ref["points"][:, 0], 0.0, rtol=0, atol=1e-12)
    assert x0.sum() >= 3
    assert np.abs(ref["fields/ux"][x0]).max() == 0.0
    assert np.abs(ref["fields/uy"][x0]).max() == 0.0


def test_tip_deflection(ref):
    p = ref["points"]
    i = int(np.argmin(np.hypot(p[:, 0] - L, p[:, 1] - 0.5)))
    assert np.allclose(p[i], [L, 0.5])
    uy = float(ref["fields/uy"][i])
    linear = P * L**3 / (3 * E / (1 - NU**2) * (1.0 / 12))  # Euler-Bernoulli, plane strain: 1.165
    assert uy < 0
    assert abs(-uy - linear) < 0.1 * linear
    assert np.isclose(uy, float(ref["attrs"]["tip_uy"]), rtol=0, atol=1e-12)
    mid = np.isclose(p[:, 1], 0.5, rtol=0, atol=1e-12)
    assert uy == ref["fields/uy"][mid].min()  # the axis sags most at the tip


def test_newton_converges_on_a_coarse_mesh(script):
    pytest.importorskip("skfem")
    prob = script.Problem(16, 4)
    u, hist = prob.newton(steps=2, rtol=1e-10)
    r = prob.internal(u) - prob.f
    assert np.linalg.norm(r[prob.free]) < 1e-8 * np.linalg.norm(prob.f[prob.free])
    assert hist[-1][2] < 1e-10 and len(hist) <= 2 * 10
    # quadratic convergence in the last step: once below 1e-3, each residual is below ~ C * previous^2
    last = [h[2] for h in hist if h[0] == 2]
    small = [r for r in last if r < 1e-3]
    assert len(small) >= 2 and small[1] < 1e2 * small[0] ** 2 + 1e-11
    assert prob.potential(u) < prob.potential(np.zeros_like(u)) == 0.0
    assert np.abs(u[prob.fixed]).max() == 0.0
    assert prob.min_j(u) > 0.5


def test_tangent_is_the_derivative_of_the_residual(script):
    pytest.importorskip("skfem")
    prob = script.Problem(8, 2)
    u = 0.8 * prob.linear_solve()
    v = np.random.default_rng(0).standard_normal(prob.basis.N) * 1e-2
    eps = 1e-5
    fd = (prob.internal(u + eps * v) - prob.internal(u - eps * v)) / (2 * eps)
    kv = prob.tangent(u) @ v
    assert np.linalg.norm(fd - kv) < 1e-7 * np.linalg.norm(kv)
    de = (prob.potential(u + eps * v, 0.0) - prob.potential(u - eps * v, 0.0)) / (2 * eps)
    assert np.isclose(de, prob.internal(u) @ v, rtol=1e-7)


def test_coarse_solution_agrees_with_the_file(script, ref):
    pytest.importorskip("skfem")
    lev = script.solve(script.Level(16, 4), steps=2, verbose=False)
    out = script.evaluate(lev, ref["points"])
    scale = np.abs(ref["fields/uy"]).max()
    assert np.abs(out["uy"] - ref["fields/uy"]).max() < 2e-2 * scale
    assert np.abs(out["ux"] - ref["fields/ux"]).max() < 2e-2 * scale
