"""kinn.boundary's operators against exact data (BINN.md §3): quadrature identities, the regularised BIE
residual of a harmonic function and of elastic fields, and the interior representation up to the boundary."""
import math

import numpy as np
import pytest

from kinn.boundary import (Arc, Boundary, Kelvin, Laplace, Loop, Segment, bie_operator, box, circle, nodes,
                           representation)
from kinn.errors import KinnError

# --- shapes and exact fields ---------------------------------------------------------------------


def flower(per_arc: int = 1) -> Boundary:
    """KINN's five-petal flower: a regular pentagon of side 2 with an outward half-disc of radius 1 on
    each edge (centres at the apothem 1/tan 36° = 1.37638, angles 90° + 72° i), as five 180° arcs."""
    apothem = 1.0 / math.tan(math.pi / 5)
    arcs = []
    for i in range(5):
        phi = math.pi / 2 + 2 * math.pi / 5 * i
        arcs += Arc((apothem * math.cos(phi), apothem * math.sin(phi)), 1.0, phi - math.pi / 2, phi + math.pi / 2,
                    "petal").split(per_arc)
    return Boundary([Loop(arcs)])


def plate() -> Boundary:
    """KINN's quarter plate [0, 20]² minus the disk r < 5: one counter-clockwise loop whose last piece is
    the hole's arc, clockwise about the origin; 30 + 40 + 40 + 30 segments and 20 arc panels."""
    return Boundary([Loop(Segment((5, 0), (20, 0), "bottom").split(30) + Segment((20, 0), (20, 20), "right").split(40)
                          + Segment((20, 20), (0, 20), "top").split(40) + Segment((0, 20), (0, 5), "left").split(30)
                          + Arc((0, 0), 5.0, math.pi / 2, 0.0, "hole").split(20))])


def harmonic(p):
    """u = sin x sinh y + cos x cosh y and its gradient."""
    x, y = p[:, 0], p[:, 1]
    u = np.sin(x) * np.sinh(y) + np.cos(x) * np.cosh(y)
    grad = np.stack([np.cos(x) * np.sinh(y) - np.sin(x) * np.cosh(y),
                     np.sin(x) * np.cosh(y) + np.cos(x) * np.sinh(y)], 1)
    return u, grad


def laplace_data(nd):
    u, grad = harmonic(nd.points)
    return u, (grad * nd.normals).sum(1)


E, NU = 1000.0, 0.3
MU = E / (2 * (1 + NU))


def elastic(name, p):
    """Plane-stress displacement (P, 2) and stress rows xx, yy, xy (P, 3) of four exact fields."""
    x, y = p[:, 0], p[:, 1]
    zero, one = np.zeros_like(x), np.ones_like(x)
    if name == "translation":
        return np.stack([one, -0.5 * one], 1), np.stack([zero, zero, zero], 1)
    if name == "rotation":
        return 1e-2 * np.stack([-y, x], 1), np.stack([zero, zero, zero], 1)
    if name == "uniform":  # σ_xx = 2, σ_yy = 3
        return np.stack([(2 - NU * 3) / E * x, (3 - NU * 2) / E * y], 1), np.stack([2 * one, 3 * one, zero], 1)
    # Airy φ = x²y: σ_xx = 0, σ_yy = 2y, σ_xy = −2x; ε_xx = −2νy/E, ε_yy = 2y/E, γ_xy = −4(1 + ν)x/E.
    return np.stack([-2 * NU * x * y / E, (y**2 - (2 + NU) * x**2) / E], 1), np.stack([zero, 2 * y, -2 * x], 1)


def traction(stress, normals):
    sxx, syy, sxy = stress.T
    return np.stack([sxx * normals[:, 0] + sxy * normals[:, 1], sxy * normals[:, 0] + syy * normals[:, 1]], 1)


# --- quadrature ----------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["box_with_hole", "flower", "plate"])
def test_node_weights_integrate_length_normal_and_area(shape):
    boundary = {"box_with_hole": lambda: box((0, 0), (4, 3), 5, holes=[((1.5, 1.5), 0.7, 12)]),
                "flower": lambda: flower(20), "plate": plate}[shape]()
    nd = nodes(boundary, 10)
    assert nd.weights.sum() == pytest.approx(boundary.perimeter, rel=1e-14)
    assert np.abs(nd.weights @ nd.normals).max() < 1e-13 * boundary.perimeter           # ∮ n ds = 0
    assert nd.weights @ (nd.points * nd.normals).sum(1) == pytest.approx(2 * boundary.area, rel=1e-13)


def test_arc_lengths_are_exact():
    assert flower(20).perimeter == pytest.approx(5 * math.pi, rel=1e-15)
    assert flower(1).area == pytest.approx(5 / math.tan(math.pi / 5) + 5 * math.pi / 2, rel=1e-14)
    assert plate().area == pytest.approx(400 - 25 * math.pi / 4, rel=1e-14)
    per_panel = np.add.reduceat(nodes(plate(), 10).weights, np.arange(0, 1600, 10))
    np.testing.assert_allclose(per_panel[-20:], 5 * math.pi / 2 / 20, rtol=1e-14)


# --- near-singular quadrature --------------------------------------------------------------------


def test_bisection_keeps_near_panel_integrals_exact():
    # ∫ q* ds over a unit segment seen from (0.5, d) is −θ/(2π), θ = 2 atan(1/(2d)) the angle it subtends.
    # Plain 10-point Gauss (never bisect) measured: 6.4e-6, 1.5e-2, 0.40, 0.49 at d = 0.3, 0.1, 0.01,
    # 1e-3; with bisection ≤ 1.2e-14 down to d = 1e-5.
    from kinn.boundary.integrals import _panel_integrals
    laplace, segment = Laplace(), Segment((0, 0), (1, 0))
    double = lambda r, normal: (laplace.double(r, normal),)
    for d, plain_at_least in [(0.3, 1e-6), (0.1, 1e-2), (0.01, 0.3), (1e-3, 0.4), (1e-5, 0.4)]:
        point, exact = np.array([[0.5, d]]), -math.atan(0.5 / d) / math.pi
        plain = _panel_integrals(segment, point, double, 10, spread=np.inf)[0].sum()
        bisected = _panel_integrals(segment, point, double, 10, spread=1.0)[0].sum()
        assert abs(plain - exact) > plain_at_least
        assert abs(bisected - exact) < 1e-13


# --- Laplace: the regularised BIE and the representation -------------------------------------------


@pytest.mark.parametrize("sources, bound", [(1, 1e-8), ([0.0], 1e-9)], ids=["midpoints", "corners"])
def test_laplace_residual_is_flat_under_refinement(sources, bound):
    # Measured: midpoints 3.7e-13, 3.1e-15, 1.5e-15, 8.9e-16; panel starts (all corners included)
    # 1.4e-12, 5.8e-15, 2.9e-15, 2.2e-15 for 2, 5, 10, 20 panels per edge. A misplaced log rule would
    # show O(h³) decay from ~1e-2 instead (BINN.md §3.2).
    residuals = []
    for per_edge in (2, 5, 10, 20):
        op = bie_operator(box((0, 0), (2, 1), per_edge), Laplace(), n=10, sources_per_panel=sources)
        u, q = laplace_data(op.nodes)
        residuals.append(np.abs(op.A @ u - op.B @ q).max())
    assert max(residuals) < bound / 100, residuals
    assert residuals[-1] <= 10 * residuals[0]  # no growth with refinement


def test_laplace_residual_on_the_flower():
    # KINN's mesh (5 × 20 arc panels), sources at panel starts (the five 288° corners) and midpoints.
    op = bie_operator(flower(20), Laplace(), n=10, sources_per_panel=[0.0, 0.5])
    u, q = laplace_data(op.nodes)
    assert np.abs(op.A @ u - op.B @ q).max() < 1e-12  # measured 1.2e-14
    assert np.isclose(op.points[0], [0.0, 0.0]).sum() == 0 and len(op.points) == 200


@pytest.mark.parametrize("n", [2, 3])
def test_bie_residual_converges_at_the_interpolation_order(n):
    # With n nodes per panel, u(ξ) and the data are degree n − 1 interpolants: residual O(h^n).
    # Measured n = 2: 9.1e-3, 2.4e-3, 6.2e-4; n = 3: 9.5e-6, 1.3e-6, 1.6e-7 for 4, 8, 16 per edge.
    per_edge = np.array([4, 8, 16])
    residuals = []
    for k in per_edge:
        op = bie_operator(box((0, 0), (2, 1), int(k)), Laplace(), n=n)
        u, q = laplace_data(op.nodes)
        residuals.append(np.abs(op.A @ u - op.B @ q).max())
    order = -np.polyfit(np.log(per_edge), np.log(residuals), 1)[0]
    assert order == pytest.approx(n, abs=0.2), residuals


def _near_rectangle_points(rng, L):
    """Interior points of [0, 2] × [0, 1], many at distance 1e-3 L from an edge or corner (L: panel length)."""
    d = 1e-3 * L
    along = rng.uniform(0, 1, 40)
    return np.concatenate([rng.uniform([0, 0], [2, 1], (200, 2)),
                           np.stack([2 * along, np.full(40, d)], 1), np.stack([2 * along, 1 - np.full(40, d)], 1),
                           np.stack([np.full(40, d), along], 1), np.stack([2 - np.full(40, d), along], 1),
                           [[d, d], [2 - d, 1 - d], [1.0, 1e-5 * L]]])


def test_laplace_representation_is_exact_up_to_the_boundary():
    boundary = box((0, 0), (2, 1), 10)
    points = _near_rectangle_points(np.random.default_rng(0), 0.1)
    u_exact, grad_exact = harmonic(points)
    field = representation(boundary, Laplace(), points)(*laplace_data(nodes(boundary, 10)))
    # Measured: u 1.3e-15, ∇u 7e-13 (worst at distance 1e-5 L).
    assert np.abs(field.value[:, 0] - u_exact).max() < 1e-12
    assert np.abs(field.derived - grad_exact).max() < 1e-10


def test_flower_representation_near_re_entrant_corners_and_blocks_agree():
    boundary = flower(20)
    apothem, corner_radius = 1 / math.tan(math.pi / 5), 1 / math.sin(math.pi / 5)
    angles = math.pi / 2 + math.pi / 5 + 2 * math.pi / 5 * np.arange(5)  # the pentagon's vertices
    rng = np.random.default_rng(1)
    points = np.concatenate([rng.uniform(-1.2, 1.2, (80, 2)),
                             (corner_radius - 1e-4) * np.stack([np.cos(angles), np.sin(angles)], 1),
                             (apothem + 1 - 1e-4) * np.stack([np.cos(angles - math.pi / 5),
                                                              np.sin(angles - math.pi / 5)], 1)])
    points = points[boundary.contains(points)]
    rep = representation(boundary, Laplace(), points, chunk=32)
    u, q = laplace_data(nodes(boundary, 10))
    field = rep(u, q)
    u_exact, grad_exact = harmonic(points)
    assert np.abs(field.value[:, 0] - u_exact).max() < 1e-12
    assert np.abs(field.derived - grad_exact).max() < 1e-10
    for rows, Vu, Vq, Du, Dq in rep.blocks():  # the matrices give the same numbers
        np.testing.assert_allclose(Vq @ q - Vu @ u, field.value[rows, 0], atol=1e-12)
        np.testing.assert_allclose((Dq @ q - Du @ u).reshape(-1, 2), field.derived[rows], atol=1e-10)


# --- elasticity on the plate ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def plate_operators():
    boundary, kernel = plate(), Kelvin(MU, NU, "stress")
    op = bie_operator(boundary, kernel, n=10, sources_per_panel=[0.0, 0.5])
    rng = np.random.default_rng(2)
    theta = rng.uniform(0, math.pi / 2, 40)
    near_hole = (5 + 1e-3 * 5 * math.pi / 40) * np.stack([np.cos(theta), np.sin(theta)], 1)
    points = np.concatenate([rng.uniform(0, 20, (150, 2)), near_hole,
                             [[10.0, 5e-4], [19.9995, 12.0], [1e-3, 1e-3 + 5]]])
    points = points[boundary.contains(points)]
    return op, points, representation(boundary, kernel, points)


@pytest.mark.parametrize("name", ["translation", "rotation", "uniform", "airy"])
def test_plate_residual_and_interior_fields(plate_operators, name):
    op, points, rep = plate_operators
    u, stress = elastic(name, op.nodes.points)
    t = traction(stress, op.nodes.normals)
    # Measured residuals ≤ 6e-15 for all four fields (rigid modes: 4.9e-15, 7.7e-16).
    assert np.abs(op.A @ u.ravel() - op.B @ t.ravel()).max() < 1e-12
    u_exact, stress_exact = elastic(name, points)
    field = rep(u, t)
    # Relative to the field's size (rigid modes: the stress a strain of 1e-2 would give). Measured:
    # displacement ≤ 1.5e-15 relative; stress 1.5e-12 relative (Airy), 8e-12 absolute (rotation).
    assert np.abs(field.value - u_exact).max() < 1e-10 * np.abs(u_exact).max()
    assert np.abs(field.derived - stress_exact).max() < 1e-10 * max(np.abs(stress_exact).max(), E * 1e-2)


# --- refusals ------------------------------------------------------------------------------------


def test_representation_refuses_points_outside_naming_how_many_and_one():
    boundary = box((0, 0), (4, 4), 4, holes=[((2, 2), 1, 8)])
    points = [[1, 1], [5, 1], [2, 2], [0.5, 3], [4.0, 2.0]]  # outside, in the hole, on the boundary
    with pytest.raises(KinnError, match=r"^3 of 5 evaluation points lie outside the domain or on its "
                                        r"boundary, e\.g\. \[5\.0, 1\.0\]") as err:
        representation(boundary, Laplace(), points)
    assert "\n" not in str(err.value)


def test_bie_operator_refuses_duplicate_corner_sources():
    with pytest.raises(KinnError, match="0 and 1 both given"):
        bie_operator(box((0, 0), (1, 1), 2), Laplace(), sources_per_panel=[0.0, 0.5, 1.0])
    with pytest.raises(KinnError, match="in \\[0, 1\\]"):
        bie_operator(box((0, 0), (1, 1), 2), Laplace(), sources_per_panel=[1.5])
    disk = Boundary([circle((0, 0), 1.0, 1)])  # one full-circle panel: its start is also its end
    with pytest.raises(KinnError, match="panel 0 is a loop on its own"):
        bie_operator(disk, Laplace(), sources_per_panel=[0.0])
    # Sources inside it are fine (every source is on the one panel: no other panel to integrate).
    op = bie_operator(disk, Laplace(), n=16, sources_per_panel=4)
    assert op.A.shape == op.B.shape == (4, 16) and np.isfinite(op.A).all() and np.isfinite(op.B).all()
