"""Adaptive loss weights: per-point weights of the PDE residual (`train.weighting = "rba"`,
`train.causal`) and balanced term weights (`train.weighting = "gradnorm"`).

    rba       residual-based attention (Anagnostopoulos, Toscano, Stergiopulos & Karniadakis 2024, CMAME
              421, 116805): a multiplier λ_i per collocation point (start 1) on its residual, so the
              "pde" term is mean((λ_i r_i)²); before every Adam step λ_i <- γ λ_i + η |r_i| / max |r|
              (train.rba_gamma, train.rba_eta), which tends to η/(1−γ) |r_i|/max|r|: points whose
              residual stays large gain weight.
    gradnorm  learning-rate annealing (Wang, Teng & Perdikaris 2021, "Understanding and mitigating gradient
              flow pathologies in physics-informed neural networks", SIAM J. Sci. Comput. 43): every
              train.gradnorm_every Adam steps, each term k but the physics (the form's `physics_terms`,
              "pde") takes λ_k <- (1−α) λ_k + α max|∇θ L_pde| / mean|∇θ (λ_k L_k)| (train.gradnorm_alpha),
              starting from its configured weight; a term of weight 0 stays left out. The denominator is
              the weighted term's gradient, as in the authors' released code, so λ_k settles at the square
              root of the gradients' ratio; with the unweighted term's it follows the ratio itself, which
              grows without bound as the term is satisfied and starves the PDE term.
    causal    causal weighting (Wang, Sankaran & Perdikaris 2024, "Respecting causality for training
              physics-informed neural networks", CMAME 421, 116813), train.causal = ε > 0: the collocation
              points fall into train.causal_slices time slices; slice j's mean squared residual L_j weighs
              w_j = exp(−ε Σ_{l<j} L_l) (detached), and the "pde" term is (1/M) Σ_j w_j L_j, so later
              times train once earlier ones are resolved.

Per-point weights reach the form's "pde" term as batch["pde/weight"] (`kinn.forms.strong.pde_term`),
from one residual evaluation at the training points before every Adam step, made as the form makes it
(`kinn.run.evaluate.residuals_at`); term weights replace the configured ones in the trainer's loss. In
the L-BFGS stage every weight is frozen at its last Adam value (a line search needs one fixed loss).
`state()` is in every checkpoint, so a resumed run weighs exactly as the uninterrupted one, and in the
trainer's last verified-finite state, so a rollback (train.on_nonfinite = "rollback") takes the weights back
with the parameters.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch

from kinn.errors import KinnError
from kinn.run import evaluate


def check(form, problem, family, cfg) -> None:
    """Refuse, in one line, an adaptive weighting the run cannot do."""
    tc = cfg.train
    if tc.weighting == "none" and not tc.causal:
        return
    how = f"train.weighting = {tc.weighting!r}" if tc.weighting != "none" else "train.causal"
    if family.trainer is not None:
        raise KinnError(f"{how} needs kinn's training loop; family '{family.name}' trains by a loop of its own")
    if tc.weighting == "gradnorm" and len(form.physics_terms) == 0:
        raise KinnError(f"train.weighting = 'gradnorm' balances terms against a PDE term; the {form.kind} form of "
                        f"'{problem.name}' has none")
    if tc.weighting == "gradnorm" and form.quadrature and not form.weights():
        raise KinnError(f"train.weighting = 'gradnorm' balances penalty terms against the potential; the energy form "
                        f"of '{problem.name}' has none (its energy and work terms are the potential, never reweighed)")
    pointwise = [h for h in (tc.weighting == "rba" and "train.weighting = 'rba'", tc.causal and "train.causal") if h]
    for what in pointwise:
        if not form.collocation:
            raise KinnError(f"{what} weighs the residual point by point; the {form.kind} form of '{problem.name}' "
                            + ("integrates a potential, whose integrand is no residual" if form.quadrature
                               else "has no pointwise residual"))
        if family.lattice:
            raise KinnError(f"{what} weighs collocation points; family '{family.name}' trains on a lattice of nodes")
    if tc.weighting == "rba" and (tc.resample_every or cfg.points.adaptive == "rad"):
        raise KinnError("train.weighting = 'rba' keeps a multiplier per collocation point: it cannot follow "
                        "train.resample_every or points.adaptive = 'rad', which replace the points")
    if tc.causal and not problem.time_dependent:
        raise KinnError(f"train.causal weighs time slices; problem '{problem.name}' is not time-dependent")


class Weighting(ABC):
    """What the trainer asks of the loss weights (the module docstring says what each strategy does)."""

    @abstractmethod
    def weights(self, configured: dict[str, float]) -> dict[str, float]:
        """The term weights of the loss: the configured ones, with any adapted term's own."""

    @abstractmethod
    def batch(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The batch the form's loss is evaluated on: with batch["pde/weight"] where points are weighed."""

    @abstractmethod
    def before_step(self, step: int) -> None:
        """Adam step `step` begins: update the per-point weights."""

    @abstractmethod
    def balance(self, step: int, terms: dict[str, torch.Tensor], params: list) -> None:
        """Adam step `step`'s loss terms (with their graph): update the term weights."""

    @abstractmethod
    def report(self) -> dict[str, float]:
        """What the history records ("weight/bc:left", "causal/min", ...)."""

    @abstractmethod
    def state(self) -> dict:
        """Everything from which `load` continues exactly."""

    @abstractmethod
    def load(self, state: dict) -> None:
        """Continue from a checkpoint's `state()`."""


class Fixed(Weighting):
    """The configured term weights, unchanged; every point weighs the same (train.weighting = "none")."""

    def weights(self, configured):
        return configured

    def batch(self, batch):
        return batch

    def before_step(self, step):
        pass

    def balance(self, step, terms, params):
        pass

    def report(self):
        return {}

    def state(self):
        return {}

    def load(self, state):
        pass


class Adaptive(Weighting):
    """RBA, gradnorm and causal weights as train.weighting and train.causal ask (any combination but rba with
    gradnorm, which are one setting). data: the run's `kinn.forms.base.Data`, whose batch["pde"] points
    are weighed; configured: the run's term weights (`kinn.run.pipeline.term_weights`)."""

    def __init__(self, form, problem, model, cfg, data, configured: dict[str, float]):
        self.form, self.problem, self.model, self.data, self.tc = form, problem, model, data, cfg.train
        self.configured = configured
        self.env = (next(model.parameters()).dtype, next(model.parameters()).device)
        self.lam: torch.Tensor | None = None      # RBA multipliers (N,)
        self.point: torch.Tensor | None = None    # the per-point weights of the "pde" term (N,)
        self.slices: torch.Tensor | None = None   # causal slice weights w_j (M,)
        self.terms: dict[str, float] = {}         # gradnorm's term weights

    def weights(self, configured):
        return {**configured, **self.terms}

    def batch(self, batch):
        return batch if self.point is None else {**batch, "pde/weight": self.point}

    def before_step(self, step):
        tc = self.tc
        if tc.weighting != "rba" and not tc.causal:
            return
        x = self.data.batch["pde"]
        r = evaluate.residuals_at(self.form, self.model, self.problem, x, *self.env)  # (N, R), detached
        point = torch.ones(len(x), dtype=r.dtype, device=r.device)
        if tc.weighting == "rba":
            size = r.norm(dim=1)
            lam = torch.ones_like(size) if self.lam is None else self.lam
            if len(lam) < len(size):  # points rar or rar-d appended start at 1
                lam = torch.cat([lam, torch.ones(len(size) - len(lam), dtype=lam.dtype, device=lam.device)])
            self.lam = tc.rba_gamma * lam + tc.rba_eta * size / size.max().clamp_min(torch.finfo(size.dtype).tiny)
            point = point * self.lam.square()
        if tc.causal:
            point = point * self._causal(x[:, self.problem.t_index], r.square().mean(1))
        self.point = point

    def _causal(self, t: torch.Tensor, sq: torch.Tensor) -> torch.Tensor:
        """Per-point causal weights from the times t (N,) and squared residuals sq (N,), such that the mean of
        weight × sq is (1/M) Σ_j w_j L_j."""
        m, time = self.tc.causal_slices, self.problem.domain.timedomain
        t0, t1 = time.t0, time.t1
        j = ((t - t0) / (t1 - t0) * m).floor().long().clamp(0, m - 1)  # (N,) slice of each point
        count = torch.bincount(j, minlength=m).to(sq.dtype)  # (M,)
        loss = torch.zeros(m, dtype=sq.dtype, device=sq.device).index_add_(0, j, sq) / count.clamp_min(1)  # L_j
        before = torch.cat([loss.new_zeros(1), loss.cumsum(0)[:-1]])  # Σ_{l<j} L_l
        self.slices = torch.exp(-self.tc.causal * before)
        return self.slices[j] * len(t) / (m * count[j])

    def balance(self, step, terms, params):
        tc = self.tc
        if tc.weighting != "gradnorm" or step % tc.gradnorm_every:
            return
        fixed = self.form.physics_terms
        reference = _grads(terms[fixed[0]], params).abs().max()
        for name, term in terms.items():
            if name in fixed or name.split(":")[0] in fixed or not term.requires_grad:
                continue
            old = self.terms.get(name, weight(name, self.configured))  # gradnorm starts from the configured one
            if old == 0:
                continue  # left out by the configuration
            g = old * _grads(term, params).abs().mean()  # of the weighted term
            if g > 0 and math.isfinite(float(g)):
                self.terms[name] = (1 - tc.gradnorm_alpha) * old + tc.gradnorm_alpha * float(reference / g)

    def report(self):
        out = {f"weight/{k}": v for k, v in self.terms.items()}
        if self.lam is not None:
            out.update({"rba/mean": float(self.lam.mean()), "rba/max": float(self.lam.max())})
        if self.slices is not None:
            out.update({"causal/min": float(self.slices.min()), "causal/mean": float(self.slices.mean())})
        return out

    def state(self):
        return {"lam": self.lam, "point": self.point, "slices": self.slices, "terms": dict(self.terms)}

    def load(self, state):
        self.lam, self.point, self.slices = state["lam"], state["point"], state["slices"]
        self.terms = dict(state["terms"])


def weight(name: str, weights: dict[str, float]) -> float:
    """A term's weight: by its full name ("bc:left"), else its prefix ("bc"), else 1."""
    return float(weights.get(name, weights.get(name.split(":")[0], 1.0)))


def _grads(term: torch.Tensor, params: list) -> torch.Tensor:
    """∇θ of one loss term, flattened over the parameters (zero where it does not depend on one)."""
    gs = torch.autograd.grad(term, params, retain_graph=True, allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(gs, params)])


def weighting(form, problem, model, cfg, data, configured: dict[str, float]) -> Weighting:
    """The run's loss weights: `Fixed` unless train.weighting or train.causal ask for adaptive ones."""
    if cfg.train.weighting == "none" and not cfg.train.causal:
        return Fixed()
    return Adaptive(form, problem, model, cfg, data, configured)
