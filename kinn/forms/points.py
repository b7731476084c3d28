"""What the pointwise forms (strong, energy, inverse problems) share: a model read at points, point sets
drawn from seed streams, scoring on held-out points, and the helpers that evaluate a field handle.

`PointForm` is the abstract base of those forms: subclasses say which point sets they train on
(`sample`), their loss terms and their residual; everything else — the model wrapper, the training data
(`PointSets`), the scorer (`PointScorer`) and prediction — is here, once.
"""
from __future__ import annotations

from abc import abstractmethod
from typing import Callable, Sequence

import numpy as np
import torch

from kinn.data.reference import load_reference
from kinn.errors import KinnError
from kinn.forms.adaptive import AdaptiveSampling
from kinn.forms.base import Data, Env, Form, Scorer, write_summary
from kinn.models import wrap
from kinn.pde import geometry, ops
from kinn.pde.conditions import Initial, Interface, Neumann, SegmentResidual, hard_transform
from kinn.pde.fields import Field, NeedsAutograd
from kinn.run import evaluate, figures, rundir
from kinn.run.config import PointsConfig


def field_at(model, problem, x: torch.Tensor, create_graph: bool = True) -> Field:
    """The model's field handle at points x: the model chooses the derivative backend."""
    return Field(model.backend(x, create_graph), problem.fields, problem.coords, problem.n_space)


def at_points(model, problem, x: torch.Tensor, fn, create_graph: bool = True):
    """fn(u, x) of the field handle u at points x. fn receives the points the field's derivatives are taken
    with respect to, so a coefficient computed from them (K(x) in ∇·(K∇u)) is differentiated too. Where
    jets cannot give what fn asks for (mixed derivatives of a fused KAN), "auto" switches the model to
    autograd for good; a forced "jet" is an error."""
    def call():
        u = field_at(model, problem, x, create_graph)
        return fn(u, u.backend.x)

    try:
        return call()
    except NeedsAutograd as e:
        if model.derivatives == "jet":
            raise KinnError(f"derivatives = 'jet' cannot evaluate problem '{problem.name}': {e}; "
                            "use 'auto' or 'autograd'") from None
        model.jets_possible = False
        return call()


def columns(r) -> torch.Tensor:
    """A residual may return one tensor or several (a system); stack them as columns (N, R)."""
    if isinstance(r, (tuple, list)):
        return torch.cat([columns(t) for t in r], dim=1)
    r = r.values if isinstance(r, Field) else r
    return r.reshape(len(r), -1)


def term_name(cond, i: int) -> str:
    kind = "ic" if isinstance(cond, Initial) else "bc"
    return f"{kind}:{cond.name or type(cond).__name__.lower() + str(i)}"


def segments(bcs) -> dict:
    """The conditions on inner segments (`Interface`, `SegmentResidual`) by loss-term name."""
    return {f"{'interface' if isinstance(c, Interface) else 'bc'}:{c.name or type(c).__name__.lower() + str(i)}": c
            for i, c in enumerate(bcs) if isinstance(c, (Interface, SegmentResidual))}


def segment_terms(model, problem, name: str, c, x: torch.Tensor, weight: torch.Tensor | None = None) -> dict:
    """The loss terms of one inner-segment condition at its points x: an interface's value mismatch (and
    normal-flux mismatch with `flux`), or a segment residual; mean squares, weighted by a quadrature rule's
    `weight` where given. A model with one part (one function everywhere) stands for every part."""
    def mean(sq):
        sq = sq.reshape(len(x), -1).sum(1)
        return sq.mean() if weight is None else (weight * sq).sum() / weight.sum()

    n = torch.tensor(c.normal(), dtype=x.dtype, device=x.device).expand(len(x), 2)
    if isinstance(c, SegmentResidual):
        part = model.part(c.part)
        return {name: mean(columns(at_points(part, problem, x, lambda u, x: c.fn(u, x, n))).square())}
    a, b = model.part(c.a), model.part(c.b)
    terms = {name: mean((a(x) - b(x)).square())}
    if c.flux:
        flux = [ops.normal(field_at(m, problem, x), n) for m in (a, b)]
        terms[name + "/flux"] = mean((flux[0] - flux[1]).square())
    return terms


class PointForm(Form):
    """A form that trains a model of the points (`kinn.models`): the base of the strong and energy forms
    and of inverse problems. Subclasses hold `bcs` and implement `sample`, `loss`, `residuals`, `weights`.

    unknowns, observations: an inverse problem's unknown scalars and fields and its data (none here).
    quadrature:             whether `sample` gives a quadrature rule that points.jitter can redraw.
    """

    bcs: Sequence = ()
    unknowns: Sequence = ()
    observations = None

    @abstractmethod
    def sample(self, problem, points: PointsConfig) -> dict[str, np.ndarray]:
        """The training point sets {name: (N, D) array, name/normal: ..., name/weight: ...}."""

    @abstractmethod
    def residuals(self, model, problem, x: torch.Tensor, create_graph: bool = True) -> torch.Tensor | None:
        """The PDE residual at x (N, R), or None for a form without one (an energy)."""

    def redraw(self, pts: dict[str, torch.Tensor], gen: torch.Generator) -> dict[str, torch.Tensor]:
        """A fresh random draw of the form's quadrature (points.jitter); refused by forms without one."""
        raise KinnError(f"points.jitter draws the quadrature of an energy form; the {self.kind} form has none "
                        "(fresh collocation points: train.resample_every)")

    def conditions(self) -> tuple:
        return tuple(self.bcs)

    def transform(self, problem) -> Callable | None:
        """The hard conditions folded into one output transform (None without any)."""
        return hard_transform(self.bcs, problem.fields, problem.t_index,
                              problem.domain.timedomain.t0 if problem.time_dependent else 0.0)

    def build(self, problem, family, cfg):
        return wrap(problem, self, family, cfg)

    def data(self, problem, model, cfg, env: Env, resume: dict | None = None) -> PointSets:
        if cfg.points.jitter and not self.quadrature:
            self.redraw({}, None)  # the refusal, before anything is drawn
        return PointSets(self, problem, model, cfg, env, resume)

    def scorer(self, problem, model, cfg, env: Env, data: Data | None = None) -> PointScorer:
        return PointScorer(self, problem, model, cfg, env)

    def predict(self, model, problem, x: np.ndarray, env: Env) -> np.ndarray:
        return evaluate.predict(model, x, env.dtype, env.device)


class PointSets(Data):
    """A pointwise form's training points: draw k of the form's point sets comes from seed stream
    ("train", k), so a run and its resumption see the same points; with train.resample_every a fresh
    draw every that many Adam steps; with points.jitter a fresh stratified quadrature every Adam step and
    L-BFGS chunk, a pure function of (seed, step); with points.adaptive, interior points chosen by the
    residual every points.adapt_every Adam steps (`kinn.forms.adaptive`)."""

    def __init__(self, form: PointForm, problem, model, cfg, env: Env, resume: dict | None = None):
        self.form, self.problem, self.cfg, self.env = form, problem, cfg, env
        self.draws = resume["draws"] - 1 if resume else 0  # redraw the set the stopped run trained on
        self.adaptive = AdaptiveSampling(form, problem, model, cfg, env, resume)
        self.batch = self._sample()
        self.gen = torch.Generator(device=env.device)

    def _sample(self) -> dict[str, torch.Tensor]:
        with geometry.numpy_seed(geometry.seed_stream(self.env.seed, "train", self.draws)):
            self.raw = self.env.group.shard(self.form.sample(self.problem, self.cfg.points))  # float64 numpy
        self.draws += 1
        return self._with_adapted(self.env.tensors(self.raw))

    def _with_adapted(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self.adaptive.on:
            batch["pde"] = self.env.tensors({"pde": self.adaptive.interior(self.raw["pde"])})["pde"]
            self.report = {"points/pde": len(batch["pde"])}
        return batch

    def _redraw(self, step: int) -> None:
        if self.cfg.points.jitter:
            self.gen.manual_seed(geometry.seed_stream(self.env.seed, "jitter", step))
            self.batch.update(self.form.redraw(self.batch, self.gen))

    def before_step(self, step: int) -> None:
        every = self.cfg.train.resample_every
        if every and step and step % every == 0:
            self.batch.update(self._sample())
        if self.adaptive.due(step):
            self.adaptive.adapt()
            self.batch.update(self._with_adapted({}))
        self._redraw(step)

    def before_chunk(self, step: int) -> None:
        self._redraw(step)  # a fixed rule would let L-BFGS fold the field between its nodes

    def hook_points(self) -> torch.Tensor:
        return self.batch["pde"].detach()

    def state(self) -> dict:
        return {"draws": self.draws, **self.adaptive.state()}


def eval_set(problem, form: PointForm, cfg) -> tuple[np.ndarray, np.ndarray | None]:
    """Held-out evaluation points and reference values (None for a problem without an exact solution or
    reference), from a stream no training draw uses; an inverse problem's observation nodes are training
    points and never among them."""
    with geometry.numpy_seed(geometry.seed_stream(cfg.train.seed, "eval")):
        if problem.exact is None and problem.reference is not None:
            ref = load_reference(problem.reference, problem)
            idx = np.arange(len(ref.points))
            if form.observations is not None:
                seen = {tuple(p) for p in form.observations.load(problem)[0]}
                idx = np.array([i for i in idx if tuple(ref.points[i]) not in seen], dtype=int)
            if len(idx) > cfg.points.n_eval:
                idx = np.sort(np.random.choice(idx, cfg.points.n_eval, replace=False))
            return ref.points[idx], ref.node_values[idx]
        x = geometry.interior(problem.domain, cfg.points.n_eval)
        return x, problem.reference_values(x) if problem.has_reference else None


def condition_misfits(form: PointForm, problem, model, seed: int, n: int = 2000) -> dict[str, float]:
    """The RMS misfit of each Dirichlet, Initial and Neumann condition (soft or hard: a hard one checks its
    transform) on n held-out points of its boundary part: {"bc:left": ..., "ic:initial1": ...}."""
    from kinn.pde.conditions import Dirichlet

    out = {}
    for i, c in enumerate(form.bcs):
        if not isinstance(c, (Dirichlet, Initial, Neumann)):
            continue
        with geometry.numpy_seed(geometry.seed_stream(seed, "eval/condition", i)):
            x = (geometry.initial(problem.domain, n) if isinstance(c, Initial)
                 else geometry.boundary(problem.domain, n, c.on))
        normal = geometry.normals(problem.domain, x) if isinstance(c, Neumann) else None
        p = next(model.parameters())
        xt = torch.as_tensor(x, dtype=p.dtype, device=p.device)
        comps = c.components(problem.fields)
        if normal is None:
            with torch.no_grad():
                value = model(xt)[:, comps]
        else:
            value = ops.normal(field_at(model, problem, xt, create_graph=False),
                               torch.as_tensor(normal, dtype=p.dtype, device=p.device))[:, comps]
        miss = (value - c.target(xt, len(comps))).detach().double()
        out[term_name(c, i)] = float(miss.square().mean().sqrt())
    return out


def derived_errors(problem, model, x: np.ndarray, dtype, device, chunk: int = 8192) -> dict[str, float]:
    """Errors of the problem's derived quantities (`Problem.derived`, e.g. von Mises stress) at x:
    {"rel_l2/mises": ..., "max/mises": ...}, the prediction through the model's own derivatives."""
    out = {}
    for name, fn in problem.derived.items():
        pred = []
        for xb in torch.as_tensor(x).split(chunk):
            xb = xb.to(device=device, dtype=dtype)
            value = at_points(model, problem, xb, fn, create_graph=False)
            pred.append(value.detach().double().cpu().reshape(-1))
        out.update(evaluate.errors(torch.cat(pred).numpy()[:, None], problem.derived_reference(name, x)[:, None], (name,)))
    return out


class PointScorer(Scorer):
    """Errors of the fields (and the problem's derived quantities, and an inverse problem's unknowns) on
    held-out points against the exact solution or the reference data; the residual RMS there. Without a
    reference it measures what it honestly can (`checks`): the conditions' misfits on held-out boundary
    points, the potential on a held-out quadrature for an energy form, and the problem's own `checks`."""

    def __init__(self, form: PointForm, problem, model, cfg, env: Env):
        self.form, self.problem, self.model, self.env, self.cfg = form, problem, model, env, cfg
        self.x, self.y = eval_set(problem, form, cfg)
        self.eval_points, self.pred, self.residual = self.x, None, None
        if self.y is None and cfg.train.target_error > 0:
            raise KinnError(f"train.target_error needs a reference, and problem '{problem.name}' has neither an "
                            "exact solution nor reference data; stop by steps or train.time_limit instead")

    def _errors(self, pred: np.ndarray) -> dict[str, float]:
        fields = {} if self.y is None else evaluate.errors(pred, self.y, self.problem.fields)
        return {**fields, **self.model.unknown_report()}

    def during(self) -> dict[str, float]:
        return self._errors(self.form.predict(self.model, self.problem, self.x, self.env))

    def final(self) -> tuple[dict[str, float], float | None]:
        model, problem, env = self.model, self.problem, self.env
        self.pred = self.form.predict(model, problem, self.x, env)
        errors = self._errors(self.pred)
        if model.lattice:  # derivatives on its own nodes only: the residual there, in one piece
            x_res = model.nodes().cpu().numpy()
            chunk = len(x_res)
        else:
            x_res, chunk = self.x, 8192
            if problem.derived and self.y is not None:
                errors.update(derived_errors(problem, model, self.x, env.dtype, env.device))
        residual = evaluate.residual_norm(self.form, model, problem, x_res, env.dtype, env.device, chunk)
        self.checks = self._checks()
        return errors, residual

    def _checks(self) -> dict[str, float]:
        """What is measured without a reference: condition misfits, the potential, the problem's checks."""
        out = condition_misfits(self.form, self.problem, self.model, self.cfg.train.seed)
        if self.form.quadrature:  # the potential on a held-out draw of the rule
            with geometry.numpy_seed(geometry.seed_stream(self.cfg.train.seed, "eval/energy")):
                pts = self.env.tensors(self.form.sample(self.problem, self.cfg.points))
            terms = self.form.loss(self.model, self.problem, pts, {})
            potential = [v.detach() for k, v in terms.items() if k == "energy" or k.startswith("work:")]
            if potential:  # (an inverse problem's energy form has a Galerkin residual instead)
                out["energy"] = float(sum(potential))
        for name, check in self.problem.checks.items():
            out[name] = float(check(lambda x: self.form.predict(self.model, self.problem,
                                                                 np.asarray(x, dtype=np.float64), self.env)))
        return out

    def write(self, result) -> None:
        problem, run_dir = self.problem, result.run_dir
        rundir.write_fields(run_dir, self.x, self.pred, self.y, problem.fields, problem.coords)
        inside = None if problem.time_dependent else (lambda c: geometry.inside(problem.domain, c))
        figures.fields(run_dir / "figures" / "fields.png", self.x, self.pred, self.y, problem.fields,
                       problem.coords, inside, problem.units)
        write_summary(result)
