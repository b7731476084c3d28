"""Extending kinn from outside the core, as the README's "Adding a problem / a form / a family" sections say:
each toy below lives in this test file and enters through one registry line (monkeypatched here); and
every registered family builds, on every problem and form it claims, a model whose every parameter gets a
finite gradient."""
import dataclasses
import math

import numpy as np
import pytest
import torch

import kinn
from kinn import Dirichlet, Problem, Rectangle, StrongForm, ops, registry
from kinn.cli import main
from kinn.errors import KinnError
from kinn.forms.base import Env
from kinn.forms.points import PointForm, columns, field_at
from kinn.models.family import Family
from kinn.pde import geometry
from kinn.run.config import PointsConfig
from kinn.run.distributed import Group
from kinn.run.pipeline import resolve_config

SMALL = dict(n_interior=128, n_boundary=64, n_eval=256, progress=False, write=False)


# ---- a problem ------------------------------------------------------------------------------------------
def exact(x):  # u = sin(πx) sin(πy): −Δu = 2π² u, zero on the boundary
    return torch.sin(math.pi * x[:, :1]) * torch.sin(math.pi * x[:, 1:])


toy_problem = Problem(
    name="toy_poisson",
    domain=Rectangle([0, 0], [1, 1]),
    strong=StrongForm(lambda u, x: -ops.laplacian(u) - 2 * math.pi**2 * exact(x), bcs=[Dirichlet(0.0)]),
    exact=exact,
    defaults={"train": {"steps": 150, "lr": 1e-2, "weights": {"bc": 10}}, "model": {"mlp": {"widths": [24, 24]}}},
)


def test_a_problem_from_a_file_of_its_own_solves_and_registers_by_one_line(monkeypatch, tmp_path, capsys):
    before = kinn.solve(toy_problem, "mlp", steps=1, **SMALL).errors["rel_l2/u"]
    after = kinn.solve(toy_problem, "mlp", **SMALL).errors["rel_l2/u"]
    assert after < 0.3 * before, (before, after)
    from kinn.problems import PROBLEMS

    monkeypatch.setitem(PROBLEMS, "toy_poisson", "test_extending:toy_problem")  # the one registry line
    assert main(["solve", "toy_poisson", "--steps", "2", "--json", "--set", "points.n_eval=64",
                 "--out", str(tmp_path)]) == 0
    assert '"problem": "toy_poisson"' in capsys.readouterr().out


# ---- a form ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class RegressionForm(PointForm):
    """A toy form: fit the exact solution's values at interior points (a supervised regression), with the
    strong form's residual reported."""

    kind = "regression"

    def sample(self, problem, points: PointsConfig) -> dict[str, np.ndarray]:
        x = geometry.interior(problem.domain, points.n_interior)
        return {"pde": x, "pde/values": problem.reference_values(x)}

    def loss(self, model, problem, pts, weights=None) -> dict[str, torch.Tensor]:
        return {"data": (model(pts["pde"]) - pts["pde/values"]).square().mean()}

    def residuals(self, model, problem, x, create_graph=True):
        return columns(problem.form("strong").residual(field_at(model, problem, x, create_graph), x))

    def weights(self) -> dict[str, float]:
        return {}


def test_a_form_from_a_file_of_its_own_trains_through_the_one_pipeline(monkeypatch, tmp_path):
    problem = dataclasses.replace(toy_problem, forms=[toy_problem.form("strong"), RegressionForm()])
    r = kinn.solve(problem, "mlp", "regression", steps=200, lr=1e-2, **{**SMALL, "write": True}, out=str(tmp_path))
    assert r.history.rows[-1]["data"] < 1e-2 and r.errors["rel_l2/u"] < 0.1 and r.residual_rms > 0
    assert (r.run_dir / "result.json").exists() and (r.run_dir / "figures" / "fields.png").exists()
    assert r.predict([[0.5, 0.5]])["u"].shape == (1,)
    from kinn.problems import PROBLEMS

    monkeypatch.setitem(registry.FORMS, "regression", "test_extending:RegressionForm")  # the one registry line
    monkeypatch.setitem(PROBLEMS, "toy_regression", lambda: problem)
    assert main(["solve", "toy_regression", "--form", "regression", "--steps", "3", "--out", str(tmp_path),
                 "--set", "points.n_eval=64", "--json"]) == 0


# ---- a family -------------------------------------------------------------------------------------------
@dataclasses.dataclass
class FeaturesConfig:
    features: int = 64
    scale: float = 2.0


class RandomFeatures(torch.nn.Module):
    """A linear layer on fixed random Fourier features: y = W [sin(Bx), cos(Bx)]."""

    def __init__(self, in_dim: int, out_dim: int, cfg: FeaturesConfig):
        super().__init__()
        self.register_buffer("B", cfg.scale * torch.randn(in_dim, cfg.features))
        self.out = torch.nn.Linear(2 * cfg.features, out_dim)

    def forward(self, x):
        z = x @ self.B
        return self.out(torch.cat([torch.sin(z), torch.cos(z)], 1))


class FeaturesFamily(Family):
    name = "features"
    Config = FeaturesConfig

    def build(self, in_dim, out_dim, config):
        return RandomFeatures(in_dim, out_dim, config)


def test_a_family_from_a_file_of_its_own_trains_every_point_form(monkeypatch, tmp_path):
    before = kinn.solve(toy_problem, FeaturesFamily(), steps=1, **SMALL).errors["rel_l2/u"]
    after = kinn.solve(toy_problem, FeaturesFamily(), steps=150, lr=1e-2, **SMALL).errors["rel_l2/u"]
    assert after < 0.5 * before, (before, after)
    from kinn.solvers import FAMILIES

    monkeypatch.setitem(FAMILIES, "features", "test_extending:FeaturesFamily")  # the one registry line
    assert main(["solve", "poisson2d", "--family", "features", "--steps", "2", "--set", "model.features=8",
                 "--set", "points.n_eval=64", "--out", str(tmp_path), "--json"]) == 0
    with pytest.raises(KinnError, match="unknown option.*for family 'features'"):
        kinn.solve(toy_problem, "features", model={"width": 3}, **SMALL)


# ---- every registered family on every problem and form it claims ----------------------------------------
def _batch(form, problem, model, cfg):
    """One small training batch of the form, without a dataset for operator forms (random functions)."""
    if form.kind == "operator":
        n, c_in = 9, len(form.inputs)
        shape = (2, c_in) + (n,) * problem.n_space
        return {"inputs": torch.rand(shape, dtype=torch.float64) + 1,
                "outputs": torch.rand((2, len(problem.fields)) + (n,) * problem.n_space, dtype=torch.float64)}
    env = Env(torch.device("cpu"), torch.float64, Group(), 0)
    return form.data(problem, model, cfg, env).batch


CASES = [(f, p, k) for f in registry.family_names() for p in registry.problem_names()
         for k in registry.get_problem(p).forms]


@pytest.mark.parametrize("family, name, kind", CASES)
def test_every_family_builds_on_every_problem_and_form_it_claims_with_finite_gradients(family, name, kind):
    torch.manual_seed(0)
    problem, fam = registry.get_problem(name), registry.get_family(family)
    small = {"mlp": {"widths": [8, 8]}, "kan": {"hidden": [4]}, "fno": {"modes": 3, "width": 4, "depth": 1,
                                                                       "projection": 8}}[family]
    points = {"n_interior": 64 if family != "fno" else 81, "n_boundary": 32, "n_initial": 16}
    cfg = resolve_config(problem, family, kind, model=small, points=points)
    form = problem.form(kind)
    try:
        model = form.build(problem, fam, cfg).double()
    except KinnError as e:  # a family that does not take this problem or form says why, in one line
        assert "\n" not in str(e) and (family in str(e) or problem.name in str(e)), str(e)
        return
    batch = _batch(form, problem, model, cfg)
    from kinn.run.pipeline import term_weights

    terms = form.loss(model, problem, batch, term_weights(form, cfg.train))
    sum(terms.values()).backward()
    for pname, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and torch.isfinite(p.grad).all(), (pname, family, name, kind)
