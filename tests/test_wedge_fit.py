"""The wedge (KINN example 9, a fourth-order residual) and the fit form (KINN example 10)."""
from math import pi

import numpy as np
import pytest
import torch

import kinn
from kinn import registry
from kinn.errors import KinnError
from kinn.forms.fit import FitForm
from kinn.models.field import FunctionModel

pytestmark = pytest.mark.usefixtures("float64")  # conftest.py


def test_wedge_stresses_are_the_half_plane_solution():
    """σ_r, σ_θ, σ_rθ from f by the problem's own derived functions against Barber's closed forms."""
    p = registry.get_problem("wedge")
    theta = np.linspace(0, pi, 101)[:, None]
    q = 5.0
    closed = {"sigma_r": -q / (2 * pi) * (2 * pi - 2 * theta - np.sin(2 * theta)),
              "sigma_theta": -q / (2 * pi) * (2 * pi - 2 * theta + np.sin(2 * theta)),
              "sigma_rtheta": -q / (2 * pi) * (1 - np.cos(2 * theta))}
    for name, values in closed.items():
        np.testing.assert_allclose(p.derived_reference(name, theta), values[:, 0], rtol=0, atol=1e-12)
    # the faces: σ_θ = −q, σ_rθ = 0 at θ = 0; σ_θ = σ_rθ = 0 and (the pinning condition) σ_r = 0 at θ = π
    assert closed["sigma_theta"][0, 0] == pytest.approx(-q) and abs(closed["sigma_r"][-1, 0]) < 1e-12


def test_the_free_face_condition_pins_the_null_space_of_the_half_plane():
    """f + A(cos 2θ − 1) meets the ODE and the four face conditions for every A; only σ_r(π) = 0 tells it
    from the solution."""
    p = registry.get_problem("wedge")
    form = p.form("strong")
    other = FunctionModel(lambda x: p.exact(x) + 0.3 * (torch.cos(2 * x) - 1))
    x = torch.linspace(0.1, 3.0, 50, dtype=torch.float64)[:, None]
    assert form.residuals(other, p, x).abs().max() < 1e-12
    end = torch.tensor([[pi]], dtype=torch.float64)
    pts = {"pde": x, "bc:free_face": end, "bc:free_face/normal": torch.ones(1, 1, dtype=torch.float64)}
    assert form.loss(other, p, pts)["bc:free_face"] > 1.0
    assert form.loss(FunctionModel(p.exact), p, pts)["bc:free_face"] < 1e-24


def test_wedge_refuses_a_spline_only_kan_up_front_and_trains_the_silu_one():
    with pytest.raises(KinnError, match="order 3: their derivatives beyond order 3 vanish.*order 4 .base = 'none'"):
        kinn.solve("wedge", "kan", model={"base": "none", "order": 3}, steps=1, write=False, progress=False)
    for model in ({"order": 3}, {}):  # cubic splines with the SiLU branch; the recommended order 5
        r = kinn.solve("wedge", "kan", model=model, steps=2, n_interior=50, n_eval=20, write=False, progress=False)
        assert r.history.adam_steps == 2 and np.isfinite(r.errors["rel_l2/sigma_r"])


def test_fit_form_is_registered_and_scores_the_target_exactly():
    assert registry.get_form("fit") is FitForm
    p = registry.get_problem("multiscale_fit")
    x = torch.rand(64, 1, dtype=torch.float64)
    assert p.form("fit").loss(FunctionModel(p.exact), p, {"pde": x})["data"] == 0
    assert p.form("fit").loss(FunctionModel(lambda x: 0 * x), p, {"pde": x})["data"] > 0.1
    with pytest.raises(KinnError, match="needs a target function or an exact solution"):
        FitForm().function(kinn.Problem("no_exact", p.domain, forms=[FitForm()]))


@pytest.mark.parametrize("family", ["mlp", "kan"])
def test_a_short_fit_lowers_the_held_out_error(family):
    runs = [kinn.solve("multiscale_fit", family, steps=steps, n_eval=200, write=False, progress=False)
            for steps in (1, 200)]
    assert runs[1].errors["rel_l2/u"] < 0.7 * runs[0].errors["rel_l2/u"]
    assert runs[1].residual_rms is None  # no PDE
