"""The one training loop: Adam, then optional L-BFGS. It knows nothing about PDEs.

`fit(run)` trains `run.model` on the weighted sum of `run.terms()`, the form's loss terms on the current
batch of `run.data`. Everything a family or form needs from the loop arrives through the `Run`: the data
(which it prepares before every Adam step and L-BFGS chunk), the family's named hooks (a KAN grid
extension), the scorer's held-out errors, and a checkpoint callback.
"""
from __future__ import annotations

import copy
import math
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from tqdm.auto import tqdm

from kinn.errors import KinnError
from kinn.run.config import TrainConfig
from kinn.run.distributed import Group


@dataclass
class History:
    """One row per logged step: step, phase, time, loss, lr, each loss term, and errors when evaluated."""

    rows: list[dict] = field(default_factory=list)
    stop_reason: str = ""
    adam_steps: int = 0
    lbfgs_iters: int = 0
    train_time: float = 0.0           # wall time spent optimising, evaluation excluded
    rollbacks: int = 0                # non-finite losses recovered from (train.on_nonfinite = "rollback")

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
    checkpoint(state): called with the trainer's state every `train.checkpoint_every` Adam steps, at the
                  end, and on Ctrl-C or SIGTERM.
    resume:       such a state: continue from it. With the model's parameters restored by the caller, the
                  Adam stage continues exactly as the uninterrupted run would have; a run stopped during
                  L-BFGS restarts L-BFGS (fresh curvature history) for the iterations it had left.
    group:        a `kinn.run.distributed.Group`: in a torchrun run, gradients and losses are averaged over
                  its ranks after every backward pass, and rank 0's parameters win after a hook.
    problem, form, cfg: what the run solves, for a family's own trainer (the DeepXDE row).
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


def weight(name: str, weights: dict[str, float]) -> float:
    """A term's weight: by its full name ("bc:left"), else its prefix ("bc"), else 1."""
    return float(weights.get(name, weights.get(name.split(":")[0], 1.0)))


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
        bad = ", ".join(f"{k}={v:.3g}" for k, v in terms.items())
        raise KinnError(f"non-finite loss at {where} step {step} ({bad}); lower the learning rate, use dtype "
                        "float64, set train.on_nonfinite = \"rollback\", or check the problem's data; the last "
                        "periodic checkpoint (train.checkpoint_every) holds the last good state")


def _sigterm_as_interrupt() -> Callable[[], None]:
    """Let SIGTERM (a scheduler's kill) stop training like Ctrl-C, so the last state is still written.
    Returns the function that restores the previous handler; signals can only be set from the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    return lambda: signal.signal(signal.SIGTERM, previous)


class _Loop:
    """The loop's moving parts: optimiser, schedule, history and clocks, in one place instead of closures."""

    def __init__(self, run: Run):
        self.run, self.cfg = run, run.cfg.train
        resume = run.resume or {}
        self.hist = History(list(resume.get("rows", [])), adam_steps=resume.get("adam_steps", 0),
                            lbfgs_iters=resume.get("lbfgs_iters", 0))
        self.t_start = time.perf_counter() - resume.get("train_time", 0.0)  # time already spent counts
        self.t_eval = 0.0
        self.params = [p for p in run.model.parameters() if p.requires_grad]
        self.opt = torch.optim.Adam(self.params, lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)
        self.sched = _schedule(self.opt, self.cfg)
        if "optimizer" in resume:
            self.opt.load_state_dict(resume["optimizer"])
            self.sched.load_state_dict(resume["scheduler"])
        self.good = None  # (parameters, optimiser state, step) at the last finite log step, for rollbacks
        self.bar = tqdm(total=self.cfg.steps + self.cfg.lbfgs, file=sys.stderr, dynamic_ncols=True, leave=False,
                        disable=None if self.cfg.progress and run.group.main else True)

    def elapsed(self) -> float:
        return time.perf_counter() - self.t_start - self.t_eval

    def loss(self, terms: dict) -> torch.Tensor:
        return sum(weight(k, self.run.weights) * v for k, v in terms.items())

    def backward(self, loss: torch.Tensor) -> torch.Tensor:
        """The gradients (averaged over the ranks of a distributed run) and the mean loss."""
        loss.backward()
        return self.run.group.average(loss, self.params)

    def evaluate(self) -> dict:  # evaluation time is not training time
        t = time.perf_counter()
        errors = self.run.score()
        self.t_eval += time.perf_counter() - t
        return errors

    def record(self, step: int, phase: str, loss: float, terms: dict, lr: float, errors=None) -> None:
        row = {"step": step, "phase": phase, "time": self.elapsed(), "loss": loss, "lr": lr}
        row.update({k: float(v.detach()) for k, v in terms.items()})
        row.update(errors or {})
        self.hist.rows.append(row)
        self.bar.set_postfix(_postfix(loss, row), refresh=False)

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
        return {"adam_steps": self.hist.adam_steps, "lbfgs_iters": self.hist.lbfgs_iters, "rows": self.hist.rows,
                "train_time": self.elapsed(), "optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict()}

    def run_hooks(self, step: int) -> None:
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

    def rollback(self, step: int, lr: float) -> bool:
        """On a non-finite loss with train.on_nonfinite = "rollback": back to the last finite log step's
        parameters and optimiser state at half the rate (True), at most 5 times."""
        if not (self.cfg.on_nonfinite == "rollback" and self.good and self.hist.rollbacks < 5):
            return False
        self.run.model.load_state_dict(self.good[0])
        self.opt.load_state_dict(self.good[1])
        self.sched.base_lrs = [rate / 2 for rate in self.sched.base_lrs]
        for group in self.opt.param_groups:
            group["lr"] /= 2
        self.hist.rollbacks += 1
        print(f"kinn: non-finite loss at step {step}: rolled back to step {self.good[2]}, learning rate "
              f"halved to {self.opt.param_groups[0]['lr']:.3g}", file=sys.stderr)
        return True


def fit(run: Run) -> History:
    """Train `run.model`'s parameters on the weighted sum of `run.terms()`; return the history."""
    loop = _Loop(run)
    cfg, hist, data = loop.cfg, loop.hist, run.data
    stop_on_sigterm = _sigterm_as_interrupt()
    try:
        # ---- stage 1: Adam ---------------------------------------------------------------------------
        loop.bar.update(hist.steps)
        for step in range(hist.adam_steps, cfg.steps):
            data.before_step(step)  # resample, redraw a quadrature, or take the next batch
            if run.hooks:
                loop.run_hooks(step)
            loop.opt.zero_grad(set_to_none=True)
            terms = run.terms()
            loss = loop.backward(loop.loss(terms))
            lr = loop.opt.param_groups[0]["lr"]  # the rate this step uses
            loop.opt.step()
            loop.sched.step()
            hist.adam_steps = step + 1
            last = step + 1 == cfg.steps
            eval_now = last or (cfg.eval_every and step % cfg.eval_every == 0)
            if eval_now or (cfg.log_every and step % cfg.log_every == 0):
                value = float(loss.detach())  # a CPU-GPU sync: only at log and evaluation steps
                if not math.isfinite(value) and loop.rollback(step, lr):
                    continue
                _finite(value, terms, step, "Adam")
                if cfg.on_nonfinite == "rollback":
                    loop.good = (copy.deepcopy(run.model.state_dict()), copy.deepcopy(loop.opt.state_dict()), step)
                errors = loop.evaluate() if eval_now else {}
                loop.record(step, "adam", value, terms, lr, errors)
                if (reason := loop.reached(errors)):
                    hist.stop_reason = reason
                    break
            if run.checkpoint is not None and cfg.checkpoint_every and (step + 1) % cfg.checkpoint_every == 0:
                _finite(float(loss.detach()), terms, step, "Adam")  # never checkpoint a diverged state
                run.checkpoint(loop.state())
            loop.bar.update()
            if (reason := loop.out_of_time()):
                hist.stop_reason = reason
                break

        # ---- stage 2: L-BFGS on the last point set (or a fresh draw a chunk), in chunks so progress is logged
        if cfg.lbfgs > hist.lbfgs_iters and not hist.stop_reason:
            hist.stop_reason = _lbfgs(loop)
        if not hist.stop_reason:
            hist.stop_reason = "step budget used"
    except KeyboardInterrupt:
        hist.stop_reason = "interrupted (Ctrl-C or SIGTERM)"
    finally:
        stop_on_sigterm()
        loop.bar.close()
        hist.train_time = loop.elapsed()
    if run.checkpoint is not None:
        run.checkpoint(loop.state())
    return hist


def _lbfgs(loop: _Loop) -> str:
    """The L-BFGS stage, in chunks of train.log_every iterations; returns why it stopped ("" at budget)."""
    cfg, hist, params = loop.cfg, loop.hist, loop.params
    chunk = max(1, min(cfg.log_every or cfg.lbfgs, cfg.lbfgs))
    opt = torch.optim.LBFGS(params, lr=cfg.lbfgs_lr, max_iter=chunk, history_size=cfg.lbfgs_history,
                            tolerance_grad=cfg.lbfgs_tolerance_grad, tolerance_change=cfg.lbfgs_tolerance_change,
                            line_search_fn="strong_wolfe")
    latest = {}

    def closure():
        opt.zero_grad(set_to_none=True)
        latest["terms"] = loop.run.terms()
        return loop.backward(loop.loss(latest["terms"]))

    done, evals, budget = hist.lbfgs_iters, 0, (cfg.lbfgs - hist.lbfgs_iters) * 5 // 4  # torch's max_eval rule
    while done < cfg.lbfgs:
        n = min(chunk, cfg.lbfgs - done)
        loop.run.data.before_chunk(hist.adam_steps + done)
        opt.param_groups[0]["max_iter"], opt.param_groups[0]["max_eval"] = n, max(budget - evals, 1)
        state = opt.state[opt._params[0]]
        iters0, evals0 = state.get("n_iter", 0), state.get("func_evals", 0)
        before = [p.detach().clone() for p in params]
        loss = float(opt.step(closure).detach())
        did = state.get("n_iter", 0) - iters0
        done, evals = done + did, evals + state.get("func_evals", 0) - evals0
        hist.lbfgs_iters = done
        loop.bar.update(did)
        _finite(loss, latest["terms"], hist.adam_steps + done, "L-BFGS")
        # torch returns the loss where the chunk began: a line search that wandered into non-finite
        # losses can leave non-finite weights behind, so check where it ended and keep the last good ones
        if not all(torch.isfinite(p).all() for p in params) or not math.isfinite(float(closure().detach())):
            with torch.no_grad():
                for p, b in zip(params, before):
                    p.copy_(b)
            loop.record(hist.adam_steps + done, "lbfgs", loss, latest["terms"], cfg.lbfgs_lr, loop.evaluate())
            return (f"L-BFGS: iterations {done - did + 1}..{done} ended at a non-finite loss; kept the weights of "
                    f"iteration {done - did}")
        stopped = did < n
        errors = loop.evaluate() if stopped or done >= cfg.lbfgs or (cfg.eval_every and done % cfg.eval_every < n) else {}
        loop.record(hist.adam_steps + done, "lbfgs", loss, latest["terms"], cfg.lbfgs_lr, errors)
        if (reason := loop.reached(errors) or loop.out_of_time()):
            return reason
        if stopped:
            return _why_lbfgs_stopped(cfg, params, done, evals, budget)
    return ""


def _why_lbfgs_stopped(cfg: TrainConfig, params, done: int, evals: int, budget: int) -> str:
    """L-BFGS stopped by itself: say why (torch does not)."""
    if evals >= budget:
        return f"L-BFGS: function-evaluation budget used ({evals} evaluations for {done} iterations)"
    g = torch.cat([p.grad.reshape(-1) for p in params if p.grad is not None])
    if g.abs().max() <= cfg.lbfgs_tolerance_grad:
        return f"L-BFGS: gradient below tolerance_grad={cfg.lbfgs_tolerance_grad:g} after {done} iterations"
    return f"L-BFGS: loss or step change below tolerance_change={cfg.lbfgs_tolerance_change:g} after {done} iterations"


def _postfix(loss: float, row: dict) -> dict:
    out = {"loss": f"{loss:.3e}"}
    rel = [v for k, v in row.items() if k.startswith("rel_l2/")]
    if rel:
        out["err"] = f"{max(rel):.2e}"
    return out
