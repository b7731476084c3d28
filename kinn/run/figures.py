"""Figures of a run: fields (prediction, reference, error) and training curves."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.tri as mtri  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

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


def label(name: str, units=None) -> str:
    """An axis or colour-bar label: the name, with its unit in brackets where the problem gives one."""
    unit = (units or {}).get(name)
    return f"{name} [{unit}]" if unit else name


def fields(path: Path, x: np.ndarray, pred: np.ndarray, ref: np.ndarray | None, names, coords, inside=None,
           units=None) -> None:
    """One row per field: prediction and reference on one colour scale with one bar, and |error| with its
    own bar (filled contours in 2-D; in 1-D the prediction over the reference, and |error| on a log axis);
    the prediction alone without a reference. Axes are named by `coords`, with `units` ({name: unit}) where
    given. Points with a non-finite value are left out, and the figure's title says how many."""
    finite = np.isfinite(pred).all(1) & (np.isfinite(ref).all(1) if ref is not None else True)
    if finite.sum() < 3:
        return  # nothing to draw
    x, pred = x[finite], pred[finite]
    ref = ref[finite] if ref is not None else None
    cols = (2 if x.shape[1] == 1 else 3) if ref is not None else 1
    width = 4.2 if x.shape[1] > 1 else 5.0
    fig, axes = plt.subplots(len(names), cols, figsize=(width * cols, 3.6 * len(names)), squeeze=False,
                             layout="constrained")
    for k, name in enumerate(names):
        r = ref[:, k] if ref is not None else None
        if x.shape[1] == 1:
            _field_lines(axes[k], x[:, 0], pred[:, k], r, name, label(coords[0], units), units)
        else:
            _field_maps(fig, axes[k], triangulation(x, inside), pred[:, k], r, name, coords, units)
    notes = [f"{int((~finite).sum())} non-finite points left out"] if not finite.all() else []
    notes += ["no reference given"] if ref is None else []
    if notes:
        fig.suptitle("; ".join(notes), fontsize=10)
    save(fig, path)


def _field_lines(row, x, pred, ref, name, xlabel, units) -> None:
    """1-D: the prediction over the reference (one axis, so one range), then |error| on a log axis."""
    order = np.argsort(x)
    ax = row[0]
    ax.set_label("prediction")
    if ref is not None:
        ax.plot(x[order], ref[order], "k", lw=2.5, alpha=0.4, label="reference")
    ax.plot(x[order], pred[order], "C0", lw=1.2, label="prediction")
    ax.set_title(name), ax.set_xlabel(xlabel), ax.set_ylabel(label(name, units)), ax.legend(fontsize=8)
    if ref is not None:
        err = np.abs(pred - ref)[order]
        row[1].set_label("error")
        row[1].semilogy(x[order], np.maximum(err, err.max() * 1e-8 or 1e-300), "C3", lw=1)
        row[1].set_title(f"|error| in {name}"), row[1].set_xlabel(xlabel)


def _field_maps(fig, row, tri, pred, ref, name, coords, units) -> None:
    """2-D: prediction and reference share one norm and one colour bar; |error| has its own."""
    both = pred if ref is None else np.concatenate([pred, ref])
    levels = np.linspace(both.min(), both.max(), 65) if np.ptp(both) > 0 else 64
    panels = [("prediction", pred), ("reference", ref)] if ref is not None else [("prediction", pred)]
    for ax, (kind, v) in zip(row, panels):
        im = ax.tricontourf(tri, v, levels=levels, cmap="viridis")
        ax.set_label(kind), ax.set_title(f"{name}: {kind}")
    fig.colorbar(im, ax=list(row[: len(panels)]), label=label(name, units), shrink=0.9, ticks=MaxNLocator(6))
    if ref is not None:
        ax = row[2]
        im = ax.tricontourf(tri, np.abs(pred - ref), levels=64, cmap="magma")
        ax.set_label("error"), ax.set_title(f"|error| in {name}")
        fig.colorbar(im, ax=ax, format="%.1e", shrink=0.9, ticks=MaxNLocator(5))
    for ax in row:  # a space-time plane keeps its own aspect: x and t have no common scale
        ax.set_xlabel(label(coords[0], units)), ax.set_ylabel(label(coords[1], units))
        ax.set_aspect("equal" if "t" not in coords[:2] else "auto")


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


def history(path: Path, rows: list[dict], weights=None) -> None:
    """Training curves against the step. Left: the weighted total that the optimiser minimises (bold) and
    each loss term unweighted (thin, dashed, its weight in the legend; `weights` {term: weight}, 1 when
    absent), as |value| on a log scale. Right: the held-out relative L2 errors (and an inverse problem's
    unknowns' errors). A dotted line marks where L-BFGS takes over from Adam."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.2), layout="constrained")
    _loss_panel(a, rows, weights or {})
    _error_panel(b, rows)
    for ax in (a, b):
        mark_lbfgs(ax, rows)
    save(fig, path)


def _loss_panel(ax, rows: list[dict], weights) -> None:
    """|value| on a log scale; signed values on a linear scale when some are negative (an energy form's
    potential), where |value| would rise as the potential falls."""
    skip = {"step", "phase", "time", "lr", "loss"}
    keys = [k for k in rows[0] if k not in skip and "/" not in k] if rows else []
    steps = np.array([r["step"] for r in rows])
    signed = any(r[k] < 0 for r in rows for k in ("loss", *keys))
    plot = ax.plot if signed else ax.semilogy
    value = (lambda v: v) if signed else abs
    if rows:
        plot(steps, [value(r["loss"]) for r in rows], "k", lw=2, label="total, weighted (minimised)")
    for key in keys:
        plot(steps, [value(r[key]) for r in rows], "--", lw=1, label=f"{key}, unweighted (weight {weights.get(key, 1.0):g})")
    ax.set_xlabel("step"), ax.set_ylabel("loss" if signed else "|loss|")
    ax.set_title("loss: weighted total and unweighted terms")
    ax.legend(fontsize=8)
    ax.grid(True, which="major", alpha=0.3)


def _error_panel(ax, rows: list[dict]) -> None:
    scored = sorted({k for r in rows for k in r if k.startswith(("rel_l2/", "rel_error/"))})
    for key in scored:
        pts = [(r["step"], r[key]) for r in rows if key in r]
        ax.semilogy(*zip(*pts), marker="o", ms=3, label=key)
    ax.set_xlabel("step"), ax.set_ylabel("relative error"), ax.set_title("held-out relative L2 error")
    if scored:
        ax.legend(fontsize=8)
        ax.grid(True, which="major", alpha=0.3)
    else:  # a problem without a reference: nothing to score during training
        ax.text(0.5, 0.5, "no reference given", ha="center", va="center", transform=ax.transAxes)


def mark_lbfgs(ax, rows: list[dict]) -> None:
    """A dotted vertical line, labelled, where L-BFGS takes over: after the last Adam step (nothing when the
    run has no L-BFGS rows)."""
    if any(r["phase"] == "lbfgs" for r in rows):
        first = max((r["step"] + 1 for r in rows if r["phase"] == "adam"), default=0)
        ax.axvline(first, color="0.3", ls=":", lw=1.2)
        ax.text(first, 0.98, " L-BFGS", transform=ax.get_xaxis_transform(), va="top", ha="left", fontsize=8,
                color="0.3")


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
        mark_lbfgs(ax, rows)
    fig.tight_layout()
    save(fig, path)
