"""The inverse form with a source (Poisson, −Δu = f): the domain integrals against closed forms, a
particular solution and the domain term against u = x² + y² (f = −4) on a disk, the domain term's
convergence order on it (the catalogue's poisson2d: tests/test_binn.py, with every inverse form)."""
import numpy as np
import pytest
from scipy import integrate

from kinn.boundary import Boundary, Kelvin, Laplace, circle, polygon, representation
from kinn.boundary.domain import domain_integrals, triangulate
from kinn.errors import KinnError
from kinn.forms.boundary_integral import BoundaryIntegralForm, Value
from kinn.forms.source import DomainIntegral, ParticularSolution
from kinn.pde import ops

CENTRE, RADIUS = np.array([0.2, 0.1]), 1.5  # not the unit disk: there ∮ ln|x − ξ| ds = 0 hides the chords' error
DISK = Boundary([circle(CENTRE, RADIUS, 16)])


def square(x):
    return (x**2).sum(1, keepdim=True)


def disk_form(source) -> BoundaryIntegralForm:
    return BoundaryIntegralForm(DISK, Laplace(), flux=lambda u, n: ops.normal(u, n), given={"circle": Value(square)},
                                source=source)


def inside(n: int, margin: float, seed: int = 0) -> np.ndarray:
    x = CENTRE + RADIUS * (2 * np.random.default_rng(seed).random((n, 2)) - 1)
    return x[DISK.contains(x) & (DISK.distance(x) > margin)]


def solved(form, x):
    """The interior field of the direct (BEM) solution of the form's BIE."""
    return form.interior(representation(form.boundary, form.kernel, x), *form.direct(), form.offset(x))


TRIANGLE = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])


def polar_reference(xi, g):
    """∫ g over TRIANGLE, for ξ inside or on it: in polar coordinates about ξ (ρ dρ dθ removes the
    singularity), each ray to where it leaves the triangle, by scipy's adaptive quad."""
    normals = np.array([[0.0, -1.0], [1.0, 1.0] / np.sqrt(2), [-1.0, 0.0]])
    reach = np.array([n @ (TRIANGLE[k] - xi) for k, n in enumerate(normals)])

    def exit(theta):
        d = normals @ [np.cos(theta), np.sin(theta)]
        return min((reach[d > 0] / d[d > 0]).min(), 10.0)

    # breaks where the exit distance has a kink: at the corners and along the edges' directions
    corners = sorted({*(np.arctan2(*(TRIANGLE - xi)[:, ::-1].T) % (2 * np.pi)), *(np.arange(8) * np.pi / 4)})
    inner = lambda theta: integrate.quad(lambda r: g(xi[0] + r * np.cos(theta), xi[1] + r * np.sin(theta)) * r,
                                         0, exit(theta), epsabs=1e-14, epsrel=1e-13, limit=200)[0]
    return integrate.quad(inner, 0, 2 * np.pi, points=corners, epsabs=1e-13, epsrel=1e-13, limit=200)[0]


def plain_reference(xi, g):
    """∫ g over TRIANGLE for ξ off it (a smooth integrand)."""
    return integrate.dblquad(lambda y, x: g(x, y), 0, 1, 0, lambda x: 1 - x, epsabs=1e-13, epsrel=1e-13)[0]


@pytest.mark.parametrize("xi, reference", [((0.2, 0.3), polar_reference), ((0.0, 0.0), polar_reference),
                                           ((0.5, 0.0), polar_reference), ((0.3, 1e-3), polar_reference),
                                           ((2.0, 2.0), plain_reference), ((0.6, 0.6), plain_reference)])
def test_domain_integrals_of_one_triangle_match_adaptive_quadrature(xi, reference):
    """ξ inside, at a corner, on an edge, next to an edge, far and near: the log kernel and its gradient
    against f = 1 + xy."""
    value, derived = domain_integrals(Laplace(), lambda x: 1 + x[:, :1] * x[:, 1:], TRIANGLE[None], np.array([xi]))
    xi = np.asarray(xi)
    f = lambda x, y: 1 + x * y
    rho2 = lambda x, y: (x - xi[0]) ** 2 + (y - xi[1]) ** 2
    ref = [reference(xi, g) for g in (lambda x, y: -np.log(rho2(x, y)) / (4 * np.pi) * f(x, y),
                                      lambda x, y: (x - xi[0]) / (2 * np.pi * rho2(x, y)) * f(x, y),
                                      lambda x, y: (y - xi[1]) / (2 * np.pi * rho2(x, y)) * f(x, y))]
    assert np.allclose([value[0, 0], *derived[0]], ref, rtol=0, atol=1e-10)


@pytest.mark.parametrize("vertices, area", [([(0, 0), (1, 0), (1, 1), (0, 1)], 1.0),
                                             ([(0, 0), (2, 0), (2, 1), (1, 1), (1, 2), (0, 2)], 3.0)])
def test_triangulation_fills_a_polygon_exactly(vertices, area):
    """No gap, no overlap, also across a re-entrant corner."""
    points, cells = triangulate(polygon(vertices, per_edge=3), 0.13)
    tri = points[cells]
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    assert abs(0.5 * np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]).sum() - area) < 1e-12


def test_a_particular_solution_is_exact():
    """u = x² + y², −Δu = −4: u_p = 2x², and Laplace's BIE for u − u_p = y² − x²."""
    x = inside(300, 1e-3)
    field = solved(disk_form(ParticularSolution(lambda x: 2 * x[:, 0] ** 2)), x)
    assert np.abs(field.value[:, 0] - (x**2).sum(1)).max() < 1e-10
    assert np.abs(field.derived - 2 * x).max() < 1e-8


def test_the_domain_integral_converges_with_its_triangulation():
    """The domain term on chords of the circle: the error inside falls like h^3.5 (fitted), and below
    1e-3 already at the panels' own spacing (the default)."""
    x = inside(100, 0.1)
    spacing, errors = (0.6, 0.3, 0.15), []
    for h in spacing:
        field = solved(disk_form(DomainIntegral(lambda x: -4 + 0 * x[:, 0], h)), x)
        errors.append(np.sqrt(np.mean((field.value[:, 0] - (x**2).sum(1)) ** 2)))
    order = np.polyfit(np.log(spacing), np.log(errors), 1)[0]
    assert order > 2.5, (order, errors)
    assert errors[-1] < 1e-4



@pytest.mark.parametrize("kernel", [Laplace(), Kelvin(1.0, 0.3)])
def test_shared_pieces_blocks_and_the_value_alone_change_no_integral(monkeypatch, kernel):
    """Targets near the same triangles share their pieces' rules (f evaluated once per piece), in blocks of
    pieces and pairs: the integrals are those of each target alone, to rounding; derived=False gives the
    same value (and NaN for the derived part it skips)."""
    import kinn.boundary.domain as domain

    points, cells = triangulate(polygon([(0, 0), (1, 0), (1, 1), (0, 1)], per_edge=3), 0.3)
    targets = np.concatenate([inside_square(40), [[0.0, 0.0], [0.5, 0.0], [0.31, 0.002]]])  # corner, edge, near it
    f = lambda x: np.stack([1 + x[:, 0] * x[:, 1], np.cos(x[:, 0])], 1)[:, : kernel.components]
    value, derived = domain_integrals(kernel, f, points[cells], targets)
    alone = [domain_integrals(kernel, f, points[cells], t[None]) for t in targets]
    assert np.allclose(value, np.concatenate([v for v, _ in alone]), rtol=0, atol=1e-14)
    assert np.allclose(derived, np.concatenate([d for _, d in alone]), rtol=0, atol=1e-13)
    monkeypatch.setattr(domain, "BLOCK", 5000)  # many blocks of pieces, of pairs and of targets
    small = domain_integrals(kernel, f, points[cells], targets)
    assert np.allclose(small[0], value, rtol=0, atol=1e-14) and np.allclose(small[1], derived, rtol=0, atol=1e-13)
    only, nan = domain_integrals(kernel, f, points[cells], targets, derived=False)
    assert np.array_equal(only, small[0]) and nan.shape == derived.shape and np.isnan(nan).all()


def inside_square(n: int) -> np.ndarray:
    return 0.02 + 0.96 * np.random.default_rng(1).random((n, 2))

def test_sources_refuse_what_they_cannot_do():
    with pytest.raises(KinnError, match="a ParticularSolution serves Laplace's kernel only"):
        BoundaryIntegralForm(DISK, Kelvin(1.0, 0.3), flux=lambda u, n: u, given={"circle": (Value(), Value())},
                             source=ParticularSolution(lambda x: x[:, 0]))
    with pytest.raises(KinnError, match="the spacing h must be > 0"):
        DomainIntegral(lambda x: x, h=0.0)
    with pytest.raises(KinnError, match="source must be a ParticularSolution or DomainIntegral"):
        disk_form(lambda x: x)
