"""The lattice backend (kinn.pde.lattice): derivatives converge at their order, residuals agree with autograd,
and GridModel evaluates a grid network at grid nodes and anywhere else."""
import math

import numpy as np
import pytest
import torch

import kinn.run.config

from kinn.pde import geometry, ops
from kinn.models.lattice import LatticeModel
from kinn.pde import lattice as grid
from kinn import KinnError, registry
from kinn.pde.fields import AutogradBackend, Field

F64 = torch.float64


def slope(ns, errs):
    return np.polyfit(np.log(1 / (np.asarray(ns) - 1)), np.log(errs), 1)[0]


@pytest.mark.parametrize("order", [1, 2])
def test_finite_differences_converge_at_second_order_up_to_the_ends(order):
    ns, errs = [17, 33, 65, 129], []
    for n in ns:
        x = torch.linspace(0, 1, n, dtype=F64)
        exact = 2 * torch.cos(2 * x) if order == 1 else -4 * torch.sin(2 * x)
        errs.append(float((grid.diff(torch.sin(2 * x), 0, 1 / (n - 1), order) - exact).abs().max()))
    assert abs(slope(ns, errs) - 2) < 0.1, errs


def test_spectral_derivatives_of_a_periodic_function_are_exact_to_rounding():
    errs = []
    for n in (8, 16, 32):
        x = torch.arange(n, dtype=F64) / n
        u = torch.exp(torch.sin(2 * math.pi * x))
        du = 2 * math.pi * torch.cos(2 * math.pi * x) * u
        errs.append(float((grid.diff(u, 0, 1 / n, 1, periodic=True) - du).abs().max()))
    assert errs[-1] < 1e-10 and errs[0] / errs[1] > 100, errs  # faster than any power of h


def _field_on(shape, f, lo=(0.0, 0.0), hi=(1.0, 1.0)):
    x = torch.as_tensor(grid.nodes(lo, hi, shape), dtype=F64)
    backend = grid.LatticeBackend(f(x), shape, grid.spacing(lo, hi, shape))
    return Field(backend, ("u",), ("x", "y"), 2), x


def test_grid_backend_answers_every_op_at_second_order():
    f = lambda x: (torch.sin(2 * x[:, :1]) * torch.exp(x[:, 1:]))  # noqa: E731
    exact = {
        "laplacian": lambda x: (-4 + 1) * f(x),
        "mixed": lambda x: 2 * torch.cos(2 * x[:, :1]) * torch.exp(x[:, 1:]),
        "div_flux": lambda x: (-(1 + x[:, :1]) * 4 * f(x) + 2 * torch.cos(2 * x[:, :1]) * torch.exp(x[:, 1:])
                              + (1 + x[:, :1]) * f(x)),
    }
    ns, errs = [17, 33, 65], {k: [] for k in exact}
    for n in ns:
        u, x = _field_on((n, n), f)
        a = 1 + x[:, :1]
        got = {"laplacian": ops.laplacian(u), "mixed": ops.d(u, "x", "y"), "div_flux": ops.div(a * ops.grad(u), u)}
        for k in exact:
            err = (got[k] - exact[k](x)).abs().reshape(n, n)
            # a derivative of a derivative (the flux's divergence) is first order on the two nodes next
            # to each end, where one-sided and central errors meet; second order from the third node on
            errs[k].append(float((err if k == "laplacian" else err[2:-2, 2:-2]).max()))
    for k in exact:
        assert abs(slope(ns, errs[k]) - 2) < 0.25, (k, errs[k])


def test_grid_and_autograd_backends_give_the_same_residual():
    """poisson2d's residual of its exact solution: zero by autograd, O(h²) on the grid."""
    p = registry.get_problem("poisson2d")
    form = p.form("strong")
    res = []
    for n in (33, 65):
        u, x = _field_on((n, n), p.exact)
        res.append(float(form.residual(u, x).abs().max()))
        xa = x.clone().requires_grad_(True)
        auto = form.residual(Field(AutogradBackend(p.exact(xa), xa), ("u",), p.coords, 2), xa)
        assert float(auto.detach().abs().max()) < 1e-10
    assert res[1] < 0.3 * res[0] and res[1] < 0.1  # second order: a quarter per halving of h


def test_div_of_a_flux_by_autograd_matches_the_closed_form():
    x = torch.rand(50, 2, dtype=F64, requires_grad=True)
    u = Field(AutogradBackend(torch.sin(x[:, :1]) * x[:, 1:] ** 2, x), ("u",), ("x", "y"), 2)
    a = torch.exp(x[:, :1])
    div = ops.div(a * ops.grad(u), u)
    exact = torch.exp(x[:, :1]) * ((torch.cos(x[:, :1]) - torch.sin(x[:, :1])) * x[:, 1:] ** 2 + 2 * torch.sin(x[:, :1]))
    torch.testing.assert_close(div, exact.detach(), atol=1e-12, rtol=0)
    with pytest.raises(ValueError, match=r"flux q of shape \(N, 2\)"):
        ops.div(a, u)


def test_interior_mask_leaves_out_the_non_periodic_ends():
    b = grid.LatticeBackend(torch.zeros(2 * 5 * 4, 1), (5, 4), (1, 1), periodic=(False, True), batch=2)
    m = b.interior().reshape(2, 5, 4)
    assert not m[:, [0, -1], :].any() and m[:, 1:-1, :].all()


def test_match_recognises_grids_and_nothing_else():
    lo, hi = np.array([0.0, -1.0]), np.array([2.0, 1.0])
    x = torch.as_tensor(grid.nodes(lo, hi, (7, 5)))
    assert grid.match(x, lo, hi) == (7, 5)
    assert grid.match(x[torch.randperm(len(x))], lo, hi) is None  # not in "ij" order
    assert grid.match(x[:-1], lo, hi) is None
    assert grid.match(torch.rand(35, 2, dtype=F64), lo, hi) is None


@pytest.mark.parametrize("dim", [1, 2])
def test_interpolation_from_the_grid_is_cubic(dim):
    lo, hi = np.zeros(dim), np.ones(dim)
    f = lambda x: torch.sin(3 * x).prod(1, keepdim=True)  # noqa: E731
    pts = torch.rand(200, dim, dtype=F64)
    errs = []
    for n in (17, 33):
        values = f(torch.as_tensor(grid.nodes(lo, hi, (n,) * dim))).T.reshape(1, *(n,) * dim)
        errs.append(float((grid.interpolate(values, lo, hi, pts) - f(pts)).abs().max()))
    assert errs[1] < errs[0] / 6 and errs[1] < 1e-4, errs  # at least third order


def test_grid_model_runs_on_grids_and_interpolates_elsewhere():
    fam = registry.get_family("fno")
    torch.manual_seed(0)
    net = fam.build(2, 1, fam.config({"modes": 4, "width": 8, "depth": 2}))
    model = LatticeModel(net, [0, 0], [1, 1], (16, 16)).double()
    nodes = model.nodes()
    on = model(nodes)
    assert on.shape == (256, 1)
    np.testing.assert_allclose(model(nodes[:5]).detach(), on[:5].detach(), atol=1e-12)  # nodes interpolate exactly
    fine = model(model.nodes((31, 31)))  # another resolution of the same domain runs on that grid
    assert fine.shape == (961, 1)
    with pytest.raises(KinnError, match="regular lattice"):
        model.backend(torch.rand(10, 2, dtype=F64))


def test_fno_needs_the_grid_sampler_and_a_box():
    import kinn

    with pytest.raises(KinnError, match="points.sampler must be 'lattice'"):
        kinn.solve("poisson2d", "fno", steps=1, write=False, points={"sampler": "pseudo"})
    disk = kinn.Problem(name="disk", domain=geometry.Disk([0, 0], 1),
                        strong=kinn.StrongForm(lambda u, x: ops.laplacian(u)), exact=lambda x: x[:, :1])
    with pytest.raises(KinnError, match="not supported by the FNO family"):
        kinn.solve(disk, "fno", steps=1, write=False)


def test_fno_strong_form_training_lowers_the_error():
    import kinn

    kw = dict(write=False, progress=False, lbfgs=0, seed=0, points={"n_interior": 256},
              model={"modes": 6, "width": 12, "depth": 2, "projection": 32})
    before = kinn.solve("poisson2d", "fno", steps=1, **kw).errors["rel_l2/u"]
    after = kinn.solve("poisson2d", "fno", steps=60, lr=1e-2, **kw)
    assert after.errors["rel_l2/u"] < 0.5 * before, (before, after.errors)
    assert after.residual_rms is not None and math.isfinite(after.residual_rms)


def test_grid_helpers_name_what_they_cannot_do():
    with pytest.raises(KinnError, match="at least 4 nodes along an axis, got 3"):
        grid.diff(torch.zeros(3), 0, 0.5, 2)
    with pytest.raises(KinnError, match="order 3 are not implemented"):
        grid.diff(torch.zeros(8), 0, 0.1, 3)
    with pytest.raises(KinnError, match="supports 1-D and 2-D grids, not 3-D"):
        grid.interpolate(torch.zeros(1, 4, 4, 4), np.zeros(3), np.ones(3), torch.zeros(2, 3))
    with pytest.raises(KinnError, match="at least 2 nodes"):
        grid.axis(0.0, 1.0, 1)
    with pytest.raises(KinnError, match="sampler 'lattice' needs a box domain, not a Disk"):
        geometry.interior(geometry.Disk([0, 0], 1), 16, "lattice")
    with pytest.raises(KinnError, match="points.sampler 'grid' is now called 'lattice'"):
        kinn.run.config.PointsConfig(sampler="grid")
    with pytest.raises(KinnError, match="triangulate needs a 2-D domain"):
        geometry.triangulate(geometry.Interval(0, 1), 10, 2)
