"""The one training loop: Adam, then optional L-BFGS. It knows nothing about PDEs.

`fit(run)` trains `run.model` on the weighted sum of `run.terms()`, the form's loss terms on the current
batch of `run.data`. Everything a family or form needs from the loop arrives through the `Run`: the data
(which it prepares before every Adam step and L-BFGS chunk), the family's named hooks (a KAN grid
extension), the scorer's held-out errors, and a checkpoint callback.
"""
from __future__ import annotations

import contextlib
import copy
import math
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from kinn.errors import KinnError
from kinn.run import interrupts
from kinn.run.config import TrainConfig
from kinn.run.distributed import Group
from kinn.run.weighting import Fixed, Weighting, weight


@dataclass
class History:
    """One row per logged step: step, phase, time, loss, lr, each loss term, and errors when evaluated."""

    rows: list[dict] = field(default_factory=list)
    stop_reason: str = ""
    adam_steps: int = 0
    lbfgs_iters: int = 0
    train_time: float = 0.0           # wall time spent optimising, evaluation excluded
    rollbacks: int = 0                # non-finite losses recovered from (train.on_nonfinite = "rollback")
    lbfgs_evals: int = 0              # L-BFGS loss evaluations (its budget is 5/4 of train.lbfgs)
    signal: int = 0                   # the signal that stopped the run (2: SIGINT, 15: SIGTERM), 0 if none

    @property
    def steps(self) -> int:
        return self.adam_steps + self.lbfgs_iters

    def last(self, key: str, default=None):
        for row in reversed(self.rows):
            if key in row:
                return row[key]
        return default


@dataclass
class Run:
    """What the loop trains: the model, the loss terms on the data's current batch, the held-out scorer.

    terms():      {name: tensor} loss terms; weighted by `weights` (`weight`) into the loss.
    score():      {"rel_l2/u": ...} held-out errors, every `train.eval_every` steps and at the end.
    data:         a `kinn.forms.base.Data`: `before_step(step)` before every Adam step, `before_chunk(step)`
                  before every L-BFGS chunk, `hook_points()` for the hooks.
    hooks:        {name: hook(step, x) -> bool}, called before every Adam step with the data's hook points;
                  True when the hook replaced parameters (the optimiser is rebuilt).
    checkpoint(state): called with the trainer's state (`_Loop.state`: counters, history, optimisers, the
                  data's counters and RNG states at the last commit) every `train.checkpoint_every` steps or
                  `train.checkpoint_seconds`, at the end, and on Ctrl-C or SIGTERM; only of finite states.
    resume:       such a state: continue from it. With the model's parameters restored by the caller, the
                  run continues exactly as the uninterrupted run would have, in the Adam and L-BFGS stages.
    group:        a `kinn.run.distributed.Group`: in a torchrun run, gradients and losses are averaged over
                  its ranks after every backward pass, and rank 0's parameters win after a hook.
    problem, form, cfg: what the run solves, for a family's own trainer (the DeepXDE row).
    weighting:    adaptive loss weights (`kinn.run.weighting`): per-point weights updated before every Adam
                  step, term weights after its loss terms; frozen in the L-BFGS stage. `terms` already
                  evaluates the form's loss on `weighting.batch(...)`.
    """

    model: torch.nn.Module
    terms: Callable[[], dict]
    score: Callable[[], dict]
    data: object
    cfg: object
    weights: dict = field(default_factory=dict)
    hooks: dict = field(default_factory=dict)
    checkpoint: Callable | None = None
    resume: dict | None = None
    group: Group = field(default_factory=Group)
    problem: object = None
    form: object = None
    weighting: Weighting = field(default_factory=Fixed)


def _schedule(opt, cfg: TrainConfig):
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.steps, 1))
    if cfg.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=max(cfg.step_size, 1), gamma=cfg.gamma)
    if cfg.schedule == "exponential":  # decays by `gamma` over the whole Adam stage
        return torch.optim.lr_scheduler.ExponentialLR(opt, gamma=cfg.gamma ** (1 / max(cfg.steps, 1)))
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)


def _finite(loss: float, terms: dict, step: int, where: str) -> None:
    if not math.isfinite(loss):
        bad = ", ".join(f"{k}={float(v.detach()):.3g}" for k, v in terms.items())
        raise KinnError(f"non-finite loss at {where} step {step} ({bad}): lower train.lr, use dtype float64, "
                        "set train.on_nonfinite = \"rollback\", or check the problem's data")


def interruption(signum: int) -> str:
    """The stop reason of a run stopped by a signal."""
    return f"interrupted by {signal.Signals(signum).name}" + (" (Ctrl-C)" if signum == signal.SIGINT else "")


def _rng() -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state()}


class _Loop:
    """The loop's moving parts: optimisers, schedule, history and clocks, in one place instead of closures.

    What a checkpoint stores changes only at commit points (the end of an Adam step or an L-BFGS chunk), so
    `state()` is one consistent moment whenever it is called: the model and optimisers are never left
    between two commits (only gradients change in the windows a signal may interrupt; an interrupted
    L-BFGS chunk is undone), and the data's counters and the RNG states are the ones taken at the commit.
    """

    def __init__(self, run: Run):
        self.run, self.cfg = run, run.cfg.train
        resume = run.resume or {}
        # a run that stopped by its own rule stays stopped, unless its budget or stop rules changed since
        stopped = resume.get("stop_reason", "") if resume.get("budget") == self.budget() else ""
        self.hist = History(list(resume.get("rows", [])), stopped, resume.get("adam_steps", 0),
                            lbfgs_iters=resume.get("lbfgs_iters", 0), rollbacks=resume.get("rollbacks", 0),
                            lbfgs_evals=resume.get("lbfgs_evals", 0))
        self.params = [p for p in run.model.parameters() if p.requires_grad]
        self.opt = torch.optim.Adam(self.params, lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)
        self.sched = _schedule(self.opt, self.cfg)
        self.lbfgs: torch.optim.LBFGS | None = None
        self.lbfgs_resume = resume.get("lbfgs")
        self.lr_factor = resume.get("lr_factor", 1.0)  # the rollbacks' halvings
        if "weighting" in resume:
            run.weighting.load(resume["weighting"])
        if "optimizer" in resume:
            self.opt.load_state_dict(resume["optimizer"])
            self.sched.load_state_dict(resume["scheduler"])
            self.rescale(self.cfg.lr / resume.get("lr", self.cfg.lr))  # config.toml's rate wins
        self.good = None  # the last verified-finite state, for rollbacks
        self.commit()
        self.shown: dict = {}  # what the progress bar shows
        self.bar = tqdm(total=self.cfg.steps + self.cfg.lbfgs, file=sys.stderr, dynamic_ncols=True, leave=False,
                        disable=None if self.cfg.progress and run.group.main else True)
        # the clock starts after the optimiser's first construction, which imports torch._dynamo (seconds)
        self.t_start = time.perf_counter() - resume.get("train_time", 0.0)  # time already spent counts
        self.t_other = 0.0  # evaluation and checkpoints: not training time
        self.t_checkpoint = time.perf_counter()

    def budget(self) -> list:
        """The settings that decide when the run stops."""
        return [self.cfg.steps, self.cfg.lbfgs, self.cfg.time_limit, self.cfg.target_error]

    def commit(self) -> None:
        """The data's counters and the RNG states at this consistent moment, for the next checkpoint."""
        self.data_state, self.rng = copy.deepcopy(self.run.data.state()), _rng()
        self.weighting_state = copy.deepcopy(self.run.weighting.state())

    def rescale(self, factor: float) -> None:
        """Multiply the Adam rate, now and in the schedule, by `factor`."""
        if factor != 1.0:
            self.sched.base_lrs = [rate * factor for rate in self.sched.base_lrs]
            for group in self.opt.param_groups:
                group["lr"] *= factor

    def elapsed(self) -> float:
        return time.perf_counter() - self.t_start - self.t_other

    def loss(self, terms: dict) -> torch.Tensor:
        weights = self.run.weighting.weights(self.run.weights)
        return sum(weight(k, weights) * v for k, v in terms.items())

    def backward(self, loss: torch.Tensor) -> torch.Tensor:
        """The gradients (averaged over the ranks of a distributed run) and the mean loss."""
        loss.backward()
        return self.run.group.average(loss, self.params)

    def finite_now(self) -> bool:
        """Whether the current parameters and the loss at them are finite (one forward pass, no update)."""
        if not all(torch.isfinite(p).all() for p in self.params):
            return False
        return math.isfinite(float(self.loss(self.run.terms()).detach()))

    def evaluate(self) -> dict:  # evaluation time is not training time
        t = time.perf_counter()
        errors = self.run.score()
        self.t_other += time.perf_counter() - t
        return errors

    def record(self, step: int, phase: str, loss: float, terms: dict, lr: float, errors=None) -> None:
        row = {"step": step, "phase": phase, "time": self.elapsed(), "loss": loss, "lr": lr}
        row.update({k: float(v.detach()) for k, v in terms.items()})
        row.update(self.run.data.report)
        row.update(self.run.weighting.report())
        row.update(errors or {})
        self.hist.rows.append(row)
        self.shown = _postfix(loss, row, self.shown)
        self.bar.set_postfix(self.shown, refresh=False)

    def reached(self, errors: dict) -> str:
        """"target error ... reached" when these held-out errors are at the target, else ""."""
        rel = [v for k, v in errors.items() if k.startswith("rel_l2/")]
        if self.cfg.target_error > 0 and rel and max(rel) <= self.cfg.target_error:
            return f"target error {self.cfg.target_error:g} reached"
        return ""

    def out_of_time(self) -> str:
        """"time limit ... reached" once train.time_limit seconds were spent optimising, else ""."""
        if self.cfg.time_limit > 0 and self.elapsed() >= self.cfg.time_limit:
            return f"time limit {self.cfg.time_limit:g} s reached"
        return ""

    def state(self) -> dict:
        """Everything a resume continues from exactly (the model's parameters are the caller's)."""
        return {"adam_steps": self.hist.adam_steps, "lbfgs_iters": self.hist.lbfgs_iters,
                "stop_reason": "" if self.hist.signal else self.hist.stop_reason, "budget": self.budget(),
                "lbfgs_evals": self.hist.lbfgs_evals, "rollbacks": self.hist.rollbacks, "rows": self.hist.rows,
                "train_time": self.elapsed(), "optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(),
                "lbfgs": self.lbfgs.state_dict() if self.lbfgs is not None else self.lbfgs_resume, "lr": self.cfg.lr,
                "lr_factor": self.lr_factor, "data": self.data_state, "rng": self.rng,
                "weighting": self.weighting_state}

    def checkpoint(self, due: bool) -> None:
        """A periodic checkpoint when `due` or train.checkpoint_seconds have passed, only of a finite state."""
        cfg, now = self.cfg, time.perf_counter()
        if self.run.checkpoint is None or not (due or 0 < cfg.checkpoint_seconds <= now - self.t_checkpoint):
            return
        if self.finite_now():  # never a checkpoint of a diverged state: the loss at these very weights
            self.run.checkpoint(self.state())
            self.t_checkpoint = time.perf_counter()
        self.t_other += time.perf_counter() - now

    def run_hooks(self, step: int) -> bool:
        """The family's hooks; new parameters (a grid extension) need a new optimiser at the same rate."""
        x = self.run.data.hook_points()
        changed = [h(step, x) for h in self.run.hooks.values()]  # call every hook, not just the first
        if any(changed):
            self.params = [p for p in self.run.model.parameters() if p.requires_grad]
            self.run.group.broadcast(self.params)  # each rank refitted on its own points: keep rank 0's
            lr = self.opt.param_groups[0]["lr"]
            self.opt = torch.optim.Adam(self.params, lr=lr, weight_decay=self.cfg.weight_decay)
            self.sched = _schedule(self.opt, self.cfg)
            for group in self.opt.param_groups:
                group["lr"] = lr
        return any(changed)

    def keep_good(self, step: int) -> None:
        """Remember this state for a rollback, if the loss at these weights is finite: the adaptive loss
        weights too, which a non-finite loss spoils along with the parameters (gradnorm, RBA)."""
        if self.finite_now():
            self.good = (copy.deepcopy(self.run.model.state_dict()), copy.deepcopy(self.opt.state_dict()),
                         copy.deepcopy(self.sched.state_dict()), step, self.lr_factor, self.weighting_state)

    def rollback(self, step: int) -> bool:
        """On a non-finite loss with train.on_nonfinite = "rollback": back to the last verified-finite state
        at half the rate it had reached (True), at most 5 times."""
        if not (self.cfg.on_nonfinite == "rollback" and self.good and self.hist.rollbacks < 5):
            return False
        model, opt, sched, good_step, factor, weighting = self.good
        self.run.model.load_state_dict(model)
        self.run.weighting.load(copy.deepcopy(weighting))
        self.opt.load_state_dict(opt)
        self.sched.load_state_dict(sched)
        self.lr_factor /= 2
        self.rescale(self.lr_factor / factor)  # the restored state carries the rate it had then
        self.hist.rollbacks += 1
        print(f"kinn: non-finite loss at step {step}: rolled back to step {good_step}, learning rate "
              f"halved to {self.opt.param_groups[0]['lr']:.3g}", file=sys.stderr)
        return True


def fit(run: Run) -> History:
    """Train `run.model`'s parameters on the weighted sum of `run.terms()`; return the history.

    Ctrl-C and SIGTERM are held until the loop is at a consistent point (see `kinn.run.interrupts`): the
    run stops there, `History.signal` says which signal, and the checkpoint is written from that state."""
    with interrupts.held():
        loop = _Loop(run)
        hist = loop.hist
        try:
            if not hist.stop_reason:
                loop.bar.update(hist.steps)
                hist.stop_reason = _adam(loop)
            if loop.cfg.lbfgs > hist.lbfgs_iters and not hist.stop_reason:
                hist.stop_reason = _lbfgs(loop)
            hist.stop_reason = hist.stop_reason or "step budget used"
        except KeyboardInterrupt as e:
            hist.signal = interrupts.signum_of(e)
            hist.stop_reason = interruption(hist.signal)
        finally:
            loop.bar.close()
            hist.train_time = loop.elapsed()
        if not loop.finite_now():
            raise KinnError(f"the loss is non-finite after {hist.steps} steps (they ended: {hist.stop_reason}): "
                            "lower train.lr, use dtype float64, or set train.on_nonfinite = \"rollback\"")
        if run.checkpoint is not None:
            run.checkpoint(loop.state())
        hist.signal = hist.signal or interrupts.take()  # a signal during the last checkpoint
    return hist


def _adam(loop: _Loop) -> str:
    """The Adam stage; returns why it stopped early ("" at the end of its budget)."""
    run, cfg, hist, data = loop.run, loop.cfg, loop.hist, loop.run.data
    for step in range(hist.adam_steps, cfg.steps):
        interrupts.check()
        data.before_step(step)  # resample, redraw a quadrature, or take the next batch
        run.weighting.before_step(step)  # per-point weights at the step's points: a pure function of the commit
        changed = data.state() != loop.data_state
        if run.hooks:
            changed = loop.run_hooks(step) or changed
        # only gradients change in the forward and backward pass, so a signal may stop the run there, unless
        # this step's preparation changed what a checkpoint stores (a new draw, a grid extension)
        with interrupts.interruptible() if not changed else contextlib.nullcontext():
            loop.opt.zero_grad(set_to_none=True)
            terms = run.terms()
            run.weighting.balance(step, terms, loop.params)
            loss = loop.backward(loop.loss(terms))
        if (reason := _adam_commit(loop, step, loss, terms)):
            return reason
    return ""


def _adam_commit(loop: _Loop, step: int, loss: torch.Tensor, terms: dict) -> str:
    """Step, count, log, evaluate and checkpoint step `step` as one (signals held); why to stop, or ""."""
    cfg, hist = loop.cfg, loop.hist
    last = step + 1 == cfg.steps
    eval_now = last or (cfg.eval_every and step % cfg.eval_every == 0)
    log_now = eval_now or (cfg.log_every and step % cfg.log_every == 0)
    value = float(loss.detach()) if log_now else 0.0  # a CPU-GPU sync: only at log and evaluation steps
    lr = loop.opt.param_groups[0]["lr"]  # the rate this step uses
    if log_now and not math.isfinite(value):
        if not loop.rollback(step):
            _finite(value, terms, step, "Adam")
        hist.adam_steps = step + 1
        loop.commit()
        return ""
    loop.opt.step()
    loop.sched.step()
    hist.adam_steps = step + 1
    loop.commit()
    reason = ""
    if log_now:
        if cfg.on_nonfinite == "rollback":
            loop.keep_good(step)
        errors = loop.evaluate() if eval_now else {}
        loop.record(step, "adam", value, terms, lr, errors)
        reason = loop.reached(errors)
    loop.checkpoint(bool(cfg.checkpoint_every) and (step + 1) % cfg.checkpoint_every == 0)
    loop.bar.update()
    return reason or loop.out_of_time()


def _lbfgs(loop: _Loop) -> str:
    """The L-BFGS stage, in chunks of train.log_every iterations; returns why it stopped ("" at budget).
    A chunk is one commit: one interrupted by a signal is undone, parameters and curvature history both."""
    cfg, hist, params = loop.cfg, loop.hist, loop.params
    chunk = max(1, min(cfg.log_every or cfg.lbfgs, cfg.lbfgs))
    opt = loop.lbfgs = torch.optim.LBFGS(
        params, lr=cfg.lbfgs_lr, max_iter=chunk, history_size=cfg.lbfgs_history,
        tolerance_grad=cfg.lbfgs_tolerance_grad, tolerance_change=cfg.lbfgs_tolerance_change,
        line_search_fn="strong_wolfe")
    if loop.lbfgs_resume is not None:
        opt.load_state_dict(loop.lbfgs_resume)
    latest = {}

    def closure():
        opt.zero_grad(set_to_none=True)
        latest["terms"] = loop.run.terms()
        return loop.backward(loop.loss(latest["terms"]))

    budget = cfg.lbfgs * 5 // 4  # torch's max_eval rule, over the whole stage
    while hist.lbfgs_iters < cfg.lbfgs:
        interrupts.check()
        done, evals = hist.lbfgs_iters, hist.lbfgs_evals
        n = min(chunk, cfg.lbfgs - done)
        loop.run.data.before_chunk(hist.adam_steps + done)
        opt.param_groups[0]["max_iter"], opt.param_groups[0]["max_eval"] = n, max(budget - evals, 1)
        before, saved = [p.detach().clone() for p in params], copy.deepcopy(opt.state_dict())
        try:
            with interrupts.interruptible():
                start_loss = float(opt.step(closure).detach())  # torch returns the loss where the chunk began
        except KeyboardInterrupt:
            _restore(params, before, opt, saved)
            raise
        state = opt.state[opt._params[0]]
        did = state["n_iter"] - saved["state"].get(0, {}).get("n_iter", 0)
        hist.lbfgs_evals = evals + state["func_evals"] - saved["state"].get(0, {}).get("func_evals", 0)
        end_loss = float(closure().detach())  # the row's loss: where the chunk ended, like its terms
        if not (math.isfinite(end_loss) and all(torch.isfinite(p).all() for p in params)):
            # a line search that wandered into non-finite losses can leave non-finite weights behind
            _restore(params, before, opt, saved)
            _finite(start_loss, latest["terms"], hist.adam_steps + done, "L-BFGS")
            closure()
            loop.commit()
            loop.record(hist.adam_steps + done, "lbfgs", start_loss, latest["terms"], cfg.lbfgs_lr, loop.evaluate())
            return (f"L-BFGS: iterations {done + 1}..{done + did} ended at a non-finite loss; kept the weights of "
                    f"iteration {done}")
        if (reason := _lbfgs_commit(loop, done, did, n, end_loss, latest["terms"], budget)):
            return reason
    return ""


def _restore(params, before, opt, saved) -> None:
    """Parameters and L-BFGS state back to where the chunk began."""
    with torch.no_grad():
        for p, b in zip(params, before):
            p.copy_(b)
    opt.load_state_dict(saved)


def _lbfgs_commit(loop: _Loop, done: int, did: int, n: int, loss: float, terms: dict, budget: int) -> str:
    """Count, log, evaluate and checkpoint one L-BFGS chunk as one (signals held); why to stop, or ""."""
    cfg, hist = loop.cfg, loop.hist
    hist.lbfgs_iters = done = done + did
    loop.commit()
    loop.bar.update(did)
    stopped = did < n
    eval_now = stopped or done >= cfg.lbfgs or (cfg.eval_every and done % cfg.eval_every < n)
    errors = loop.evaluate() if eval_now else {}
    loop.record(hist.adam_steps + done, "lbfgs", loss, terms, cfg.lbfgs_lr, errors)
    every = cfg.checkpoint_every
    loop.checkpoint(bool(every) and (hist.steps // every) != ((hist.steps - did) // every))
    if (reason := loop.reached(errors) or loop.out_of_time()):
        return reason
    return _why_lbfgs_stopped(cfg, loop.params, done, hist.lbfgs_evals, budget) if stopped else ""


def _why_lbfgs_stopped(cfg: TrainConfig, params, done: int, evals: int, budget: int) -> str:
    """L-BFGS stopped by itself: say why (torch does not)."""
    if evals >= budget:
        return f"L-BFGS: function-evaluation budget used ({evals} evaluations for {done} iterations)"
    g = torch.cat([p.grad.reshape(-1) for p in params if p.grad is not None])
    if g.abs().max() <= cfg.lbfgs_tolerance_grad:
        return f"L-BFGS: gradient below tolerance_grad={cfg.lbfgs_tolerance_grad:g} after {done} iterations"
    stalled = ("; so early, the loss likely has kinks, which stop its line search (a cubic-spline KAN's second "
               "derivatives in a strong form have them; order 5, --set model.order=5, removes them)") if done <= 2 else ""
    return (f"L-BFGS: loss or step change below tolerance_change={cfg.lbfgs_tolerance_change:g} after {done} "
            f"iterations{stalled}")


def _postfix(loss: float, row: dict, shown: dict) -> dict:
    """The progress bar's text: this row's loss, and the held-out error of this row, or else the last one
    shown (errors are measured only every eval_every steps; the bar keeps them in between)."""
    out = {"loss": f"{loss:.3e}"}
    rel = [v for k, v in row.items() if k.startswith("rel_l2/")]
    if rel:
        out["err"] = f"{max(rel):.2e}"
    elif "err" in shown:
        out["err"] = shown["err"]
    return out
