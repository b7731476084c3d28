"""Subdomains: one network per part (`PiecewiseModel`), interface and inner-segment conditions, per-part
quadrature, and the mode-III crack built on them."""
import numpy as np
import pytest
import torch

import kinn
from kinn.pde import ops
from kinn import EnergyForm, Interface, KinnError, Problem, Rectangle, SegmentResidual, StrongForm
from kinn.pde import geometry
from kinn import registry
from kinn.run.pipeline import resolve_config
from kinn.forms import quadrature
from kinn.forms.points import segment_terms
from kinn.models.field import FieldModel
from kinn.models.piecewise import PiecewiseModel

HALVES = {"upper": Rectangle([-1, 0], [1, 1]), "lower": Rectangle([-1, -1], [1, 0])}


def piecewise(upper, lower):
    """A PiecewiseModel of two closed-form functions on the two halves of [−1, 1]²."""
    from kinn.models.field import FunctionModel

    parts = {"upper": FieldModel(FunctionModel(upper), [-1, -1], [1, 1]),
             "lower": FieldModel(FunctionModel(lower), [-1, -1], [1, 1])}
    for p in parts.values():
        p.scale = lambda x: x  # the functions are written in physical coordinates
    return PiecewiseModel(parts, HALVES).double()


def test_each_point_gets_its_own_subdomains_network_and_derivatives():
    model = piecewise(lambda x: x[:, :1] ** 2 * x[:, 1:], lambda x: torch.sin(x[:, :1]) + x[:, 1:] ** 3)
    x = torch.tensor([[0.3, 0.5], [0.3, -0.5], [-0.7, 0.0], [0.1, -0.2]], dtype=torch.float64, requires_grad=True)
    u = model(x)[:, 0]
    expected = torch.tensor([0.09 * 0.5, np.sin(0.3) - 0.125, 0.0, np.sin(0.1) - 0.008], dtype=torch.float64)
    torch.testing.assert_close(u.detach(), expected)  # y = 0 belongs to the first part, "upper"
    (g,) = torch.autograd.grad(u.sum(), x, create_graph=True)
    torch.testing.assert_close(g[0].detach(), torch.tensor([2 * 0.3 * 0.5, 0.09], dtype=torch.float64))
    torch.testing.assert_close(g[1].detach(), torch.tensor([np.cos(0.3), 3 * 0.25], dtype=torch.float64))
    (h,) = torch.autograd.grad(g[:, 1].sum(), x)  # second derivatives through the split, too
    assert h[1, 1] == pytest.approx(6 * -0.5) and h[0, 0] == pytest.approx(2 * 0.3)


def test_points_outside_every_subdomain_are_refused():
    model = piecewise(lambda x: x[:, :1], lambda x: x[:, :1])
    with pytest.raises(KinnError, match="in no subdomain"):
        model(torch.tensor([[0.0, 2.0]], dtype=torch.float64))


def test_interface_terms_measure_the_jumps_of_value_and_flux():
    p = registry.get_problem("crack_mode3")
    x = torch.as_tensor(quadrature.segment(Interface((0.0, 0.0), (1.0, 0.0), a="upper", b="lower"), 50, "monte_carlo").points)
    c = Interface((0.0, 0.0), (1.0, 0.0), a="upper", b="lower", name="i")
    same = piecewise(lambda x: x[:, :1] * x[:, 1:] + 1, lambda x: x[:, :1] * x[:, 1:] + 1)
    assert all(float(v.detach()) < 1e-28 for v in segment_terms(same, p, "i", c, x).values())
    # a jump of 0.5 in the value and of x in ∂u/∂y across y = 0
    jump = piecewise(lambda x: x[:, :1] * x[:, 1:] + 1.5, lambda x: 0 * x[:, :1] + 1)
    terms = segment_terms(jump, p, "i", c, x)
    terms = {k: v.detach() for k, v in terms.items()}
    assert float(terms["i"]) == pytest.approx(0.25)
    assert float(terms["i/flux"]) == pytest.approx(float((x[:, 0] ** 2).mean()))


def test_segment_residual_sees_its_own_parts_network():
    p = registry.get_problem("crack_mode3")
    c = SegmentResidual((-1.0, 0.0), (0.0, 0.0), fn=lambda u, x, n: ops.normal(u, n), part="lower", name="f")
    x = torch.as_tensor(quadrature.segment(c, 20, "gauss").points)
    model = piecewise(lambda x: 0 * x[:, :1], lambda x: 3 * x[:, 1:])  # ∂u/∂n = 3 on the lower side only
    assert float(segment_terms(model, p, "f", c, x)["f"]) == pytest.approx(9.0)


def test_energy_rules_cover_each_subdomain_without_straddling_it():
    p = registry.get_problem("crack_mode3")
    for rule in ("gauss", "simpson", "triangle1", "triangle4"):
        cfg = resolve_config(p, "mlp", "energy", points={"quadrature": rule, "n_interior": 2000})
        with geometry.numpy_seed(0):
            pts = p.form("energy").sample(p, cfg.points)
        assert pts["pde/weight"].sum() == pytest.approx(4.0), rule  # the area of the square
        # ∫ y² over the square: exact for these rules only if no cell crosses y = 0 (where the halves meet)
        assert (pts["pde/weight"] * np.abs(pts["pde"][:, 1])).sum() == pytest.approx(2.0, rel=2e-3), rule
        assert pts["interface:ligament/weight"].sum() == pytest.approx(1.0)


def test_crack_lift_matches_the_data_on_the_outer_boundary_and_not_inside():
    p = registry.get_problem("crack_mode3")
    transform = p.form("energy").transform(p)
    xb = torch.as_tensor(geometry.boundary(p.domain, 400))
    xb = xb[xb[:, 1] != 0]  # the crack mouth (−1, 0) is the one point of the boundary with two values
    torch.testing.assert_close(transform(xb, torch.randn(len(xb), 1, dtype=torch.float64)), p.exact(xb))
    xi = torch.as_tensor(geometry.interior(p.domain, 400))
    lift = transform(xi, torch.zeros(len(xi), 1, dtype=torch.float64))
    assert (lift - p.exact(xi)).norm() / p.exact(xi).norm() > 0.05  # the singularity is the networks' to learn


def test_one_network_per_subdomain_each_drawn_afresh():
    p = registry.get_problem("crack_mode3")
    for solver, form in (("mlp", "strong"), ("kan", "energy")):
        cfg = resolve_config(p, solver, form)
        model = p.form(cfg.form).build(p, registry.get_family(solver), cfg).to(torch.device("cpu"), torch.float64)
        assert isinstance(model, PiecewiseModel) and list(model.parts) == ["upper", "lower"]
        a, b = (list(part.parameters())[0] for part in model.parts.values())
        assert a.shape == b.shape and not torch.equal(a, b)


def test_bad_subdomain_declarations_get_clear_errors():
    dom = Rectangle([-1, -1], [1, 1])
    with pytest.raises(KinnError, match="names subdomain 'left'.*subdomains: upper, lower"):
        Problem("p", dom, subdomains=HALVES, exact=lambda x: x[:, :1],
                strong=StrongForm(lambda u, x: ops.laplacian(u), bcs=[Interface(a="left", b="lower")]))
    with pytest.raises(KinnError, match="flux continuity is natural"):
        EnergyForm(lambda u, x: u[:, 0], bcs=[Interface(a="upper", b="lower")])
    with pytest.raises(KinnError, match="crack faces are natural"):
        EnergyForm(lambda u, x: u[:, 0], bcs=[SegmentResidual(fn=lambda u, x, n: u, part="upper")])
    with pytest.raises(KinnError, match="two distinct 2-D points"):
        Interface((0.0, 0.0), (0.0, 0.0), a="upper", b="lower")
    crack = registry.get_problem("crack_mode3")
    with pytest.raises(KinnError, match="subdomains"):
        kinn.solve(crack, "fno", "strong", steps=1, write=False)
    from kinn import InverseProblemForm, Observations, Unknown

    inverse = Problem("inv", dom, subdomains=HALVES, exact=lambda x: x[:, :1],
                      strong=InverseProblemForm(lambda u, x, p: ops.laplacian(u), [Unknown("k", 1.0)], Observations(n=8)))
    with pytest.raises(KinnError, match="problem 'inv': an inverse problem on subdomains is not supported"):
        kinn.solve(inverse, "mlp", steps=1, write=False, progress=False)
    with pytest.raises(KinnError, match="cannot translate the subdomains of 'crack_mode3'.*one network"):
        kinn.compare(crack, ("mlp", "deepxde"), "strong", seeds=1, budget_steps=1)


def test_short_training_lowers_the_crack_error():
    """A few hundred Adam steps from either form leave both halves and the ligament far better than at start."""
    for form in ("strong", "energy"):
        first = kinn.solve("crack_mode3", "mlp", form, steps=1, lbfgs=0, write=False, progress=False,
                           n_interior=600, n_boundary=100, n_eval=2000)
        later = kinn.solve("crack_mode3", "mlp", form, steps=400, lbfgs=0, write=False, progress=False,
                           n_interior=600, n_boundary=100, n_eval=2000)
        assert later.errors["rel_l2/u"] < 0.5 * first.errors["rel_l2/u"], (form, first.errors, later.errors)
