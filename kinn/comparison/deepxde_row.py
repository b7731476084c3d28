"""The DeepXDE reference row: a kinn strong-form problem solved by DeepXDE's own `Model`.

`DeepXDE` is a family whose trainer is DeepXDE's `Model` instead of kinn's loop: `kinn.solve(problem,
DeepXDE())` (or `solve` here) runs it through kinn's one pipeline, so its run directory has the same layout,
it trains on kinn's point sets and kinn's scorer scores it on kinn's held-out points. The translation:

    domain                  the same deepxde geometry object (`problem.domain`)
    strong residual         `pde(x, y)`: y wrapped as a kinn field handle; the residual's columns returned
                            as one tensor, so DeepXDE's MSE is exactly kinn's "pde" term
    soft Dirichlet/Initial  `dde.icbc.PointSetBC` on kinn's own sampled points for that condition
    soft Neumann            `dde.icbc.PointSetOperatorBC`, one per component, ∂u/∂n with kinn's normals
    network                 `dde.nn.FNN([d, *widths, C], activation, "Glorot normal")` inside kinn's
                            `FieldModel`: the same input scaling to [-1, 1] and hard-condition transforms as
                            every kinn family
    optimisers              `Model.compile("adam", lr, loss_weights)`, `Model.train(iterations=steps)`,
                            then `compile("L-BFGS")` when lbfgs > 0

Why PointSetBC rather than DirichletBC: DeepXDE's DirichletBC takes its points by filtering the PDE points
(the anchors) with `on_boundary`, so boundary points would also enter the PDE residual's mean, and a point
on two boundary parts would serve both conditions. PointSetBC takes kinn's point sets as they are: the PDE
term averages over exactly kinn's interior points and each condition over exactly its own points.

DeepXDE runs L-BFGS in chunks of `iter_per_step` iterations and would run whole chunks past its maxiter;
the row caps the last chunk, so that it does exactly the budgeted iterations.

What cannot be translated is refused by `check`, with the reason: energy and inverse forms, conditions
other than Dirichlet, Neumann and Initial, point resampling, an L-BFGS rate other than 1, skip connections.
Learning-rate schedules translate to `compile(decay=...)`: DeepXDE's PyTorch backend builds the same torch
schedulers from them and steps them once per Adam step, as kinn does.
"""
from __future__ import annotations

import contextlib
import io as _io
import time

import numpy as np
import torch

from kinn.errors import KinnError
from kinn.forms.points import columns
from kinn.models.family import Family
from kinn.models.field import FieldModel
from kinn.pde import geometry, ops
from kinn.pde.conditions import Condition, Dirichlet, Initial, Neumann
from kinn.pde.fields import AutogradBackend, Field
from kinn.pde.problem import Problem
from kinn.run.config import TrainConfig
from kinn.run.trainer import History, Run, weight
from kinn.solvers.mlp import MLPConfig

dde = geometry.deepxde
NAME = "deepxde"


class DeepXDE(Family):
    """The reference row as a family: MLP options (widths, activation) for DeepXDE's FNN; strong form only.

    It is not in the registry: `kinn compare --families ...,deepxde` adds it as a row.
    """

    name = NAME
    Config = MLPConfig
    forms = frozenset({"strong"})
    settings_of = "mlp"  # DeepXDE's FNN is the MLP's network: it starts from the MLP's recommended settings

    def check(self, problem: Problem, form: str, config: MLPConfig | None = None,
              train: TrainConfig | None = None) -> None:
        """Raise `KinnError` naming what DeepXDE cannot be given for this problem and run config."""
        if form != "strong":
            raise KinnError(f"the deepxde row cannot translate the {form} form of '{problem.name}': "
                            "DeepXDE's PDE data solves strong (collocation) forms only")
        if problem.subdomains:
            raise KinnError(f"the deepxde row cannot translate the subdomains of '{problem.name}' "
                            f"({', '.join(problem.subdomains)}): DeepXDE's Model trains one network")
        for c in problem.form(form).bcs:
            if isinstance(c, Condition) and not isinstance(c, (Dirichlet, Neumann, Initial)):
                raise KinnError(f"the deepxde row cannot translate {c.describe()}: only Dirichlet, Neumann "
                                "and Initial conditions have DeepXDE equivalents")
        if config is not None and config.skip:
            raise KinnError("the deepxde row cannot translate MLP skip connections: DeepXDE's FNN has none")
        if train is None:
            return
        if train.resample_every:
            raise KinnError("the deepxde row cannot translate train.resample_every: DeepXDE's resampler "
                            "does not draw kinn's point stream; set it to 0")
        if train.lbfgs and train.lbfgs_lr != 1.0:
            raise KinnError(f"the deepxde row cannot translate train.lbfgs_lr={train.lbfgs_lr:g}: "
                            "DeepXDE's L-BFGS always uses 1")

    def build(self, in_dim: int, out_dim: int, config: MLPConfig) -> torch.nn.Module:
        return dde.nn.FNN([in_dim, *config.widths, out_dim], config.activation, "Glorot normal")

    def precision(self, dtype: torch.dtype) -> contextlib.AbstractContextManager:
        return _precision(dtype)

    @staticmethod
    def trainer(run: Run) -> History:
        return train(run)


class _Net(dde.nn.NN):
    """DeepXDE's `Model` trains a `dde.nn.NN`; this one evaluates kinn's `FieldModel` around the FNN."""

    def __init__(self, model: FieldModel):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x)


@contextlib.contextmanager
def _precision(dtype: torch.dtype):
    """DeepXDE reads its float type from a global and from torch's default dtype (what
    `dde.config.set_default_float` sets); set both for the run and restore them after, since kinn samples
    in float64 and never changes torch's default."""
    real, default = dde.config.real.precision, torch.get_default_dtype()
    (dde.config.real.set_float64 if dtype == torch.float64 else dde.config.real.set_float32)()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        getattr(dde.config.real, f"set_float{real}")()
        torch.set_default_dtype(default)


@contextlib.contextmanager
def _lbfgs_options(tc: TrainConfig):
    """DeepXDE's global L-BFGS options for this run, restored after. Its per-call chunk (`iter_per_step`) is
    computed only when deepxde is imported, so it is set here too: a divisor of the budget, so the chunks
    add up to exactly `lbfgs` iterations; at most `eval_every` where possible, so errors are logged as
    often; and at least 2, since DeepXDE takes a chunk of one iteration for convergence and stops."""
    opts = dde.optimizers.config.LBFGS_options
    saved = dict(opts)
    cap = min(tc.lbfgs, max(tc.eval_every or tc.lbfgs, 2))
    chunk = max((d for d in range(2, cap + 1) if tc.lbfgs % d == 0), default=tc.lbfgs)
    dde.optimizers.set_LBFGS_options(maxcor=tc.lbfgs_history, ftol=tc.lbfgs_tolerance_change,
                                     gtol=tc.lbfgs_tolerance_grad, maxiter=tc.lbfgs, maxfun=tc.lbfgs * 5 // 4)
    opts["iter_per_step"], opts["fun_per_step"] = chunk, chunk * 5 // 4
    try:
        yield
    finally:
        opts.clear()
        opts.update(saved)


def iterations(opt: torch.optim.Optimizer) -> int:
    """L-BFGS iterations done, by torch's own count: DeepXDE's leaves out a chunk of one iteration, which it
    takes for convergence."""
    return opt.state[opt.param_groups[0]["params"][0]].get("n_iter", 0)


def _field(problem: Problem, x: torch.Tensor, y: torch.Tensor) -> Field:
    return Field(AutogradBackend(y, x), problem.fields, problem.coords, problem.n_space)


def _data(problem: Problem, form, raw: dict[str, np.ndarray], weights: dict, dtype, device):
    """DeepXDE's `PDE` data on kinn's point sets; its loss weights and the kinn names of its loss terms."""
    bcs, names, loss_weights, offset = [], ["pde"], [weight("pde", weights)], 0
    for name, c in form.soft().items():
        x = raw[name]
        comps = c.components(problem.fields)
        target = c.target(torch.as_tensor(x, dtype=torch.float64, device="cpu"), len(comps)).numpy()  # (N, C)
        if isinstance(c, Neumann):
            normals = torch.as_tensor(raw[name + "/normal"], dtype=dtype, device=device)  # (N, n_space)
            for j, k in enumerate(comps):  # one BC per component, weights split so the sum is kinn's mean
                bcs.append(dde.icbc.PointSetOperatorBC(x, target[:, j : j + 1], _normal_derivative(
                    problem, k, normals, offset)))
                names.append(name if len(comps) == 1 else f"{name}/{problem.fields[k]}")
                loss_weights.append(weight(name, weights) / len(comps))
                offset += len(x)
        else:
            bcs.append(dde.icbc.PointSetBC(x, target, component=comps[0] if len(comps) == 1 else comps))
            names.append(name)
            loss_weights.append(weight(name, weights))
            offset += len(x)

    def pde(x, y):  # one (N, R) tensor: DeepXDE's MSE over it equals kinn's mean over all residual columns
        return columns(form.residual(_field(problem, x, y), x))

    data = dde.data.PDE(problem.domain, pde, bcs, num_domain=0, num_boundary=0, anchors=raw["pde"])
    return data, loss_weights, names


def _normal_derivative(problem: Problem, k: int, normals: torch.Tensor, beg: int):
    """∂u_k/∂n for PointSetOperatorBC, which evaluates it on all of DeepXDE's training inputs and keeps the
    rows [beg, beg + N) that hold this condition's points; the other rows get zero normals, so zero."""

    def dudn(x, y, _X):
        n = torch.nn.functional.pad(normals, (0, 0, beg, len(x) - beg - len(normals)))  # (len(x), n_space)
        return ops.normal(_field(problem, x, y), n)[:, k : k + 1]

    return dudn


def _decay(tc: TrainConfig) -> tuple | None:
    """kinn's schedule (`kinn.run.trainer._schedule`) as DeepXDE's `decay`: the same torch scheduler."""
    steps = max(tc.steps, 1)
    return {"none": None, "cosine": ("cosine", steps, 0.0), "step": ("step", max(tc.step_size, 1), tc.gamma),
            "exponential": ("exponential", tc.gamma ** (1 / steps))}[tc.schedule]


class _Clock(dde.callbacks.Callback):
    """Logs kinn-style history rows, with training time that excludes kinn's evaluation and the pauses
    between DeepXDE's train calls (DeepXDE's own loss display, every `eval_every` steps, counts as its
    training time); evaluates held-out errors every `eval_every` steps; stops on the time limit or the
    target error, as kinn's trainer does."""

    def __init__(self, tc: TrainConfig, score, names: list[str], loss_weights: list[float]):
        super().__init__()
        self.tc, self.score, self.names, self.loss_weights = tc, score, names, loss_weights
        self.rows, self.stop_reason, self.train_time = [], "", 0.0
        self._since = None

    def on_train_begin(self):
        self._since = time.perf_counter()

    def on_train_end(self):
        self.train_time += time.perf_counter() - self._since

    def elapsed(self) -> float:
        return self.train_time + time.perf_counter() - self._since

    def on_epoch_begin(self):
        if self.model.opt_name == "L-BFGS":  # DeepXDE runs whole chunks, past its maxiter: cap the last one
            group = self.model.opt.param_groups[0]
            group["max_iter"] = min(dde.optimizers.config.LBFGS_options["iter_per_step"],
                                    self.tc.lbfgs - iterations(self.model.opt))
            group["max_eval"] = group["max_iter"] * 5 // 4

    def on_epoch_end(self):
        tc, state = self.tc, self.model.train_state
        lbfgs = self.model.opt_name == "L-BFGS"
        every = tc.eval_every or tc.steps
        if lbfgs or state.step == tc.steps or (every and state.step % every == 0):
            self.log(state, lbfgs)
        if lbfgs and iterations(self.model.opt) >= tc.lbfgs:
            self.model.stop_training = True  # the budget is used: not a stop reason
        if tc.time_limit and self.elapsed() >= tc.time_limit:
            self.stop(f"time limit {tc.time_limit:g} s reached")

    def log(self, state, lbfgs: bool):
        t, start = self.elapsed(), time.perf_counter()
        errors = self.score()
        self._since += time.perf_counter() - start  # evaluation is not training time
        losses = np.asarray(state.loss_train, dtype=float)  # weighted, from DeepXDE's display at this step
        row = {"step": state.step, "phase": "lbfgs" if lbfgs else "adam", "time": t, "loss": float(losses.sum()),
               "lr": 1.0 if lbfgs else self.model.opt.param_groups[0]["lr"]}
        row.update({n: float(v / w) if w else float("nan")
                    for n, v, w in zip(self.names, losses, self.loss_weights)})
        row.update(errors)
        self.rows.append(row)
        rel = [v for k, v in errors.items() if k.startswith("rel_l2/")]
        if self.tc.target_error > 0 and rel and max(rel) <= self.tc.target_error:
            self.stop(f"target error {self.tc.target_error:g} reached")

    def stop(self, reason: str):
        self.stop_reason = self.stop_reason or reason
        self.model.stop_training = True


def train(run: Run) -> History:
    """Train `run.model` with DeepXDE's `Model` on the run's point sets (the DeepXDE family's trainer)."""
    problem, form, tc = run.problem, run.form, run.cfg.train
    dtype, device = run.model.lo.dtype, run.model.lo.device
    # DeepXDE prints progress and warnings to stdout, which `--json` output must not carry. It makes its
    # tensors on torch's default device; on the CPU a device mode would only add overhead to every op.
    on_device = contextlib.nullcontext() if device.type == "cpu" else device
    with _precision(dtype), on_device, contextlib.redirect_stdout(_io.StringIO()):
        data, loss_weights, names = _data(problem, form, run.data.raw, run.weights, dtype, device)
        clock = _Clock(tc, run.score, names, loss_weights)
        dmodel = dde.Model(data, _Net(run.model))
        try:
            dmodel.compile("adam", lr=tc.lr, loss_weights=loss_weights, decay=_decay(tc), verbose=0)
            dmodel.train(iterations=tc.steps, display_every=max(tc.eval_every or tc.steps, 1), callbacks=[clock],
                         verbose=0)
            adam_steps = dmodel.train_state.step
            if tc.lbfgs and not clock.stop_reason:
                with _lbfgs_options(tc):
                    dmodel.compile("L-BFGS", loss_weights=loss_weights, verbose=0)
                    dmodel.train(callbacks=[clock], verbose=0)
        except KeyboardInterrupt:
            clock.stop_reason = "interrupted (Ctrl-C)"
            adam_steps = min(dmodel.train_state.step, tc.steps)
    lbfgs_iters = iterations(dmodel.opt) if tc.lbfgs else 0
    stop = clock.stop_reason or (
        f"L-BFGS: stopped by DeepXDE's convergence test (a chunk of one iteration) after {lbfgs_iters} iterations"
        if lbfgs_iters < tc.lbfgs else "step budget used")
    history = History(clock.rows, stop, adam_steps, lbfgs_iters, clock.train_time)
    if run.checkpoint is not None:  # the weights and DeepXDE's optimiser; not resumable by kinn's loop
        run.checkpoint({"adam_steps": adam_steps, "lbfgs_iters": lbfgs_iters, "optimizer": dmodel.opt.state_dict()})
    return history


def solve(problem: str | Problem, form: str | None = None, **kwargs):
    """`kinn.solve(problem, DeepXDE(), form, **kwargs)`: a problem's strong form solved by DeepXDE's `Model`."""
    from kinn.run.pipeline import solve as kinn_solve

    return kinn_solve(problem, DeepXDE(), form, **kwargs)
