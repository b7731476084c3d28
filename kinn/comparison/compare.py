"""`compare`: solver families side by side on one problem, with equal budgets, points and seeds.

    c = kinn.compare("poisson2d", solvers=("mlp", "kan", "deepxde"), seeds=3, budget_steps=2000)
    print(c.table())                      # also saved, with CSV, JSON and two figures, under c.out

Fair by construction:
- every run gets the same budget (Adam steps, L-BFGS iterations, or seconds of training) and the same
  settings that decide what is counted and when (dtype, device, eval_every, log_every, resample_every,
  target_error), and the same points settings, all taken from one resolved config. Training and
  evaluation points come from seed streams that do not depend on the family (`kinn.run.pipeline`), so a seed gives
  every family the same points; evaluation points are never training points.
- runs go one after another in one process, seeds outside families, so a busy spell on a shared machine
  falls on every family alike; each family first takes one untimed step, so none pays for warm-up.
- match="params" gives each family equal hidden widths, at its own depth, whose parameter count is
  closest to a target (the first family's, or `params`); match="width" gives all the same hidden widths.

The output folder holds table.md, table.csv, table.json, error_vs_time.png, fields.png and one run
directory per family and seed (<family>-seed<s>/) whose result.json the table's numbers come from.
"""
from __future__ import annotations

import csv
import dataclasses
import io as _io
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.ticker import MaxNLocator

from kinn import registry
from kinn.comparison.deepxde_row import DeepXDE
from kinn.errors import KinnError, unknown
from kinn.models.base import n_params
from kinn.pde import geometry
from kinn.pde.problem import Problem
from kinn.run import figures as plots
from kinn.run import pipeline, rundir
from kinn.run.config import PointsConfig, RunConfig, TrainConfig, read_toml
from kinn.run.figures import save  # also selects matplotlib's Agg backend

ROWS = {DeepXDE.name: DeepXDE}  # families a comparison can add beside the registry's: reference rows
MATCHES = ("params", "width")
WIDTH_OPTIONS = ("widths", "hidden", "width")  # a family's hidden-width option: a list per layer (MLP, KAN)
#                                                or one width for all layers (FNO)
# train settings every family shares: beyond the budget, they decide what is counted and when
EQUAL_TRAIN = ("dtype", "device", "eval_every", "log_every", "resample_every", "target_error")
_TRAIN = {f.name for f in dataclasses.fields(TrainConfig)}
_POINTS = {f.name for f in dataclasses.fields(PointsConfig)}
_UNLIMITED = 10**9  # Adam steps under a time budget: the clock stops the run


@dataclass
class Row:
    """One family's line of the table: its configuration, and aggregates over seeds of its runs.

    errors:        {field: (mean, std)} of the held-out relative L2 error (std over seeds, n - 1).
    best, worst:   (seed, error) of the runs with the smallest and largest error (largest over fields).
    steps, wall_time, time_per_step: means over seeds; time per step is training time (evaluation
                   excluded) over steps, in seconds.
    runs:          each seed's result.json summary.
    """

    family: str
    configuration: str
    params: int
    steps: float
    wall_time: float
    time_per_step: float
    errors: dict[str, tuple[float, float]]
    best: tuple[int, float]
    worst: tuple[int, float]
    runs: list[dict] = field(default_factory=list)


@dataclass
class Comparison:
    """What `compare` returns: the table's rows, every run's `Result` by (family, seed), the output folder."""

    problem: str
    form: str
    seeds: list[int]
    budget: dict
    match: str | None
    params_target: int | None
    rows: list[Row]
    results: dict = field(repr=False, default_factory=dict)
    out: Path | None = None

    def table(self) -> str:
        """The markdown table (also saved as table.md)."""
        fields = list(self.rows[0].errors) if self.rows else []
        spread = " (mean ± std)" if len(self.seeds) > 1 else ""
        head = ["family", "configuration", "params", "steps", "wall time [s]", "time/step [ms]",
                *[f"rel. L2 {f}{spread}" for f in fields], "best (seed)", "worst (seed)"]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in self.rows:
            cells = [r.family, r.configuration, str(r.params), f"{r.steps:.0f}", f"{r.wall_time:.1f}",
                     f"{1e3 * r.time_per_step:.2f}", *[mean_std(m, s, len(self.seeds)) for m, s in r.errors.values()],
                     f"{r.best[1]:.2e} ({r.best[0]})", f"{r.worst[1]:.2e} ({r.worst[0]})"]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """The JSON form (also saved as table.json)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("rows", "results")}
        d.update(rows=[dataclasses.asdict(r) for r in self.rows], out=str(self.out) if self.out else None)
        return d


def mean_std(mean: float, std: float, n: int) -> str:
    """A table cell "mean ± std" over n seeds; the mean alone for one seed, which has no spread to show."""
    return f"{mean:.2e} ± {std:.1e}" if n > 1 else f"{mean:.2e}"


def compare(problem: str | Problem, families=("mlp", "kan"), form: str | None = None, *, seeds=3,
            budget_steps: int | None = None, budget_seconds: float | None = None, match: str | None = "params",
            params: int | None = None, models: dict | None = None, out=None, config=None, solvers=None,
            **overrides) -> Comparison:
    """Solve `problem` with each family in `families` under equal budgets; write and return the comparison.

    families:       registered family names, and "deepxde" for DeepXDE's own `Model` on the same problem
                    (`solvers=` is the same argument under its older name).
    seeds:          a count (0 .. n-1) or a list of seeds; each family runs once per seed.
    budget_steps:   Adam steps for every family (L-BFGS 0 unless `lbfgs=` is given, then for all);
    budget_seconds: or seconds of training (evaluation excluded) for every family, Adam only.
                    Neither: the problem's recommended Adam steps.
    match:          "params", "width" or None (each family's own recommended size); `params` sets the
                    parameter-count target (default: the first family's count).
    models:         per-family options, {"kan": {"grid": 5}}; a width given here is kept as given.
    out:            the output folder (default runs/compare-<problem>-<time>).
    config, overrides: the settings of `kinn.solve` (steps, lr, n_interior, dtype, derivatives, ...) for every
                    run; a config file's [model] is refused: options are per family, in `models`.
    """
    problem = registry.get_problem(problem) if isinstance(problem, str) else problem
    families = _families(solvers or families)
    seeds = _seeds(seeds)
    if match not in (None, *MATCHES):
        raise KinnError(f"unknown match '{match}'; valid: {', '.join(MATCHES)}, or None")
    models = dict(models or {})
    for name in models:
        if name not in families:
            raise KinnError(f"models has options for '{name}', which is not among the families ({', '.join(families)})")
    config = _shared_config(config)
    for key in ("model", "name", "out"):
        if key in overrides:
            raise KinnError(f"compare sets '{key}' per run itself; give family options as models={{'kan': {{...}}}}")
    # train and points settings, flat or nested, go into the shared tables; the rest (derivatives=) to every run
    train_user = {**overrides.pop("train", {}), **{k: overrides.pop(k) for k in list(overrides) if k in _TRAIN}}
    points_user = {**overrides.pop("points", {}), **{k: overrides.pop(k) for k in list(overrides) if k in _POINTS}}
    train_user = {k: v for k, v in train_user.items() if v is not None}
    points_user = {k: v for k, v in points_user.items() if v is not None}

    base = pipeline.resolve_config(problem, next(iter(families.values())), form, config, train=train_user,
                                   points=points_user, **overrides)
    form = base.form
    problem.form(form)  # a form the problem lacks is named before any family is asked
    if form == "operator":  # one family (fno) trains operators, and their runs have no point fields
        raise KinnError("kinn compare does not cover the operator form; run `kinn solve PROBLEM --family fno` "
                        "(scripts/fno_darcy.py for Darcy)")
    for fam in families.values():  # refuse before anything runs
        fam.check(problem, form)
    budget = _budget(base, budget_steps, budget_seconds, train_user)
    shared = {**{k: getattr(base.train, k) for k in EQUAL_TRAIN}, **budget, **_cadence(budget, base.train, train_user)}
    points = dataclasses.asdict(base.points)
    options, target = _sizes(problem, families, form, config, match, params, models)
    for name, fam in families.items():  # again with the sizes chosen (a KAN's spline order) and the train
        train = pipeline.resolve_config(problem, fam, form, config, train={**train_user, **shared},
                                        **overrides).train  # settings (some DeepXDE cannot be given)
        fam.check(problem, form, fam.config(options[name]), train)

    out = Path(out) if out else Path("runs") / f"compare-{problem.name}-{time.strftime('%Y%m%d-%H%M%S')}"

    def run(name, seed, write=True, train=None, points_=None):
        kw = dict(config=config, model=options[name], out=str(out), name=f"{name}-seed{seed}", write=write,
                  train={**train_user, **shared, "seed": seed, **(train or {})}, points={**points, **(points_ or {})},
                  **overrides)
        return pipeline.solve(problem, families[name], form, **kw)

    for name in families:  # one untimed step each: first-call costs (imports, allocator) are nobody's time
        run(name, seeds[0], write=False, train={"steps": 1, "lbfgs": 0, "time_limit": 0, "eval_every": 0},
            points_={"n_eval": min(points["n_eval"], 100)})
    results = {(name, seed): run(name, seed) for seed in seeds for name in families}

    rows = [_row(problem, name, families[name], options[name], [results[name, s] for s in seeds])
            for name in families]
    budget_out = {"steps": budget["steps"] if not budget["time_limit"] else None,
                  "seconds": budget["time_limit"] or None, "lbfgs": budget["lbfgs"]}
    comparison = Comparison(problem.name, form, seeds, budget_out, match, target, rows, results, out)
    _write(comparison, problem)
    return comparison


def _families(names) -> dict:
    names = [s.strip() for s in names.split(",")] if isinstance(names, str) else list(names)
    if not names:
        raise KinnError("no families given; name at least one, e.g. mlp,kan")
    if len(set(names)) != len(names):
        raise KinnError(f"a family is named twice: {', '.join(names)}")
    valid = [*registry.family_names(), *ROWS]
    families = {}
    for name in names:
        if name not in valid:
            raise unknown("family", name, valid)
        try:
            families[name] = ROWS[name]() if name in ROWS else registry.get_family(name)
        except ImportError as e:
            raise KinnError(f"family '{name}' is unavailable here: {e}") from None
    return families


def _seeds(seeds) -> list[int]:
    seeds = list(range(seeds)) if isinstance(seeds, int) and not isinstance(seeds, bool) else list(seeds)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise KinnError(f"seeds must be a count >= 1 or a list of non-negative integers, got {seeds!r}")
    return seeds


def _shared_config(config) -> dict:
    """The config every family shares: a file, dict or RunConfig without its family-specific parts."""
    if isinstance(config, RunConfig):
        config = config.to_dict()
    elif config is not None and not isinstance(config, dict):
        config = read_toml(config)
    config = dict(config or {})
    if config.pop("model", None):
        raise KinnError("a compare config cannot hold [model]: options differ per family; "
                        "give them as models={'kan': {...}} (command line: --set kan.grid=5)")
    for key in ("family", "solver", "out", "name"):
        config.pop(key, None)
    return config


def _budget(base: RunConfig, steps, seconds, train_user: dict) -> dict:
    if steps is not None and seconds is not None:
        raise KinnError("give a step budget or a time budget, not both")
    lbfgs = train_user.get("lbfgs", 0)  # L-BFGS only when asked for, and then for every family
    if seconds is not None:
        if not seconds > 0:
            raise KinnError(f"the time budget must be > 0 seconds, got {seconds}")
        if lbfgs:
            raise KinnError("a time budget runs Adam only; drop lbfgs, or use a step budget")
        return {"steps": _UNLIMITED, "lbfgs": 0, "time_limit": float(seconds)}
    steps = base.train.steps if steps is None else steps
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise KinnError(f"the step budget must be an integer >= 1, got {steps!r}")
    return {"steps": steps, "lbfgs": lbfgs, "time_limit": 0.0}


def _cadence(budget: dict, train: TrainConfig, given: dict) -> dict:
    """Evaluate often enough for error_vs_time.png to draw curves, not two points: about 25 evaluations
    under a step budget, at every logged step under a time budget (evaluation is not training time, so
    no family pays for it). An eval_every given by the user is kept."""
    if "eval_every" in given:
        return {}
    steps = budget["steps"] + budget["lbfgs"]
    every = train.log_every if budget["time_limit"] else max(1, min(train.log_every, steps // 25))
    return {"eval_every": every, "log_every": min(train.log_every, every)}


def _width_option(family) -> str:
    for f in dataclasses.fields(family.Config):
        if f.name in WIDTH_OPTIONS:
            return f.name
    raise KinnError(f"family '{family.name}' has no hidden-width option ({' or '.join(WIDTH_OPTIONS)}) to match; "
                    "compare it with match=None (command line: --match none)")


def _count(problem: Problem, family, options: dict) -> int:
    return n_params(family.build(problem.dim, len(problem.fields), family.config(options)))


def _sizes(problem, families, form, config, match, params, models) -> tuple[dict, int | None]:
    """Each family's model options (its recommended ones, the user's, then the matched width) and the
    parameter-count target of match="params". A family that starts from another's settings (DeepXDE's
    FNN from the MLP's) takes that family's options, the user's too."""
    options, given = {}, {}
    for name, fam in families.items():
        start = fam.settings_of or name
        given[name] = {**models.get(start, {}), **models.get(name, {})}
        recommended = pipeline.resolve_config(problem, fam, form, config).model
        options[name] = dataclasses.asdict(fam.config({**recommended, **given[name]}))
    if match is None:
        return options, None
    ref = next(iter(families))
    ref_widths = options[ref][_width_option(families[ref])]
    target = params or _count(problem, families[ref], options[ref])
    for name, fam in families.items():
        key = _width_option(fam)
        if key in given[name] or (match == "params" and name == ref and not params):
            continue  # a width the user gave, or the reference that set the target, is kept
        shape = _widths(options[name][key])
        if match == "width":  # the reference's layers as they are; a one-width family takes the first
            options[name][key] = list(ref_widths) if isinstance(options[name][key], list) else _first(ref_widths)
        else:
            options[name][key] = shape(_fit(problem, fam, options[name], key, shape, target))
    return options, target


def _widths(current):
    """A function w -> the width option with every hidden layer w, shaped like `current` (list or int)."""
    return (lambda w: [w] * len(current)) if isinstance(current, list) else int


def _first(widths) -> int:
    return widths[0] if isinstance(widths, list) else widths


def _fit(problem, family, options: dict, key: str, shape, target: int) -> int:
    """The hidden width (equal in every layer) whose parameter count is closest to `target`.

    The count grows with the width, so doubling brackets the target and bisection finds it; doubling
    from 1 never builds a network much larger than the target.
    """
    def count(w):
        return _count(problem, family, {**options, key: shape(w)})

    lo, hi = 0, 1
    while count(hi) < target:
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if count(mid) < target else (lo, mid)
    return min((w for w in (lo, hi) if w >= 1), key=lambda w: abs(count(w) - target))


def _configuration(family, options: dict) -> str:
    """The table's configuration cell: the width option, then every option that differs from its default."""
    key = next((f.name for f in dataclasses.fields(family.Config) if f.name in WIDTH_OPTIONS), None)
    defaults = dataclasses.asdict(family.Config())
    parts = [f"{k}={v}" for k, v in dataclasses.asdict(family.config(options)).items()
             if k == key or v != defaults.get(k)]
    return " ".join(parts).replace(", ", ",")


def _row(problem: Problem, name: str, family, options: dict, results) -> Row:
    runs = [r.summary() for r in results]
    seeds = [s["seed"] for s in runs]
    rel = {f: np.array([s["errors"][f]["rel_l2"] for s in runs]) for f in problem.fields}
    worst_field = np.max(np.stack(list(rel.values())), axis=0)  # a seed's error: its largest over fields
    b, w = int(np.argmin(worst_field)), int(np.argmax(worst_field))
    return Row(
        family=name, configuration=_configuration(family, options), params=runs[0]["params"],
        steps=float(np.mean([s["steps"] for s in runs])), wall_time=float(np.mean([s["wall_time"] for s in runs])),
        time_per_step=float(np.mean([s["train_time"] / max(s["steps"], 1) for s in runs])),
        errors={f: (float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0) for f, v in rel.items()},
        best=(seeds[b], float(worst_field[b])), worst=(seeds[w], float(worst_field[w])), runs=runs)


def _write(c: Comparison, problem: Problem) -> None:
    rundir.write_text(c.out / "table.md", c.table() + "\n")
    rundir.write_json(c.out / "table.json", c.to_dict())
    buf = _io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    fields = list(problem.fields)
    writer.writerow(["family", "configuration", "params", "steps", "wall_time", "time_per_step",
                     *[f"rel_l2_{f}_{s}" for f in fields for s in ("mean", "std")],
                     "best_seed", "best_rel_l2", "worst_seed", "worst_rel_l2"])
    for r in c.rows:
        writer.writerow([r.family, r.configuration, r.params, repr(r.steps), repr(r.wall_time), repr(r.time_per_step),
                         *[repr(x) for f in fields for x in r.errors[f]], r.best[0], repr(r.best[1]),
                         r.worst[0], repr(r.worst[1])])
    rundir.write_text(c.out / "table.csv", buf.getvalue())
    _error_vs_time(c.out / "error_vs_time.png", c, fields)
    _fields(c.out / "fields.png", c, problem)


def _error_vs_time(path: Path, c: Comparison, fields) -> None:
    """Held-out relative L2 error against training time: each seed faint, their geometric mean bold."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(fields), figsize=(6.5 * len(fields), 4.5), squeeze=False, layout="constrained")
    for k, f in enumerate(fields):
        ax = axes[0, k]
        for i, row in enumerate(c.rows):
            color, curves = f"C{i}", []
            for seed in c.seeds:
                res = c.results[row.family, seed]
                pts = [(r["time"], r[f"rel_l2/{f}"]) for r in res.history.rows if f"rel_l2/{f}" in r]
                pts.append((res.history.train_time, res.errors[f"rel_l2/{f}"]))  # the final, scored result
                t, e = np.array(pts).T
                ax.loglog(t, e, color=color, alpha=0.3, lw=0.8)
                curves.append((t, e))
            n = min(len(t) for t, _ in curves)  # the seeds' logged points, aligned by index
            ax.loglog(np.mean([t[:n] for t, _ in curves], 0), np.exp(np.mean([np.log(e[:n]) for _, e in curves], 0)),
                      color=color, lw=2, marker="o", ms=3, label=row.family)
        ax.set_xlabel("training time [s] (evaluation excluded)"), ax.set_ylabel(f"relative L2 error of {f}")
        ax.set_title(f"{c.problem}: held-out error against time, {len(c.seeds)} seed(s)"), ax.legend()
        ax.grid(True, which="both", alpha=0.3)
    save(fig, path)


def _fields(path: Path, c: Comparison, problem: Problem) -> None:
    """Reference, each family's prediction (one colour scale) and |error| (one log colour scale), seed
    `c.seeds[0]`, read back from the run directories' fields.h5."""
    import h5py
    import matplotlib.colors as mcolors
    import matplotlib.pyplot as plt

    runs = {}
    for row in c.rows:
        with h5py.File(c.results[row.family, c.seeds[0]].run_dir / "fields.h5", "r") as h:
            runs[row.family] = {k: h[k][()] for k in ("points", *[f"{g}/{f}" for g in ("fields", "reference")
                                                                  for f in problem.fields])}
    first = next(iter(runs.values()))
    x, names, ncol = first["points"], list(runs), len(runs) + 1
    fig, axes = plt.subplots(2 * len(problem.fields), ncol, figsize=(3.6 * ncol, 6.4 * len(problem.fields)),
                             squeeze=False, layout="constrained")
    inside = None if problem.time_dependent else (lambda m: geometry.inside(problem.domain, m))
    tri = plots.triangulation(x, inside) if x.shape[1] > 1 else None
    for k, f in enumerate(problem.fields):
        top, bottom = axes[2 * k], axes[2 * k + 1]
        ref = first[f"reference/{f}"]
        preds = [runs[n][f"fields/{f}"] for n in names]
        errs = [np.abs(p - ref) for p in preds]
        emax = max(float(e.max()) for e in errs) or 1.0
        elo = emax * 1e-4
        if tri is None:  # 1-D: values as lines, errors on a log axis
            order = np.argsort(x[:, 0])
            top[0].plot(x[order, 0], ref[order], "k", lw=2, label="reference")
            for i, (n, p, e) in enumerate(zip(names, preds, errs)):
                top[0].plot(x[order, 0], p[order], f"C{i}", lw=1, label=n)
                bottom[0].semilogy(x[order, 0], np.maximum(e[order], elo), f"C{i}", lw=1, label=n)
            top[0].set_title(f"{f}: reference and predictions"), top[0].legend(fontsize=8)
            bottom[0].set_title(f"|error| in {f}"), bottom[0].legend(fontsize=8)
            for ax in [*top[1:], *bottom[1:]]:
                ax.axis("off")
            continue
        levels = np.linspace(min(ref.min(), *(p.min() for p in preds)), max(ref.max(), *(p.max() for p in preds)), 65)
        elevels = np.geomspace(elo, emax, 33)
        for j, (v, title) in enumerate([(ref, f"{f} (reference)"), *[(p, f"{f}: {n}") for n, p in zip(names, preds)]]):
            im = top[j].tricontourf(tri, v, levels=levels, cmap="viridis")
            top[j].set_title(title)
        fig.colorbar(im, ax=list(top), label=plots.label(f, problem.units), ticks=MaxNLocator(6))
        bottom[0].axis("off")
        for j, (n, e) in enumerate(zip(names, errs), start=1):
            im = bottom[j].tricontourf(tri, np.clip(e, elo, emax), levels=elevels, cmap="magma",
                                       norm=mcolors.LogNorm(elo, emax))
            bottom[j].set_title(f"|error| {n}")
        fig.colorbar(im, ax=list(bottom[1:]), ticks=np.geomspace(elo, emax, 5), format="%.1e")
        for ax in [*top, *bottom[1:]]:
            ax.set_xlabel(plots.label(problem.coords[0], problem.units))
            ax.set_ylabel(plots.label(problem.coords[1], problem.units))
            ax.set_aspect("equal" if not problem.time_dependent else "auto")
    fig.suptitle(f"{c.problem}, seed {c.seeds[0]}: same colour scale across families")
    save(fig, path)
