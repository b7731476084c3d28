"""Quadrature rules: exact on polynomials of their degree, converging at their order; the energy form."""
from math import pi

import numpy as np
import pytest
import torch

import kinn
from kinn.pde import geometry
from kinn.forms import quadrature
from kinn import registry
from kinn.errors import KinnError


@pytest.mark.parametrize("rule, n, degree", [("trapezoid", 7, 1), ("simpson", 7, 3), ("gauss", 5, 9)])
def test_rules_integrate_polynomials_of_their_degree_exactly(rule, n, degree):
    r = quadrature.line(-0.5, 2.0, n, rule)
    for k in range(degree + 1):
        exact = (2.0 ** (k + 1) - (-0.5) ** (k + 1)) / (k + 1)
        assert (r.weights * r.points[:, 0] ** k).sum() == pytest.approx(exact, rel=1e-12, abs=1e-12)
    k = degree + 1  # one degree more is not exact
    exact = (2.0 ** (k + 1) - (-0.5) ** (k + 1)) / (k + 1)
    assert abs((r.weights * r.points[:, 0] ** k).sum() - exact) > 1e-8


@pytest.mark.parametrize("rule, order", [("trapezoid", 2), ("simpson", 4)])
def test_composite_rules_converge_at_their_order(rule, order):
    ns = np.array([9, 17, 33, 65, 129])
    errs = [abs((r.weights * np.exp(r.points[:, 0])).sum() - (np.e - 1))
            for r in (quadrature.line(0, 1, n, rule) for n in ns)]
    slope = np.polyfit(np.log(1 / (ns - 1)), np.log(errs), 1)[0]
    assert abs(slope - order) < 0.1, slope


def test_gauss_converges_spectrally_and_monte_carlo_at_half_order():
    g = [abs((r.weights * np.exp(r.points[:, 0])).sum() - (np.e - 1)) for r in
         (quadrature.line(0, 1, n, "gauss") for n in (2, 4, 6))]
    assert g[2] < 1e-12 < g[0]
    np.random.seed(0)
    ns = np.array([100, 1000, 10000, 100000])
    errs = [np.mean([abs((r.weights * np.exp(r.points[:, 0])).sum() - (np.e - 1))
                     for r in (quadrature.line(0, 1, n, "monte_carlo") for _ in range(20))]) for n in ns]
    assert abs(np.polyfit(np.log(ns), np.log(errs), 1)[0] + 0.5) < 0.15


def test_tensor_rules_on_boxes_and_monte_carlo_elsewhere():
    r = quadrature.domain_rule(geometry.Rectangle([0, 0], [1, 2]), 400, "gauss")
    assert (r.weights * np.sin(r.points[:, 0]) * r.points[:, 1] ** 2).sum() == pytest.approx((1 - np.cos(1)) * 8 / 3,
                                                                                             rel=1e-12)
    np.random.seed(0)
    disk = quadrature.domain_rule(geometry.Disk([0, 0], 1), 40000, "monte_carlo")
    assert disk.weights.sum() == pytest.approx(pi, rel=0.02)
    with pytest.raises(KinnError, match="needs a box domain"):
        quadrature.domain_rule(geometry.Disk([0, 0], 1), 100, "simpson")
    with pytest.raises(KinnError, match="unknown quadrature rule 'midpoint'"):
        quadrature.domain_rule(geometry.Rectangle([0, 0], [1, 1]), 100, "midpoint")


def test_energy_of_the_exact_solution(function_model):
    """Π(u*) = ∫ ½|∇u*|² − f u* = −½ ∫ f u* = −π²/4 for poisson2d, by Gauss quadrature."""
    p = registry.get_problem("poisson2d")
    r = quadrature.domain_rule(p.domain, 900, "gauss")
    pts = {"pde": torch.as_tensor(r.points), "pde/weight": torch.as_tensor(r.weights)}
    energy = p.form("energy").loss(function_model(p.exact), p, pts)["energy"]
    assert float(energy.detach()) == pytest.approx(-pi**2 / 4, rel=1e-10)


def test_energy_form_refuses_soft_dirichlet():
    with pytest.raises(KinnError, match=r"must be hard: Dirichlet\(..., hard=True, distance=d\)"):
        kinn.EnergyForm(lambda u, x: u, bcs=[kinn.Dirichlet(0.0)])


def test_energy_form_trains_and_keeps_the_boundary_exact(tmp_path):
    r = kinn.solve("poisson2d", "mlp", "energy", steps=300, lr=1e-2, lbfgs=0, n_interior=400, n_eval=400, progress=False,
                   model={"widths": [16, 16]}, points={"quadrature": "gauss"}, out=str(tmp_path), dtype="float64")
    errs = [row["rel_l2/u"] for row in r.history.rows if "rel_l2/u" in row]
    assert errs[-1] < 0.05 < 0.5 < errs[0]
    assert all(row["energy"] < 0 for row in r.history.rows[1:])  # the potential is negative near the minimum
    np.testing.assert_allclose(r.predict([[0.0, 0.3], [0.7, 1.0]])["u"], 0.0, atol=1e-14)


def test_boundary_rules_on_box_faces():
    r = quadrature.boundary_rule(geometry.Rectangle([0, 0], [2, 1]), geometry.at(0, 2.0), 9, "gauss")
    assert np.all(r.points[:, 0] == 2.0) and r.weights.sum() == pytest.approx(1.0)
    r = quadrature.boundary_rule(geometry.Rectangle([0, 0], [2, 1]), None, 9, "simpson")
    assert r.weights.sum() == pytest.approx(6.0)  # the perimeter
    assert quadrature.boundary_rule(geometry.Interval(0, 1), geometry.at(0, 1.0), 4, "gauss").points.tolist() == [[1.0]]
    with pytest.raises(KinnError, match="contains no face"):
        quadrature.boundary_rule(geometry.Rectangle([0, 0], [2, 1]), geometry.at(0, 0.5), 9, "gauss")


def test_traction_loaded_bar(function_model):
    """A bar on [0, 1], fixed at x = 0, pulled by t = 3 at x = 1 (ψ = ½ u'²): u = 3x, Π = −t²/2."""
    bar = kinn.Problem(
        name="bar", domain=geometry.Interval(0, 1), exact=lambda x: 3 * x,
        energy=kinn.EnergyForm(lambda u, x: 0.5 * kinn.pde.ops.grad(u).square().sum(1),
                               bcs=[kinn.Dirichlet(0.0, hard=True, distance=lambda x: x[:, 0]),
                                    kinn.Traction(3.0, on=geometry.at(0, 1.0))]))
    form = bar.form("energy")
    pts = {k: torch.as_tensor(v) for k, v in form.sample(bar, kinn.run.pipeline.resolve_config(bar, "mlp", None).points).items()}
    terms = form.loss(function_model(bar.exact), bar, pts)
    assert float(sum(terms.values()).detach()) == pytest.approx(-4.5, rel=1e-12)
    r = kinn.solve(bar, "mlp", steps=300, lr=1e-2, lbfgs=50, n_interior=64, n_eval=200, dtype="float64",
                   points={"quadrature": "gauss"}, model={"widths": [8]}, write=False, progress=False)
    assert r.errors["rel_l2/u"] < 1e-3


def test_boundary_rules_on_straight_edges_of_other_domains():
    plate = geometry.Rectangle([0, 0], [20, 20]) - geometry.Disk([0, 0], 5)
    r = quadrature.boundary_rule(plate, geometry.at(0, 20.0), 8, "gauss")
    assert np.all(r.points[:, 0] == 20.0) and r.weights.sum() == pytest.approx(20.0)
    with pytest.raises(KinnError, match="not wholly on the domain's boundary"):
        quadrature.boundary_rule(plate, geometry.at(0, 0.0), 8, "gauss")  # x = 0 is cut by the hole


def test_boundary_residual_condition_is_a_soft_term_with_normals(function_model):
    """u = x on the unit square: ∂u/∂n − n_x vanishes on every edge; a wrong target does not."""
    def make(fn):
        return kinn.Problem(name="br", domain=geometry.Rectangle([0, 0], [1, 1]), exact=lambda x: x[:, :1],
                            strong=kinn.StrongForm(lambda u, x: kinn.pde.ops.laplacian(u),
                                                   bcs=[kinn.BoundaryResidual(fn=fn, name="flux")]))

    for fn, zero in ((lambda u, x, n: kinn.pde.ops.normal(u, n) - n[:, :1], True),
                     (lambda u, x, n: kinn.pde.ops.normal(u, n) - 1, False)):
        p = make(fn)
        form = p.form("strong")
        pts = {k: torch.as_tensor(v) for k, v in form.sample(p, kinn.run.pipeline.resolve_config(p, "mlp", None).points).items()}
        term = float(form.loss(function_model(p.exact), p, pts)["bc:flux"].detach())
        assert (term < 1e-24) if zero else (term > 0.1)
    with pytest.raises(KinnError, match="give fn"):
        kinn.BoundaryResidual(name="x")


@pytest.mark.parametrize("degree", [1, 2, 4, 5])
def test_triangle_rules_are_exact_to_their_degree_and_converge(degree):
    from scipy.spatial import Delaunay

    g = np.linspace(0, 1, 5)
    pts = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    cells = Delaunay(pts).simplices
    r = quadrature.triangles(pts, cells, degree)
    for p in range(degree + 1):  # ∫ x^p y^(d-p) over [0,1]² for every monomial of degree d = degree
        f = r.points[:, 0] ** p * r.points[:, 1] ** (degree - p)
        assert (r.weights * f).sum() == pytest.approx(1 / ((p + 1) * (degree - p + 1)), rel=1e-12)
    errs, ns = [], [5, 9, 17]
    for n in ns:
        g = np.linspace(0, 1, n)
        pts = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
        r = quadrature.triangles(pts, Delaunay(pts).simplices, degree)
        errs.append(abs((r.weights * np.exp(r.points[:, 0] + r.points[:, 1])).sum() - (np.e - 1) ** 2))
    slope = np.polyfit(np.log(1 / (np.array(ns) - 1)), np.log(errs), 1)[0]
    assert slope > (1.9 if degree == 1 else degree + 0.8), (slope, errs)  # order degree + 1 (centroid: 2)


def test_generated_triangulation_covers_a_plate_with_a_hole():
    plate = geometry.Rectangle([0, 0], [20, 20]) - geometry.Disk([0, 0], 5)
    with geometry.numpy_seed(0):
        r = quadrature.triangles(*geometry.triangulate(plate, 4000, 400), 1)
    assert r.weights.sum() == pytest.approx(400 - 25 * pi / 4, rel=2e-3)  # chords across the arc
    assert geometry.inside(plate, r.points).all()


def test_mesh_files_are_read_by_meshio_with_clear_errors(tmp_path):
    import meshio

    pts = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]], float)
    meshio.write(tmp_path / "square.vtu", meshio.Mesh(pts, [("triangle", np.array([[0, 1, 2], [1, 3, 2]]))]))
    points, cells = geometry.read_mesh(tmp_path / "square.vtu")
    assert quadrature.triangles(points, cells, 2).weights.sum() == pytest.approx(1.0)
    meshio.write(tmp_path / "lines.vtu", meshio.Mesh(pts, [("line", np.array([[0, 1], [1, 3]]))]))
    with pytest.raises(KinnError, match=r"has no triangle cells \(it has: line\)"):
        geometry.read_mesh(tmp_path / "lines.vtu")
    (tmp_path / "junk.msh").write_text("not a mesh")
    with pytest.raises(KinnError, match="cannot read mesh file .*junk.msh"):
        geometry.read_mesh(tmp_path / "junk.msh")
    with pytest.raises(KinnError, match="no triangle rule of degree 3"):
        quadrature.triangles(points, cells, 3)


def _integral(rule, f):
    return (rule.weights * f(rule.points)).sum()


def test_stratified_draws_tile_the_region_and_are_unbiased():
    """A uniform point per cell with its antithetic partners, weighted by the cell's measure: the weights
    sum to the region's measure exactly, every point lies in its own cell, a draw is exact for integrands
    linear in each cell, and the mean of many draws is the integral of any integrand."""
    gen = torch.Generator().manual_seed(0)
    f = lambda x: np.exp(x[:, 0] / 4) * np.sin(3 * x[:, 1])  # noqa: E731
    exact = 4 * (np.e - 1) * (1 - np.cos(3)) / 3  # over [0, 4] × [0, 1]
    box = geometry.Rectangle([0, 0], [4, 1])
    with geometry.numpy_seed(0):
        mesh = geometry.triangulate(box, 600, 100)
    for rule in (quadrature.domain_rule(box, 800, "simpson"), quadrature.domain_rule(box, 800, "monte_carlo"),
                 quadrature.triangles(*mesh, 2)):
        cells = rule.cells
        assert cells.measure.sum() == pytest.approx(4.0, rel=1e-12)
        draws = [cells.draw(gen) for _ in range(200)]
        assert all(geometry.inside(box, d.points).all() for d in draws[:5])
        assert _integral(draws[0], lambda x: 3 * x[:, 0] - x[:, 1] + 2) == pytest.approx(30.0, rel=1e-12)
        values = np.array([_integral(d, f) for d in draws])
        assert abs(values.mean() - exact) < 4 * values.std() / np.sqrt(len(values)) + 1e-12
        assert 0 < values.std() < 1e-4 * abs(exact)  # O(h²) per cell: plain Monte Carlo's spread is ~3e-2
    # each triangle's points lie inside that triangle: barycentric coordinates all >= 0
    cells = quadrature.triangles(*mesh, 1).cells
    x = cells.draw(gen).points.reshape(3, -1, 2) - cells.corner
    bary = np.linalg.solve(np.transpose(cells.edges, (0, 2, 1))[None], x[..., None])[..., 0]
    assert (bary >= -1e-12).all() and (bary.sum(-1) <= 1 + 1e-12).all()
    # and on a loaded edge: points on the edge, lengths summing to its length
    edge = quadrature.boundary_rule(box, geometry.at(0, 4.0), 50, "gauss").cells.draw(gen)
    assert np.all(edge.points[:, 0] == 4.0) and edge.weights.sum() == pytest.approx(1.0, rel=1e-12)


def test_energy_form_jitter_draws_fresh_nodes_every_step_and_refuses_cell_less_rules(function_model):
    from kinn.run.pipeline import resolve_config

    p = registry.get_problem("poisson2d")
    cfg = resolve_config(p, "mlp", "energy", points={"quadrature": "simpson", "jitter": True,
                                                               "n_interior": 400})
    form = p.form("energy")
    pts = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in form.sample(p, cfg.points).items()}
    gen = torch.Generator()
    a, b = form.redraw(pts, gen.manual_seed(1)), form.redraw(pts, gen.manual_seed(2))
    assert not torch.equal(a["pde"], b["pde"]) and torch.equal(form.redraw(pts, gen.manual_seed(1))["pde"], a["pde"])
    assert float(a["pde/weight"].sum()) == pytest.approx(1.0)
    # the exact solution's potential, −π²/4, is the mean of the draws' potentials
    exact = function_model(p.exact)
    values = [float(form.loss(exact, p, {**pts, **form.redraw(pts, gen.manual_seed(k))})["energy"].detach())
              for k in range(100)]
    assert np.mean(values) == pytest.approx(-pi**2 / 4, rel=2e-3)
    disk = kinn.Problem(name="d", domain=geometry.Disk([0, 0], 1), exact=lambda x: x[:, :1],
                        energy=kinn.EnergyForm(lambda u, x: kinn.pde.ops.grad(u).square().sum(1)))
    cfg = resolve_config(disk, "mlp", "energy", points={"jitter": True})
    with pytest.raises(KinnError, match="points.jitter needs a rule made of cells.*train.resample_every"):
        disk.form("energy").sample(disk, cfg.points)
    with pytest.raises(KinnError, match="points.jitter must be bool"):
        resolve_config(p, "mlp", "energy", points={"jitter": "yes"})
    with pytest.raises(KinnError, match="points.jitter draws the quadrature of an energy form; the strong form"):
        kinn.solve("poisson2d", "mlp", "strong", jitter=True, steps=1, write=False, progress=False)
