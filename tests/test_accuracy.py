"""Accuracy regressions on the catalogue, with the problems' recommended settings (minutes each).

Excluded from the default suite; run with `python -m pytest -m slow`. Bounds are the issues' targets;
the values these runs reach are in the README.
"""
import pytest

import kinn

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("problem, solver, bound", [
    ("poisson2d", "mlp", 1e-3),        # 1.4e-4 in 40-50 s
    ("burgers1d", "mlp", 2e-2),        # ~7.9e-4 in ~3.5 min (Adam then L-BFGS)
    ("heat_multiscale", "kan", 1e-2),  # ~1.8e-3 in 3,000 steps
])
def test_recommended_settings_reach_the_target(problem, solver, bound, tmp_path):
    r = kinn.solve(problem, solver, out=str(tmp_path), progress=False)
    assert r.errors["rel_l2/u"] <= bound, r.summary()


def test_the_flower_kan_in_the_inverse_form_beats_kinn(tmp_path):
    """KINN's KAN budget (10,000 loss evaluations) and size (975 parameters): ≤ 2.9e-4, the MLP's figure
    where KINN's KAN lost (5.42e-3); about 6.6e-5 over seeds 0-2 (scripts/binn_table.py)."""
    r = kinn.solve("flower", "kan", "inverse", seed=1, n_eval=2000, out=str(tmp_path), progress=False)
    assert r.n_params == 975 and r.history.adam_steps + r.history.lbfgs_evals <= 10_000
    assert r.errors["rel_l2/u"] <= 2.9e-4, r.summary()


def test_the_plate_kan_in_the_inverse_form_beats_kinn_on_its_own_measures():
    """KINN's size (1,050 parameters) within its budget (8,000 of its 20,000 loss evaluations): the lines
    on x = 0 and y = 0 and KINN's 85,418 interior points below KINN's KAN (BINN.md §4); about 2.5 min."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("binn_table", Path(__file__).parents[1] / "scripts" / "binn_table.py")
    table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(table)
    r = kinn.solve("plate_hole", "kan", "inverse", seed=1, n_eval=500, write=False, progress=False)
    assert r.n_params == 1050 and r.history.adam_steps + r.history.lbfgs_evals <= 20_000
    got = table.kinn_measures(r.problem, r.form, *r.form.boundary_data(r.model, r.problem, r.env))
    for name, (_, kan) in table.KINN["plate_hole"].items():
        if name in got:
            assert got[name] <= kan, (name, got[name], kan)


@pytest.mark.parametrize("form, seed, bounds", [
    # 10,000 Adam steps + 2,000 L-BFGS iterations, quintic splines, float64: |U| 1.4e-3, von Mises 1.8e-3 at
    # seed 0 (scripts/kinn_table.py --only plate_hole:strong); about 6 minutes
    ("strong", 0, {"U": 6.3e-3, "mises": 4.8e-3}),
    # 5,000 Adam steps at lr 1e-2 (cosine), float64, jittered centroid rule: |U| 3.4e-4, von Mises 4.0e-3 at
    # seed 1; about 2 minutes
    ("energy", 1, {"U": 6e-4, "mises": 5.2e-3}),
])
def test_the_plate_kan_reaches_kinns_figures_at_its_recommended_settings(form, seed, bounds, tmp_path):
    """KINN's networks for the plate (KAN [8, 8, 8], G = 10 strong; [5, 5, 5], G = 15 energy) at plate_hole's
    recommended settings, scored on held-out FEM nodes, below KINN's KAN (KINN.md, example 2)."""
    r = kinn.solve("plate_hole", "kan", form, seed=seed, out=str(tmp_path), progress=False)
    for name, bound in bounds.items():
        assert r.errors[f"rel_l2/{name}"] <= bound, r.summary()
