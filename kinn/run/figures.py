"""Figures of a run: fields (prediction, reference, error) and training curves."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.tri as mtri  # noqa: E402
import numpy as np  # noqa: E402

from kinn.run.rundir import atomic_write  # noqa: E402


def save(fig, path: Path) -> None:
    """Write a figure as PNG, atomically, and close it."""
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)


def triangulation(x: np.ndarray, inside=None) -> mtri.Triangulation:
    """Delaunay triangles over the first two coordinates; with `inside` (a mask function of 2-D points),
    the triangles whose centroid lies outside the domain (across holes, re-entrant corners) are hidden."""
    tri = mtri.Triangulation(x[:, 0], x[:, 1])
    if inside is not None and x.shape[1] == 2:
        tri.set_mask(~inside(np.stack([x[tri.triangles, 0].mean(1), x[tri.triangles, 1].mean(1)], 1)))
    return tri


def fields(path: Path, x: np.ndarray, pred: np.ndarray, ref: np.ndarray | None, names, coords, inside=None) -> None:
    """One row per field: prediction, reference, |error| (lines in 1-D, filled contours in 2-D); the
    prediction alone without a reference. Points with a non-finite value are left out, and the
    prediction's title says how many."""
    finite = np.isfinite(pred).all(1) & (np.isfinite(ref).all(1) if ref is not None else True)
    if finite.sum() < 3:
        return  # nothing to draw
    missing = f", {int((~finite).sum())} non-finite points left out" if not finite.all() else ""
    x, pred = x[finite], pred[finite]
    ref = ref[finite] if ref is not None else pred  # no reference: the prediction's own colour scale
    rows = len(names)
    cols = 3 if ref is not pred else 1
    fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols, 3.6 * rows), squeeze=False)
    for k, name in enumerate(names):
        err = np.abs(pred[:, k] - ref[:, k])
        panels = [(pred[:, k], f"{name} (prediction{missing}{'' if ref is not pred else ', no reference given'})"),
                  (ref[:, k], f"{name} (reference)"), (err, f"|error| in {name}")][: axes.shape[1]]
        if x.shape[1] == 1:
            order = np.argsort(x[:, 0])
            for ax, (v, title) in zip(axes[k], panels):
                ax.plot(x[order, 0], v[order])
                ax.set_title(title), ax.set_xlabel(coords[0])
        else:
            tri = triangulation(x, inside)
            vmin, vmax = min(pred[:, k].min(), ref[:, k].min()), max(pred[:, k].max(), ref[:, k].max())
            for j, (ax, (v, title)) in enumerate(zip(axes[k], panels)):
                lim = {} if j == 2 else {"vmin": vmin, "vmax": vmax}
                im = ax.tricontourf(tri, v, levels=64, cmap="viridis" if j < 2 else "magma", **lim)
                fig.colorbar(im, ax=ax)
                ax.set_title(title), ax.set_xlabel(coords[0]), ax.set_ylabel(coords[1]), ax.set_aspect("equal")
    fig.tight_layout()
    save(fig, path)


def operator_samples(path: Path, inputs, outputs, pred, input_names, output_names, axes, rows: int = 3) -> None:
    """A few samples of an operator run, one per row: the first input, each output's reference, prediction
    and |error| (lines for 1-D grids, images for 2-D); arrays are (S, C, *grid), axes the node coordinates."""
    rows = min(rows, len(inputs))
    panels = [("input", inputs, 0, input_names[0])] + [
        (kind, data, k, name) for k, name in enumerate(output_names)
        for kind, data in (("reference", outputs), ("prediction", pred), ("error", pred - outputs))]
    fig, grid = plt.subplots(rows, len(panels), figsize=(3.4 * len(panels), 3.0 * rows), squeeze=False)
    for r in range(rows):
        for ax, (kind, data, k, name) in zip(grid[r], panels):
            v = np.abs(data[r, k]) if kind == "error" else data[r, k]
            if v.ndim == 1:
                ax.plot(axes[0], v)
            else:
                fig.colorbar(ax.imshow(v.T, origin="lower", extent=(axes[0][0], axes[0][-1], axes[1][0], axes[1][-1]),
                                       cmap="magma" if kind == "error" else "viridis"), ax=ax)
            ax.set_title(f"{'|error| in ' + name if kind == 'error' else name + ' (' + kind + ')'}", fontsize=9)
    fig.tight_layout()
    save(fig, path)


def history(path: Path, rows: list[dict]) -> None:
    """Loss terms (absolute values, log scale) and held-out relative L2 errors against the step."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4))
    skip = {"step", "phase", "time", "lr"}
    keys = [k for k in rows[0] if k not in skip and "/" not in k] if rows else []
    steps = np.array([r["step"] for r in rows])
    for key in keys:
        a.semilogy(steps, [abs(r[key]) for r in rows], label=key)
    a.set_xlabel("step"), a.set_title("loss terms (|value|)"), a.legend(fontsize=8)
    scored = sorted({k for r in rows for k in r if k.startswith(("rel_l2/", "rel_error/"))})
    for key in scored:
        pts = [(r["step"], r[key]) for r in rows if key in r]
        b.semilogy(*zip(*pts), marker="o", ms=3, label=key)
    b.set_xlabel("step"), b.set_title("held-out relative L2 error (and unknowns' error)")
    if scored:
        b.legend(fontsize=8)
    else:  # a problem without a reference: nothing to score during training
        b.text(0.5, 0.5, "no reference given", ha="center", va="center", transform=b.transAxes)
    fig.tight_layout()
    save(fig, path)


ADAPTIVE_KEYS = ("points/", "weight/", "rba/", "causal/")  # what adaptive sampling and weights record


def adaptation(path: Path, rows: list[dict]) -> None:
    """What adaptive sampling and adaptive weights did against the step (`kinn.forms.adaptive`,
    `kinn.run.weighting`): collocation points, term weights, per-point weight statistics; one panel each
    that the history has."""
    titles = {"points/": "collocation points", "weight/": "term weights (log)", "rba/": "RBA multipliers",
              "causal/": "causal slice weights"}
    present = [p for p in ADAPTIVE_KEYS if any(k.startswith(p) for r in rows for k in r)]
    if not present:
        return
    fig, axes = plt.subplots(1, len(present), figsize=(4.4 * len(present), 3.6), squeeze=False)
    for ax, prefix in zip(axes[0], present):
        for key in sorted({k for r in rows for k in r if k.startswith(prefix)}):
            pts = [(r["step"], r[key]) for r in rows if key in r]
            (ax.semilogy if prefix == "weight/" else ax.plot)(*zip(*pts), label=key)
        ax.set_xlabel("step"), ax.set_title(titles[prefix]), ax.legend(fontsize=8)
    fig.tight_layout()
    save(fig, path)
