"""`solve` — where a problem meets a family — and `load`, which gives a finished run back.

One pipeline for every form and family: resolve the config, build the form's model, draw its data, make
its scorer, train with the family's trainer (`kinn.run.trainer.fit`, or DeepXDE's for the reference row),
score, write. What differs between forms is declared by `kinn.forms.base.Form`; nothing here asks which
form or family it holds.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kinn import registry
from kinn.errors import KinnError
from kinn.forms.base import Env, Form
from kinn.models.base import Model, n_params
from kinn.models.family import Family
from kinn.pde.problem import Problem
from kinn.forms import adaptive
from kinn.run import defaults, distributed, interrupts, rundir, weighting
from kinn.run.config import PointsConfig, RunConfig, TrainConfig, from_dict, merge, read_toml, to_toml
from kinn.run.trainer import History, Run, fit

_TRAIN_KEYS = {f.name for f in dataclasses.fields(TrainConfig)}
_POINT_KEYS = {f.name for f in dataclasses.fields(PointsConfig)}


@dataclass
class Result:
    """A trained (or loaded) run: model, problem, config, history and held-out errors."""

    problem: Problem
    family: Family
    config: RunConfig
    model: Model
    history: History
    errors: dict[str, float]
    residual_rms: float | None
    run_dir: Path | None
    wall_time: float
    points: dict | None = None        # the last training batch {name: tensor}
    eval_points: np.ndarray | None = None  # the held-out evaluation points (N, D), where the form has them
    checks: dict[str, float] = dataclasses.field(default_factory=dict)  # measured without a reference
    reference: str | None = None      # what the errors are measured against (None: no reference given)

    @property
    def n_params(self) -> int:
        return n_params(self.model)

    @property
    def dtype(self) -> torch.dtype:
        return getattr(torch, self.config.train.dtype)

    @property
    def form(self) -> Form:
        return self.problem.form(self.config.form)

    @property
    def env(self) -> Env:
        """Where the trained model evaluates: its device, the run's dtype and seed, this process alone."""
        return Env(next(self.model.buffers()).device, self.dtype, distributed.Group(), self.config.train.seed)

    def predict(self, points) -> dict[str, np.ndarray]:
        """The trained fields at points (N, D) (physical coordinates): {field name: (N,) array}."""
        x = np.asarray(points, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.problem.dim:
            raise KinnError(f"points must have shape (N, {self.problem.dim}) for problem '{self.problem.name}', "
                            f"got {x.shape}")
        pred = self.form.predict(self.model, self.problem, x, self.env)
        return {name: pred[:, k] for k, name in enumerate(self.problem.fields)}

    def errors_by_field(self) -> dict[str, dict[str, float]]:
        """{field: {"rel_l2": ..., "max": ..., other metrics}} from the "metric/field" error keys."""
        out = {n: {"rel_l2": None, "max": None} for n in self.problem.fields}
        for key, value in self.errors.items():
            metric, name = key.split("/", 1)
            out.setdefault(name, {})[metric] = value
        return out

    def summary(self) -> dict[str, Any]:
        """The stable JSON summary printed by `kinn solve --json` and stored as result.json."""
        return {
            "problem": self.problem.name, "family": self.family.name, "form": self.config.form,
            "params": self.n_params, "steps": self.history.steps, "adam_steps": self.history.adam_steps,
            "lbfgs_iters": self.history.lbfgs_iters, "wall_time": round(self.wall_time, 3),
            "train_time": round(self.history.train_time, 3), "stop_reason": self.history.stop_reason,
            "seed": self.config.train.seed, "dtype": self.config.train.dtype,
            "run_dir": str(self.run_dir) if self.run_dir else None,
            "errors": self.errors_by_field(),
            "residual_rms": self.residual_rms,
            "reference": self.reference,
            "checks": self.checks,
        }


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise KinnError(f"unknown device '{name}'; valid: auto, cpu, cuda, cuda:N") from None
    if dev.type not in ("cpu", "cuda"):
        raise KinnError(f"unsupported device '{name}'; valid: auto, cpu, cuda, cuda:N")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise KinnError(f"device '{name}' requested but CUDA is not available here; use cpu or auto")
    return dev


def _overrides(config: dict, overrides: dict) -> dict:
    """Keyword settings sorted into the config's tables: {"train": {...}, "points": {...}, "model": {...}}."""
    nested = {"train": {}, "points": {}, "model": {}}
    for k, v in overrides.items():
        if v is None:
            continue
        if k in nested:
            nested[k].update(v)
        elif k in _TRAIN_KEYS:
            nested["train"][k] = v
        elif k in _POINT_KEYS:
            nested["points"][k] = v
        elif k in ("out", "name", "derivatives"):
            config[k] = v
        else:
            raise KinnError(f"unknown setting '{k}'; allowed: {', '.join(sorted(_TRAIN_KEYS | _POINT_KEYS))}, "
                            "out, name, derivatives, train={...}, points={...}, model={...}")
    return nested


def _recommended(problem: Problem, family: Family | None, name: str, form: str, tuned: bool = True) -> dict:
    """The settings a run starts from: kinn's defaults for an untuned problem of this size
    (`kinn.run.defaults`, for each of the train, points and model tables the problem leaves empty) < the family's
    own needs < the problem's defaults < the problem's for this family (or the family it takes its
    settings from) < the problem's for this form (and for this family in this form).
    tuned=False leaves the problem's recommendations out: the run a problem nobody tuned gets."""
    d = problem.defaults if tuned else {}
    start = (family.settings_of or name) if family is not None else name
    family_defaults = family.defaults if family is not None else {}
    own = {k: dict(d.get(k, {})) for k in ("train", "points")}
    own["model"] = dict(d.get("model", {}).get(start, {}))
    own = merge(own, {k: v for k, v in d.get(start, {}).items()})
    by_form = d.get(form, {})  # a form's own recommendations, shaped like the defaults, win over them
    own = merge(own, {k: dict(by_form.get(k, {})) for k in ("train", "points")})
    own = merge(own, {"model": dict(by_form.get("model", {}).get(start, {})), **by_form.get(start, {})})
    # a problem that sets any value of a table keeps the old dataclass defaults for the rest of it: its
    # recommended settings were tuned against those
    untuned = {k: v for k, v in defaults.for_problem(problem, form, start).items() if not own.get(k)}
    base = merge(untuned, {k: dict(family_defaults.get(k, {})) for k in ("train", "points")})
    return merge(base, own)


def resolve_config(problem: Problem, family: str | Family | None, form: str | None, config=None, *,
                   source: str | None = None, tuned: bool = True, **overrides) -> RunConfig:
    """Merge dataclass defaults < kinn's defaults by problem size < problem defaults < config (file path,
    dict or RunConfig) < overrides. source: the name the run records for the problem (a registry name or
    a "file.py:NAME" spec; default the problem's name). tuned=False: without the problem's defaults."""
    if isinstance(config, RunConfig):
        config = config.to_dict()
    elif config is not None and not isinstance(config, dict):
        config = read_toml(config)
    config = dict(config or {})
    for table in ("train", "points", "model"):  # merged below, where a non-table would silently vanish
        if table in config and not isinstance(config[table], dict):
            raise KinnError(f"{table} must be a table of settings ({table}.KEY=VALUE), got {config[table]!r}")
    if "solver" in config:  # a config file from before the family had one word
        config["family"] = config.pop("solver")
    nested = _overrides(config, overrides)
    name = family.name if isinstance(family, Family) else (family or config.get("family") or "mlp")
    if not isinstance(family, Family):
        family = registry.get_family(name) if name in registry.family_names() else None  # else refused later
    form = form or config.get("form") or next(iter(problem.forms))
    merged = merge(merge(_recommended(problem, family, name, form, tuned), config), nested)
    merged.update(problem=source or problem.name, family=name, form=form)
    return from_dict(RunConfig, merged)


def run_dir_for(cfg: RunConfig) -> Path:
    problem = cfg.problem.rpartition(":")[2]  # a file spec's problem name, without its path
    name = cfg.name or f"{problem}-{cfg.family}-{cfg.form}-{time.strftime('%Y%m%d-%H%M%S')}"
    out = Path(cfg.out).resolve()  # absolute: result.json and `kinn show` name it from anywhere
    path, k = out / name, 1
    while path.exists() and not cfg.name:
        k += 1
        path = out / f"{name}-{k}"
    return path


def term_weights(form: Form, tc: TrainConfig) -> dict[str, float]:
    """Each condition's own weight, unless the config names the term or its prefix ("bc")."""
    weights = {k: w for k, w in form.weights().items() if k not in tc.weights and k.split(":")[0] not in tc.weights}
    return {**weights, **tc.weights}


def solve(problem: str | Problem | None = None, family: str | Family | None = None, form: str | None = None, *,
          config=None, write: bool = True, resume=None, solver: str | None = None, tuned: bool = True,
          **overrides) -> Result:
    """Solve a problem with a family; return the `Result`.

    problem:   a registered name ("poisson2d"), a spec "path/to/file.py:NAME" of a `Problem` in your own
               file (the run records its absolute path), or your own `Problem` object.
    family:    a family name ("mlp", "kan") or a `Family` object; default "mlp" or the config's.
               (`solver=` is the same argument under its older name.)
    form:      a form kind ("strong", "energy", "inverse", "operator"); default the problem's first form.
    config:    a TOML path, a dict shaped like the config file, or a `RunConfig`.
    overrides: any train or points setting by name (steps=2000, lbfgs=500, dtype="float64", seed=1,
               n_interior=4000), or train={...}, points={...}, model={...}; out=, name= for the run dir.
    write:     write the run directory (config, history, fields, figures, checkpoint).
    resume:    a run directory to continue from its last checkpoint, with its own config.toml (pass your own
               `Problem` as `problem` if it is not registered); on the same device and dtype it continues
               exactly as if never stopped. Only RESUME_KEYS may change (steps=, lbfgs=, lr=, ...); a
               change is written to its config.toml.
    tuned:     start from the problem's recommended settings (`Problem.defaults`); False: from kinn's
               defaults alone, as for a problem nobody tuned (scripts/defaults_study.py).

    A run stopped by Ctrl-C or SIGTERM returns normally, its history saying so (`history.signal`).
    """
    family = family or solver
    start = None
    if resume is not None:
        problem, cfg, start = _resumable(Path(resume), problem, family, form, config, overrides)
    else:
        if problem is None:
            raise KinnError("name a problem to solve, or give resume=RUN_DIR")
        source = registry.canonical(problem) if isinstance(problem, str) else None
        problem = registry.get_problem(problem) if isinstance(problem, str) else problem
        cfg = resolve_config(problem, family, form, config, source=source, tuned=tuned, **overrides)
    family = family if isinstance(family, Family) else registry.get_family(cfg.family)
    return _run(problem, family, cfg, write, start, Path(resume).resolve() if resume is not None else None)


def _run(problem: Problem, family: Family, cfg: RunConfig, write: bool, start: dict | None,
         resume_dir: Path | None) -> Result:
    """The pipeline: build, draw, score, train, score, write. Every check comes before the run directory
    is made; a failure after that leaves it marked failed (`kinn.run.rundir.RunDirectory`)."""
    form, tc = problem.form(cfg.form), cfg.train
    device = distributed.local_device(resolve_device(tc.device))
    env = Env(device, getattr(torch, tc.dtype), distributed.setup(tc.dist_timeout, device), tc.seed)
    family.check(problem, cfg.form, family.config(cfg.model), tc)
    adaptive.check(form, problem, family, cfg)
    weighting.check(form, problem, family, cfg)
    run_dir = (resume_dir or run_dir_for(cfg)) if write and env.group.main else None
    if run_dir is not None and resume_dir is None:
        rundir.check_writable(run_dir)  # before any work, not after it
    torch.manual_seed(tc.seed)  # the same initial parameters on every rank
    try:
        with family.precision(env.dtype):
            model = form.build(problem, family, cfg).to(device=env.device, dtype=env.dtype)
        data = form.data(problem, model, cfg, env, start)
        scorer = form.scorer(problem, model, cfg, env, data)
    except MemoryError:
        raise KinnError(f"out of memory setting up the run (points: {dataclasses.asdict(cfg.points)}); "
                        "lower the point counts") from None
    if start is not None:
        _restore(model, start, resume_dir)
        torch.set_rng_state(start["rng"]["torch"])
        np.random.set_state(start["rng"]["numpy"])
    weights = term_weights(form, tc)
    # the problem's own recommendations may name a term one of its forms lacks (bc with a hard condition)
    recommended = _recommended(problem, family, cfg.family, cfg.form)["train"].get("weights", {})
    given = [k for k, w in tc.weights.items() if recommended.get(k) != w]
    _probe(lambda w: form.loss(model, problem, data.batch, w), data, form, weights, given)
    adapted = weighting.weighting(form, problem, model, cfg, data, weights)
    with interrupts.held(), rundir.RunDirectory(run_dir, to_toml(cfg), start is not None) as directory:
        t0, before = time.perf_counter(), start.get("wall_time", 0.0) if start is not None else 0.0
        run = Run(model, lambda: form.loss(model, problem, adapted.batch(data.batch), weights), scorer.during, data,
                  cfg, weights, model.hooks(family, family.config(cfg.model)),
                  _checkpointer(directory, model, data, t0, before), start["trainer"] if start is not None else None,
                  env.group, problem, form, adapted)
        if family.trainer is None:
            history = fit(run)
        else:  # a foreign loop does not hold signals: it may be stopped anywhere
            with interrupts.interruptible():
                history = family.trainer(run)
        errors, residual = scorer.final()
        result = Result(problem, family, cfg, model, history, errors, residual, run_dir,
                        before + time.perf_counter() - t0, data.batch, scorer.eval_points, dict(scorer.checks),
                        problem.reference_label())
        if run_dir is not None:
            scorer.write(result)
        history.signal = history.signal or interrupts.take()  # a signal during the final writes
    return result


def _restore(model, start: dict, run_dir: Path) -> None:
    """A checkpoint's parameters into a freshly built model."""
    try:
        model.load_state_dict(start["model"])
    except (RuntimeError, KeyError) as e:
        first = str(e).strip().splitlines()[-1].strip() if str(e).strip() else type(e).__name__
        raise KinnError(f"{run_dir / 'model.pt'} does not fit the network its config.toml describes ({first}); "
                        "was config.toml edited?") from None


def _probe(loss, data, form: Form, weights: dict, given: list) -> None:
    """Refuse, before the run directory is made, what would only fail in training: an empty point set,
    a weight the user `given` naming no loss term, a loss already non-finite before the first step (NaN data)."""
    for name, t in data.batch.items():
        if isinstance(t, torch.Tensor) and t.ndim and t.shape[0] == 0:
            raise KinnError(f"the training point set '{name}' is empty: points.n_interior, n_boundary and "
                            "n_initial must give every set at least one point")
    terms = loss({k: 1.0 for k in weights})  # every term, also those of weight 0
    names = set(terms) | set(form.weights())
    known = names | {n.split(":")[0] for n in names}
    unknown = sorted(k for k in given if k not in known)
    if unknown:
        raise KinnError(f"train.weights names no loss term: {', '.join(unknown)}; allowed: "
                        f"{', '.join(sorted(known))} (a term or the prefix before its ':')")
    bad = {k: float(v.detach()) for k, v in terms.items()
           if weights.get(k, weights.get(k.split(':')[0], 1.0)) and not torch.isfinite(v.detach()).all()}
    if bad:
        raise KinnError("the loss is non-finite before training (" + ", ".join(f"{k}={v:.3g}" for k, v in bad.items())
                        + "): check the problem's data and its point sets")


def _checkpointer(directory: rundir.RunDirectory, model, data, t0: float, before: float):
    """The trainer's checkpoint callback: model, trainer state, the data's counters, the RNG states (as
    of the trainer's last commit) and the wall time so far, written atomically to model.pt (nothing
    without a run directory)."""

    def checkpoint(trainer_state):
        trainer_state = dict(trainer_state)  # a foreign trainer's state has no commit: take them now
        data_state = trainer_state.pop("data", None) or data.state()
        rng = trainer_state.pop("rng", None) or {"torch": torch.get_rng_state(), "numpy": np.random.get_state()}
        directory.checkpoint({"model": model.state_dict(), "trainer": trainer_state, **data_state, "rng": rng,
                              "wall_time": before + time.perf_counter() - t0})

    return checkpoint


def run_config(run_dir: Path) -> RunConfig:
    """The resolved config a run directory was made with (its config.toml)."""
    if not run_dir.is_dir():
        raise KinnError(f"{run_dir} is not a kinn run directory (not a folder)")
    if not (run_dir / "config.toml").is_file():
        raise KinnError(f"{run_dir} is not a kinn run directory (no config.toml)")
    data = read_toml(run_dir / "config.toml")
    if "problem" not in data:
        raise KinnError(f"{run_dir / 'config.toml'} names no problem: it is empty or truncated")
    return from_dict(RunConfig, data)


# what `resume` may change: the budget, the rate and the stop rules, never what the network or data are
RESUME_KEYS = ("steps", "lbfgs", "lr", "time_limit", "target_error", "checkpoint_every", "checkpoint_seconds")


def _resumable(run_dir: Path, problem, family, form, config, overrides) -> tuple[Problem, RunConfig, dict]:
    """The problem, config (with RESUME_KEYS changes) and last checkpoint of a run directory to resume."""
    given = {k: v for k, v in overrides.items() if v is not None and k != "progress"}
    if family or form or config or set(given) - set(RESUME_KEYS):
        other = [k for k, v in (("family", family), ("form", form), ("config", config)) if v]
        other += sorted(set(given) - set(RESUME_KEYS))
        raise KinnError(f"resume continues a run with its own config.toml; only {', '.join(RESUME_KEYS)} may "
                        f"change (got {', '.join(other)})")
    cfg = run_config(run_dir)
    if isinstance(problem, Problem):  # a file spec records the path: compare the problem's own name
        name, recorded = problem.name, cfg.problem.rpartition(":")[2]
    else:
        name, recorded = (registry.canonical(problem) if problem is not None else None), cfg.problem
    if name is not None and name != recorded:
        raise KinnError(f"{run_dir} is a run of problem '{cfg.problem}', not '{name}': resume it without naming "
                        "another problem")
    if not isinstance(problem, Problem):
        if not (registry.is_spec(cfg.problem) or cfg.problem in registry.problem_names()):
            raise KinnError(f"{run_dir} is a run of problem '{cfg.problem}', which is not registered: pass your "
                            "Problem (kinn.solve(problem, resume=...), kinn.load(run_dir, problem=...))")
        problem = registry.get_problem(cfg.problem)
    start = rundir.load_checkpoint(run_dir / "model.pt")
    if "trainer" not in start:
        raise KinnError(f"{run_dir / 'model.pt'} holds no trainer state to resume from")
    cfg = _changed(cfg, given, start["trainer"])
    if overrides.get("progress") is not None:
        cfg.train.progress = overrides["progress"]
    return problem, cfg, start


def _changed(cfg: RunConfig, given: dict, trainer: dict) -> RunConfig:
    """The config with a resume's changes, checked like any config; refused where they cannot apply."""
    train = from_dict(TrainConfig, {**dataclasses.asdict(cfg.train), **given}, "train.")
    if train.steps != cfg.train.steps and trainer.get("lbfgs_iters", 0):
        raise KinnError(f"the run is in its L-BFGS stage ({trainer['lbfgs_iters']} iterations done): more Adam "
                        "steps cannot follow them; give lbfgs= instead")
    if train.steps != cfg.train.steps and cfg.train.schedule == "cosine":
        raise KinnError("a cosine schedule is fixed by its steps: resume cannot change train.steps")
    return dataclasses.replace(cfg, train=train)


def load(run_dir, problem: Problem | None = None) -> Result:
    """The `Result` of a finished run directory (pass `problem` for a problem that is not registered)."""
    run_dir = Path(run_dir).resolve()
    cfg = run_config(run_dir)
    if problem is None and not (registry.is_spec(cfg.problem) or cfg.problem in registry.problem_names()):
        raise KinnError(f"{run_dir} is a run of problem '{cfg.problem}', which is not registered: pass your "
                        "Problem as kinn.load(run_dir, problem=...)")
    problem = problem or registry.get_problem(cfg.problem)
    family = registry.get_family(cfg.family)
    model = problem.form(cfg.form).build(problem, family, cfg).to(dtype=getattr(torch, cfg.train.dtype))
    _restore(model, rundir.load_checkpoint(run_dir / "model.pt"), run_dir)
    h = rundir.read_json(run_dir / "history.json")
    summary = rundir.read_json(run_dir / "result.json")
    errors = {f"{k}/{n}": e for n, v in summary["errors"].items() for k, e in v.items() if e is not None}
    return Result(problem, family, cfg, model, History(**h), errors, summary.get("residual_rms"), run_dir,
                  summary["wall_time"], checks=summary.get("checks", {}), reference=summary.get("reference"))
