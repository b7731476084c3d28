"""The solver-family seam: how a family (mlp, kan, fno) builds the network that a form trains.

A family never sees a PDE. It receives the input and output widths and its own config dataclass, and
returns an `nn.Module` mapping points scaled to [-1, 1]^d, shape (N, d), to raw outputs, shape (N, C).
The core wraps that module with input scaling and hard-constraint transforms (`kinn.model.FieldModel`).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, ClassVar

import torch

from .errors import KinnError

Hook = Callable[..., bool]


class Family:
    """Base class of the solver families. Subclasses set the class variables and implement `build`.

    name:   registry name ("mlp").
    Config: a dataclass of the family's model options, every field with a default.
    forms:  the forms the family can train ("strong", "energy", "inverse", "operator").
    """

    name: ClassVar[str]
    Config: ClassVar[type]
    forms: ClassVar[frozenset[str]] = frozenset({"strong", "energy", "inverse"})
    defaults: ClassVar[dict] = {}  # run settings the family needs, {"points": {...}, "train": {...}}; the
    #                                problem's defaults, the config and flags override them

    def check(self, problem, form: str, config=None) -> None:
        """Raise `KinnError` saying why this family cannot train `problem` in `form` with `config`."""
        if form not in self.forms:
            raise KinnError(
                f"solver '{self.name}' does not support the {form} form; it supports: "
                + ", ".join(sorted(self.forms))
            )

    def config(self, options: dict[str, Any] | None = None):
        """The family's Config built from a dict, naming any unknown key and the allowed ones."""
        options = dict(options or {})
        allowed = {f.name for f in dataclasses.fields(self.Config)}
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise KinnError(
                f"unknown option(s) {', '.join(unknown)} for solver '{self.name}'; "
                f"allowed: {', '.join(sorted(allowed))}"
            )
        try:
            return self.Config(**options)
        except (TypeError, ValueError) as e:
            raise KinnError(f"bad option for solver '{self.name}': {e}") from None

    def build(self, in_dim: int, out_dim: int, config) -> torch.nn.Module:
        """The network: (N, in_dim) inputs in [-1, 1] -> (N, out_dim) outputs."""
        raise NotImplementedError

    def hooks(self, net: torch.nn.Module, config) -> dict[str, Hook]:
        """Named callbacks the trainer calls as `hook(step, x) -> bool` before each step.

        `x` is the current interior point batch, already scaled to [-1, 1]. A hook returns True when it
        changed the set or shape of the parameters (grid extension, say); the trainer then rebuilds its
        optimiser. Families without hooks return {}.
        """
        return {}
