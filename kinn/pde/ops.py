"""Differential operators on field handles: write a residual once, every backend evaluates it.

All results are plain tensors with the points along the first axis. For time-dependent problems,
`grad`, `div`, `laplacian`, `hessian` and `jacobian` act on the spatial coordinates only; use
`d(u, "t")` (or `dt(u)`) for time derivatives.

    ops.d(u, "x")        ∂u/∂x             (N, C)
    ops.d(u, "x", "y")   ∂²u/∂x∂y          (N, C)
    ops.grad(u)          ∇u of a scalar     (N, d)
    ops.jacobian(u)      ∂u_c/∂x_i          (N, C, d)
    ops.div(u)           ∇·u, C == d        (N, 1)
    ops.div(q, u)        ∇·q of a flux q (N, d) computed from u, e.g. a∇u   (N, 1)
    ops.normal(u, n)     ∂u/∂n = ∇u·n       (N, C), n (N, d)
    ops.laplacian(u)     Δu per component   (N, C)
    ops.hessian(u)       ∇∇u of a scalar    (N, d, d)
"""
from __future__ import annotations

import torch

from kinn.pde.fields import Field

__all__ = ["d", "dt", "grad", "jacobian", "div", "normal", "laplacian", "hessian"]


def _check(u) -> Field:
    if not isinstance(u, Field):
        raise TypeError(f"kinn.pde.ops works on field handles (the `u` a residual receives), not {type(u).__name__}")
    return u


def _scalar(u: Field, op: str) -> Field:
    if len(u.comps) != 1:
        raise ValueError(f"ops.{op} needs a scalar field; '{','.join(u.names)}' has {len(u.comps)} "
                         f"components: select one with u['{u.names[0]}'] or use ops.jacobian")
    return u


def _unwrap_tensor(q):
    return q.values if isinstance(q, Field) else q


def d(u: Field, *wrt) -> torch.Tensor:
    """Partial derivative of every component: `d(u, "x")` first order, `d(u, "x", "x")` second."""
    u = _check(u)
    idx = [u.coord(w) for w in wrt]
    b = u.backend
    if len(idx) == 1:
        return torch.cat([b.d(c, idx[0]) for c in u.comps], dim=1)
    if len(idx) == 2:
        return torch.cat([b.d2(c, *idx) for c in u.comps], dim=1)
    raise ValueError(f"ops.d takes one or two coordinates, got {len(wrt)}")


def dt(u: Field) -> torch.Tensor:
    """Time derivative ∂u/∂t (the coordinate named "t")."""
    return d(u, "t")


def jacobian(u: Field) -> torch.Tensor:
    """J[n, c, i] = ∂u_c/∂x_i over the spatial coordinates, shape (N, C, d)."""
    u = _check(u)
    return torch.stack([torch.cat([u.backend.d(c, i) for i in range(u.n_space)], 1) for c in u.comps], 1)


def grad(u: Field) -> torch.Tensor:
    """Spatial gradient of a scalar field, shape (N, d)."""
    return jacobian(_scalar(_check(u), "grad"))[:, 0, :]


def div(u, like: Field | None = None) -> torch.Tensor:
    """Divergence, shape (N, 1), of a vector field handle with as many components as spatial dimensions;
    or of a flux tensor q (N, d) computed pointwise from the field `like` (`div(a * grad(u), u)`),
    differentiated by that field's backend, so conservative forms −∇·(a∇u) are written as such."""
    if like is not None:
        like, q = _check(like), _unwrap_tensor(u)
        if q.ndim != 2 or q.shape[1] != like.n_space:
            raise ValueError(f"ops.div(q, u) needs a flux q of shape (N, {like.n_space}), got {tuple(q.shape)}")
        return sum(like.backend.derivative(q[:, i : i + 1], i) for i in range(like.n_space))
    u = _check(u)
    if len(u.comps) != u.n_space:
        raise ValueError(f"ops.div needs {u.n_space} components, '{','.join(u.names)}' has {len(u.comps)}")
    return sum(u.backend.d(c, i) for i, c in enumerate(u.comps))


def normal(u: Field, n: torch.Tensor) -> torch.Tensor:
    """Normal derivative ∂u_c/∂n = Σ_i n_i ∂u_c/∂x_i of every component, n (N, d), shape (N, C)."""
    return (jacobian(u) * n.unsqueeze(1)).sum(-1)


def laplacian(u: Field) -> torch.Tensor:
    """Spatial Laplacian of each component, shape (N, C)."""
    u = _check(u)
    dims = range(u.n_space)
    return torch.cat([u.backend.laplacian(c, dims) for c in u.comps], dim=1)


def hessian(u: Field) -> torch.Tensor:
    """Spatial Hessian of a scalar field, shape (N, d, d)."""
    u = _scalar(_check(u), "hessian")
    c, n = u.comps[0], u.n_space
    return torch.stack([torch.cat([u.backend.d2(c, i, j) for j in range(n)], 1) for i in range(n)], 1)
