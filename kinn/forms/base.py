"""The form seam: how a problem is posed for training, and the objects a form hands to the run.

A `Form` is one way to pose a `Problem` (strong, energy, operator, ...). It declares everything the run
pipeline (`kinn.run.pipeline.solve`) needs, so the pipeline never asks which form it holds:

    build(problem, family, cfg)          the model it trains: the family's network wrapped (`kinn.models`)
    data(problem, model, cfg, env)       what it trains on: a `Data` (point sets, quadrature, batches)
    loss(model, problem, batch)          its named loss terms on the current batch
    weights()                            each term's own weight (the config's train.weights win)
    scorer(problem, model, cfg, env)     how a trained model is scored and its run directory written
    predict(model, problem, x, env)      the trained fields at new points

A new form is one module with one subclass, and one line in `kinn.registry.FORMS`.
"""
from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

import numpy as np
import torch

from kinn.run import figures, rundir
from kinn.run.distributed import Group
from kinn.run.trainer import weight

if TYPE_CHECKING:  # annotations only: the run imports the forms, not the other way round
    from kinn.models.base import Model
    from kinn.models.family import Family
    from kinn.pde.problem import Problem
    from kinn.run.config import RunConfig


@dataclass(frozen=True)
class Env:
    """Where a run computes: device, dtype, the torchrun group (a group of one outside torchrun), seed."""

    device: torch.device
    dtype: torch.dtype
    group: Group
    seed: int

    def tensors(self, arrays: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        """numpy arrays as tensors of the run's dtype on its device."""
        return {k: torch.as_tensor(v, dtype=self.dtype, device=self.device) for k, v in arrays.items()}


class Data(ABC):
    """What a form trains on. The trainer reads `batch` in every loss evaluation and calls `before_step`
    before every Adam step and `before_chunk` before every L-BFGS chunk; the checkpoint stores `state()`,
    from which a resumed run's data continue exactly (`Form.data(..., resume=state)`)."""

    batch: dict[str, torch.Tensor]
    report: dict[str, float] = {}  # what the history records of the data ({"points/pde": N}); never mutated

    @abstractmethod
    def before_step(self, step: int) -> None:
        """Prepare Adam step `step` (resample, redraw a quadrature, take the next batch)."""

    @abstractmethod
    def before_chunk(self, step: int) -> None:
        """Prepare an L-BFGS chunk starting at overall step `step` (one fixed loss per line search)."""

    @abstractmethod
    def hook_points(self) -> torch.Tensor:
        """Physical points (N, D) the family's hooks adapt to (a KAN grid update), detached."""

    @abstractmethod
    def state(self) -> dict[str, Any]:
        """The counters from which the form's `data(..., resume=state)` continues exactly."""


class FixedBatch(Data):
    """Data that never change: one batch (default empty), nothing to draw, no counters. For training a
    model on a loss of its own through `kinn.run.trainer.fit` (a toy, a test)."""

    def __init__(self, batch: dict[str, torch.Tensor] | None = None):
        self.batch = dict(batch or {})

    def before_step(self, step: int) -> None:
        pass

    def before_chunk(self, step: int) -> None:
        pass

    def hook_points(self) -> torch.Tensor:
        return self.batch.get("pde")

    def state(self) -> dict[str, Any]:
        return {}


class Scorer(ABC):
    """How a form scores its trained model (on data no training step saw) and what it writes.

    eval_points: the held-out points (N, D) it scores on, where the form has points.
    checks:      what `final` measured besides errors against a reference, {name: value} (condition
                 misfits, an energy form's potential, the problem's own `checks`); the only measures of a
                 problem without a reference.
    """

    eval_points: np.ndarray | None = None
    checks: dict[str, float] = {}  # a class default, never mutated: `final` sets the instance's own

    @abstractmethod
    def during(self) -> dict[str, float]:
        """Held-out errors while training ({"rel_l2/u": ...}), every train.eval_every steps."""

    @abstractmethod
    def final(self) -> tuple[dict[str, float], float | None]:
        """Every error at the end, and the residual RMS (None where the form has no residual)."""

    @abstractmethod
    def write(self, result) -> None:
        """The run directory's fields and figures for a finished `Result`, then `write_summary(result)`."""


def write_summary(result) -> None:
    """What every run directory holds: history.json, figures/history.png (and figures/adaptive.png with
    adaptive sampling or weights) and result.json (written last, so a result.json says the run directory
    is complete)."""
    rundir.write_json(result.run_dir / "history.json", dataclasses.asdict(result.history))
    if result.history.rows:
        from kinn.run.pipeline import term_weights  # the pipeline imports this module

        weights = term_weights(result.form, result.config.train)
        terms = {k for r in result.history.rows for k in r}
        figures.history(result.run_dir / "figures" / "history.png", result.history.rows,
                        {k: weight(k, weights) for k in terms})
        figures.adaptation(result.run_dir / "figures" / "adaptive.png", result.history.rows)
    rundir.write_json(result.run_dir / "result.json", result.summary())


class Form(ABC):
    """A way to pose a problem for training; see the module docstring for what each method declares."""

    kind: ClassVar[str]  # the name in kinn.registry.FORMS and on the command line (--form)
    order: ClassVar[int] = 1  # the derivative order its terms take (a family refuses networks without it)
    unknowns: Sequence = ()  # an inverse problem's unknown scalars and fields, which this form fits
    # its "pde" term is the mean squared residual at the interior collocation points batch["pde"], weighed
    # point by point by batch["pde/weight"] where present: what adaptive sampling (points.adaptive) moves
    # and per-point weights (train.weighting = "rba", train.causal) weigh
    collocation: ClassVar[bool] = False
    quadrature: ClassVar[bool] = False  # it integrates by a quadrature rule (an energy form)
    # the terms train.weighting = "gradnorm" keeps at weight 1 (by name or prefix), the first the reference
    # whose gradient the other terms are balanced against; (): nothing to balance against
    physics_terms: ClassVar[tuple[str, ...]] = ()
    # why a lattice family (one that maps whole regular lattices, the FNO) cannot train this form; "" if it may
    pointwise_only: ClassVar[str] = ""

    @abstractmethod
    def build(self, problem: Problem, family: Family, cfg: RunConfig) -> Model:
        """The model this form trains (float64 buffers, on the CPU; the pipeline places it)."""

    @abstractmethod
    def data(self, problem: Problem, model: Model, cfg: RunConfig, env: Env, resume: dict | None = None) -> Data:
        """What this form trains on, drawn from the run's seed streams; `resume`: a checkpoint's
        `Data.state()` to continue from."""

    @abstractmethod
    def loss(self, model: Model, problem: Problem, batch: dict[str, torch.Tensor],
             weights: dict[str, float]) -> dict[str, torch.Tensor]:
        """Named loss terms on a batch (`Data.batch`); `weights` are the resolved term weights (a form may
        leave out a term of weight 0)."""

    @abstractmethod
    def scorer(self, problem: Problem, model: Model, cfg: RunConfig, env: Env, data: Data) -> Scorer:
        """How a trained model of this form is scored (on data no training step sees)."""

    @abstractmethod
    def predict(self, model: Model, problem: Problem, x: np.ndarray, env: Env) -> np.ndarray:
        """The fields at physical points x (N, D), float64 (N, C)."""

    @abstractmethod
    def weights(self) -> dict[str, float]:
        """Each loss term's own weight by term name ({} when every term weighs 1)."""

    @abstractmethod
    def conditions(self) -> tuple:
        """The boundary, initial and interface conditions the form holds (checked by `Problem`)."""
