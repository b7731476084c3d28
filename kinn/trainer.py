"""The one training loop: Adam, then optional L-BFGS. It knows nothing about PDEs.

`fit` receives closures: `loss_terms()` returns named loss terms, `evaluate()` returns held-out errors.
Everything a family or form needs from the loop arrives through them or through named `hooks`
(`hook(step, x) -> bool`, True when the hook replaced parameters, e.g. a KAN grid extension).
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

from .config import TrainConfig
from .distributed import Group
from .errors import KinnError


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


def fit(model: torch.nn.Module, loss_terms: Callable[[], dict], evaluate: Callable[[], dict],
        cfg: TrainConfig, *, weights: dict | None = None, resample: Callable | None = None,
        draw: Callable[[int], None] | None = None, hooks: dict | None = None, hook_points: Callable | None = None,
        checkpoint: Callable | None = None, resume: dict | None = None, group: Group | None = None) -> History:
    """Train `model`'s parameters on the weighted sum of `loss_terms()`; return the history.

    evaluate():    {"rel_l2/u": ..., ...} held-out errors; called every `cfg.eval_every` steps and at the end.
    resample():    draws new training points; called every `cfg.resample_every` Adam steps.
    draw(step):    a fresh random quadrature (an energy form's points.jitter), called before every Adam step
                   and before every L-BFGS chunk (a line search needs one fixed loss), with the step number:
                   draws that depend on the step alone keep a resumed run exact.
    hooks:         {name: hook(step, hook_points()) -> bool}, called before every Adam step.
    checkpoint(state):  called with the trainer's state (see `state` below) every `cfg.checkpoint_every`
                   Adam steps, at the end, and on Ctrl-C or SIGTERM.
    resume:        such a state: continue from it. With the model's parameters restored by the caller,
                   the Adam stage continues exactly as the uninterrupted run would have; a run stopped
                   during L-BFGS restarts L-BFGS (fresh curvature history) for the iterations it had left.
    group:         a `kinn.distributed.Group` in a torchrun run: gradients and losses are averaged over
                   its ranks after every backward pass, and rank 0's parameters win after a hook.
    """
    group = group or Group()
    weights = weights or {}
    resume = resume or {}
    hist, t_eval = History(), 0.0
    t_start = time.perf_counter() - resume.get("train_time", 0.0)  # time already spent counts
    hist.rows = list(resume.get("rows", []))
    hist.adam_steps, hist.lbfgs_iters = resume.get("adam_steps", 0), resume.get("lbfgs_iters", 0)

    def total(terms):
        return sum(weight(k, weights) * v for k, v in terms.items())

    def record(step, phase, loss, terms, lr, errors=None):
        row = {"step": step, "phase": phase, "time": time.perf_counter() - t_start - t_eval, "loss": loss, "lr": lr}
        row.update({k: float(v.detach()) for k, v in terms.items()})
        row.update(errors or {})
        hist.rows.append(row)

    def run_eval():  # evaluation time is not training time
        nonlocal t_eval
        t = time.perf_counter()
        errors = evaluate()
        t_eval += time.perf_counter() - t
        return errors

    def reached(errors):
        rel = [v for k, v in errors.items() if k.startswith("rel_l2/")]
        return cfg.target_error > 0 and rel and max(rel) <= cfg.target_error

    def out_of_time():
        return cfg.time_limit > 0 and time.perf_counter() - t_start - t_eval >= cfg.time_limit

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = _schedule(opt, cfg)
    if "optimizer" in resume:
        opt.load_state_dict(resume["optimizer"])
        sched.load_state_dict(resume["scheduler"])

    def state():
        return {"adam_steps": hist.adam_steps, "lbfgs_iters": hist.lbfgs_iters, "rows": hist.rows,
                "train_time": time.perf_counter() - t_start - t_eval, "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict()}

    def backward(loss):  # the gradients (averaged over the ranks of a distributed run) and the mean loss
        loss.backward()
        return group.average(loss, params)

    good = None  # (parameters, optimiser state, step) at the last finite log step, for rollbacks
    stop_on_sigterm = _sigterm_as_interrupt()
    bar = tqdm(total=cfg.steps + cfg.lbfgs, disable=None if cfg.progress and group.main else True, file=sys.stderr,
               dynamic_ncols=True, leave=False)
    try:
        # ---- stage 1: Adam -------------------------------------------------------------------------
        bar.update(hist.steps)
        for step in range(hist.adam_steps, cfg.steps):
            if resample is not None and cfg.resample_every and step and step % cfg.resample_every == 0:
                resample()
            if draw is not None:
                draw(step)
            if hooks:
                x = hook_points()
                changed = [h(step, x) for h in hooks.values()]  # call every hook, not just the first
                if any(changed):  # new parameters: the optimiser's state no longer matches them
                    params = [p for p in model.parameters() if p.requires_grad]
                    group.broadcast(params)  # each rank refitted on its own points: keep rank 0's
                    lr = opt.param_groups[0]["lr"]
                    opt = torch.optim.Adam(params, lr=lr, weight_decay=cfg.weight_decay)
                    sched = _schedule(opt, cfg)
                    for param_group in opt.param_groups:
                        param_group["lr"] = lr
            opt.zero_grad(set_to_none=True)
            terms = loss_terms()
            loss = backward(total(terms))
            lr = opt.param_groups[0]["lr"]  # the rate this step uses
            opt.step()
            sched.step()
            hist.adam_steps = step + 1
            last = step + 1 == cfg.steps
            eval_now = last or (cfg.eval_every and step % cfg.eval_every == 0)
            if eval_now or (cfg.log_every and step % cfg.log_every == 0):
                value = float(loss.detach())  # a CPU-GPU sync: only at log and evaluation steps
                if not math.isfinite(value) and cfg.on_nonfinite == "rollback" and good and hist.rollbacks < 5:
                    # back to the last finite log step's parameters and optimiser state, at half the rate
                    model.load_state_dict(good[0])
                    opt.load_state_dict(good[1])
                    sched.base_lrs = [lr / 2 for lr in sched.base_lrs]
                    for param_group in opt.param_groups:
                        param_group["lr"] /= 2
                    hist.rollbacks += 1
                    print(f"kinn: non-finite loss at step {step}: rolled back to step {good[2]}, learning rate "
                          f"halved to {opt.param_groups[0]['lr']:.3g}", file=sys.stderr)
                    continue
                _finite(value, terms, step, "Adam")
                if cfg.on_nonfinite == "rollback":
                    good = (copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict()), step)
                errors = run_eval() if eval_now else {}
                record(step, "adam", value, terms, lr, errors)
                bar.set_postfix(_postfix(value, errors), refresh=False)
                if reached(errors):
                    hist.stop_reason = f"target error {cfg.target_error:g} reached"
                    break
            if checkpoint is not None and cfg.checkpoint_every and (step + 1) % cfg.checkpoint_every == 0:
                _finite(float(loss.detach()), terms, step, "Adam")  # never checkpoint a diverged state
                checkpoint(state())
            bar.update()
            if out_of_time():
                hist.stop_reason = f"time limit {cfg.time_limit:g} s reached"
                break

        # ---- stage 2: L-BFGS on the last point set (or a fresh draw a chunk), in chunks so progress is logged
        if cfg.lbfgs > hist.lbfgs_iters and not hist.stop_reason:
            hist.stop_reason = _lbfgs(params, loss_terms, total, backward, cfg, hist, record, run_eval, reached,
                                      out_of_time, bar, draw)
        if not hist.stop_reason:
            hist.stop_reason = "step budget used"
    except KeyboardInterrupt:
        hist.stop_reason = "interrupted (Ctrl-C or SIGTERM)"
    finally:
        stop_on_sigterm()
        bar.close()
        hist.train_time = time.perf_counter() - t_start - t_eval
    if checkpoint is not None:
        checkpoint(state())
    return hist


def _lbfgs(params, loss_terms, total, backward, cfg, hist, record, run_eval, reached, out_of_time, bar, draw) -> str:
    chunk = max(1, min(cfg.log_every or cfg.lbfgs, cfg.lbfgs))
    opt = torch.optim.LBFGS(params, lr=cfg.lbfgs_lr, max_iter=chunk, history_size=cfg.lbfgs_history,
                            tolerance_grad=cfg.lbfgs_tolerance_grad, tolerance_change=cfg.lbfgs_tolerance_change,
                            line_search_fn="strong_wolfe")
    latest = {}

    def closure():
        opt.zero_grad(set_to_none=True)
        terms = loss_terms()
        latest["terms"] = terms
        return backward(total(terms))

    done, evals, budget = hist.lbfgs_iters, 0, (cfg.lbfgs - hist.lbfgs_iters) * 5 // 4  # torch's max_eval rule
    while done < cfg.lbfgs:
        n = min(chunk, cfg.lbfgs - done)
        if draw is not None:  # a fixed rule would let L-BFGS fold the field between its nodes
            draw(hist.adam_steps + done)
        opt.param_groups[0]["max_iter"], opt.param_groups[0]["max_eval"] = n, max(budget - evals, 1)
        state = opt.state[opt._params[0]]
        iters0, evals0 = state.get("n_iter", 0), state.get("func_evals", 0)
        before = [p.detach().clone() for p in params]
        loss = float(opt.step(closure).detach())
        did = state.get("n_iter", 0) - iters0
        done, evals = done + did, evals + state.get("func_evals", 0) - evals0
        hist.lbfgs_iters = done
        bar.update(did)
        _finite(loss, latest["terms"], hist.adam_steps + done, "L-BFGS")
        # torch returns the loss where the chunk began: a line search that wandered into non-finite
        # losses can leave non-finite weights behind, so check where it ended and keep the last good ones
        if not all(torch.isfinite(p).all() for p in params) or not math.isfinite(float(closure().detach())):
            with torch.no_grad():
                for p, b in zip(params, before):
                    p.copy_(b)
            record(hist.adam_steps + done, "lbfgs", loss, latest["terms"], cfg.lbfgs_lr, run_eval())
            return (f"L-BFGS: iterations {done - did + 1}..{done} ended at a non-finite loss; kept the weights of "
                    f"iteration {done - did}")
        stopped = did < n
        errors = run_eval() if stopped or done >= cfg.lbfgs or (cfg.eval_every and done % cfg.eval_every < n) else {}
        record(hist.adam_steps + done, "lbfgs", loss, latest["terms"], cfg.lbfgs_lr, errors)
        bar.set_postfix(_postfix(loss, errors), refresh=False)
        if reached(errors):
            return f"target error {cfg.target_error:g} reached"
        if out_of_time():
            return f"time limit {cfg.time_limit:g} s reached"
        if stopped:  # L-BFGS stopped by itself: say why (torch does not)
            if evals >= budget:
                return f"L-BFGS: function-evaluation budget used ({evals} evaluations for {done} iterations)"
            g = torch.cat([p.grad.reshape(-1) for p in params if p.grad is not None])
            if g.abs().max() <= cfg.lbfgs_tolerance_grad:
                return f"L-BFGS: gradient below tolerance_grad={cfg.lbfgs_tolerance_grad:g} after {done} iterations"
            return f"L-BFGS: loss or step change below tolerance_change={cfg.lbfgs_tolerance_change:g} after {done} iterations"
    return ""


def _postfix(loss: float, errors: dict) -> dict:
    out = {"loss": f"{loss:.3e}"}
    rel = [v for k, v in errors.items() if k.startswith("rel_l2/")]
    if rel:
        out["err"] = f"{max(rel):.2e}"
    return out
