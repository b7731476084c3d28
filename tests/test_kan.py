"""The KAN family: layer derivatives, grid refits, gradients, argument checks and the Family seam."""
import contextlib
import copy

import pytest
import torch

from kinn.errors import KinnError
from kinn.kernels import use_reference
from kinn.solvers.kan import KAN, KANFamily, KANLinear, extend_grid, update_grid


pytestmark = pytest.mark.usefixtures("float64")  # conftest.py


@contextlib.contextmanager
def reference():
    previous = use_reference(True)
    try:
        yield
    finally:
        use_reference(previous)


def rough(net: torch.nn.Module) -> torch.nn.Module:
    """Give every spline unit-size random coefficients, so that refits have a real function to keep."""
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("spline_weight"):
                p.normal_()
    return net


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def input_derivatives(layer: torch.nn.Module, x: torch.Tensor):
    """dy/dx (N, in) of y summed over outputs, and its diagonal second derivatives (N, in), by autograd."""
    x = x.clone().requires_grad_(True)
    (d1,) = torch.autograd.grad(layer(x).sum(), x, create_graph=True)
    d2 = [torch.autograd.grad(d1[:, i].sum(), x, retain_graph=True)[0][:, i] for i in range(x.shape[1])]
    return d1, torch.stack(d2, -1)


def laplacian(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(net(x).sum(), x, create_graph=True)
    second = [torch.autograd.grad(grad[:, d].sum(), x, create_graph=True)[0][:, d] for d in range(x.shape[1])]
    return sum(second)


# ---- the layer -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("order", [2, 3, 5])
def test_fast_path_derivatives_equal_the_reference(order):
    layer = rough(KANLinear(3, 4, grid=6, order=order, grid_range=(-1.2, 0.8)))
    x = torch.rand(300, 3) * 3 - 1.5  # partly outside the grid
    d1, d2 = input_derivatives(layer, x)
    with reference():
        r1, r2 = input_derivatives(layer, x)
        torch.testing.assert_close(layer(x), layer(x), rtol=0, atol=0)  # the switch really switches
    torch.testing.assert_close(d1, r1, rtol=0, atol=1e-10)
    torch.testing.assert_close(d2, r2, rtol=0, atol=1e-10)


def test_only_the_base_branch_carries_inputs_beyond_the_extended_knots():
    layer = rough(KANLinear(2, 3, grid=5, order=3))
    x = torch.tensor([[-5.0, 7.0], [100.0, -30.0]])
    expected = torch.nn.functional.silu(x) @ layer.base_weight.T
    torch.testing.assert_close(layer(x), expected, rtol=0, atol=0)


def test_layer_keeps_leading_dimensions():
    layer = KANLinear(3, 2)
    assert layer(torch.rand(4, 5, 3)).shape == (4, 5, 2)


@pytest.mark.parametrize("fan_in, fan_out, grid, order", [(2, 5, 10, 3), (5, 1, 100, 3), (3, 3, 4, 1)])
def test_parameter_count(fan_in, fan_out, grid, order):
    def count(**kw):
        return sum(p.numel() for p in KANLinear(fan_in, fan_out, grid=grid, order=order, **kw).parameters())

    assert count() == fan_in * fan_out * (grid + order + 2)
    assert count(base=None) == fan_in * fan_out * (grid + order + 1)
    assert count(basis="chebyshev") == fan_in * fan_out * (order + 3)  # degree k: k + 1 bases


@pytest.mark.parametrize(
    "options, message",
    [
        ({"grid": 0}, "grid must be an integer >= 1"),
        ({"order": 0}, r"order must be an integer in 1 \.\. 5 for basis bspline, not 0"),
        ({"order": 6}, r"order must be an integer in 1 \.\. 5 for basis bspline, not 6"),
        ({"grid_range": (1.0, 1.0)}, r"lo < hi, not \[1.0, 1.0\]"),
        ({"grid_range": (1.0, -1.0)}, r"lo < hi, not \[1.0, -1.0\]"),
        ({"basis": "bsplines"}, "unknown basis 'bsplines' .*valid: bspline, chebyshev"),
        ({"base": "relu"}, "unknown base 'relu'.*valid: none, silu"),
        ({"basis": "chebyshev", "order": 0}, "degree"),
    ],
)
def test_bad_layer_arguments_are_named(options, message):
    with pytest.raises(KinnError, match=message):
        KANLinear(2, 3, **options)


def test_bad_network_arguments_are_named():
    with pytest.raises(KinnError, match="unknown between 'sigmoid'.*valid: none, rescale, tanh"):
        KAN([2, 5, 1], between="sigmoid")
    with pytest.raises(KinnError, match="widths"):
        KAN([2])


# ---- grid refits ---------------------------------------------------------------------------------------


def test_extend_grid_by_knot_insertion_keeps_the_output():
    net = rough(KAN([2, 5, 5, 1], grid=5))
    original = copy.deepcopy(net)
    x = torch.rand(1000, 2) * 2 - 1
    for grid in (10, 20):
        net.extend_grid(x, grid)
        assert all(layer.grid == grid for layer in net.layers)
        assert relative(net(x), original(x)) < 1e-10  # measured 3e-15
    fresh = torch.rand(1000, 2) * 2 - 1  # exact on the whole range, not only at the fitted inputs
    assert relative(net(fresh), original(fresh)) < 1e-10


def test_extend_grid_to_a_non_multiple_is_a_least_squares_fit():
    # 5 -> 7: the old knots are not among the new ones, so the old spline is not representable.
    layer = rough(KANLinear(2, 3, grid=5))
    x = torch.rand(1000, 2) * 2 - 1
    before = layer(x)
    extend_grid(layer, x, 7)
    assert 1e-8 < relative(layer(x), before) < 0.1  # measured 1e-2 .. 4e-2 over seeds


@pytest.mark.parametrize("mode", ["range", "quantile"])
@pytest.mark.parametrize("coefficients, bound", [("initial", 1e-3), ("rough", 0.1)])
def test_update_grid_is_a_least_squares_fit(mode, coefficients, bound):
    # Moving the knots is not knot insertion, so the output changes by the fit error, not by rounding.
    # Measured over 8 seeds on [2, 5, 5, 1], G = 5: 2e-5 .. 3e-4 at initialisation (small coefficients),
    # 6e-3 .. 5e-2 with unit random coefficients.
    net = KAN([2, 5, 5, 1], grid=5)
    if coefficients == "rough":
        rough(net)
    x = torch.rand(1000, 2) * 2 - 1
    before = net(x)
    old = [layer.spline_weight for layer in net.layers]
    net.update_grid(x, mode=mode)
    assert relative(net(x), before) < bound
    assert all(layer.spline_weight is not p for layer, p in zip(net.layers, old))  # replaced parameters
    assert all(layer.spline_weight.is_contiguous() for layer in net.layers)  # L-BFGS views gradients flat
    assert all(layer.uniform == (mode == "range") for layer in net.layers)


def test_update_grid_range_moves_the_grid_to_the_inputs():
    layer = KANLinear(1, 1, grid=4)
    x = torch.linspace(0.2, 0.6, 50).unsqueeze(-1)
    update_grid(layer, x, margin=0.25)
    assert (layer.lo, layer.hi) == pytest.approx((0.1, 0.7))
    torch.testing.assert_close(layer.knots[0], torch.linspace(-0.35, 1.15, 11))


def test_quantile_knots_follow_each_feature_and_stay_distinct():
    layer = KANLinear(2, 1, grid=4)
    x = torch.stack([torch.rand(400) ** 3, torch.zeros(400)], -1)  # skewed; constant
    x[0, 1] = 1.0  # a single outlier makes the second feature's quantiles repeat
    update_grid(layer, x, mode="quantile")
    assert (layer.knots.diff(dim=-1) > 0).all()
    assert not torch.equal(layer.knots[0], layer.knots[1])
    with pytest.raises(KinnError, match="quantiles"):
        extend_grid(layer, x, 8)


@pytest.mark.parametrize("refit", ["extend", "quantile"])
def test_a_refitted_network_loads_into_one_built_from_its_config(refit, tmp_path):
    net = rough(KAN([2, 5, 1], grid=5))
    x = torch.rand(300, 2) * 2 - 1
    if refit == "extend":
        net.extend_grid(x, 10)
    else:
        net.update_grid(x, mode="quantile")
    torch.save(net.state_dict(), tmp_path / "net.pt")
    fresh = KAN([2, 5, 1], grid=5)
    fresh.load_state_dict(torch.load(tmp_path / "net.pt"))
    torch.testing.assert_close(fresh(x), net(x), rtol=0, atol=0)
    assert [layer.extra_repr() for layer in fresh.layers] == [layer.extra_repr() for layer in net.layers]


def test_grid_refits_refuse_what_they_cannot_do():
    with pytest.raises(KinnError, match="bspline basis"):
        extend_grid(KANLinear(2, 1, basis="chebyshev"), torch.rand(10, 2), 10)
    with pytest.raises(KinnError, match="unknown grid update mode 'median'"):
        update_grid(KANLinear(2, 1), torch.rand(10, 2), mode="median")
    with pytest.raises(KinnError, match="not all equal"):
        update_grid(KANLinear(2, 1), torch.ones(10, 2))


# ---- networks ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [{}, {"between": "rescale", "grid_range": (-2.0, 2.0)}, {"between": "none"}, {"basis": "chebyshev"}],
)
def test_every_parameter_gets_a_gradient_from_a_laplacian_loss(options):
    net = KAN([2, 5, 5, 1], grid=5, **options)
    x = torch.rand(256, 2) * 2 - 1
    (laplacian(net, x) ** 2).mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().max() > 0, name


def test_rescale_maps_hidden_inputs_into_the_grid():
    net = KAN([1, 3, 1], grid_range=(2.0, 5.0), between="rescale")
    seen = []
    net.layers[1].register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    net(torch.randn(200, 1) * 100)
    assert 2.0 <= seen[0].min() and seen[0].max() <= 5.0


# ---- the family ----------------------------------------------------------------------------------------


def test_family_config_rejects_unknown_and_bad_options():
    family = KANFamily()
    with pytest.raises(KinnError, match="unknown option.*gird.*allowed: .*grid"):
        family.config({"gird": 10})
    with pytest.raises(KinnError, match="grid must be"):
        family.config({"grid": 0})
    with pytest.raises(KinnError, match="grid_schedule entries"):
        family.config({"grid_schedule": [[100]]})
    with pytest.raises(KinnError, match="need basis bspline"):
        family.config({"basis": "chebyshev", "grid_schedule": [[100, 20]]})


def test_family_refuses_order_one_splines_for_the_strong_form():
    import kinn.registry

    family = KANFamily()
    order1 = family.config({"order": 1})
    poisson = kinn.registry.get_problem("poisson2d")
    with pytest.raises(KinnError, match="strong form with B-splines of order 1.*use order >= 2"):
        family.check(poisson, "strong", order1)
    family.check(poisson, "energy", order1)  # first derivatives only
    family.check(poisson, "strong", family.config({"order": 1, "basis": "chebyshev"}))  # smooth in x
    family.check(poisson, "strong")  # the defaults


def test_order_check_runs_through_the_public_api():
    """kinn.solve refuses order-1 splines for a second-order residual before training, and a problem that
    declares a fourth-order residual refuses spline-only cubic splines and accepts them with the SiLU
    branch, which carries the fourth derivative."""
    import kinn.registry

    with pytest.raises(KinnError, match="order 1: their derivatives beyond order 1 vanish.*order 2"):
        kinn.solve("poisson2d", "kan", "strong", model={"order": 1}, steps=1, write=False, progress=False)
    p = kinn.registry.get_problem("poisson2d")
    fourth = kinn.Problem("fourth", p.domain, forms=[p.form("strong")], exact=p.exact, order=4)
    with pytest.raises(KinnError, match="order 3: .*order 4 .base = 'none'.*use order >= 4, or order 3 with base"):
        kinn.solve(fourth, "kan", model={"base": "none"}, steps=1, write=False, progress=False)
    with pytest.raises(KinnError, match="order 2: .*order 4"):
        kinn.solve(fourth, "kan", steps=1, model={"order": 2}, write=False, progress=False)
    for model in ({"order": 4}, {"order": 4, "base": "none"}, {}):  # {}: cubic splines with the SiLU branch
        r = kinn.solve(fourth, "kan", model=model, steps=1, lbfgs=0, write=False, progress=False, n_eval=10)
        assert r.history.adam_steps == 1


def test_family_builds_the_configured_network():
    family = KANFamily()
    net = family.build(2, 3, family.config({"hidden": [4, 6], "grid": 7}))
    assert [(layer.in_features, layer.out_features, layer.grid) for layer in net.layers] == [
        (2, 4, 7),
        (4, 6, 7),
        (6, 3, 7),
    ]
    assert net(torch.rand(5, 2) * 2 - 1).shape == (5, 3)


def test_grid_hook_extends_exactly_at_the_scheduled_steps():
    family = KANFamily()
    config = family.config({"grid": 5, "grid_schedule": [[3, 10], [5, 20]]})
    net = rough(family.build(2, 1, config))
    assert family.hooks(net, family.config()) == {}
    hook = family.hooks(net, config)["grid"]
    x = torch.rand(500, 2) * 2 - 1
    before = net(x)
    replaced = [hook(step, x) for step in range(7)]
    assert replaced == [False, False, False, True, False, True, False]
    assert all(layer.grid == 20 for layer in net.layers)
    assert relative(net(x), before) < 1e-10


def test_grid_hook_updates_every_n_steps():
    family = KANFamily()
    config = family.config({"grid_update_every": 2})
    hook = family.hooks(family.build(2, 1, config), config)["grid"]
    x = torch.rand(200, 2) * 2 - 1
    assert [hook(step, x) for step in range(5)] == [False, False, True, False, True]
