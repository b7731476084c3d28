"""Empirical neural tangent kernels and spectra: what a network learns first (spectral bias).

Jacot, Gabriel, Hongler, "Neural Tangent Kernel: Convergence and Generalization in Neural Networks",
NeurIPS 2018: under gradient flow on a loss of g(x_i), the errors at the points evolve with the kernel
K_ik = <dg(x_i)/dtheta, dg(x_k)/dtheta>; its large eigenvalues' eigenvectors are learnt first. For a
physics-informed loss g is the PDE residual (Wang, Yu, Perdikaris, "When and why PINNs fail to train",
JCP 2022). KINN's example 10 compares the spectra of KANs and MLPs while fitting sin 2 pi x + 0.1 cos 50 pi x.
"""
from __future__ import annotations

from typing import Callable, Iterable, Mapping

import numpy as np
import torch


FLOOR = 1e-15  # eigenvalue ratios below this are the float64 rounding of K = J J^T, not its spectrum


def solution(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The model's first output at the points: x (N, D) -> (N,), the `fn` of the plain NTK."""
    return model(x)[:, 0]


def jacobian(model: torch.nn.Module, fn: Callable, x: torch.Tensor, params: Iterable[torch.Tensor] | None = None,
             chunk: int | None = 1) -> torch.Tensor:
    """J (N, P): row i is d fn(model, x)_i / d theta, theta = `params` (default: the model's trainable
    parameters, flattened and concatenated in `model.parameters()` order).

    fn(model, x) returns (N,) values; it may take derivatives in x with `torch.autograd.grad(...,
    create_graph=True)` (a residual). fn is evaluated on `chunk` points at a time (None: all at once; a fn
    that couples points needs None), and each row is its own `torch.autograd.grad` of one value, which
    returns fresh gradients: nothing accumulates between points, and `.grad` is untouched. One point per
    evaluation is the cheapest (a backward pass through a chunk's graph costs the whole chunk).
    torch.func.jacrev cannot be used instead: it refuses functions that call torch.autograd.grad, and the
    KAN's closed-form bases are an autograd.Function without functorch rules.
    """
    params = list(params) if params is not None else [p for p in model.parameters() if p.requires_grad]
    chunk = chunk or len(x)
    rows = []
    for start in range(0, len(x), chunk):
        points = x[start : start + chunk]
        values = fn(model, points)
        assert values.shape == (len(points),), f"fn must return ({len(points)},) values, not {tuple(values.shape)}"
        for k, value in enumerate(values):
            grads = torch.autograd.grad(value, params, retain_graph=k + 1 < len(values), allow_unused=True)
            rows.append(torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1)
                                   for g, p in zip(grads, params)]))
    return torch.stack(rows)  # (N, P)


def ntk(model: torch.nn.Module, fn: Callable, x: torch.Tensor, params: Iterable[torch.Tensor] | None = None,
        chunk: int | None = 1) -> torch.Tensor:
    """The empirical NTK K = J J^T (N, N) of fn(model, x) with respect to the parameters (see `jacobian`):
    fn = `solution` for the network's output, or a residual function for a physics-informed loss."""
    J = jacobian(model, fn, x, params, chunk).detach()
    return J @ J.T


def spectrum(K: torch.Tensor | np.ndarray) -> np.ndarray:
    """The eigenvalues of the symmetric kernel K (N, N), largest first (float64 numpy; the smallest may
    be slightly negative by rounding)."""
    K = np.asarray(K.detach().cpu() if isinstance(K, torch.Tensor) else K, float)
    return np.linalg.eigvalsh((K + K.T) / 2)[::-1]


def error_spectrum(err: np.ndarray | torch.Tensor, length: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """The frequency content of an error signal on a uniform grid: (frequencies, amplitudes), (N//2 + 1,)
    each. err (N,) are samples at length * k / N, k = 0 .. N - 1 (a periodic grid, endpoint left out);
    frequencies are in cycles per unit of x, and a term A sin(2 pi f x) at a grid frequency shows as
    amplitude |A| at f (|rfft| / N, doubled except at 0 and N/2)."""
    err = np.asarray(err.detach().cpu() if isinstance(err, torch.Tensor) else err, float).reshape(-1)
    n = len(err)
    amplitude = np.abs(np.fft.rfft(err)) / n
    amplitude[1 : (n + 1) // 2] *= 2
    return np.fft.rfftfreq(n, d=length / n), amplitude


def plot_spectra(eigenvalues: Mapping[str, np.ndarray], path,
                 errors: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None) -> None:
    """NTK eigenvalue spectra, each normalised by its largest, against their index on log-log axes (one
    line per label: models, or one model at several steps; ratios below `FLOOR`, rounding, left out); with
    `errors` {label: error_spectrum(...)}, a second panel of the errors' amplitudes against frequency.
    Written atomically as PNG to `path`."""
    from kinn.run.figures import plt, save

    fig, axes = plt.subplots(1, 2 if errors else 1, figsize=(11 if errors else 5.5, 4), squeeze=False)
    ax = axes[0, 0]
    for label, values in eigenvalues.items():
        ratio = np.asarray(values, float) / values[0]
        shown = ratio > FLOOR  # below it, float64 rounding of the kernel: noise, not spectrum
        ax.loglog(np.arange(1, len(ratio) + 1)[shown], ratio[shown], label=label)
    ax.set_xlabel("index k"), ax.set_ylabel("lambda_k / lambda_1"), ax.set_title("NTK eigenvalues")
    ax.legend(fontsize=8)
    if errors:
        ax = axes[0, 1]
        for label, (freq, amplitude) in errors.items():
            ax.semilogy(freq, np.clip(amplitude, 1e-300, None), label=label)
        ax.set_xlabel("frequency"), ax.set_ylabel("|FFT| amplitude"), ax.set_title("error spectrum")
        ax.legend(fontsize=8)
    fig.tight_layout()
    save(fig, path)
