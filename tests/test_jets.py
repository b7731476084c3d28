"""Jets equal nested autograd: every catalogue residual, every jet-capable family, float64."""
import pytest
import torch

from kinn.pde import geometry
from kinn import registry
from kinn.run.pipeline import resolve_config
from kinn.errors import KinnError
from kinn.forms import field_at

PROBLEMS = [n for n in registry.problem_names() if "strong" in registry.get_problem(n).forms]
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
    form = p.form("strong")
    torch.manual_seed(0)
    jet = build(p, model.split("-")[0], MODELS[model], "jet")
    ref = build(p, model.split("-")[0], MODELS[model], "autograd")
    ref.load_state_dict(jet.state_dict())
    x = torch.as_tensor(geometry.interior(p.domain, 300))
    if not jet.jets_nest and name == "plate_hole":  # mixed derivatives (elasticity)
        with pytest.raises(KinnError, match="derivatives = 'jet' cannot evaluate problem 'plate_hole': derivatives of fluxes"):
            form.residuals(jet, p, x)
        return
    r_jet, r_ref = form.residuals(jet, p, x), form.residuals(ref, p, x)
    torch.testing.assert_close(r_jet, r_ref, rtol=1e-10, atol=1e-10 * (1 + r_ref.abs().max().item()))
    # and the gradients of the loss with respect to the parameters
    g_jet = torch.autograd.grad(r_jet.square().mean(), list(jet.parameters()), allow_unused=True)
    g_ref = torch.autograd.grad(r_ref.square().mean(), list(ref.parameters()), allow_unused=True)
    for a, b, w in zip(g_jet, g_ref, jet.parameters()):  # unused: a bias the residual does not see
        a, b = (torch.zeros_like(w) if t is None else t for t in (a, b))
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10 * (1 + b.abs().max().item()))


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


def test_auto_falls_back_to_autograd_where_kan_jets_cannot_nest(monkeypatch):
    """plate_hole's elasticity needs mixed derivatives: 'auto' with KAN jets (as on a GPU) evaluates it by
    autograd, with the same residual and parameter gradients as a model built for autograd."""
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
    assert not auto.use_jets  # switched for good
    torch.testing.assert_close(r, r_ref)
    g = torch.autograd.grad(r.square().mean(), list(auto.parameters()), allow_unused=True)
    g_ref = torch.autograd.grad(r_ref.square().mean(), list(ref.parameters()), allow_unused=True)
    for a, b in zip(g, g_ref):
        if b is not None:
            torch.testing.assert_close(a, b)
