"""Residual-based adaptive sampling of a collocation form's interior points (`points.adaptive`), after
Wu, Zhu, Tan, Kartha & Lu (2023), "A comprehensive study of non-adaptive and residual-based adaptive
sampling for physics-informed neural networks", CMAME 403, 115671:

    rar    greedy residual-based adaptive refinement (Lu et al. 2021, DeepXDE's RAR): every
           `adapt_every` Adam steps, add the `adapt_points` candidates where |r| is largest.
    rar-d  RAR with a distribution: add `adapt_points` candidates drawn without replacement with
           probability p(x) ∝ |r(x)|^k / mean |r|^k + c.
    rad    residual-based adaptive distribution: redraw all `n_interior` points from the candidates
           with that probability.

The candidates are a fresh uniform draw of `adapt_pool` points each round; |r| is the norm of the
residual's columns at a point, evaluated as the form evaluates it (`kinn.run.evaluate.residuals_at`).
Points added by rar and rar-d stay through train.resample_every's fresh draws; in the L-BFGS stage the
points are fixed. Round k's candidates and its draw come from seed streams ("adapt", k) and
("adapt/draw", k), and `state()` carries the points chosen so far, so a resumed run adapts exactly as the
uninterrupted one. In a torchrun run every rank chooses the same points (the same model, candidates and
seeds) and trains on its share of them.
"""
from __future__ import annotations

import numpy as np

from kinn.errors import KinnError
from kinn.pde import geometry
from kinn.run import evaluate


def check(form, problem, family, cfg) -> None:
    """Refuse, in one line, an adaptive sampling the run cannot do."""
    points, how = cfg.points, f"points.adaptive = {cfg.points.adaptive!r}"
    if points.adaptive == "none":
        return
    if form.quadrature:
        raise KinnError(f"{how} moves collocation points; the {form.kind} form of '{problem.name}' integrates by a "
                        "quadrature rule, whose weights moved points would break (use the strong form)")
    if not form.collocation:
        raise KinnError(f"{how} moves the collocation points of a pointwise residual; the {form.kind} form of "
                        f"'{problem.name}' has none")
    if family.lattice or family.trainer is not None:
        raise KinnError(f"{how} needs a pointwise family trained by kinn's loop; family '{family.name}' "
                        + ("trains on a lattice of nodes" if family.lattice else "trains by a loop of its own"))
    if points.adaptive == "rad" and cfg.train.resample_every:
        raise KinnError("points.adaptive = 'rad' redraws the collocation points itself: set train.resample_every = 0")
    need, name = ((points.n_interior, "n_interior") if points.adaptive == "rad" else (points.adapt_points, "adapt_points"))
    if need > points.adapt_pool:
        raise KinnError(f"{how} draws points.{name} = {need} points from points.adapt_pool = {points.adapt_pool} "
                        "candidates: raise adapt_pool")


def density(r: np.ndarray, k: float, c: float) -> np.ndarray:
    """Wu et al.'s sampling probability of each candidate, from |r| (P,): |r|^k / mean |r|^k + c, normalised."""
    e = r**k
    p = e / max(e.mean(), np.finfo(float).tiny) + c
    return p / p.sum()


class AdaptiveSampling:
    """The adaptive part of a collocation form's interior set: the strategy's points so far and its round.

    points: (M, D) float64, every rank's: the points rar and rar-d added, or rad's current draw (none
            before its first round, when the form's own draw stands).
    """

    def __init__(self, form, problem, model, cfg, env, resume: dict | None = None):
        self.form, self.problem, self.model, self.env = form, problem, model, env
        self.cfg, self.seed = cfg.points, cfg.train.seed
        resume = resume or {}
        self.rounds = resume.get("adapt_rounds", 0)
        self.points = np.frombuffer(resume.get("adapt_points", b""), dtype=np.float64).reshape(-1, problem.dim)

    @property
    def on(self) -> bool:
        return self.cfg.adaptive != "none"

    def due(self, step: int) -> bool:
        """Whether Adam step `step` begins with an adaptation."""
        return self.on and step > 0 and step % self.cfg.adapt_every == 0

    def residual(self, x: np.ndarray) -> np.ndarray:
        """|r| at points x (N, D): the norm of the form's residual columns, float64 (N,)."""
        r = evaluate.residuals_at(self.form, self.model, self.problem, x, self.env.dtype, self.env.device)
        return r.double().norm(dim=1).cpu().numpy()

    def adapt(self) -> None:
        """One round: draw the candidates, evaluate |r| there, choose by the strategy."""
        cfg = self.cfg
        with geometry.numpy_seed(geometry.seed_stream(self.seed, "adapt", self.rounds)):
            pool = geometry.interior(self.problem.domain, cfg.adapt_pool)
        r = self.residual(pool)
        if not np.isfinite(r).all():
            raise KinnError(f"points.adaptive = {cfg.adaptive!r}: the residual is non-finite at candidate points; "
                            "lower train.lr or use dtype float64")
        if cfg.adaptive == "rar":
            chosen = pool[np.sort(np.argsort(-r, kind="stable")[: cfg.adapt_points])]
        else:
            n = cfg.n_interior if cfg.adaptive == "rad" else cfg.adapt_points
            rng = np.random.default_rng(geometry.seed_stream(self.seed, "adapt/draw", self.rounds))
            chosen = pool[np.sort(rng.choice(len(pool), size=n, replace=False, p=density(r, cfg.adapt_k, cfg.adapt_c)))]
        self.points = chosen if cfg.adaptive == "rad" else np.concatenate([self.points, chosen])
        self.rounds += 1

    def interior(self, base: np.ndarray) -> np.ndarray:
        """This rank's interior points: its share of the form's own draw `base` with the points added (rar,
        rar-d), or its share of rad's draw once there is one."""
        mine = self.env.group.shard({"pde": self.points})["pde"]
        if self.cfg.adaptive == "rad":
            return mine if self.rounds else base
        return np.concatenate([base, mine])

    def state(self) -> dict:
        """The round and the chosen points, as raw float64 bytes: cheap to compare and copy every step."""
        return {"adapt_rounds": self.rounds, "adapt_points": self.points.tobytes()} if self.on else {}
