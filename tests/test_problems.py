"""Catalogue-wide checks: every registered problem is well formed and its exact solution solves it."""
import numpy as np
import pytest
import torch

from kinn.pde import geometry
from kinn import registry
from kinn.pde.conditions import Initial, Neumann

NAMES = registry.problem_names()


@pytest.mark.parametrize("name", NAMES)
def test_problem_is_well_formed(name):
    p = registry.get_problem(name)
    assert p.name == name
    assert p.forms, "declares at least one form"
    assert p.exact is not None or p.reference is not None or "operator" in p.forms  # operators score on test data
    x = geometry.interior(p.domain, 50)
    assert x.shape == (50, p.dim) and x.dtype == np.float64


@pytest.mark.parametrize("name", [n for n in NAMES if registry.get_problem(n).exact is not None
                                  and "strong" in registry.get_problem(n).forms])
def test_exact_solution_has_zero_residual_and_meets_conditions(name, function_model):
    p = registry.get_problem(name)
    model = function_model(p.exact)
    form = p.form("strong")
    x = torch.as_tensor(geometry.interior(p.domain, 500))
    r = form.residuals(model, p, x)
    scale = 1 + form.residuals(function_model(lambda x: 0 * p.exact(x)), p, x).abs().max()  # size of the source term
    assert r.abs().max() <= 1e-8 * scale, f"max residual {r.abs().max():.3e}"
    with geometry.numpy_seed(1):
        pts = form.sample(p, type("P", (), {"n_interior": 10, "n_boundary": 100, "n_initial": 100, "sampler": "pseudo"})())
    for term, cond in form.soft().items():
        xb = torch.as_tensor(pts[term])
        comps = cond.components(p.fields)
        if isinstance(cond, Neumann):
            continue
        err = (p.exact(xb)[:, comps] - cond.target(xb, len(comps))).abs().max()
        assert err <= 1e-10, f"{term}: exact solution misses the condition by {err:.3e}"
        if isinstance(cond, Initial):
            assert np.allclose(pts[term][:, p.t_index], p.domain.timedomain.t0)


def test_burgers_reference_interpolates_to_any_point():
    """burgers1d has no exact solution: it is scored against stored data (checked in test_burgers_reference.py).
    Interpolation must reproduce the nodes, and between nodes the known initial condition."""
    from kinn.data.reference import load_reference

    p = registry.get_problem("burgers1d")
    ref = load_reference(p.reference, p)
    idx = np.random.default_rng(0).choice(len(ref.points), 200, replace=False)
    np.testing.assert_allclose(ref(ref.points[idx]), ref.node_values[idx], atol=1e-12)
    x = np.stack([np.random.default_rng(1).uniform(-1, 1, 100), np.zeros(100)], 1)
    np.testing.assert_allclose(ref(x)[:, 0], -np.sin(np.pi * x[:, 0]), atol=1e-8)


def test_interval_boundary_gets_both_ends():
    """A random draw of two boundary points of an interval can pick the same end twice."""
    for n in (2, 3, 10):
        x = geometry.boundary(geometry.Interval(0, 1), n)
        assert x.shape == (n, 1) and set(x[:, 0]) == {0.0, 1.0}
    assert set(geometry.boundary(geometry.Interval(0, 1), 4, on=geometry.at(0, 1.0))[:, 0]) == {1.0}


@pytest.mark.parametrize("name, form", [(n, f) for n in NAMES for f in registry.get_problem(n).forms
                                        if f != "operator"])  # operator runs: tests/test_operator.py
def test_every_form_of_every_problem_runs_from_the_cli(name, form, tmp_path, capsys):
    import json

    from kinn.cli import main

    code = main(["solve", name, "--form", form, "--steps", "3", "--lbfgs", "0", "--out", str(tmp_path), "--json",
                 "--set", "points.n_interior=64", "--set", "points.n_boundary=16", "--set", "points.n_initial=16",
                 "--set", "points.n_eval=64", "--set", "model.widths=[8]"])
    assert code == 0
    s = json.loads(capsys.readouterr().out)
    assert s["form"] == form and all(np.isfinite(v) for e in s["errors"].values() for v in e.values())


@pytest.mark.parametrize("name", [n for n in NAMES if registry.get_problem(n).exact is not None
                                  and "energy" in registry.get_problem(n).forms])
def test_exact_solution_minimises_the_energy(name, function_model):
    """Π(u*) < Π(u* ± ε φ) for a perturbation φ that vanishes where u is prescribed (the hard transform)."""
    from kinn.run.pipeline import resolve_config

    p = registry.get_problem(name)
    form = p.form("energy")
    cfg = resolve_config(p, "mlp", "energy", points={"n_interior": 20000})
    with geometry.numpy_seed(0):
        pts = {k: torch.as_tensor(v) for k, v in form.sample(p, cfg.points).items()}
    transform = form.transform(p)
    exact_raw = lambda x: torch.zeros_like(p.exact(x))  # noqa: E731  (u = g + d·0 = g on the boundary)

    def energy(eps):
        def u(x):
            bump = torch.sin(3 * x[:, :1] + 1) * torch.cos(2 * x[:, 1:2] - 0.5)
            base = transform(x, exact_raw(x) + eps * bump)  # g + d (eps bump): the boundary values are kept
            return p.exact(x) + (base - transform(x, exact_raw(x)))
        return float(sum(form.loss(function_model(u), p, pts).values()).detach())

    e0 = energy(0.0)
    assert energy(2.0) > e0 and energy(-2.0) > e0, (energy(-2.0), e0, energy(2.0))
