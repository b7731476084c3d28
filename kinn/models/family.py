"""The family seam: how a family (mlp, kan, fno) builds the network that a form trains.

A family never sees a PDE. It receives the input and output widths and its own config dataclass, and
returns an `nn.Module` mapping points scaled to [-1, 1]^d, shape (N, d), to raw outputs, shape (N, C) —
or, for a lattice family (`lattice = True`, the FNO), whole lattices (B, C_in, *shape) -> (B, C_out, *shape).
The core wraps that module for the problem (`kinn.models.wrap`).
"""
from __future__ import annotations

import contextlib
import dataclasses
from abc import ABC, abstractmethod
from typing import Any, Callable, ClassVar

import torch

from kinn.errors import KinnError

Hook = Callable[..., bool]


class Family(ABC):
    """Base class of the families. Subclasses set the class variables and implement `build`.

    name:      registry name ("mlp").
    Config:    a dataclass of the family's model options, every field with a default.
    forms:     the form kinds the family can train ("strong", "operator", ...); None: every form (a new form
               needs no change here), each form refusing the families it cannot take (the operator form
               takes lattice families only).
    lattice:   the network maps regular lattices of nodes, not points (FNO).
    defaults:  run settings the family needs, {"points": {...}, "train": {...}}; the problem's defaults,
               the config and flags override them.
    settings_of: the family whose recommended settings (problem defaults by family) this one starts from;
               None: its own.
    trainer:   the training loop, `fit(run: kinn.run.trainer.Run) -> History`; every family uses kinn's
               (`kinn.run.trainer.fit`) except the DeepXDE reference row, which trains by DeepXDE's Model.
    """

    name: ClassVar[str]
    Config: ClassVar[type]
    forms: ClassVar[frozenset[str] | None] = None
    lattice: ClassVar[bool] = False
    defaults: ClassVar[dict] = {}
    settings_of: ClassVar[str | None] = None
    trainer: ClassVar[Callable | None] = None  # None: kinn.run.trainer.fit

    def check(self, problem, form: str, config=None, train=None) -> None:
        """Raise `KinnError` saying why this family cannot train `problem` in `form` with the model options
        `config` (and the run's train settings `train`, where the family's trainer restricts them)."""
        posed = problem.forms.get(form)
        if self.lattice and posed is not None and posed.pointwise_only:
            raise KinnError(f"family '{self.name}' cannot train the {form} form: {posed.pointwise_only}; use a "
                            "pointwise family (mlp, kan)")
        if self.forms is not None and form not in self.forms:
            raise KinnError(
                f"family '{self.name}' does not support the {form} form; it supports: "
                + ", ".join(sorted(self.forms))
            )

    def config(self, options: dict[str, Any] | None = None):
        """The family's Config built from a dict, naming any unknown key and the allowed ones."""
        options = dict(options or {})
        allowed = {f.name for f in dataclasses.fields(self.Config)}
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise KinnError(
                f"unknown option(s) {', '.join(unknown)} for family '{self.name}'; "
                f"allowed: {', '.join(sorted(allowed))}"
            )
        try:
            return self.Config(**options)
        except (TypeError, ValueError) as e:
            raise KinnError(f"bad option for family '{self.name}': {e}") from None

    @abstractmethod
    def build(self, in_dim: int, out_dim: int, config) -> torch.nn.Module:
        """The network: (N, in_dim) inputs in [-1, 1] -> (N, out_dim) outputs."""

    def hooks(self, net: torch.nn.Module, config) -> dict[str, Hook]:
        """Named callbacks the trainer calls as `hook(step, x) -> bool` before each step.

        `x` is the current interior point batch, already scaled to [-1, 1]. A hook returns True when it
        changed the set or shape of the parameters (grid extension, say); the trainer then rebuilds its
        optimiser. Families without hooks return {}.
        """
        return {}

    def precision(self, dtype: torch.dtype) -> contextlib.AbstractContextManager:
        """A context in which the family builds and trains in `dtype` (DeepXDE reads a global precision)."""
        return contextlib.nullcontext()
