"""`sweep`: scaling studies, error against parameter count, as KINN's grid-size study of the plate.

    s = kinn.comparison.sweep.sweep("poisson2d", {"kan": ("grid", [3, 5, 10, 20]),
                                                  "mlp": ("widths", [[16, 16], [32, 32], [64, 64]])},
                                    seeds=2, steps=2000)

Every run gets the same budget (Adam steps and L-BFGS iterations), dtype, points and seeds; only the
swept option changes, on top of the problem's recommended options for that family. The output folder
holds sweep.json (one row per run, from each run's own result), sweep.png (each held-out relative L2
error against the parameter count on log axes: one line per family through the median over seeds, every
seed as a dot) and the run directories.
"""
from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from kinn import registry
from kinn.errors import KinnError
from kinn.run import rundir


def parse(text: str) -> tuple[str, str, list]:
    """FAMILY.OPTION=V1,V2,... -> (family, option, [values]); each value is TOML (3, 1e-3, [20,20])."""
    from kinn.run.config import tomllib

    key, sep, values = text.partition("=")
    family, dot, option = key.partition(".")
    if not sep or not dot or not family or not option or not values:
        raise KinnError(f"--sweep takes FAMILY.OPTION=V1,V2,... (kan.grid=3,5,10), got '{text}'")
    try:
        parsed = tomllib.loads(f"v = [{values}]")["v"]
    except tomllib.TOMLDecodeError:
        raise KinnError(f"--sweep {key}: the values must be TOML separated by commas "
                        f"(3,5,10 or [20,20],[40,40]), got '{values}'") from None
    return family, option, parsed


def _slug(value) -> str:
    return re.sub(r"[^0-9A-Za-z.+-]+", "x", str(value)).strip("x")


def sweep(problem, sweeps: dict[str, tuple[str, Sequence]], seeds: int = 1, steps: int | None = None,
          lbfgs: int = 0, form: str | None = None, out=None, config: dict | None = None) -> dict:
    """Train every family at every value of its swept option, for seeds 0 .. seeds - 1, at equal budgets.

    sweeps: {family: (option, [values])}. Returns {"problem", "form", "steps", "lbfgs", "seeds", "rows":
    [{"family", "option", "value", "seed", "params", "errors": {"rel_l2/u": ...}, "train_time",
    "run_dir"}], "figure"}, also written to out/sweep.json.
    """
    from kinn.run.pipeline import solve

    problem = registry.get_problem(problem) if isinstance(problem, str) else problem
    if seeds < 1:
        raise KinnError(f"a sweep needs at least one seed, got {seeds}")
    for family in sweeps:
        registry.get_family(family)  # an unknown name fails before anything trains
    out = Path(out or f"runs/sweep-{problem.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    rows = []
    for family, (option, values) in sweeps.items():
        for value in values:
            for seed in range(seeds):
                name = f"{family}-{option}={_slug(value)}-seed{seed}"
                r = solve(problem, family, form, config=config, model={option: value}, steps=steps, lbfgs=lbfgs,
                          seed=seed, out=str(out), name=name, progress=False)
                rows.append({"family": family, "option": option, "value": value, "seed": seed,
                             "params": r.n_params, "train_time": r.history.train_time, "run_dir": str(r.run_dir),
                             "errors": {k: v for k, v in r.errors.items() if k.startswith("rel_l2/")}})
    report = {"problem": problem.name, "form": form or next(iter(problem.forms)), "steps": steps, "lbfgs": lbfgs,
              "seeds": seeds, "rows": rows, "figure": str(out / "sweep.png")}
    plot(rows, out / "sweep.png", f"{problem.name}: error against parameters ({seeds} seed(s) each)")
    rundir.write_json(out / "sweep.json", report)
    return report


def plot(rows: list[dict], path, title: str = "") -> None:
    """One panel per error key: relative L2 against parameters on log axes, a line per family through the
    median over seeds at each value, each seed a dot."""
    from kinn.run.figures import plt, save

    keys = sorted({k for r in rows for k in r["errors"]})
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.6), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for family in dict.fromkeys(r["family"] for r in rows):
            mine = [r for r in rows if r["family"] == family and r["errors"].get(key) is not None]
            sizes = sorted({r["params"] for r in mine})
            median = [np.median([r["errors"][key] for r in mine if r["params"] == p]) for p in sizes]
            line, = ax.loglog(sizes, median, "-o", label=f"{family} ({mine[0]['option']})" if mine else family)
            ax.loglog([r["params"] for r in mine], [r["errors"][key] for r in mine], ".", color=line.get_color(),
                      alpha=0.5)
        ax.set_xlabel("parameters"), ax.set_ylabel(key.replace("/", " ")), ax.legend(fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save(fig, path)
