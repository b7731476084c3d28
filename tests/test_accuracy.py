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
