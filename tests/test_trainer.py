"""The training loop on a toy least-squares problem: stop reasons, hooks, interruption, schedules."""
import math

import pytest
import torch

from kinn.errors import KinnError
from kinn.forms.base import FixedBatch
from kinn.run.config import RunConfig, TrainConfig
from kinn.run.trainer import Run, weight
from kinn.run.trainer import fit as fit_run


def fit(model, terms, evaluate, train: TrainConfig, hooks=None, checkpoint=None, resume=None):
    """The loop on a toy: no form, no points."""
    cfg = RunConfig(problem="toy", train=train)
    return fit_run(Run(model, terms, evaluate, FixedBatch(), cfg, hooks=hooks or {}, checkpoint=checkpoint, resume=resume))


def toy():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1).double()
    x = torch.randn(64, 3, dtype=torch.float64)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]], dtype=torch.float64) + 0.3

    def terms():
        return {"fit": (model(x) - y).square().mean(), "reg": model.weight.square().sum() * 0}

    def evaluate():
        with torch.no_grad():
            return {"rel_l2/y": float((model(x) - y).norm() / y.norm())}

    return model, terms, evaluate


def cfg(**kw):
    return TrainConfig(**{"progress": False, "eval_every": 10, "log_every": 10, **kw})


def test_adam_then_lbfgs_converges_and_says_why_it_stopped():
    model, terms, evaluate = toy()
    h = fit(model, terms, evaluate, cfg(steps=20, lr=1e-2, lbfgs=200, lbfgs_tolerance_grad=1e-7))
    assert h.adam_steps == 20 and 0 < h.lbfgs_iters < 200
    assert h.stop_reason.startswith("L-BFGS: gradient below tolerance_grad=1e-07")
    assert h.rows[-1]["rel_l2/y"] < 1e-6
    assert [r["phase"] for r in h.rows][-1] == "lbfgs"


def test_lbfgs_runs_its_full_budget_when_nothing_stops_it():
    model, terms, evaluate = toy()
    h = fit(model, terms, evaluate, cfg(steps=0, lbfgs=7, lbfgs_tolerance_grad=0.0, lbfgs_tolerance_change=0.0))
    assert h.lbfgs_iters == 7 and h.stop_reason == "step budget used"


def test_lbfgs_stalled_on_a_kink_says_what_stalls_it():
    # |θ − 1| + θ/2 has its minimum on the kink at θ = 1, where autograd's gradient is 1/2: no line search
    # along −∇ finds a decrease there, and L-BFGS stops at once with the gradient far from zero
    theta = torch.nn.Parameter(torch.ones(1, dtype=torch.float64))
    model = torch.nn.Module()
    model.theta = theta

    def terms():
        return {"kink": (theta - 1).abs().sum() + theta.sum() / 2}

    h = fit(model, terms, lambda: {}, cfg(steps=0, lbfgs=50))
    assert h.lbfgs_iters <= 2 and "the loss likely has kinks" in h.stop_reason


def test_time_limit_stops_training():
    model, terms, evaluate = toy()
    h = fit(model, terms, evaluate, cfg(steps=10**6, time_limit=0.3))
    assert 0 < h.adam_steps < 10**6 and h.stop_reason == "time limit 0.3 s reached"
    assert 0.3 <= h.train_time < 5


def test_weights_by_name_then_prefix():
    assert weight("bc:left", {"bc": 10.0}) == 10.0
    assert weight("bc:left", {"bc": 10.0, "bc:left": 2.0}) == 2.0
    assert weight("pde", {"bc": 10.0}) == 1.0


def test_hooks_that_change_parameters_rebuild_the_optimiser():
    model, terms, evaluate = toy()
    calls = []

    def hook(step, x):
        calls.append(step)
        if step == 5:  # replace a parameter, as a KAN grid extension does
            model.bias = torch.nn.Parameter(model.bias.detach().clone())
            return True
        return False

    before = model.bias
    fit(model, terms, evaluate, cfg(steps=10, lr=1e-2), hooks={"grid": hook})
    assert calls == list(range(10))
    assert model.bias is not before and not torch.equal(model.bias, before)  # the new parameter was trained


def test_ctrl_c_keeps_the_last_state():
    model, terms, evaluate = toy()
    saved = []

    def interrupting():
        interrupting.n += 1
        if interrupting.n == 8:
            raise KeyboardInterrupt
        return terms()

    interrupting.n = 0
    h = fit(model, interrupting, evaluate, cfg(steps=50), checkpoint=lambda state: saved.append(state["adam_steps"]))
    assert h.stop_reason == "interrupted by SIGINT (Ctrl-C)" and h.signal == 2 and h.adam_steps == 7 and saved == [7]


def test_sigterm_stops_like_ctrl_c_and_the_handler_is_restored():
    import os
    import signal

    model, terms, evaluate = toy()
    before = signal.getsignal(signal.SIGTERM)
    saved = []

    def killed():
        killed.n += 1
        if killed.n == 5:
            os.kill(os.getpid(), signal.SIGTERM)  # the handler raises here: nothing after this line runs
        return terms()

    killed.n = 0
    h = fit(model, killed, evaluate, cfg(steps=50), checkpoint=lambda state: saved.append(state["adam_steps"]))
    assert h.stop_reason == "interrupted by SIGTERM" and h.signal == 15 and saved == [h.adam_steps] and h.adam_steps < 50
    assert signal.getsignal(signal.SIGTERM) is before


def test_non_finite_loss_rolls_back_and_halves_the_rate_when_asked():
    model, terms, evaluate = toy()

    def blows_up_once():
        blows_up_once.n += 1
        t = terms()
        return {"fit": t["fit"] * float("nan")} if blows_up_once.n == 13 else t

    blows_up_once.n = 0
    h = fit(model, blows_up_once, evaluate, cfg(steps=30, lr=1e-2, log_every=1, on_nonfinite="rollback"))
    assert h.rollbacks == 1 and h.adam_steps == 30
    assert [r["lr"] for r in h.rows][-1] == pytest.approx(5e-3)
    assert all(math.isfinite(r["loss"]) for r in h.rows)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_non_finite_loss_is_an_error():
    model, terms, evaluate = toy()
    with pytest.raises(KinnError, match=r"non-finite loss at Adam step 0 \(fit=nan"):
        fit(model, lambda: {"fit": terms()["fit"] * float("nan")}, evaluate, cfg(steps=3))


@pytest.mark.parametrize("schedule, last", [
    ("none", 1.0), ("cosine", (1 + math.cos(math.pi * 19 / 20)) / 2), ("step", 0.5), ("exponential", 0.1 ** (19 / 20))])
def test_learning_rate_schedules(schedule, last):
    model, terms, evaluate = toy()
    gamma = 0.5 if schedule == "step" else 0.1
    h = fit(model, terms, evaluate, cfg(steps=20, lr=1e-2, schedule=schedule, step_size=10, gamma=gamma, log_every=1))
    lrs = [r["lr"] for r in h.rows]
    assert lrs[0] == 1e-2 and lrs[-1] == pytest.approx(1e-2 * last, rel=1e-9)


def test_bad_train_settings_are_named():
    with pytest.raises(KinnError, match="train.schedule must be one of none, cosine, step, exponential"):
        TrainConfig(schedule="linear")
    with pytest.raises(KinnError, match="steps must be a non-negative integer"):
        TrainConfig(steps=-1)


def test_an_lbfgs_line_search_into_non_finite_losses_keeps_the_last_good_weights():
    """−log w + w is finite only for w > 0; from w = 3 with a long first step the line search tries w < 0.
    torch's L-BFGS would leave the weights there; the trainer goes back to where the chunk began."""
    model = torch.nn.Linear(1, 1, bias=False).double()
    with torch.no_grad():
        model.weight.fill_(3.0)

    def terms():
        w = model.weight[0, 0]
        return {"f": -torch.log(w) + 20 * w}

    h = fit(model, terms, lambda: {}, cfg(steps=0, lbfgs=20, lbfgs_lr=10.0, log_every=20))
    w = float(model.weight.detach())
    assert math.isfinite(w) and w > 0, w
    assert "non-finite" in h.stop_reason and "kept the weights" in h.stop_reason, h.stop_reason


def test_draw_runs_before_every_adam_step_and_every_lbfgs_chunk_with_the_step_number():
    model, terms, evaluate = toy()
    steps = []

    class Recording(FixedBatch):
        def before_step(self, step):
            steps.append(step)

        def before_chunk(self, step):
            steps.append(step)

    train = cfg(steps=4, lbfgs=25, log_every=10, lbfgs_tolerance_grad=0.0, lbfgs_tolerance_change=0.0)
    h = fit_run(Run(model, terms, evaluate, Recording(), RunConfig(problem="toy", train=train)))
    assert h.lbfgs_iters > 10  # two chunks at least
    # Adam steps 0..3, then each L-BFGS chunk of 10 iterations, numbered on from the Adam steps
    assert steps == [0, 1, 2, 3] + list(range(4, 4 + h.lbfgs_iters, 10))
