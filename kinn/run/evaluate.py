"""Shared evaluators: errors against the reference on held-out points, and residual norms.

The same code scores every family. Evaluation points are drawn from their own random stream (or are
the reference data's own nodes), never from the training point sets.
"""
from __future__ import annotations

import numpy as np
import torch

from kinn.metrics import relative_l2


def predict(model, x: np.ndarray | torch.Tensor, dtype: torch.dtype, device, chunk: int = 65536) -> np.ndarray:
    """The model's fields at points x (N, D), as float64 numpy (N, C), evaluated in chunks."""
    x = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x)
    out = []
    with torch.no_grad():
        for xb in x.split(chunk):
            out.append(model(xb.to(device=device, dtype=dtype)).double().cpu())
    return torch.cat(out).numpy()


def errors(pred: np.ndarray, ref: np.ndarray, fields) -> dict[str, float]:
    """Relative L2 (‖pred − ref‖ / ‖ref‖) and max absolute error per field: {"rel_l2/u": ..., "max/u": ...}."""
    out = {}
    for k, name in enumerate(fields):
        out[f"rel_l2/{name}"] = relative_l2(pred[:, k], ref[:, k])
        out[f"max/{name}"] = float(np.abs(pred[:, k] - ref[:, k]).max())
    return out


def residuals_at(form, model, problem, x, dtype, device, chunk: int = 8192) -> torch.Tensor | None:
    """The form's residual at points x (N, D), detached, (N, R) on x's device in chunks; None for a form
    without a pointwise residual (an energy)."""
    out = []
    for xb in torch.as_tensor(x).split(chunk):
        r = form.residuals(model, problem, xb.to(device=device, dtype=dtype), create_graph=False)
        if r is None:
            return None
        out.append(r.detach())
    return torch.cat(out)


def residual_norm(form, model, problem, x: np.ndarray, dtype, device, chunk: int = 8192) -> float | None:
    """Root-mean-square of the form's residual at points x (all residual columns together); None for a form
    without a pointwise residual (an energy)."""
    r = residuals_at(form, model, problem, x, dtype, device, chunk)
    if r is None:
        return None
    return float(r.double().square().sum() / max(r.numel(), 1)) ** 0.5
