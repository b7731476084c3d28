"""Adaptive training strategies (issue 19): residual-based sampling (rar, rar-d, rad; kinn.forms.adaptive)
and adaptive loss weights (rba, gradnorm, causal; kinn.run.weighting) do what their papers say on small
cases where the answer is known, resume bit for bit, and are refused in one line where they cannot apply."""
import math

import numpy as np
import pytest
import torch

import kinn
from kinn import Dirichlet, GeometryXTime, Initial, Interval, Problem, StrongForm, TimeDomain
from kinn.errors import KinnError
from kinn.forms.adaptive import AdaptiveSampling, density
from kinn.forms.base import Env, FixedBatch
from kinn.forms.strong import pde_term
from kinn.pde import geometry, ops
from kinn.run.config import PointsConfig, RunConfig, TrainConfig
from kinn.run.distributed import Group
from kinn.run.trainer import Run, fit
from kinn.run.weighting import Adaptive

ENV = Env(torch.device("cpu"), torch.float64, Group(), 0)
LINE = Problem(name="line", domain=Interval(0, 1), strong=StrongForm(lambda u, x: ops.laplacian(u), bcs=[Dirichlet(0.0)]),
               exact=lambda x: 0 * x)
DECAY = Problem(name="decay", domain=GeometryXTime(Interval(0, 1), TimeDomain(0, 1)),
                strong=StrongForm(lambda u, x: ops.d(u, "t") - 0.1 * ops.d(u, "x", "x"),
                                  bcs=[Dirichlet(0.0), Initial(lambda x: torch.sin(math.pi * x[:, :1]))]),
                exact=lambda x: torch.sin(math.pi * x[:, :1]) * torch.exp(-0.1 * math.pi**2 * x[:, 1:]))


class Known:
    """A stand-in form whose residual is a known function of the points (the model is not asked)."""

    collocation, quadrature, physics_terms = True, False, ("pde",)

    def __init__(self, fn):
        self.fn = fn

    def residuals(self, model, problem, x, create_graph=True):
        return self.fn(x)


def bump(x):  # |r| is 100 on [0.4, 0.5] and 1 elsewhere
    return 1 + 99 * ((x[:, :1] >= 0.4) & (x[:, :1] < 0.5)).to(x.dtype)


def sampling(strategy, fn=bump, **points):
    cfg = RunConfig(problem="line", points=PointsConfig(adaptive=strategy, **points))
    return AdaptiveSampling(Known(fn), LINE, None, cfg, ENV)


def test_rar_adds_the_largest_residuals_of_its_candidates():
    def smooth(x):  # a residual with one peak, at 0.7
        return torch.exp(-((x - 0.7) / 0.05) ** 2)

    s = sampling("rar", smooth, adapt_points=10, adapt_pool=500)
    s.adapt()
    s.adapt()
    for k in range(2):  # each round's candidates come from their own seed stream
        with geometry.numpy_seed(geometry.seed_stream(0, "adapt", k)):
            pool = geometry.interior(LINE.domain, 500)
        r = smooth(torch.as_tensor(pool))[:, 0].numpy()
        added = s.points[10 * k: 10 * (k + 1)]
        assert sorted(added[:, 0]) == sorted(pool[np.argsort(-r)[:10], 0])
    base = np.zeros((5, 1))
    assert s.interior(base).shape == (25, 1) and s.rounds == 2


def test_the_sampling_density_is_wu_et_als():
    r = np.array([1.0, 2.0, 3.0, 6.0])
    p = density(r, 2.0, 0.5)
    expected = r**2 / (r**2).mean() + 0.5
    assert np.allclose(p, expected / expected.sum())


@pytest.mark.parametrize("strategy, k, c, share", [
    ("rar-d", 1.0, 1.0, (100 / 10.9 + 1) * 0.1 / ((100 / 10.9 + 1) * 0.1 + (1 / 10.9 + 1) * 0.9)),  # ≈ 0.51
    ("rar-d", 2.0, 0.0, 1e4 * 0.1 / (1e4 * 0.1 + 0.9)),                                           # ≈ 0.999
    ("rad", 1.0, 0.0, 100 * 0.1 / (100 * 0.1 + 0.9))])                                           # ≈ 0.92
def test_rar_d_and_rad_draw_where_the_residual_is_large(strategy, k, c, share):
    # a large pool and a small draw: drawing without replacement hardly depletes the band
    s = sampling(strategy, adapt_points=400, adapt_pool=40000, adapt_k=k, adapt_c=c, n_interior=400)
    s.adapt()
    x = s.interior(np.zeros((7, 1)))
    assert len(x) == (400 if strategy == "rad" else 407)
    band = ((s.points >= 0.4) & (s.points < 0.5)).mean()  # 10% of the domain
    assert abs(band - share) < 0.06, (band, share)


def weighting(fn, problem=LINE, x=None, **train):
    cfg = RunConfig(problem=problem.name, train=TrainConfig(**train))
    data = FixedBatch({"pde": x if x is not None else torch.linspace(0, 1, 101, dtype=torch.float64)[:, None]})
    return Adaptive(Known(fn), problem, torch.nn.Linear(1, 1).double(), cfg, data, {}), data


def test_rba_weights_grow_where_the_residual_stays_large():
    w, data = weighting(bump, weighting="rba", rba_gamma=0.99, rba_eta=0.05)
    inside = ((data.batch["pde"] >= 0.4) & (data.batch["pde"] < 0.5))[:, 0]
    for step in range(300):
        w.before_step(step)
    # λ_n = γ^n + η s (1 − γ^n)/(1 − γ), s = |r|/max|r|: toward 5 where the residual is largest, 0.05 elsewhere
    n, g = 300, 0.99
    for s, where in ((1.0, inside), (0.01, ~inside)):
        assert torch.allclose(w.lam[where], torch.full_like(w.lam[where], g**n + 0.05 * s * (1 - g**n) / (1 - g)))
    assert w.lam[inside].min() > 4.7 and w.lam[~inside].max() < 0.1
    assert torch.equal(w.batch(data.batch)["pde/weight"], w.lam.square())  # the multiplier is on r: (λ r)²


def test_gradnorm_moves_toward_the_balance_of_the_gradients():
    theta = torch.nn.Parameter(torch.ones(6, dtype=torch.float64))
    w, _ = weighting(bump, weighting="gradnorm", gradnorm_alpha=0.1, gradnorm_every=1)
    expected = 1.0
    for step in range(60):
        terms = {"pde": 100 * theta.square().sum() / 2, "bc:left": theta.square().sum() / 2}  # ∇: 100θ and θ
        w.balance(step, terms, [theta])
        # λ̂ = max|∇L_pde| / mean|∇(λ L_bc)| = 100 / λ: λ <- 0.9 λ + 10 / λ, from λ_0 = 1 toward √100 = 10
        expected = 0.9 * expected + 10 / expected
        assert w.weights({"bc": 1.0})["bc:left"] == pytest.approx(expected)
    assert expected == pytest.approx(10, rel=1e-3)  # settled at the square root of the gradients' ratio
    assert "pde" not in w.weights({}) and w.report() == {"weight/bc:left": w.terms["bc:left"]}


def test_causal_weights_are_the_papers_and_open_in_time_order():
    # one parameter per collocation point, r_i = θ_i, 10 points per slice: the weights decide which times
    # gradient descent resolves first (plain descent: Adam would rescale each θ_i by itself)
    t = (torch.arange(80, dtype=torch.float64) + 0.5) / 80
    x = torch.stack([torch.full_like(t, 0.5), t], 1)
    theta = torch.nn.Parameter(torch.ones(80, dtype=torch.float64))
    w, data = weighting(lambda x: theta.detach()[:, None], DECAY, x, causal=2.0, causal_slices=8)
    w.before_step(0)  # every slice's mean squared residual is 1: w_j = exp(−2 j)
    assert torch.allclose(w.slices, torch.exp(-2.0 * torch.arange(8, dtype=torch.float64)))
    assert float(pde_term(theta.detach()[:, None], w.batch(data.batch)["pde/weight"])) == pytest.approx(float(w.slices.mean()))
    opt, slices = torch.optim.SGD([theta], lr=4.0), []
    for step in range(600):
        w.before_step(step)
        slices.append(w.slices.clone())
        opt.zero_grad()
        pde_term(theta[:, None], w.batch(data.batch)["pde/weight"]).backward()
        opt.step()
    opened = [next(k for k, s in enumerate(slices) if s[j] > 0.99) for j in range(8)]
    assert opened[0] == 0 and all(a < b for a, b in zip(opened[1:], opened[2:])), opened
    assert w.report()["causal/min"] > 0.99



@pytest.mark.parametrize("how", ["gradnorm", "rba"])
def test_a_rollback_restores_the_adaptive_weights_of_the_state_it_returns_to(how):
    """A non-finite loss at step 13 also spoils the weights adapted from it (gradnorm's ratio of NaN
    gradients, RBA's multipliers of NaN residuals): the rollback must take them back with the parameters,
    or every later loss is NaN and the run fails after five rollbacks."""
    torch.manual_seed(0)
    model = torch.nn.Linear(1, 1).double()
    x = torch.linspace(0, 1, 101, dtype=torch.float64)[:, None]
    step = [0]

    def residual(points):  # NaN during step 13 (gradnorm's balance) or 14 (RBA's update, before the hooks)
        r = model(points) - torch.sin(3 * points)
        return r * float("nan") if step[0] == 13 else r

    def count(k, points):  # a hook: called before every Adam step, after RBA's update
        step[0] = k
        return False

    cfg = RunConfig(problem="line", train=TrainConfig(steps=30, lr=1e-2, log_every=1, eval_every=10, progress=False,
                                                      on_nonfinite="rollback", weighting=how, gradnorm_every=1))
    data = FixedBatch({"pde": x})
    adapted = Adaptive(Known(residual), LINE, model, cfg, data, {})

    def terms():
        batch = adapted.batch(data.batch)
        r = model(x) - torch.sin(3 * x) if how == "rba" else residual(x)
        return {"pde": pde_term(r, batch.get("pde/weight")), "bc:left": model(x[:1]).square().sum()}

    h = fit(Run(model, terms, lambda: {}, data, cfg, hooks={"count": count}, form=Known(residual), weighting=adapted))
    assert h.rollbacks == 1 and h.adam_steps == 30
    adapted_rows = [{k: v for k, v in r.items() if k.startswith(("weight/", "rba/"))} for r in h.rows]
    assert len(adapted_rows) == 29 and all(row and all(map(math.isfinite, row.values())) for row in adapted_rows)


RESUMED = {
    "rar-d, causal, gradnorm": (DECAY, dict(points={"adaptive": "rar-d", "adapt_every": 10, "adapt_points": 8,
                                                    "adapt_pool": 300, "n_initial": 40},
                                            train={"causal": 1.0, "causal_slices": 4, "weighting": "gradnorm",
                                                   "gradnorm_every": 3})),
    "rar, rba": ("poisson1d_multiscale", dict(points={"adaptive": "rar", "adapt_every": 10, "adapt_points": 8, "adapt_pool": 300},
                                   train={"weighting": "rba"})),
}


@pytest.mark.parametrize("case", RESUMED)
def test_a_resumed_adaptive_run_is_the_uninterrupted_run(tmp_path, monkeypatch, case):
    problem, kw = RESUMED[case]
    kw = dict(kw, steps=30, lbfgs=4, eval_every=10, log_every=5, n_interior=60, n_boundary=20, n_eval=100,
              dtype="float64", progress=False, model={"widths": [8, 8]}, out=str(tmp_path))
    kw["train"] = dict(kw["train"], weights={})
    full = kinn.solve(problem, name="full", **kw)
    real, calls = StrongForm.loss, [0]

    def stopped_at_step_23(self, *args):  # Ctrl-C during step 23, between two adaptations
        calls[0] += 1
        if calls[0] == 25:  # the first call is the set-up's check of the loss, then one a step
            raise KeyboardInterrupt
        return real(self, *args)

    monkeypatch.setattr(StrongForm, "loss", stopped_at_step_23)
    part = kinn.solve(problem, name="part", **dict(kw, lbfgs=0))
    assert part.history.adam_steps == 23 and part.history.stop_reason.startswith("interrupted")
    monkeypatch.undo()
    # the Adam stage to its end, then the L-BFGS stage with the weights and points frozen, in a second resume
    kinn.solve(problem if not isinstance(problem, str) else None, resume=tmp_path / "part", progress=False)
    resumed = kinn.solve(problem if not isinstance(problem, str) else None, resume=tmp_path / "part", lbfgs=4,
                         progress=False)

    def trace(rows):
        return [{k: v for k, v in r.items() if k != "time"} for r in rows]

    assert trace(resumed.history.rows) == trace(full.history.rows)
    assert resumed.errors == full.errors
    rows = full.history.rows
    assert rows[-1]["points/pde"] == 60 + 8 * 2  # two adaptations, at steps 10 and 20
    frozen = [{k: v for k, v in r.items() if k.startswith(("weight/", "rba/", "causal/"))} for r in rows if r["phase"] == "lbfgs"]
    assert frozen and all(f == frozen[0] for f in frozen)  # L-BFGS: the weights of the last Adam step
    history = (tmp_path / "full" / "history.json").read_text()
    assert "points/pde" in history and (tmp_path / "full" / "figures" / "adaptive.png").is_file()


@pytest.mark.parametrize("problem, form, settings, message", [
    ("poisson2d", None, {"points": {"adaptive": "rar-g"}}, "points.adaptive must be one of none, rar, rar-d, rad; got 'rar-g'"),
    ("poisson2d", None, {"weighting": "ntk"}, "train.weighting must be one of none, rba, gradnorm; got 'ntk'"),
    ("poisson2d", None, {"causal": -1.0}, "train.causal (epsilon) must be >= 0"),
    ("poisson2d", None, {"points": {"adapt_every": 0}}, "points.adapt_every must be a positive integer"),
    ("poisson2d", "energy", {"points": {"adaptive": "rar"}}, "integrates by a quadrature rule, whose weights moved points"),
    ("poisson2d", "energy", {"weighting": "rba"}, "the energy form of 'poisson2d' integrates a potential"),
    ("poisson2d", "energy", {"weighting": "gradnorm"}, "balances penalty terms against the potential"),
    ("poisson2d", None, {"causal": 1.0}, "problem 'poisson2d' is not time-dependent"),
    ("poisson2d", None, {"weighting": "rba", "resample_every": 5}, "cannot follow train.resample_every"),
    ("poisson2d", None, {"points": {"adaptive": "rad", "n_interior": 500, "adapt_pool": 100}}, "raise adapt_pool"),
    ("crack_mode3", "inverse", {"points": {"adaptive": "rad"}}, "the inverse form of 'crack_mode3' has none"),
    ("crack_mode3", "inverse", {"causal": 1.0}, "weighs the residual point by point; the inverse form"),
    ("multiscale_fit", "fit", {"weighting": "gradnorm"}, "the fit form of 'multiscale_fit' has none"),
])
def test_what_cannot_apply_is_refused_in_one_line(tmp_path, problem, form, settings, message):
    with pytest.raises(KinnError, match=None) as e:
        kinn.solve(problem, form=form, steps=1, progress=False, out=str(tmp_path), **settings)
    assert message in str(e.value) and "\n" not in str(e.value)
    assert not any(tmp_path.iterdir())  # nothing half-written


def test_a_lattice_family_is_refused():
    with pytest.raises(KinnError, match="family 'fno' trains on a lattice of nodes"):
        kinn.solve("poisson2d", "fno", steps=1, write=False, progress=False, points={"adaptive": "rar"})
