"""`kinn compare`: equal budgets and points for every family, held-out evaluation, clear refusals, a table
whose numbers are its runs' own, and the DeepXDE reference row solving the same problem as kinn."""
import csv
import json
from math import pi

import numpy as np
import pytest
import torch

import kinn
from kinn.comparison import deepxde_row as deepxde_adapter
from kinn.pde import ops
from kinn import Dirichlet, EnergyForm, Interval, KinnError, Neumann, Problem, StrongForm, at
from kinn.cli import main
from kinn.comparison.compare import _count, _sizes

SMALL = {"n_interior": 100, "n_boundary": 40, "n_eval": 200}
SOLVERS = ("mlp", "kan", "deepxde")
STEPS = 20


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Networks this small run fastest on one thread, much faster so on a CPU shared with other jobs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    return kinn.compare("poisson2d", SOLVERS, seeds=2, budget_steps=STEPS, out=tmp_path_factory.mktemp("cmp"),
                        progress=False, eval_every=10, **SMALL)


def test_every_run_used_exactly_the_step_budget(comparison):
    assert set(comparison.results) == {(f, s) for f in SOLVERS for s in (0, 1)}
    for (family, seed), r in comparison.results.items():
        assert (r.history.adam_steps, r.history.lbfgs_iters) == (STEPS, 0), (family, seed)
        assert r.summary()["steps"] == STEPS and r.config.train.seed == seed
    assert [row.steps for row in comparison.rows] == [STEPS] * len(SOLVERS)


def test_every_family_trains_and_is_scored_on_the_same_points(comparison):
    for seed in (0, 1):
        ref = comparison.results["mlp", seed]
        assert set(ref.points) == {"pde", "bc:dirichlet0"} and len(ref.points["pde"]) == SMALL["n_interior"]
        for family in SOLVERS[1:]:
            r = comparison.results[family, seed]
            assert set(r.points) == set(ref.points), family
            for name, x in ref.points.items():
                assert torch.equal(r.points[name].double().cpu(), x.double().cpu()), (family, name)
            assert np.array_equal(r.eval_points, ref.eval_points), family
    a, b = comparison.results["mlp", 0], comparison.results["mlp", 1]
    assert not torch.equal(a.points["pde"], b.points["pde"])  # a seed is a different draw


def test_evaluation_points_are_never_training_points(comparison):
    for r in comparison.results.values():
        x_eval = torch.as_tensor(r.eval_points)
        assert len(x_eval) == SMALL["n_eval"]
        for name, x in r.points.items():
            # training points are float32 copies: equal points would be within float32 rounding
            assert torch.cdist(x_eval, x.double().cpu()).min() > 1e-6, name


def test_table_numbers_are_those_in_each_run_directory(comparison):
    out = comparison.out
    table = json.loads((out / "table.json").read_text())
    with open(out / "table.csv") as f:
        csv_rows = {row["family"]: row for row in csv.DictReader(f)}
    markdown = (out / "table.md").read_text()
    assert [row["family"] for row in table["rows"]] == list(SOLVERS)
    for row in table["rows"]:
        stored = [json.loads((out / f"{row['family']}-seed{s}" / "result.json").read_text()) for s in (0, 1)]
        assert row["runs"] == stored
        rel = np.array([s["errors"]["u"]["rel_l2"] for s in stored])
        assert row["errors"]["u"] == [float(rel.mean()), float(rel.std(ddof=1))]
        assert row["best"] == [int(rel.argmin()), float(rel.min())] and row["worst"] == [int(rel.argmax()), rel.max()]
        assert row["params"] == stored[0]["params"] and row["steps"] == STEPS
        assert row["wall_time"] == float(np.mean([s["wall_time"] for s in stored]))
        assert row["time_per_step"] == float(np.mean([s["train_time"] / s["steps"] for s in stored]))
        c = csv_rows[row["family"]]
        assert float(c["rel_l2_u_mean"]) == row["errors"]["u"][0] and float(c["rel_l2_u_std"]) == row["errors"]["u"][1]
        assert float(c["time_per_step"]) == row["time_per_step"] and int(c["params"]) == row["params"]
        line = next(ln for ln in markdown.splitlines() if ln.startswith(f"| {row['family']} |"))
        assert f"{rel.mean():.2e} ± {rel.std(ddof=1):.1e}" in line and f"| {row['params']} |" in line
    for figure in ("error_vs_time.png", "fields.png"):
        assert (out / figure).stat().st_size > 10_000


def test_match_params_sizes_families_alike(comparison):
    params = {row.family: row.params for row in comparison.rows}
    assert comparison.params_target == params["mlp"] == params["deepxde"]
    assert abs(params["kan"] - params["mlp"]) < 0.1 * params["mlp"]
    assert comparison.rows[1].configuration.startswith("hidden=[")


def test_match_width_gives_every_family_the_same_widths():
    families = {name: deepxde_adapter.DeepXDE() if name == "deepxde" else kinn.registry.get_family(name)
                for name in SOLVERS}
    problem = kinn.registry.get_problem("poisson2d")
    options, _ = _sizes(problem, families, "strong", {}, "width", None, {})
    assert options["mlp"]["widths"] == options["kan"]["hidden"] == options["deepxde"]["widths"] == [50, 50, 50]
    options, target = _sizes(problem, families, "strong", {}, "params", 2000, {"kan": {"hidden": [4, 4]}})
    assert target == 2000 and options["kan"]["hidden"] == [4, 4]  # a width the user gave is kept
    assert abs(_count(problem, families["mlp"], options["mlp"]) - 2000) < 200


def test_deepxde_row_is_scored_like_the_others(comparison):
    for seed in (0, 1):
        s = comparison.results["deepxde", seed].summary()
        assert s["family"] == "deepxde" and np.isfinite(s["errors"]["u"]["rel_l2"]) and s["residual_rms"] > 0
    assert torch.get_default_dtype() == torch.float32


def test_time_budget_stops_every_family_by_the_clock(tmp_path):
    c = kinn.compare("poisson1d_multiscale", ("mlp", "deepxde"), seeds=1, budget_seconds=0.3, out=tmp_path,
                     progress=False, match=None, **SMALL)
    for r in c.results.values():
        assert r.history.stop_reason == "time limit 0.3 s reached" and 0 < r.history.steps < 10**9
        assert 0.3 <= r.history.train_time < 10
    assert c.budget == {"steps": None, "seconds": 0.3, "lbfgs": 0}


def _mixed1d():
    """-u'' = (π/2)² sin(πx/2) on [0, 1], u(0) = 0, u'(1) = 0: a Dirichlet and a weighted Neumann condition."""
    return Problem(
        name="mixed1d", domain=Interval(0, 1),
        strong=StrongForm(lambda u, x: -ops.laplacian(u) - (pi / 2) ** 2 * torch.sin(pi / 2 * x),
                          bcs=[Dirichlet(0.0, on=at(0, 0.0)), Neumann(0.0, on=at(0, 1.0), weight=10.0)]),
        exact=lambda x: torch.sin(pi / 2 * x))


@pytest.mark.parametrize("problem", ["poisson2d", _mixed1d()], ids=["poisson2d", "dirichlet+neumann"])
def test_deepxde_minimises_kinns_loss(problem):
    """After one step, DeepXDE's loss terms are kinn's terms of the same model on the same points."""
    r = deepxde_adapter.solve(problem, steps=1, lbfgs=0, eval_every=1, dtype="float64", write=False,
                              n_interior=50, n_boundary=8, n_eval=50)
    row = r.history.rows[-1]
    terms = r.problem.form("strong").loss(r.model, r.problem, r.points)
    assert len(terms) >= 2 and set(terms) <= set(row)
    for name, value in terms.items():
        assert row[name] == pytest.approx(value.item(), rel=1e-10), name
    assert torch.get_default_dtype() == torch.float32  # DeepXDE's float64 switch was undone


@pytest.mark.parametrize("lbfgs, eval_every", [(7, 250), (20, 4)])
def test_deepxde_lbfgs_runs_exactly_its_iterations(lbfgs, eval_every):
    """DeepXDE runs L-BFGS in chunks that can end early and would run past maxiter; the row caps the last."""
    opts = dict(kinn.pde.geometry.deepxde.optimizers.config.LBFGS_options)
    r = deepxde_adapter.solve("poisson2d", steps=4, lbfgs=lbfgs, eval_every=eval_every, write=False, **SMALL)
    assert (r.history.adam_steps, r.history.lbfgs_iters) == (4, lbfgs) and r.history.stop_reason == "step budget used"
    assert kinn.pde.geometry.deepxde.optimizers.config.LBFGS_options == opts


@pytest.mark.parametrize("schedule", ["cosine", "step", "exponential"])
def test_deepxde_takes_kinns_schedule(schedule):
    """The row's rate follows kinn's schedule step for step: the same torch scheduler, built by DeepXDE."""
    settings = dict(steps=8, lbfgs=0, eval_every=2, schedule=schedule, step_size=3, gamma=0.5, write=False, **SMALL)
    mine = kinn.solve("poisson2d", "mlp", log_every=2, **settings)
    row = deepxde_adapter.solve("poisson2d", **settings)
    rates = {r["step"]: r["lr"] for r in mine.history.rows}
    # kinn logs the rate step s uses; DeepXDE's callback runs after step s, so it sees step s+1's rate
    theirs = {r["step"]: r["lr"] for r in row.history.rows if r["step"] < 8}
    assert len(theirs) >= 3 and all(theirs[s] == pytest.approx(rates[s], rel=1e-12) for s in theirs)
    assert len(set(theirs.values())) > 1  # the rate did change


@pytest.mark.parametrize("form, settings, reason", [
    ("energy", {}, "cannot translate the energy form of 'dual': DeepXDE's PDE data solves strong"),
    ("strong", {"resample_every": 5}, "cannot translate train.resample_every"),
    ("strong", {"model": {"preset": "kinn"}}, "cannot translate MLP skip connections"),
])
def test_deepxde_refuses_what_it_cannot_translate(form, settings, reason):
    dual = Problem(name="dual", domain=Interval(0, 1), strong=StrongForm(lambda u, x: ops.laplacian(u)),
                   energy=EnergyForm(lambda u, x: 0 * u[:, 0]), exact=lambda x: 0 * x)
    with pytest.raises(KinnError, match=reason):
        deepxde_adapter.solve(dual, form, write=False, **settings)


def test_unknown_family_is_named_with_the_valid_ones():
    with pytest.raises(KinnError, match=r"unknown family 'mpl' \(did you mean 'mlp'\?\); valid: deepxde, fno, kan, mlp"):
        kinn.compare("poisson2d", ("mlp", "mpl"))


def test_family_without_the_form_is_refused_before_any_run(monkeypatch, tmp_path):
    from kinn.solvers import FAMILIES
    from kinn.solvers.mlp import MLPFamily

    class StrongOnly(MLPFamily):
        name = "strongonly"
        forms = frozenset({"strong"})

    monkeypatch.setitem(FAMILIES, "strongonly", StrongOnly)
    dual = Problem(name="dual", domain=Interval(0, 1), strong=StrongForm(lambda u, x: ops.laplacian(u)),
                   energy=EnergyForm(lambda u, x: 0 * u[:, 0]), exact=lambda x: 0 * x)
    with pytest.raises(KinnError, match="family 'strongonly' does not support the energy form; it supports: strong"):
        kinn.compare(dual, ("mlp", "strongonly"), "energy", out=tmp_path / "never")
    assert not (tmp_path / "never").exists()


@pytest.mark.parametrize("argv, message", [
    (["--solvers", "mlp,nope"], "unknown family 'nope'; valid: deepxde, fno, kan, mlp"),
    (["--solvers", "mlp,mlp"], "a family is named twice: mlp, mlp"),
    (["--budget-steps", "5", "--budget-seconds", "2"], "not allowed with argument --budget-steps"),
    (["--budget-seconds", "0"], "argument --budget-seconds: must be a number of seconds > 0, got '0'"),
    (["--seeds", "0"], "seeds must be a count >= 1"),
    (["--set", "model.widths=[8]"], "a compare config cannot hold [model]"),
    (["--set", "kan.gird=3"], "unknown option(s) gird for family 'kan'"),
    (["--form", "operator"], "problem 'poisson2d' has no operator form; it has: strong, energy, inverse"),
])
def test_cli_bad_input_gives_one_line(capsys, argv, message):
    code = main(["compare", "poisson2d", *argv])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.startswith("kinn: error: ") and err.count("\n") == 1 and message in err, err


def test_cli_compare_prints_the_table_json(capsys, tmp_path):
    code = main(["compare", "poisson1d_multiscale", "--solvers", "mlp,deepxde", "--seeds", "1", "--budget-steps", "3",
                 "--match", "none", "--out", str(tmp_path), "--set", "mlp.widths=[8,8]", "--set", "points.n_eval=50",
                 "--set", "points.n_interior=30", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    table = json.loads(out)
    assert [(r["family"], r["configuration"], r["steps"]) for r in table["rows"]] == [
        ("mlp", "widths=[8,8]", 3), ("deepxde", "widths=[8,8]", 3)]  # DeepXDE's FNN follows the MLP's options
    assert table == json.loads((tmp_path / "table.json").read_text())
