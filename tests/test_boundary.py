"""kinn.boundary below the operators: panels, loops and boundaries, quadrature rules, kernels."""
import math
import os

import numpy as np
import pytest

from kinn.boundary import (Arc, Boundary, Kelvin, Laplace, Loop, Segment, box, circle, gauss_legendre,
                           gauss_log, lagrange, plot, polygon)
from kinn.errors import KinnError

# --- panels ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("panel", [Segment((1, 2), (4, 6), "s"), Arc((1, -1), 2.0, 0.3, 2.2, "ccw"),
                                   Arc((0, 0), 5.0, math.pi / 2, 0.0, "cw")])
def test_panel_geometry(panel):
    t = np.linspace(0, 1, 7)
    x = panel.point(t)
    # Constant speed: dx/dt = length × tangent (central differences), and the normal is the tangent
    # rotated clockwise.
    h = 1e-6
    dxdt = (panel.point(t + h) - panel.point(t - h)) / (2 * h)
    np.testing.assert_allclose(dxdt, panel.length * panel.tangent(t), atol=1e-7 * panel.length)
    tan, nrm = panel.tangent(t), panel.normal(t)
    np.testing.assert_allclose(nrm, np.stack([tan[:, 1], -tan[:, 0]], 1))
    np.testing.assert_allclose(panel.separation(0.4, t), x - panel.point(0.4), atol=1e-14 * panel.length)
    pieces = panel.split(3)
    assert sum(p.length for p in pieces) == pytest.approx(panel.length, rel=1e-15)
    np.testing.assert_allclose(pieces[1].start, panel.point(1 / 3)[0], atol=1e-14)
    np.testing.assert_allclose(pieces[-1].end, panel.end, atol=1e-14)


@pytest.mark.parametrize("panel", [Segment((-1, 0), (0, 0), "face"), Arc((1, -1), 2.0, 0.3, 2.2, "ccw")])
@pytest.mark.parametrize("ratio", [0.5, 0.8, 1.0, 1.7])
def test_graded_split_follows_the_ratio_and_covers_the_panel(panel, ratio):
    pieces = panel.split(7, ratio)
    lengths = np.array([p.length for p in pieces])
    np.testing.assert_allclose(lengths[1:] / lengths[:-1], ratio, rtol=1e-12)
    assert lengths.sum() == pytest.approx(panel.length, rel=1e-14)
    assert np.array_equal(pieces[0].start, panel.start) and np.array_equal(pieces[-1].end, panel.end)
    for a, b in zip(pieces[:-1], pieces[1:]):  # a chain: each piece starts where the previous ends
        np.testing.assert_allclose(b.start, a.end, atol=1e-15)
    assert {p.tag for p in pieces} == {panel.tag}


def test_polygon_grades_each_edge_toward_the_named_vertex():
    tip = (0.0, 0.0)
    b = polygon([(-1, 0), tip, (1, 0), (1, 1), (-1, 1)], [10, 10, 1, 2, 1], ratio=[0.5, 2.0, 1, 1, 1])
    face, ligament = b.panels[:10], b.panels[10:20]
    assert face[-1].length == pytest.approx(0.5 ** 9 / (2 - 0.5 ** 9), rel=1e-12)  # 1 = h (1 − q¹⁰)/(1 − q)
    assert ligament[0].length == pytest.approx(face[-1].length, rel=1e-12)       # mirrored about the tip
    assert np.array_equal(face[-1].end, tip) and np.array_equal(ligament[0].start, tip)
    assert b.perimeter == pytest.approx(6, rel=1e-14) and b.area == pytest.approx(2, rel=1e-14)
    with pytest.raises(KinnError, match="grading ratio is a positive number, got 0"):
        Segment((0, 0), (1, 0)).split(3, 0)
    with pytest.raises(KinnError, match="ratio: expected one value per edge \\(5\\), got 2"):
        polygon([(-1, 0), tip, (1, 0), (1, 1), (-1, 1)], ratio=[0.5, 2.0])


def test_arc_length_and_distance_are_exact():
    arc = Arc((0, 0), 5.0, math.pi / 2, 0.0)
    assert arc.length == 5 * math.pi / 2
    pts = np.array([[3.0, 4.0], [6.0, 8.0], [-1.0, -7.0], [0.0, 0.0]])
    # On the span: |r − R|; off it, the nearer end ((0, 5) or (5, 0)).
    np.testing.assert_allclose(arc.distance(pts), [0.0, 5.0, math.hypot(6, 7), 5.0], atol=1e-14)
    seg = Segment((0, 0), (2, 0))
    np.testing.assert_allclose(seg.distance([[1, 1], [3, 1], [-1, 0]]), [1, math.sqrt(2), 1])
    np.testing.assert_allclose(seg.distance([[1, 1]], 0.75, 1.0), [math.hypot(0.5, 1)])


# --- loops and boundaries ------------------------------------------------------------------------


def test_box_with_hole_area_perimeter_tags_and_contains():
    b = box((0, 0), (4, 4), 2, holes=[((2, 2), 1, 3)])
    assert b.area == pytest.approx(16 - math.pi, rel=1e-15)
    assert b.perimeter == pytest.approx(16 + 2 * math.pi, rel=1e-15)
    assert b.tags == ["bottom", "right", "top", "left", "hole0"]
    pts = np.array([[2, 2], [0.5, 0.5], [2, 3.5], [2, 2.9], [5, 5], [2, 3.05], [1.01, 2.0], [0.99, 2.0]])
    np.testing.assert_array_equal(b.contains(pts), [0, 1, 1, 0, 0, 1, 0, 1])
    np.testing.assert_allclose(b.distance(pts), [1, 0.5, 0.5, 0.1, math.sqrt(2), 0.05, 0.01, 0.01], atol=1e-14)


def test_contains_is_exact_near_an_arc_between_its_nodes():
    # A single arc panel spanning a half circle: points just inside and outside the arc, far from its chord.
    half = Boundary([Loop([Arc((0, 0), 1.0, 0.0, math.pi), Segment((-1, 0), (1, 0))])])
    th = np.linspace(0.05, math.pi - 0.05, 50)
    ring = np.stack([np.cos(th), np.sin(th)], 1)
    assert half.contains(ring * (1 - 1e-9)).all()
    assert not half.contains(ring * (1 + 1e-9)).any()
    assert half.area == pytest.approx(math.pi / 2, rel=1e-15)


def test_refine_per_tag_and_polygon_tags():
    b = polygon([(0, 0), (2, 0), (2, 1), (0, 1)], per_edge=[1, 2, 3, 4], tags=["a", "b", "c", "d"])
    assert [p.tag for p in b.panels] == ["a"] + ["b"] * 2 + ["c"] * 3 + ["d"] * 4
    finer = b.refine({"a": 5})
    assert len(finer.panels) == 5 + 2 + 3 + 4 and finer.perimeter == pytest.approx(6)
    assert len(b.refine(2).panels) == 20
    with pytest.raises(KinnError, match="unknown tags"):
        b.refine({"z": 2})


def test_loop_that_does_not_close_names_the_panel_and_gap():
    with pytest.raises(KinnError, match=r"does not close: panel 1 ends at .* panel 2 starts .*gap 0\.1") as err:
        Loop([Segment((0, 0), (1, 0)), Segment((1, 0), (1, 1)), Segment((1, 1.1), (0, 0))])
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("loops, message", [
    (lambda: [circle((0, 0), 1, 4, clockwise=True)], "outer loop .* is clockwise"),
    (lambda: [circle((0, 0), 3, 4), circle((0, 0), 1, 4)], "hole loop 1 is counter-clockwise"),
    (lambda: [circle((0, 0), 3, 4), circle((5, 0), 1, 4, clockwise=True)], "hole loop 1 is not inside"),
])
def test_boundary_refuses_wrong_orientation_and_stray_holes(loops, message):
    with pytest.raises(KinnError, match=message) as err:
        Boundary(loops())
    assert "\n" not in str(err.value) and "allowed" in str(err.value)


def test_plot_writes_atomically(tmp_path):
    b = box((0, 0), (4, 4), 3, holes=[((2, 2), 1, 8)])
    path = plot(b, tmp_path / "figs" / "boundary.png", conditions={"top": "u = 0"})
    assert path.stat().st_size > 1000 and path.read_bytes()[:4] == b"\x89PNG"
    assert os.listdir(path.parent) == ["boundary.png"]  # no temporary file left behind


# --- rules ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 5, 10, 16, 20])
def test_gauss_log_is_exact_on_monomials(n):
    s, w = gauss_log(n)
    k = np.arange(2 * n)
    exact = 1.0 / (k + 1.0) ** 2   # ∫₀¹ s^k ln(1/s) ds
    assert np.abs(w @ s[:, None] ** k - exact).max() < 1e-14
    assert (s > 0).all() and (s < 1).all() and (w > 0).all()


def test_gauss_legendre_is_exact_on_monomials():
    s, w = gauss_legendre(10)
    k = np.arange(20)
    assert np.abs(w @ s[:, None] ** k - 1.0 / (k + 1)).max() < 1e-15


def test_gauss_log_converges_geometrically_on_a_smooth_function():
    # ∫₀¹ cos(3s) ln(1/s) ds = Si(3)/3 (integrate by parts); the error should fall by a steady factor per
    # added node (geometric convergence): fit log error against n.
    from scipy.special import sici
    exact = sici(3.0)[0] / 3.0
    ns = np.arange(2, 8)
    errors = np.array([abs(gauss_log(n)[1] @ np.cos(3 * gauss_log(n)[0]) - exact) for n in ns])
    slope = np.polyfit(ns, np.log10(errors), 1)[0]
    assert slope < -2.0, (errors, slope)  # more than two digits per node
    assert abs(gauss_log(10)[1] @ np.cos(3 * gauss_log(10)[0]) - exact) < 1e-15


def test_lagrange_basis():
    s, _ = gauss_legendre(6)
    np.testing.assert_allclose(lagrange(s, s), np.eye(6), atol=1e-15)
    t = np.linspace(0, 1, 11)
    np.testing.assert_allclose(lagrange(s, t).sum(1), 1.0, atol=1e-13)
    np.testing.assert_allclose(lagrange(s, t) @ s**5, t**5, atol=1e-13)


# --- kernels -------------------------------------------------------------------------------------

E, NU = 1000.0, 0.3
MU = E / (2 * (1 + NU))


def _hooke(kernel, grad):
    """Stress rows (xx, yy, xy) from displacement gradients grad[l, k, m] = ∂u_l/∂x_m (load k)."""
    nu = kernel.nu_bar
    lam = 2 * kernel.mu * nu / (1 - 2 * nu)
    eps = 0.5 * (grad + grad.transpose(2, 1, 0))
    sig = 2 * kernel.mu * eps + lam * np.einsum("lkl->k", eps)[None, :, None] * np.eye(2)[:, None, :]
    return np.stack([sig[0, :, 0], sig[1, :, 1], sig[0, :, 1]])


def _d_dxi(f, xi, h=1e-6):
    return np.stack([(f(xi + h * e) - f(xi - h * e)) / (2 * h) for e in np.eye(2)], -1)


@pytest.mark.parametrize("plane", ["stress", "strain"])
def test_kelvin_stress_kernels_are_hooke_of_the_displacement_kernels(plane):
    kernel = Kelvin(MU, NU, plane)
    x, n, xi = np.array([0.7, -0.4]), np.array([0.6, 0.8]), np.array([0.1, 0.25])
    D = _hooke(kernel, _d_dxi(lambda p: kernel.single(x - p), xi))
    S = _hooke(kernel, _d_dxi(lambda p: kernel.double(x - p, n), xi))
    np.testing.assert_allclose(kernel.single_derived(x - xi), D, rtol=1e-7, atol=1e-9 * abs(D).max())
    np.testing.assert_allclose(kernel.double_derived(x - xi, n), S, rtol=1e-7, atol=1e-9 * abs(S).max())
    # T is the traction of U on the normal n at x.
    grad = _d_dxi(lambda y: kernel.single(y - xi), x).transpose(1, 0, 2)  # [k, l, m] -> field k of load l
    sig = _hooke(kernel, grad)  # rows xx, yy, xy; columns: load l
    traction = np.stack([sig[0] * n[0] + sig[2] * n[1], sig[2] * n[0] + sig[1] * n[1]], 1)
    np.testing.assert_allclose(kernel.double(x - xi, n), traction, atol=1e-8 * abs(traction).max())


def test_laplace_gradient_kernels_and_log_coefficients():
    lap = Laplace()
    x, n, xi = np.array([0.7, -0.4]), np.array([0.6, 0.8]), np.array([0.1, 0.25])
    np.testing.assert_allclose(lap.single_derived(x - xi)[:, 0], _d_dxi(lambda p: lap.single(x - p), xi)[0, 0],
                               rtol=1e-8)
    np.testing.assert_allclose(lap.double_derived(x - xi, n)[:, 0],
                               _d_dxi(lambda p: lap.double(x - p, n), xi)[0, 0], rtol=1e-8)
    # U − a ln ρ · I stays bounded as ρ → 0 (the part the Gauss-log rule carries is exactly a ln ρ).
    for kernel in (lap, Kelvin(MU, NU)):
        r = np.array([[1e-3, 0.0], [1e-9, 0.0]])
        rest = kernel.single(r) - kernel.log_coefficient * np.log(np.hypot(*r.T))[:, None, None] * np.eye(
            kernel.components)
        np.testing.assert_allclose(rest[0], rest[1], atol=1e-15)


def test_kelvin_refuses_bad_constants():
    with pytest.raises(KinnError, match="unknown plane 'strian'"):
        Kelvin(MU, NU, "strian")
    with pytest.raises(KinnError, match="nu < 0.5"):
        Kelvin(MU, 0.5)
