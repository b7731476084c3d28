"""What the run directory guarantees (README, "Run directory"): failed runs are marked or removed,
checkpoints and rollbacks are of finite states only, a resume may change the rate and budget (and says
so in config.toml), paths are absolute and times add up."""
import json
import math

import pytest
import torch

import kinn
from kinn import Dirichlet, Interval, Problem, StrongForm
from kinn.errors import KinnError
from kinn.forms.base import FixedBatch
from kinn.pde import ops
from kinn.run import figures
from kinn.run.config import RunConfig, TrainConfig
from kinn.run.trainer import Run, fit

SMALL = dict(n_interior=16, n_boundary=2, n_eval=16, progress=False, dtype="float64", model={"widths": [4]},
             log_every=1, eval_every=2, lbfgs=0)


@pytest.fixture(autouse=True)
def no_figures(monkeypatch):
    for name in ("fields", "history"):
        monkeypatch.setattr(figures, name, lambda path, *args, **kwargs: None)


def breaking(after: int) -> Problem:
    """u'' = 0 on [0, 1] whose residual turns NaN from its `after`-th evaluation on (a divergence)."""
    calls = {"n": 0}

    def residual(u, x):
        calls["n"] += 1
        r = ops.laplacian(u)
        return r * float("nan") if calls["n"] >= after else r

    return Problem(name="breaking", domain=Interval(0, 1), strong=StrongForm(residual, bcs=[Dirichlet(0.0)]),
                   exact=lambda x: 0 * x)


def test_a_failure_with_a_checkpoint_marks_the_run_failed_and_one_without_leaves_nothing(tmp_path):
    # evaluations: 1 the probe, 2.. the steps, one more at each checkpoint; NaN from the 8th
    with pytest.raises(KinnError, match=r"non-finite loss at Adam step \d.*keeps its last finite checkpoint: "
                                        r"continue with kinn solve --resume"):
        kinn.solve(breaking(8), out=str(tmp_path), name="late", steps=20, checkpoint_every=2, **SMALL)
    run = tmp_path / "late"
    assert sorted(p.name for p in run.iterdir()) == ["config.toml", "failed.json", "model.pt"]
    assert "non-finite loss" in json.loads((run / "failed.json").read_text())["error"]
    with pytest.raises(KinnError):
        kinn.solve(breaking(3), out=str(tmp_path), name="early", steps=20, **SMALL)
    assert not (tmp_path / "early").exists()


def test_checkpoints_are_only_of_finite_states():
    saved = []
    model = torch.nn.Linear(1, 1).double()
    calls = {"n": 0}

    def terms():  # finite for the loss of steps 0..4; NaN at the weights step 4 made
        calls["n"] += 1
        loss = model(torch.ones(1, 1, dtype=torch.float64)).square().sum()
        return {"f": loss * float("nan") if calls["n"] >= 6 else loss}

    train = TrainConfig(steps=10, checkpoint_every=5, log_every=1, eval_every=0, progress=False)
    with pytest.raises(KinnError, match="non-finite loss at Adam step 5"):
        fit(Run(model, terms, lambda: {}, FixedBatch(), RunConfig(problem="toy", train=train),
                checkpoint=lambda state: saved.append(state["adam_steps"])))
    assert saved == []  # the checkpoint after step 4 was not written: the loss at its weights is NaN


def test_rollbacks_halve_the_rate_each_time_and_return_to_finite_states():
    torch.manual_seed(0)
    model = torch.nn.Linear(1, 1).double()
    calls = {"n": 0}

    def terms():
        calls["n"] += 1
        loss = (model(torch.ones(1, 1, dtype=torch.float64)) - 1).square().sum()
        return {"f": loss * float("nan") if calls["n"] in (9, 14, 19) else loss}

    train = TrainConfig(steps=20, lr=1e-2, log_every=1, eval_every=0, progress=False, on_nonfinite="rollback")
    h = fit(Run(model, terms, lambda: {}, FixedBatch(), RunConfig(problem="toy", train=train)))
    assert h.rollbacks == 3 and h.adam_steps == 20
    assert sorted({r["lr"] for r in h.rows}, reverse=True) == pytest.approx([1e-2, 5e-3, 2.5e-3, 1.25e-3])
    assert all(math.isfinite(r["loss"]) for r in h.rows)


def test_lbfgs_rows_log_the_loss_their_terms_add_up_to():
    r = kinn.solve("poisson1d_multiscale", write=False, **dict(SMALL, steps=2, lbfgs=6, log_every=2))
    rows = [row for row in r.history.rows if row["phase"] == "lbfgs"]
    assert rows
    for row in rows:
        assert row["loss"] == pytest.approx(row["pde"] + row["bc:dirichlet0"], rel=1e-12)


def test_a_resume_may_change_the_rate_and_budget_and_config_toml_says_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = kinn.solve("poisson1d_multiscale", out="runs", name="run", steps=4, **SMALL)  # a relative --out
    run = tmp_path / "runs" / "run"
    assert r.run_dir.is_absolute() and json.loads((run / "result.json").read_text())["run_dir"] == str(run.resolve())
    again = kinn.solve(resume=run, steps=8, lr=2e-4)
    assert again.history.adam_steps == 8 and [row["lr"] for row in again.history.rows][-1] == 2e-4
    text = (run / "config.toml").read_text()
    assert "steps = 8" in text and "lr = 0.0002" in text
    # a rate edited in config.toml by hand is the rate the resumed run uses
    (run / "config.toml").write_text(text.replace("steps = 8", "steps = 10").replace("lr = 0.0002", "lr = 0.0001"))
    last = kinn.solve(resume=run)
    assert last.history.adam_steps == 10 and [row["lr"] for row in last.history.rows][-1] == 1e-4
    s = json.loads((run / "result.json").read_text())
    assert s["wall_time"] >= s["train_time"] > 0
