"""The field handle a residual or energy density receives, and its derivative backends.

A residual is written once against `kinn.pde.ops`; how derivatives are obtained is the backend's business:

- `AutogradBackend`: the model's values at points that require grad; derivatives by
  `torch.autograd.grad(create_graph=True)`, first derivatives cached so a Laplacian reuses the gradient.
- `JetBackend`: values, gradients and Hessian diagonals carried through the network in one forward pass
  (`kinn.kernels.jets`), so a residual needs only a first-order backward. Chosen automatically when the network
  supports jets.
- `kinn.pde.lattice.LatticeBackend`: values on regular lattices (FNO); derivatives spectral on periodic axes, finite
  differences elsewhere.

A `Field` behaves like its values, shape (N, C): arithmetic and torch functions work on it and return
plain tensors. `u["ux"]` selects a component by name as a field of its own (other keys index the
values, `u[:, 0]`), and `ux, uy = u.split()` unpacks a vector field.
"""
from __future__ import annotations

from typing import Sequence

import torch


class Backend:
    """Derivative primitives over the values (N, C) at points (N, D). Subclasses fill `d` and `d2`."""

    values: torch.Tensor

    def d(self, c: int, i: int) -> torch.Tensor:
        """d u_c / d x_i, shape (N, 1)."""
        raise NotImplementedError

    def d2(self, c: int, i: int, j: int) -> torch.Tensor:
        """d² u_c / d x_i d x_j, shape (N, 1)."""
        raise NotImplementedError

    def laplacian(self, c: int, dims: Sequence[int]) -> torch.Tensor:
        """Σ_i d² u_c / d x_i², shape (N, 1). Jet backends override this with the carried Laplacian."""
        return sum(self.d2(c, i, i) for i in dims)

    def derivative(self, q: torch.Tensor, i: int) -> torch.Tensor:
        """d q / d x_i of a tensor q (N, k) computed pointwise from the field (a flux a∇u, say), (N, k).
        Pointwise backends differentiate through the graph from the points x."""
        if not q.requires_grad:  # does not depend on x
            return torch.zeros_like(q)
        cols = []
        for k in range(q.shape[1]):
            (g,) = torch.autograd.grad(q[:, k].sum(), self.x, create_graph=self.create_graph, retain_graph=True,
                                       allow_unused=True)
            cols.append(torch.zeros_like(q[:, k : k + 1]) if g is None else g[:, i : i + 1])
        return torch.cat(cols, 1)


class AutogradBackend(Backend):
    """Derivatives by reverse-mode autograd, with the first derivatives of each component cached."""

    def __init__(self, values: torch.Tensor, x: torch.Tensor, create_graph: bool = True):
        if not x.requires_grad:
            raise ValueError("AutogradBackend needs points that require grad")
        self.values, self.x, self.create_graph = values, x, create_graph
        self._grad: dict[int, torch.Tensor] = {}
        self._hess: dict[tuple[int, int], torch.Tensor] = {}

    def _gradient(self, c: int) -> torch.Tensor:  # (N, D), all partials of u_c at once
        if c not in self._grad:
            (g,) = torch.autograd.grad(self.values[:, c].sum(), self.x, create_graph=True, allow_unused=True)
            self._grad[c] = torch.zeros_like(self.x) if g is None else g
        return self._grad[c]

    def d(self, c, i):
        return self._gradient(c)[:, i : i + 1]

    def d2(self, c, i, j):
        if (c, i) not in self._hess:
            gi = self._gradient(c)[:, i]
            if not gi.requires_grad:  # u_c is affine in x_i: no second derivative
                self._hess[c, i] = torch.zeros_like(self.x)
            else:
                (h,) = torch.autograd.grad(gi.sum(), self.x, create_graph=self.create_graph,
                                           retain_graph=True, allow_unused=True)
                self._hess[c, i] = torch.zeros_like(self.x) if h is None else h
        return self._hess[c, i][:, j : j + 1]


class NeedsAutograd(Exception):
    """Raised by a jet backend asked for what its network's jets cannot give exactly (field_at's callers
    then evaluate with autograd)."""


class JetBackend(Backend):
    """Derivatives carried forward through the network (`kinn.kernels.jets`): reading them costs nothing.

    The jet carries the gradient and, by its kind, no second derivatives, the Hessian's diagonal or all of
    it. What it does not carry:
    - networks whose jets can be differentiated again (`nested`, MLPs): one autograd pass over the carried
      gradient gives mixed second derivatives, and derivatives of fluxes go through the network;
    - networks that choose their jets' kind (a KAN, `kinn.kernels.jets.Demand`): each request is noted, so that
      their next jets carry it from the start, and the jet at hand computes itself again with what is
      asked (`Jet.rerun`, once). A flux q computed pointwise from the values and gradients read here is
      differentiated by the chain rule over those rows: dq/dx_i = ∂q/∂x_i + Σ_c ∂q/∂u_c ∂u_c/∂x_i +
      Σ_cj ∂q/∂(∂_j u_c) ∂²u_c/∂x_j∂x_i, the partials by one autograd pass over the pointwise graph of q
      (the jet has no graph to the points), the second derivatives from the whole Hessian.
    What neither can give raises `NeedsAutograd` (`kinn.forms.at_points` then evaluates by autograd).
    """

    def __init__(self, jet, x: torch.Tensor, create_graph: bool = True, nested: bool = True):
        self.jet, self.x, self.create_graph, self.nested = jet, x, create_graph, nested
        self.values, self.g = jet.v, jet.g  # (N, C), (N, C, P)
        self._richer: dict[str, object] = {}  # kind -> a jet of the same points that carries it
        self._second: list[torch.Tensor] = []  # second derivatives handed out: a flux of them needs third ones
        self._mixed: dict[tuple[int, int], torch.Tensor] = {}

    def _carrying(self, kind: str):
        """A jet of these points that carries `kind` (noting the request), or None."""
        if self.jet.demand is not None:  # a network that chooses its jets' kind (`Jet.demand`)
            self.jet.demand.note(kind)
        if self.jet.carries(kind):
            return self.jet
        for other in self._richer.values():
            if other.carries(kind):
                return other
        if self.jet.rerun is None:
            return None
        self._richer[kind] = self.jet.rerun(kind)
        return self._richer[kind]

    def _nest(self, what: str) -> None:
        if not self.nested and self.create_graph:
            raise NeedsAutograd(f"{what} need an autograd pass through the network's jet, whose fused backward "
                                "is not differentiable again")

    def derivative(self, q, i):
        if self.nested or not q.requires_grad:
            return super().derivative(q, i)
        jet = self._carrying("full")
        if jet is None:
            raise NeedsAutograd("derivatives of fluxes need the whole Hessian, which this network's jets do not "
                                "carry, or an autograd pass through them, which their fused backward does not allow")
        inputs = [t if t.requires_grad else None for t in (self.x, self.values, self.g, *self._second)]
        used = [t for t in inputs if t is not None]
        cols = []
        for k in range(q.shape[1]):
            grads = iter(torch.autograd.grad(q[:, k].sum(), used, create_graph=self.create_graph, retain_graph=True,
                                             allow_unused=True))
            dx, dv, dg, *d2 = (None if t is None else next(grads) for t in inputs)
            if any(t is not None for t in d2):
                raise NeedsAutograd("derivatives of fluxes built from second derivatives need third derivatives, "
                                    "which jets do not carry")
            col = torch.zeros_like(q[:, k]) if dx is None else dx[:, i]
            if dv is not None:
                col = col + (dv * jet.g[:, :, i]).sum(1)
            if dg is not None:
                col = col + (dg * jet.H[:, :, :, i]).sum((1, 2))
            cols.append(col.unsqueeze(1))
        return torch.cat(cols, 1)

    def d(self, c, i):
        if self.jet.demand is not None:
            self.jet.demand.note("first")
        return self.g[:, c, i : i + 1]

    def d2(self, c, i, j):
        jet = self._carrying("diag" if i == j else "full")
        if jet is not None:
            out = jet.J[:, jet.row(i, j), c : c + 1]
            self._second.append(out)
            return out
        self._nest("mixed second derivatives")
        if self.jet.affine or not self.nested and not self.create_graph:  # no graph to the points to go through
            raise NeedsAutograd("mixed second derivatives are not carried by this network's jets")
        if (c, i) not in self._mixed:
            (m,) = torch.autograd.grad(self.g[:, c, i].sum(), self.x, create_graph=self.create_graph,
                                       retain_graph=True, allow_unused=True)
            self._mixed[c, i] = torch.zeros_like(self.x) if m is None else m
        return self._mixed[c, i][:, j : j + 1]

    def laplacian(self, c, dims):
        jet = self._carrying("diag")
        if jet is None:
            raise NeedsAutograd("second derivatives are not carried by this network's jets")
        out = jet.J[:, [jet.row(i, i) for i in dims], c].sum(1, keepdim=True)
        self._second.append(out)
        return out


def _unwrap(a):
    if isinstance(a, Field):
        return a.values
    if isinstance(a, (list, tuple)):
        return type(a)(_unwrap(b) for b in a)
    if isinstance(a, dict):
        return {k: _unwrap(v) for k, v in a.items()}
    return a


class Field:
    """A (possibly vector) field at N points: values (N, C) plus derivatives through its backend.

    coords: coordinate names in column order of the points, e.g. ("x", "y") or ("x", "t").
    n_space: how many leading coordinates are spatial; grad, div, laplacian and hessian act on those.
    """

    def __init__(self, backend: Backend, names: Sequence[str], coords: Sequence[str], n_space: int,
                 comps: Sequence[int] | None = None):
        self.backend, self.names, self.coords, self.n_space = backend, tuple(names), tuple(coords), n_space
        self.comps = tuple(range(len(self.names))) if comps is None else tuple(comps)

    @property
    def values(self) -> torch.Tensor:
        v = self.backend.values
        return v if len(self.comps) == v.shape[1] else v[:, list(self.comps)]

    def __getitem__(self, key):
        if isinstance(key, str):
            if key not in self.names:
                raise KeyError(f"no field '{key}'; fields: {', '.join(self.names)}")
            k = self.names.index(key)
            return Field(self.backend, (key,), self.coords, self.n_space, (self.comps[k],))
        return self.values[key]

    def split(self) -> tuple["Field", ...]:
        """The components as scalar fields: `ux, uy = u.split()`."""
        return tuple(self[name] for name in self.names)

    def coord(self, wrt) -> int:
        """Column index of a coordinate given by name ("x") or index."""
        if isinstance(wrt, str):
            if wrt not in self.coords:
                raise KeyError(f"no coordinate '{wrt}'; coordinates: {', '.join(self.coords)}")
            return self.coords.index(wrt)
        return int(wrt)

    # The field behaves like its values: torch functions and operators see the (N, C) tensor.
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        return func(*_unwrap(args), **_unwrap(kwargs or {}))

    shape = property(lambda self: self.values.shape)
    dtype = property(lambda self: self.values.dtype)
    device = property(lambda self: self.values.device)

    def __len__(self):
        return self.values.shape[0]

    def __repr__(self):
        return f"Field({', '.join(self.names)}; N={len(self)}, coords={self.coords})"


def _delegate(name):
    def method(self, *args):
        return getattr(self.values, name)(*_unwrap(args))

    method.__name__ = name
    return method


for _op in ("add", "radd", "sub", "rsub", "mul", "rmul", "truediv", "rtruediv", "pow", "rpow",
            "matmul", "rmatmul", "neg", "pos", "abs", "lt", "le", "gt", "ge"):
    setattr(Field, f"__{_op}__", _delegate(f"__{_op}__"))
