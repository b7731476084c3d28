"""The inverse form: unknown scalars fitted with the field to observations (kinn.forms.inverse_problem.InverseProblemForm)."""
import math

import h5py
import numpy as np
import pytest
import torch

import kinn
from kinn import (BoundaryResidual, Dirichlet, InverseProblemForm, Interval, KinnError, Observations, Problem, Unknown,
                  UnknownField, ops)


OBSERVED = Observations(n=64)


def problem(observations=OBSERVED, **unknown):
    """−k u'' = 2π² sin πx on [0, 1], u(0) = u(1) = 0: u = (2/k) sin πx, observed for k = 2."""
    spec = {"initial": 0.5, "positive": True, "true": 2.0, **unknown}
    return Problem(
        name="k_inverse", domain=Interval(0, 1), exact=lambda x: torch.sin(math.pi * x),
        strong=InverseProblemForm(lambda u, x, p: -p["k"] * ops.laplacian(u) - 2 * math.pi**2 * torch.sin(math.pi * x),
                            unknowns=[Unknown("k", **spec)], observations=observations, bcs=[Dirichlet(0.0)]))


FAST = dict(steps=300, lr=1e-2, lbfgs=300, dtype="float64", progress=False, n_interior=64, n_boundary=2, n_eval=200,
            eval_every=100, model={"widths": [16, 16]})


def test_the_unknown_is_recovered_and_reported(tmp_path):
    r = kinn.solve(problem(), "mlp", out=str(tmp_path), name="run", **FAST)  # Adam, then L-BFGS
    assert r.errors["rel_error/k"] < 1e-3 and abs(r.errors["value/k"] - 2) < 2e-3  # from 0.5 (2e-4 measured)
    history = [row["value/k"] for row in r.history.rows if "value/k" in row]
    assert history[0] == pytest.approx(0.5, rel=0.05) and len(history) >= 4  # the estimate's history
    assert r.errors["rel_l2/u"] < 1e-3
    assert r.summary()["errors"]["k"]["value"] == r.errors["value/k"]
    again = kinn.load(tmp_path / "run", problem=problem())
    assert float(again.model.unknown_values()["k"].detach()) == pytest.approx(r.errors["value/k"], rel=1e-12)


def test_a_positive_unknown_stays_positive_and_noise_is_applied():
    p = problem(Observations(n=64, noise=0.05))
    x, y = p.form("strong").observations.load(p)
    assert 0.01 < np.abs(y[:, 0] - np.sin(np.pi * x[:, 0])).std() < 0.05
    with pytest.raises(KinnError, match="unknown 'k' is positive, so its initial value must be > 0"):
        Unknown("k", initial=-1.0, positive=True)


def test_observation_files_are_checked(tmp_path):
    def write(name, points, values, layout="points"):
        with h5py.File(tmp_path / name, "w") as f:
            f.attrs["layout"] = layout
            f.create_dataset("points", data=points)
            f.create_dataset("fields/u", data=values)
        return str(tmp_path / name)

    good = write("good.h5", np.linspace(0.1, 0.9, 9)[:, None], np.sin(np.pi * np.linspace(0.1, 0.9, 9)))
    x, y = problem(Observations(path=good)).form("strong").observations.load(problem(Observations(path=good)))
    assert x.shape == (9, 1) and y.shape == (9, 1)
    outside = write("outside.h5", np.array([[0.5], [1.5]]), np.zeros(2))
    with pytest.raises(KinnError, match=r"1 of 2 points lie outside the domain of problem 'k_inverse', e.g. \[1.5\]"):
        kinn.solve(problem(Observations(path=outside)), "mlp", steps=1, write=False, progress=False)
    with pytest.raises(KinnError, match="observed field\\(s\\) T are not fields of problem 'k_inverse'"):
        kinn.solve(problem(Observations(fields=("T",))), "mlp", steps=1, write=False, progress=False)
    with pytest.raises(KinnError, match="missing dataset 'points'"):
        write("bad.h5", np.zeros((2, 1)), np.zeros(2))
        with h5py.File(tmp_path / "bad.h5", "a") as f:
            del f["points"]
        kinn.solve(problem(Observations(path=str(tmp_path / "bad.h5"))), "mlp", steps=1, write=False, progress=False)


def test_plate_hole_inverse_moves_young_modulus_towards_the_truth():
    r = kinn.solve("plate_hole_inverse", "mlp", steps=150, eval_every=50, write=False, progress=False,
                   n_interior=500, n_boundary=100, n_eval=500)
    values = [row["value/E"] for row in r.history.rows if "value/E" in row]
    assert values[0] > 1150 and values[-1] < values[0] - 50  # from 1,200 towards 1,000


def field_problem(**kwargs):
    """−(K u')' = f on [0, 1] with u = sin πx and the unknown field K = 1 + x, known at both ends."""
    def f(x):
        return (1 + x) * math.pi**2 * torch.sin(math.pi * x) - math.pi * torch.cos(math.pi * x)

    return Problem(
        name="K_inverse", domain=Interval(0, 1), exact=lambda x: torch.sin(math.pi * x),
        strong=InverseProblemForm(lambda u, x, p: -ops.div(p["K"](x) * ops.grad(u), u) - f(x),
                            unknowns=[UnknownField("K", true=lambda x: 1 + x, **kwargs)],
                            observations=Observations(n=64),
                            bcs=[Dirichlet(0.0), BoundaryResidual(fn=lambda u, x, n, p: p["K"](x) - 1 - x)]))


def test_the_residual_differentiates_an_unknown_field_of_the_points(function_model):
    """∇·(K∇u) takes ∇K: the residual gets the points its derivatives are taken against."""
    p = field_problem()
    model = function_model(lambda x: torch.sin(math.pi * x))
    model.unknown_values = lambda: {"K": lambda x: 1 + x}  # the true field: the residual must vanish
    x = torch.linspace(0.05, 0.95, 19, dtype=torch.float64)[:, None]
    assert p.form("strong").residuals(model, p, x).abs().max() < 1e-12
    model.unknown_values = lambda: {"K": lambda x: 1 + 0 * x}  # a wrong K: −u'' − f = π cos πx − xπ² sin πx
    r = p.form("strong").residuals(model, p, x)[:, 0]
    t = x[:, 0]
    torch.testing.assert_close(r, math.pi * torch.cos(math.pi * t) - t * math.pi**2 * torch.sin(math.pi * t))


def test_an_unknown_field_is_recovered_and_its_error_reported(tmp_path):
    r = kinn.solve(field_problem(), "mlp", out=str(tmp_path), name="run", **FAST)
    history = [row["rel_error/K"] for row in r.history.rows if "rel_error/K" in row]
    assert history[0] > 0.1 and r.errors["rel_error/K"] < 1e-2, history  # from K = 1 (exp(0)) everywhere
    again = kinn.load(tmp_path / "run", problem=field_problem())
    x = torch.linspace(0, 1, 5, dtype=torch.float64)[:, None]
    k = again.model.unknown_values()["K"](x)
    torch.testing.assert_close(k, r.model.unknown_values()["K"](x))
    with pytest.raises(KinnError, match="unknown field 'K' is positive, so its initial value must be > 0"):
        UnknownField("K", initial=0.0)


def test_observation_nodes_are_not_evaluation_points():
    from kinn import registry
    from kinn.forms.points import eval_set
    from kinn.run.pipeline import resolve_config

    p = registry.get_problem("conductivity_inverse")
    cfg = resolve_config(p, "mlp", "strong", points={"n_eval": 70000})  # more than there are nodes
    x, y = eval_set(p, p.form(cfg.form), cfg)
    observed = {tuple(q) for q in p.form("strong").observations.load(p)[0]}
    assert len(x) == 65536 - 4096 and not any(tuple(q) in observed for q in x)


def test_kan_grid_schedules_reach_an_unknown_fields_network():
    r = kinn.solve(field_problem(), "kan", write=False, **dict(FAST, steps=4, lbfgs=0, model={
        "hidden": [4], "grid": 5, "grid_schedule": [[2, 10]]}))
    assert all(layer.grid == 10 for layer in r.model.net.layers)
    assert all(layer.grid == 10 for layer in r.model.unknown_fields["K"].layers)
