"""`FieldModel`: a family's network wrapped with input scaling and hard-constraint transforms.

Every family's network sees inputs scaled from the domain's bounding box to [-1, 1]^D (where KAN grids
and tanh layers do their best work); the transform then imposes hard conditions in physical coordinates.
An inverse problem's unknowns (scalars and fields) live here too, so the optimiser, checkpoints and resumes
treat them like weights.
"""
from __future__ import annotations

from abc import abstractmethod
from typing import Callable

import numpy as np
import torch
from torch import nn

from kinn.errors import KinnError
from kinn.kernels.jets import Jet, JetNetwork, transformed
from kinn.metrics import relative_l2
from kinn.models.base import Model
from kinn.pde.fields import AutogradBackend, Backend, JetBackend
from kinn.run.config import DERIVATIVES


class PointModel(Model):
    """A model of the points (not of a lattice): derivatives by jets where the networks carry them,
    else by nested autograd. Subclasses give `jet`, `use_jets` and `jets_nest`."""

    @property
    @abstractmethod
    def use_jets(self) -> bool:
        """Whether residuals get jets now."""

    @property
    @abstractmethod
    def jets_nest(self) -> bool:
        """Whether the jets' backward can be differentiated again (mixed derivatives by autograd over it)."""

    @abstractmethod
    def jet(self, x: torch.Tensor, kind: str | None = None) -> Jet:
        """The fields' jet at physical points x (N, D): values, gradients and the second derivatives of
        `kind` ("first": none, "diag", "full"; None: what the network chooses, `kinn.kernels.jets`)."""

    def backend(self, x: torch.Tensor, create_graph: bool = True) -> Backend:
        x = x.detach().requires_grad_(True)
        if self.use_jets:
            return JetBackend(self.jet(x), x, create_graph, self.jets_nest)
        return AutogradBackend(self(x), x, create_graph)


class FieldModel(PointModel):
    """derivatives: "jet" carries derivatives forward (`kinn.kernels.jets`), "autograd" nests reverse mode,
    "auto" uses jets where the network is a `JetNetwork` with jet rules for its options and prefers them
    (`prefers_jets`). An output transform (hard conditions) acts on the network's jet by forward-mode AD
    through it (`kinn.kernels.jets.transformed`)."""

    def __init__(self, net: nn.Module, lo: np.ndarray, hi: np.ndarray, transform: Callable | None = None,
                 derivatives: str = "auto"):
        super().__init__(lo, hi)
        self.net, self.transform = net, transform
        if derivatives not in DERIVATIVES:
            raise KinnError(f"unknown derivatives '{derivatives}'; valid: {', '.join(DERIVATIVES)}")
        why = (f"{type(net).__name__} has no jet forward" if not isinstance(net, JetNetwork)
               else f"{type(net).__name__} has no jet rules for these options" if not net.supports_jets
               else "")
        if derivatives == "jet" and why:
            raise KinnError(f"derivatives = 'jet' is not available here: {why}; use 'auto' or 'autograd'")
        self.jets_possible, self.derivatives = not why, derivatives
        # an inverse problem's unknowns (`add_unknowns`); registered here, after the network, so the
        # parameters keep their order (L-BFGS and all-reduce flatten them in that order)
        self.unknowns, self.unknown_fields, self.unknown_specs, self.observed = nn.ParameterDict(), nn.ModuleDict(), {}, []

    def add_unknowns(self, unknowns, observed: list[int], nets: dict | None = None, points=None) -> None:
        """The unknowns of an inverse problem, trained with the network. Scalars (`Unknown`) are stored as
        θ: the value is exp(θ) for a positive unknown, else θ. Fields (`UnknownField`) are the networks
        `nets` {name: module (N, D) -> (N, 1)}, fed the same scaled inputs as the solution's, and scored
        on `points` (M, D) where their true field is known. `observed` are the output columns the
        observations give."""
        nets = nets or {}
        self.unknown_specs = {u.name: u for u in unknowns}
        self.unknowns = nn.ParameterDict({
            u.name: nn.Parameter(torch.tensor(float(np.log(u.initial) if u.positive else u.initial)))
            for u in unknowns if u.name not in nets})
        self.unknown_fields = nn.ModuleDict(nets)
        if points is not None:
            self.register_buffer("unknown_points", torch.as_tensor(np.asarray(points, float)))
        self.observed = list(observed)

    def unknown_values(self) -> dict:
        """The unknowns' current values: {name: scalar tensor} and {name: function x (N, D) -> (N, 1)} for
        fields (differentiable)."""
        specs = self.unknown_specs
        out = {n: (t.exp() if specs[n].positive else t) for n, t in self.unknowns.items()}
        for name, net in self.unknown_fields.items():
            def field(x, net=net, spec=specs[name]):
                raw = net(self.scale(x))[:, :1]
                return spec.initial * raw.exp() if spec.positive else spec.initial + raw

            out[name] = field
        return out

    def unknown_report(self) -> dict[str, float]:
        """{"value/E": estimate, "rel_error/E": |estimate − true| / |true|} for scalars and
        {"rel_error/K": ‖K − K_true‖ / ‖K_true‖ on `unknown_points`} for fields, where the truth is known."""
        out = {}
        for name, v in self.unknown_values().items():
            true = self.unknown_specs[name].true
            if callable(v):
                if true is not None:
                    with torch.no_grad():
                        x = self.unknown_points
                        k, k_true = v(x).reshape(-1), true(x).reshape(-1).to(x.dtype)
                        out[f"rel_error/{name}"] = float(relative_l2(k, k_true))
                continue
            out[f"value/{name}"] = float(v.detach())
            if true is not None:
                out[f"rel_error/{name}"] = abs(out[f"value/{name}"] - true) / abs(true)
        return out

    def hooks(self, family, options) -> dict:
        """The family's hooks on the network, and on each unknown field's network (fed the same scaled
        inputs)."""
        nets = {"": self.net, **{f":{name}": net for name, net in self.unknown_fields.items()}}
        out = {}
        for suffix, net in nets.items():
            for key, hook in family.hooks(net, options).items():
                out[key + suffix] = lambda step, x, hook=hook: hook(step, self.scale(x))
        return out

    @property
    def use_jets(self) -> bool:
        """Whether residuals get jets; "auto" asks the network, on its current device (`prefers_jets`)."""
        if not self.jets_possible or self.derivatives == "autograd":
            return False
        return self.derivatives == "jet" or self.net.prefers_jets

    @property
    def jets_nest(self) -> bool:
        return self.net.jets_nest

    def jet(self, x: torch.Tensor, kind: str | None = None) -> Jet:
        raw = self.net.jet(Jet.seed(self.scale(x), 2 / (self.hi - self.lo), kind))
        if self.transform is None:
            return raw
        # Jets that cannot nest carry no graph to the points, and JetBackend.derivative reads partials in x
        # with the values held: the transform then sees the points without their graph too.
        return transformed(self.transform, x if self.net.jets_nest else x.detach(), raw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, D) -> (N, C)
        out = self.net(self.scale(x))
        return out if self.transform is None else self.transform(x, out)


class FunctionModel(Model):
    """A model whose fields are a given function of the points, `fn(x)` (N, D) -> (N, C): an exact solution
    as a model, to evaluate a form's residuals, energies or conditions on it (derivatives by autograd)."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], dim: int = 1):
        super().__init__(np.zeros(dim), np.ones(dim))
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)

    def backend(self, x: torch.Tensor, create_graph: bool = True) -> Backend:
        x = x.detach().requires_grad_(True)
        return AutogradBackend(self(x), x, create_graph)
