"""kinn.analysis.symbolic: single-edge fits, and formulas planted in a KAN's edges read back."""
import numpy as np
import pytest
import sympy
import torch
import torch.nn.functional as F

from kinn.analysis.symbolic import fit_edge, symbolic_formula
from kinn.errors import KinnError
from kinn.models.field import FieldModel
from kinn.solvers.kan import KAN, KANLinear

pytestmark = pytest.mark.usefixtures("float64")  # conftest.py


def plant(layer: KANLinear, i: int, j: int, g, lo: float = -1.0, hi: float = 1.0) -> None:
    """Make edge i -> j equal g on [lo, hi]: the spline coefficients are the least-squares fit of g minus
    the edge's base branch (which stays), so that the whole edge function is g up to the spline's error."""
    h = torch.linspace(lo, hi, 2000).unsqueeze(-1).expand(-1, layer.in_features)
    with torch.no_grad():
        target = g(h[:, i])
        if layer.base_weight is not None:
            target = target - layer.base_weight[j, i] * F.silu(h[:, i])
        coef = torch.linalg.lstsq(layer.bases(h)[:, i, :], target.unsqueeze(-1)).solution[:, 0]
        layer.spline_weight[j, i] = coef / layer.spline_scaler[j, i]


@pytest.mark.parametrize("name, f, params", [
    ("0", lambda x: np.full_like(x, 0.7), (0.0, 1.0, 0.0, 0.7)),
    ("x", lambda x: 3 * x - 1, (3.0, 1.0, 0.0, -1.0)),
    ("x^2", lambda x: 1.5 * (x - 0.2) ** 2 + 0.1, (1.5, 1.0, -0.2, 0.1)),
    ("sin", lambda x: -0.8 * np.sin(2.5 * x + 0.3), (0.8, 2.5, 0.3 - np.pi, 0.0)),
    ("exp", lambda x: 2 * np.exp(-1.3 * x) + 1, None),
    ("tanh", lambda x: np.tanh(4 * x - 1), (1.0, 4.0, -1.0, 0.0)),
    ("log", lambda x: np.log(x + 1.3), None),
    ("x^3", lambda x: -(x + 0.4) ** 3, (-1.0, 1.0, 0.4, 0.0)),
])
def test_fit_edge_finds_the_candidate_and_its_parameters(name, f, params):
    x = np.linspace(-1, 1, 200)
    fit = fit_edge(x, f(x))
    assert fit.name == name
    assert fit.r2 >= 1 - 1e-12
    held_out = np.random.uniform(-1, 1, 100)
    np.testing.assert_allclose(fit(held_out), f(held_out), rtol=0, atol=1e-8)
    if params is not None:  # the canonical form: b = 1 for powers, b > 0, a > 0 and |c| <= pi for sin
        np.testing.assert_allclose((fit.a, fit.b, fit.c, fit.d), params, rtol=0, atol=1e-7)


def test_fit_edge_prefers_the_simplest_candidate_within_the_tolerance():
    x = np.linspace(-1, 1, 200)
    y = x + 0.05 * x**2  # "x^2" fits exactly; "x" misses by 1 - R^2 = 7e-4
    assert fit_edge(x, y, tol=1e-2).name == "x"
    assert fit_edge(x, y, tol=1e-4).name == "x^2"


def test_fit_edge_without_a_good_candidate_takes_the_best_r2():
    x = np.linspace(-1, 1, 200)
    fit = fit_edge(x, np.sign(x) * x**2 + 0.3 * np.sin(9 * x), library=("x", "x^2", "sin"))
    assert fit.r2 < 1 - 1e-6
    assert fit.r2 == max(fit.r2s.values())


def test_fit_edge_refuses_unknown_candidates():
    with pytest.raises(KinnError, match="did you mean 'sin'"):
        fit_edge(np.linspace(0, 1, 10), np.zeros(10), library=("sinn",))


def test_planted_sin_and_square_are_read_back_through_the_scaling():
    net = KAN([2, 1], grid=100)  # with the SiLU base branch: the edge is spline + base together
    plant(net.layers[0], 0, 0, lambda h: 0.8 * torch.sin(2.5 * h + 0.3))
    plant(net.layers[0], 1, 0, lambda h: 1.5 * h**2 - 0.2)
    model = FieldModel(net, np.array([0.0, -1.0]), np.array([2.0, 3.0]))
    box = lambda n: torch.tensor([0.0, -1.0]) + torch.rand(n, 2) * torch.tensor([2.0, 4.0])  # noqa: E731
    formula = symbolic_formula(model, box(500), coords=("x", "y"))
    assert [[fit.name for fit in row] for row in formula.fits[0]] == [["sin"], ["x^2"]]
    x, y = sympy.symbols("x y")
    u, v = x - 1, (y + 1) / 2 - 1  # the FieldModel's scaling of [0, 2] x [-1, 3] to [-1, 1]^2
    planted = 0.8 * sympy.sin(2.5 * u + 0.3) + 1.5 * v**2 - 0.2
    held_out = box(300).numpy()
    exact = sympy.lambdify((x, y), planted, "numpy")(*held_out.T)
    np.testing.assert_allclose(formula(held_out)[:, 0], exact, rtol=0, atol=1e-7)
    # The text, the LaTeX and the sympy expression are the same formula.
    again = sympy.lambdify((x, y), sympy.sympify(formula.outputs[0].text), "numpy")(*held_out.T)
    np.testing.assert_allclose(again, exact, rtol=0, atol=1e-7)
    assert r"\sin" in formula.outputs[0].latex


@pytest.mark.parametrize("between, squash", [
    ("tanh", sympy.tanh),
    ("rescale", lambda e: 0.5 + 1.5 * sympy.tanh(e)),  # tanh mapped onto the grid range (-1, 2)
    ("none", lambda e: e),
])
def test_composition_through_the_squash_between_layers(between, squash):
    # Linear and quadratic edges are exact in a cubic spline; no base branch.
    net = KAN([1, 1, 1], grid=5, base=None, between=between, grid_range=(-1, 2))
    plant(net.layers[0], 0, 0, lambda h: 0.5 * h, -1, 2)
    plant(net.layers[1], 0, 0, lambda h: h**2 - 0.25, -1, 2)
    model = FieldModel(net, np.array([0.0]), np.array([2.0]))
    formula = symbolic_formula(model, torch.linspace(0, 2, 300).unsqueeze(-1), coords=("t",))
    assert [fit.name for row in formula.fits[0] for fit in row] == ["x"]
    assert [fit.name for row in formula.fits[1] for fit in row] == ["x^2"]
    t = sympy.Symbol("t")
    expected = squash(0.5 * (t - 1)) ** 2 - 0.25
    held_out = np.random.uniform(0, 2, (100, 1))
    np.testing.assert_allclose(formula(held_out)[:, 0], sympy.lambdify(t, expected)(held_out[:, 0]), rtol=0, atol=1e-9)
    np.testing.assert_allclose(formula(held_out)[:, 0], model(torch.as_tensor(held_out))[:, 0].detach().numpy(),
                               rtol=0, atol=1e-9)


def test_a_field_model_with_an_output_transform_is_refused():
    model = FieldModel(KAN([1, 1]), np.array([0.0]), np.array([1.0]), transform=lambda x, u: x * u)
    with pytest.raises(KinnError, match="output transform"):
        symbolic_formula(model, torch.rand(10, 1), coords=("x",))
