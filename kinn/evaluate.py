"""Shared evaluators: errors against the reference on held-out points, and residual norms.

The same code scores every family. Evaluation points are drawn from their own random stream (or are
the reference data's own nodes), never from the training point sets.
"""
from __future__ import annotations

import numpy as np
import torch


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
        diff = pred[:, k] - ref[:, k]
        norm = np.linalg.norm(ref[:, k])
        out[f"rel_l2/{name}"] = float(np.linalg.norm(diff) / norm) if norm > 0 else float(np.linalg.norm(diff))
        out[f"max/{name}"] = float(np.abs(diff).max())
    return out


def residual_norm(form, model, problem, x: np.ndarray, dtype, device, chunk: int = 8192) -> float:
    """Root-mean-square of the strong-form residual at points x (all residual columns together)."""
    total, count = 0.0, 0
    for xb in torch.as_tensor(x).split(chunk):
        r = form.residuals(model, problem, xb.to(device=device, dtype=dtype), create_graph=False).detach()
        total += float(r.double().square().sum())
        count += r.numel()
    return (total / max(count, 1)) ** 0.5


def derived_errors(problem, model, x: np.ndarray, dtype, device, chunk: int = 8192) -> dict[str, float]:
    """Errors of the problem's derived quantities (`Problem.derived`, e.g. von Mises stress) at x:
    {"rel_l2/mises": ..., "max/mises": ...}, the prediction through the model's own derivatives."""
    from .forms import at_points

    out = {}
    for name, fn in problem.derived.items():
        pred = []
        for xb in torch.as_tensor(x).split(chunk):
            xb = xb.to(device=device, dtype=dtype)
            value = at_points(model, problem, xb, fn, create_graph=False)
            pred.append(value.detach().double().cpu().reshape(-1))
        out.update(errors(torch.cat(pred).numpy()[:, None], problem.derived_reference(name, x)[:, None], (name,)))
    return out
