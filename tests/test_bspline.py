"""The basis kernels: closed-form B-splines against Cox-de Boor and scipy, Chebyshev against numpy."""
import numpy as np
import pytest
import scipy.interpolate
import torch

from kinn.kernels import chebyshev, cox_de_boor, to_dense, uniform_bspline, uniform_knots

ORDERS = [1, 2, 3, 4, 5]
G, LO, HI = 7, -1.3, 0.9  # an asymmetric range, so that no symmetry hides an offset
H = (HI - LO) / G


pytestmark = pytest.mark.usefixtures("float64")  # conftest.py


def everywhere(order: int) -> torch.Tensor:
    """Random points over and beyond the extended knot span, every knot, the range ends, and far away."""
    gen = torch.Generator().manual_seed(order)
    reach = (order + 2) * H
    random = LO - reach + (HI - LO + 2 * reach) * torch.rand(2000, generator=gen)
    knots = uniform_knots(G, order, LO, HI)
    return torch.cat([random, knots, torch.tensor([LO, HI, -1e3, 1e3])])


def off_knots(order: int, n: int = 400, gap: float = 0.1) -> torch.Tensor:
    """Random points at least gap * h from every knot, inside and outside [lo, hi]."""
    gen = torch.Generator().manual_seed(100 + order)
    interval = torch.randint(-order - 1, G + order + 1, (n,), generator=gen)
    u = gap + (1 - 2 * gap) * torch.rand(n, generator=gen)
    return LO + (interval + u) * H


def dense(x: torch.Tensor, order: int, which: str = "values") -> torch.Tensor:
    compact = uniform_bspline(x, G, order, LO, HI, derivatives=2)
    return to_dense(compact.index, getattr(compact, which), G + order)


def derivative(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """dy/dx for y elementwise in x; zero where y no longer depends on x (a derivative beyond the order)."""
    if not y.requires_grad:
        return torch.zeros_like(x)
    return torch.autograd.grad(y.sum(), x, create_graph=True)[0]


@pytest.mark.parametrize("order", ORDERS)
def test_closed_form_equals_cox_de_boor_everywhere(order):
    x = everywhere(order)
    reference = cox_de_boor(x, uniform_knots(G, order, LO, HI), order)
    assert reference.shape == (len(x), G + order)
    torch.testing.assert_close(dense(x, order), reference, rtol=0, atol=1e-12)


@pytest.mark.parametrize("order", ORDERS)
def test_bases_vanish_beyond_the_extended_knots(order):
    x = torch.tensor([LO - order * H - 1e-9, HI + order * H + 1e-9, -1e3, 1e3])
    assert dense(x, order).abs().max() == 0


@pytest.mark.parametrize("order", ORDERS)
def test_partition_of_unity_inside_the_range(order):
    x = torch.cat([torch.linspace(LO, HI, 1001), uniform_knots(G, order, LO, HI)[order:-order]])
    torch.testing.assert_close(dense(x, order).sum(-1), torch.ones_like(x), rtol=0, atol=1e-13)


@pytest.mark.parametrize("order", ORDERS)
def test_closed_form_derivatives_equal_autograd_on_cox_de_boor(order):
    x = off_knots(order).requires_grad_(True)
    reference = cox_de_boor(x, uniform_knots(G, order, LO, HI), order)
    d1, d2 = dense(x, order, "d1"), dense(x, order, "d2")
    for m in range(G + order):  # each basis depends on x elementwise, so a sum's gradient is its derivative
        r1 = derivative(reference[:, m], x)
        torch.testing.assert_close(d1[:, m], r1, rtol=0, atol=1e-10)
        torch.testing.assert_close(d2[:, m], derivative(r1, x), rtol=0, atol=1e-10)


@pytest.mark.parametrize("order", ORDERS)
def test_nested_autograd_through_the_closed_form_reaches_third_derivatives(order):
    x = off_knots(order).requires_grad_(True)
    fast, reference = dense(x, order), cox_de_boor(x, uniform_knots(G, order, LO, HI), order)
    for m in range(G + order):
        a, b = fast[:, m], reference[:, m]
        for _ in range(3):
            a, b = derivative(a, x), derivative(b, x)
            torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


@pytest.mark.parametrize("order", ORDERS)
def test_closed_form_derivatives_equal_central_differences(order):
    # Points keep 0.1 h = 0.03 from knots, far more than the steps, so no difference straddles a kink.
    # d1: truncation ~ e^2 |B'''| / 6 ~ 1e-10 / h^3, rounding ~ 1e-16 / e; d2: e^2 |B''''| / 12 ~ 1e-8 / h^4
    # plus 1e-16 / e^2 ~ 1e-8.
    x = off_knots(order)
    e1, e2 = 1e-5, 1e-4
    f = lambda x: dense(x, order)  # noqa: E731
    fd1 = (f(x + e1) - f(x - e1)) / (2 * e1)
    fd2 = (f(x + e2) - 2 * f(x) + f(x - e2)) / e2**2
    torch.testing.assert_close(dense(x, order, "d1"), fd1, rtol=0, atol=1e-7)
    torch.testing.assert_close(dense(x, order, "d2"), fd2, rtol=0, atol=1e-5)


@pytest.mark.parametrize("order", ORDERS)
def test_cox_de_boor_on_non_uniform_knots_equals_scipy(order):
    gen = np.random.default_rng(order)
    knots = np.sort(gen.uniform(-2, 2, 12 + order))
    x = gen.uniform(knots[order], knots[-order - 1], 500)
    expected = scipy.interpolate.BSpline.design_matrix(x, knots, order).toarray()
    got = cox_de_boor(torch.from_numpy(x), torch.from_numpy(knots), order)
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-12)


def test_cox_de_boor_takes_one_knot_vector_per_feature():
    knots = torch.stack([uniform_knots(5, 3, -1, 1), uniform_knots(5, 3, -2, 0.5)])  # (F=2, K)
    x = torch.rand(50, 2) * 2 - 1
    both = cox_de_boor(x, knots, 3)  # (50, 2, 8)
    for f in range(2):
        torch.testing.assert_close(both[:, f], cox_de_boor(x[:, f], knots[f], 3), rtol=0, atol=0)


@pytest.mark.parametrize("degree", [0, 1, 2, 5, 9])
def test_chebyshev_values_equal_numpy(degree):
    x = torch.linspace(-3, 3, 301)
    expected = np.polynomial.chebyshev.chebvander(np.tanh(x.numpy()), degree)
    np.testing.assert_allclose(chebyshev(x, degree).values.numpy(), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("degree", [1, 2, 5, 9])
def test_chebyshev_derivatives_equal_autograd(degree):
    x = torch.linspace(-3, 3, 301).requires_grad_(True)
    basis = chebyshev(x, degree, derivatives=2)
    for m in range(degree + 1):
        r1 = derivative(basis.values[:, m], x)
        torch.testing.assert_close(basis.d1[:, m], r1, rtol=0, atol=1e-11)
        torch.testing.assert_close(basis.d2[:, m], derivative(r1, x), rtol=0, atol=1e-11)


def test_derivatives_beyond_two_are_refused():
    with pytest.raises(ValueError, match="0, 1 or 2"):
        uniform_bspline(torch.zeros(3), G, 3, LO, HI, derivatives=3)
    with pytest.raises(ValueError, match="0, 1 or 2"):
        chebyshev(torch.zeros(3), 3, derivatives=3)
