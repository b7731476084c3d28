"""A picture of a boundary: loops coloured by tag, outward normals drawn sparsely."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from kinn.boundary.panels import Boundary
from kinn.run.rundir import atomic_write

ARROWS = 40  # about this many normal arrows, spread over the panels


def plot(boundary: Boundary, path, conditions: dict | None = None) -> Path:
    """Draw `boundary` to `path` (format from its suffix, e.g. .png or .pdf) and return the path.

    conditions: optional {tag: text}, e.g. {"top": "u = 0"}, shown beside each tag in the legend. The
    file is written atomically: to a temporary file in the same folder, then renamed over `path`."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conditions = conditions or {}
    colours = {tag: plt.cm.tab10(i % 10) for i, tag in enumerate(boundary.tags)}
    fig, ax = plt.subplots(figsize=(6, 6))
    t = np.linspace(0.0, 1.0, 33)
    labelled = set()
    for panel in boundary.panels:
        x = panel.point(t)
        name = panel.tag or "(untagged)"
        label = None if panel.tag in labelled else (
            f"{name}: {conditions[panel.tag]}" if panel.tag in conditions else name)
        labelled.add(panel.tag)
        ax.plot(x[:, 0], x[:, 1], color=colours[panel.tag], lw=1.5, label=label)
    step = max(1, len(boundary.panels) // ARROWS)
    chosen = boundary.panels[::step]
    mids = np.concatenate([p.point(0.5) for p in chosen])
    normals = np.concatenate([p.normal(0.5) for p in chosen])
    ax.quiver(mids[:, 0], mids[:, 1], normals[:, 0], normals[:, 1], color="0.3", angles="xy",
              scale_units="xy", scale=1.0 / (0.04 * boundary.size), width=0.003)
    ax.set_aspect("equal")
    ax.set_title(f"{len(boundary.loops)} loop(s), {len(boundary.panels)} panels; arrows: outward normals")
    ax.legend(loc="best", fontsize=8)
    path = Path(path)
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=120))
    finally:
        plt.close(fig)
    return path
