"""Jets equal nested autograd: every catalogue residual, every jet-capable family, float64."""
import numpy as np
import pytest
import torch

from kinn.pde import geometry
from kinn import registry
from kinn.run.pipeline import resolve_config
from kinn.run.config import PointsConfig
from kinn.errors import KinnError
from kinn.forms import field_at

# hard conditions (output transforms: the wedge's faces, poisson2d's box) included: jets go through them
PROBLEMS = [n for n in registry.problem_names() if "strong" in registry.get_problem(n).forms]
# residuals that take the divergence of a flux (∇·σ, ∇·(K∇u)): their KAN jets carry the full Hessian
FLUX_DIVERGENCE = ("plate_hole", "plate_hole_inverse", "conductivity_inverse")
MODELS = {"mlp": {"widths": [16, 16, 16, 16], "skip": True}, "mlp-sin": {"widths": [12, 12], "activation": "sin"},
          "mlp-silu": {"widths": [12], "activation": "silu"}, "kan": {"hidden": [5, 5], "grid": 7},
          "kan-rescale": {"hidden": [4, 4], "grid": 5, "order": 4, "between": "rescale", "grid_range": [-2.0, 2.0]},
          "kan-cheb": {"hidden": [4], "basis": "chebyshev", "order": 4, "base": "none"}}


def build(problem, family, model_options, derivatives):
    cfg = resolve_config(problem, family, "strong", model=model_options, derivatives=derivatives)
    return problem.form(cfg.form).build(problem, registry.get_family(family), cfg).to(torch.device("cpu"), torch.float64)


@pytest.mark.parametrize("name", PROBLEMS)
@pytest.mark.parametrize("model", list(MODELS))
def test_jet_residual_equals_autograd(name, model):
    p = registry.get_problem(name)
    if model.startswith("kan") and p.needs_order("strong") > 2:
        pytest.skip("third derivatives: a KAN's jets refuse them (the wedge; see test_a_flux_of_second_derivatives...)")
    form = p.form("strong")
    torch.manual_seed(0)
    jet = build(p, model.split("-")[0], MODELS[model], "jet")
    ref = build(p, model.split("-")[0], MODELS[model], "autograd")
    ref.load_state_dict(jet.state_dict())
    x = torch.as_tensor(geometry.interior(p.domain, 300))
    # twice: a KAN's first jets are "diag" and computed again where the residual asks for more (plate_hole's
    # ∇·σ), the second carry from the start what the first asked for
    for _ in range(2):
        assert_same_residuals(form.residuals(jet, p, x), form.residuals(ref, p, x), jet, ref)
    if model.startswith("kan") and hasattr(jet, "net"):
        assert jet.net.demand.kind == ("full" if name in FLUX_DIVERGENCE else "diag")
    elif model.startswith("kan"):  # a piecewise model rebuilds its parts' jets from their tensors: "diag"
        assert all(part.net.demand.kind is None for part in jet.parts.values())


def assert_same_residuals(r_jet, r_ref, jet, ref):
    """Equal residuals, and equal gradients of their mean square with respect to the parameters."""
    torch.testing.assert_close(r_jet, r_ref, rtol=1e-10, atol=1e-10 * (1 + r_ref.abs().max().item()))
    g_jet = torch.autograd.grad(r_jet.square().mean(), list(jet.parameters()), allow_unused=True, retain_graph=True)
    g_ref = torch.autograd.grad(r_ref.square().mean(), list(ref.parameters()), allow_unused=True, retain_graph=True)
    for a, b, w in zip(g_jet, g_ref, jet.parameters()):  # unused: a bias the residual does not see
        a, b = (torch.zeros_like(w) if t is None else t for t in (a, b))
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10 * (1 + b.abs().max().item()))


KAN_BACKENDS = ["reference", "fast", "native"]


def built_pair(problem, form_name, options, backend=None):
    """The same KAN twice, float64: one with jets, one with nested autograd."""
    from kinn import registry as reg

    torch.manual_seed(0)
    out = []
    for derivatives in ("jet", "autograd"):
        cfg = resolve_config(problem, "kan", form_name, model=options, derivatives=derivatives)
        out.append(problem.form(cfg.form).build(problem, reg.get_family("kan"), cfg).to(torch.device("cpu"), torch.float64))
    out[1].load_state_dict(out[0].state_dict())
    return out


# what each problem's KAN jets come to carry: the whole Hessian for a flux divergence, first derivatives for
# an energy density (through the energy form's hard conditions, output transforms)
LOSS_KINDS = {"plate_hole": "full", "plate_hole_inverse": "full", "conductivity_inverse": "full", "poisson2d": "diag",
              "plate_hole:energy": "first", "neo_hookean_beam:energy": "first", "poisson2d:energy": "first"}


@pytest.mark.parametrize("backend", KAN_BACKENDS)
@pytest.mark.parametrize("name", list(LOSS_KINDS))
def test_kan_jet_losses_equal_autograd_on_every_term(name, backend):
    """Every loss term (interior residual, tractions and other boundary residuals, data, an energy and the
    work of its loads) and its gradient, KAN jets against nested autograd, on each CPU backend: elasticity's
    ∇·σ (mixed derivatives through the divergence of a flux), the conductivity's ∇·(K(x)∇u) with K another
    network of x, energy densities through the energy forms' output transforms."""
    from kinn.kernels import native_kan, set_backend

    if backend == "native" and not native_kan.available():
        pytest.skip("the C kernels do not build here")
    problem_name, _, form_name = name.partition(":")
    p = registry.get_problem(problem_name)
    form_name = form_name or next(iter(p.forms))
    form = p.form(form_name)
    # grid 8: knots exact in binary, which the reference's Cox-de Boor reads from a buffer built in float32
    jet, ref = built_pair(p, form_name, {"hidden": [5, 5], "grid": 8})
    np.random.seed(0)
    points = PointsConfig(n_interior=200, n_boundary=40)
    pts = {k: torch.as_tensor(v) for k, v in form.sample(p, points).items()}
    previous = set_backend(backend)
    try:
        for _ in range(2):
            terms_jet, terms_ref = form.loss(jet, p, pts), form.loss(ref, p, pts)
            assert jet.use_jets and terms_jet.keys() == terms_ref.keys()
            for key in terms_ref:
                assert_same_residuals(terms_jet[key].reshape(1, 1), terms_ref[key].reshape(1, 1), jet, ref)
    finally:
        set_backend(previous)
    assert jet.net.demand.kind == LOSS_KINDS[name]


@pytest.mark.parametrize("backend", KAN_BACKENDS)
def test_kan_jets_give_every_operator(backend):
    """Mixed second derivatives, the Hessian, a divergence of a flux with an explicit coefficient of x and of
    the values, through KAN jets (whose backward is not differentiable again) against nested autograd; and
    first-order jets where only gradients are asked for."""
    from kinn import ops
    from kinn.kernels import native_kan, set_backend

    if backend == "native" and not native_kan.available():
        pytest.skip("the C kernels do not build here")
    p = registry.get_problem("plate_hole")
    jet, ref = built_pair(p, "strong", {"hidden": [6, 5], "grid": 8})
    x = torch.as_tensor(geometry.interior(p.domain, 80))
    flux = lambda u: (1 + x[:, :1] ** 2 + u["ux"].values ** 2) * ops.grad(u["uy"])  # noqa: E731
    operators = {"grad": lambda u: ops.grad(u["ux"]), "jacobian": ops.jacobian, "div": ops.div,
                 "laplacian": ops.laplacian, "hessian": lambda u: ops.hessian(u["uy"]),
                 "mixed": lambda u: ops.d(u, "x", "y"), "flux": lambda u: ops.div(flux(u), u),
                 "div_sigma": lambda u: ops.div(ops.jacobian(u)[:, 0] * u["uy"].values, u)}
    previous = set_backend(backend)
    try:
        for op in operators.values():
            a, b = op(field_at(jet, p, x)), op(field_at(ref, p, x))
            assert_same_residuals(a.reshape(len(x), -1), b.reshape(len(x), -1), jet, ref)
        # a fresh network that is only ever asked for gradients carries first derivatives only
        fresh, _ = built_pair(p, "strong", {"hidden": [6, 5], "grid": 6})
        ops.jacobian(field_at(fresh, p, x))
        assert fresh.net.demand.kind == "first"
        assert fresh.jet(x).kind == "first" and fresh.jet(x).J.shape[1] == 3
    finally:
        set_backend(previous)


@pytest.mark.parametrize("kind", ["first", "diag", "full"])
def test_an_output_transform_acts_on_jets_of_every_kind(kind):
    """`jets.transformed`: the jet of fn(x, u) for a transform mixing points and values nonlinearly (as a
    hard condition g(x) + d(x) N does, and more), against nested autograd through it, float64; and its
    gradients in the network's parameters."""
    from kinn.kernels import jets

    torch.manual_seed(3)
    net = torch.nn.Sequential(torch.nn.Linear(2, 6), torch.nn.Tanh(), torch.nn.Linear(6, 2)).double()
    fn = lambda x, u: torch.stack([x[:, 0] * x[:, 1] * u[:, 0] + torch.sin(x[:, 1]),  # noqa: E731
                                   u[:, 1] * u[:, 0] ** 2 * torch.exp(x[:, 0])], 1)
    x = torch.rand(30, 2, dtype=torch.float64).requires_grad_(True)
    j = jets.Jet.seed(x, torch.ones(2, dtype=torch.float64), kind)
    for i, layer in enumerate(net):
        j = jets.linear(j, layer.weight, layer.bias) if i % 2 == 0 else jets.activation(j, "tanh")
    out = jets.transformed(fn, x, j)
    y = fn(x, net(x))
    rows = [y]
    g = [torch.autograd.grad(y[:, c].sum(), x, create_graph=True)[0] for c in range(2)]  # (N, 2) each
    rows += [torch.stack([gc[:, a] for gc in g], 1) for a in range(2)]
    for a, b in jets.pairs(2, kind):
        rows.append(torch.stack([torch.autograd.grad(gc[:, a].sum(), x, create_graph=True)[0][:, b] for gc in g], 1))
    expected = torch.stack(rows, 1)
    assert out.kind == kind and out.J.shape == expected.shape
    torch.testing.assert_close(out.J, expected, rtol=1e-10, atol=1e-10)
    weights = torch.randn(expected.shape, dtype=torch.float64)
    for a, b in zip(torch.autograd.grad((out.J * weights).sum(), list(net.parameters()), retain_graph=True),
                    torch.autograd.grad((expected * weights).sum(), list(net.parameters()))):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_a_flux_of_second_derivatives_is_refused_by_jets_and_auto_falls_back():
    """∇·(∇Δu) needs third derivatives, which jets do not carry: a forced "jet" says so, "auto" switches the
    model to autograd and gets the same values."""
    from kinn import ops
    from kinn.forms import at_points

    p = registry.get_problem("poisson2d")
    jet, ref = built_pair(p, "strong", {"hidden": [5]})
    x = torch.rand(40, 2, dtype=torch.float64)
    fn = lambda u, x: ops.div(ops.laplacian(u) * x, u)  # noqa: E731
    with pytest.raises(KinnError, match="derivatives = 'jet' cannot evaluate problem 'poisson2d': derivatives of "
                                        "fluxes built from second derivatives need third derivatives"):
        at_points(jet, p, x, fn)
    jet.derivatives = "auto"
    torch.testing.assert_close(at_points(jet, p, x, fn), at_points(ref, p, x, fn), rtol=1e-10, atol=1e-10)
    assert not jet.use_jets


def test_mixed_and_all_operators_agree():
    """Mixed second derivatives (not carried by the jet) and every ops helper, jet vs autograd."""
    from kinn.pde import ops

    p = registry.get_problem("poisson2d")
    torch.manual_seed(1)
    jet = build(p, "mlp", {"widths": [10, 10]}, "jet")
    ref = build(p, "mlp", {"widths": [10, 10]}, "autograd")
    ref.load_state_dict(jet.state_dict())
    x = torch.rand(50, 2, dtype=torch.float64)
    u, v = field_at(jet, p, x), field_at(ref, p, x)
    assert type(u.backend).__name__ == "JetBackend" and type(v.backend).__name__ == "AutogradBackend"
    for op in (ops.grad, ops.laplacian, ops.hessian, lambda f: ops.d(f, "x", "y"), lambda f: ops.d(f, "y")):
        torch.testing.assert_close(op(u), op(v), rtol=1e-10, atol=1e-12)


def test_auto_follows_the_network_preference():
    p = registry.get_problem("poisson2d")
    assert not build(p, "mlp", {"widths": [4]}, "auto").use_jets  # autograd measured faster for MLPs on CPU
    assert build(p, "mlp", {"widths": [4]}, "jet").use_jets
    # KAN: jets where fused kernels run them (Triton on CUDA, C on CPU where it builds) on uniform B-splines;
    # otherwise the closed-form splines under autograd were faster
    from kinn.kernels import native_kan, set_backend

    kan = build(p, "kan", {"hidden": [4]}, "auto")  # on the CPU
    assert kan.use_jets == native_kan.available()
    assert not build(p, "kan", {"hidden": [4], "basis": "chebyshev"}, "auto").use_jets
    previous = set_backend("fast")
    try:
        assert not kan.use_jets  # the fast PyTorch jets lose to autograd on CPU
    finally:
        set_backend(previous)


def test_forcing_jets_where_they_cannot_run_is_refused():
    p = registry.get_problem("poisson2d")
    with pytest.raises(KinnError, match="not available here: MLP has no jet rules for these options"):
        build(p, "mlp", {"widths": [4], "activation": "gelu"}, "jet")
    with pytest.raises(KinnError, match="unknown derivatives 'fast'; valid: auto, jet, autograd"):
        build(p, "mlp", {"widths": [4]}, "fast")


def test_auto_keeps_kan_jets_for_elasticity(monkeypatch):
    """plate_hole's elasticity needs mixed derivatives: 'auto' with KAN jets keeps them (the jets carry the
    whole Hessian), with the same residual and parameter gradients as a model built for autograd."""
    from kinn.solvers.kan import KAN

    monkeypatch.setattr(KAN, "prefers_jets", property(lambda self: True))
    p = registry.get_problem("plate_hole")
    form = p.form("strong")
    torch.manual_seed(0)
    auto = build(p, "kan", MODELS["kan"], "auto")
    ref = build(p, "kan", MODELS["kan"], "autograd")
    ref.load_state_dict(auto.state_dict())
    assert auto.use_jets
    x = torch.as_tensor(geometry.interior(p.domain, 100))
    r, r_ref = form.residuals(auto, p, x), form.residuals(ref, p, x)
    assert auto.use_jets  # no fallback
    torch.testing.assert_close(r, r_ref, rtol=1e-10, atol=1e-10)
    g = torch.autograd.grad(r.square().mean(), list(auto.parameters()), allow_unused=True)
    g_ref = torch.autograd.grad(r_ref.square().mean(), list(ref.parameters()), allow_unused=True, retain_graph=True)
    for a, b in zip(g, g_ref):
        if b is not None:
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)
