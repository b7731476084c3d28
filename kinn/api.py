"""`solve` — where a problem meets a solver family — and `load`, which gives a finished run back."""
from __future__ import annotations

import dataclasses
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import distributed, evaluate, geometry, grid, io, plots, registry
from .config import PointsConfig, RunConfig, TrainConfig, from_dict, merge, read_toml, to_toml
from .errors import KinnError
from .family import Family
from .grid import GridModel
from .model import FieldModel, n_params
from .problem import Problem
from .trainer import History, fit

_TRAIN_KEYS = {f.name for f in dataclasses.fields(TrainConfig)}
_POINT_KEYS = {f.name for f in dataclasses.fields(PointsConfig)}


@dataclass
class Result:
    """A trained (or loaded) run: model, problem, config, history and held-out errors."""

    problem: Problem
    family: Family
    config: RunConfig
    model: FieldModel
    history: History
    errors: dict[str, float]
    residual_rms: float | None
    run_dir: Path | None
    wall_time: float
    points: dict | None = None        # the last training point sets {name: (N, D) tensor}
    eval_points: np.ndarray | None = None  # the held-out evaluation points (N, D)

    @property
    def n_params(self) -> int:
        return n_params(self.model)

    @property
    def dtype(self) -> torch.dtype:
        return getattr(torch, self.config.train.dtype)

    def predict(self, points) -> dict[str, np.ndarray]:
        """The trained fields at points (N, D) (physical coordinates): {field name: (N,) array}."""
        if self.config.form == "operator":
            raise KinnError("an operator run maps input functions on a grid, not points: call "
                            "result.model(inputs) with inputs of shape (B, C_in, N_1, ..., N_d)")
        x = np.asarray(points, dtype=np.float64).reshape(-1, self.problem.dim)
        device = next(self.model.buffers()).device
        pred = evaluate.predict(self.model, x, self.dtype, device)
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
            "problem": self.problem.name, "solver": self.family.name, "form": self.config.form,
            "params": self.n_params, "steps": self.history.steps, "adam_steps": self.history.adam_steps,
            "lbfgs_iters": self.history.lbfgs_iters, "wall_time": round(self.wall_time, 3),
            "train_time": round(self.history.train_time, 3), "stop_reason": self.history.stop_reason,
            "seed": self.config.train.seed, "dtype": self.config.train.dtype,
            "run_dir": str(self.run_dir) if self.run_dir else None,
            "errors": self.errors_by_field(),
            "residual_rms": self.residual_rms,
        }


def seed_stream(seed: int, purpose: str, k: int = 0) -> int:
    """Independent, reproducible numpy seeds for each point set (training draw k, evaluation)."""
    return int(np.random.SeedSequence([seed, zlib.crc32(purpose.encode()), k]).generate_state(1)[0])


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


def resolve_config(problem: Problem, solver: str | None, form: str | None, config=None, **overrides) -> RunConfig:
    """Merge dataclass defaults < problem defaults < config (file path, dict or RunConfig) < overrides."""
    if isinstance(config, RunConfig):
        config = config.to_dict()
    elif config is not None and not isinstance(config, dict):
        config = read_toml(config)
    config = dict(config or {})
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
    solver = solver or config.get("solver") or "mlp"
    form = form or config.get("form") or next(iter(problem.forms))
    d = problem.defaults
    family_defaults = registry.get_family(solver).defaults if solver in registry.family_names() else {}
    base = merge({k: dict(family_defaults.get(k, {})) for k in ("train", "points")},
                 {k: dict(d.get(k, {})) for k in ("train", "points")})
    base["model"] = dict(d.get("model", {}).get(solver, {}))
    base = merge(base, {k: v for k, v in d.get(solver, {}).items()})
    by_form = d.get(form, {})  # a form's own recommendations, shaped like the defaults, win over them
    base = merge(base, {k: dict(by_form.get(k, {})) for k in ("train", "points")})
    base = merge(base, {"model": dict(by_form.get("model", {}).get(solver, {})), **by_form.get(solver, {})})
    merged = merge(merge(base, config), nested)
    merged.update(problem=problem.name, solver=solver, form=form)
    return from_dict(RunConfig, merged)


def term_weights(form, tc: TrainConfig) -> dict[str, float]:
    """Each condition's own weight, unless the config names the term or its prefix ("bc")."""
    weights = {k: w for k, w in form.weights().items() if k not in tc.weights and k.split(":")[0] not in tc.weights}
    return {**weights, **tc.weights}


def run_dir_for(cfg: RunConfig) -> Path:
    name = cfg.name or f"{cfg.problem}-{cfg.solver}-{cfg.form}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, k = Path(cfg.out) / name, 1
    while path.exists() and not cfg.name:
        k += 1
        path = Path(cfg.out) / f"{name}-{k}"
    return path


def build_model(problem: Problem, family: Family, cfg: RunConfig, device, dtype) -> torch.nn.Module:
    """The family's network wrapped for the problem: a `FieldModel`, a `GridModel` for grid families, or a
    `PiecewiseModel` of one network per subdomain."""
    form = problem.form(cfg.form)
    options = family.config(cfg.model)
    family.check(problem, cfg.form, options)
    net = family.build(problem.dim, len(problem.fields), options)
    lo, hi = geometry.bbox(problem.domain)
    if getattr(net, "grid", False):  # a network on grids (FNO): trained on the nodes of a regular grid
        if problem.subdomains:
            raise KinnError(f"solver '{family.name}' trains on one regular grid; problem '{problem.name}' has "
                            f"subdomains ({', '.join(problem.subdomains)}), which need a network each")
        if cfg.points.sampler != "grid":
            raise KinnError(f"solver '{family.name}' trains on a regular grid: points.sampler must be 'grid', "
                            f"not '{cfg.points.sampler}'")
        shape = grid.shape_for(cfg.points.n_interior, problem.dim)
        return GridModel(net, lo, hi, shape, form.transform(problem)).to(device=device, dtype=dtype)
    if problem.subdomains:  # one network per subdomain, each initialised from its own draw
        if getattr(form, "unknowns", None):
            raise KinnError(f"problem '{problem.name}': an inverse form on subdomains is not supported")
        from .piecewise import PiecewiseModel

        nets = [net] + [family.build(problem.dim, len(problem.fields), options) for _ in problem.subdomains][1:]
        parts = {name: FieldModel(n, lo, hi, form.transform(problem), cfg.derivatives)
                 for name, n in zip(problem.subdomains, nets)}
        return PiecewiseModel(parts, problem.subdomains).to(device=device, dtype=dtype)
    model = FieldModel(net, lo, hi, form.transform(problem), cfg.derivatives)
    if getattr(form, "unknowns", None):  # an inverse form's scalars and fields train with the network
        from .forms import UnknownField

        fields = [u for u in form.unknowns if isinstance(u, UnknownField)]
        nets = {u.name: family.build(problem.dim, 1, options) for u in fields}  # same family and options
        with geometry.numpy_seed(0):  # where an unknown field is scored: the same points in every run
            points = geometry.interior(problem.domain, 4096) if fields else None
        model.add_unknowns(form.unknowns, form.observations.columns(problem), nets, points)
    return model.to(device=device, dtype=dtype)


def eval_set(problem: Problem, cfg: RunConfig) -> tuple[np.ndarray, np.ndarray]:
    """Held-out evaluation points and reference values, from a stream no training draw uses."""
    with geometry.numpy_seed(seed_stream(cfg.train.seed, "eval")):
        if problem.exact is None and problem.reference is not None:
            from .reference import load_reference

            ref = load_reference(problem.reference, problem)
            idx = np.arange(len(ref.points))
            observations = getattr(problem.form(cfg.form), "observations", None)
            if observations is not None:  # an inverse form's data nodes are training points: not scored
                seen = {tuple(p) for p in observations.load(problem)[0]}
                idx = np.array([i for i in idx if tuple(ref.points[i]) not in seen], dtype=int)
            if len(idx) > cfg.points.n_eval:
                idx = np.sort(np.random.choice(idx, cfg.points.n_eval, replace=False))
            return ref.points[idx], ref.node_values[idx]
        x = geometry.interior(problem.domain, cfg.points.n_eval)
        return x, problem.reference_values(x)


def solve(problem: str | Problem | None = None, solver: str | None = None, form: str | None = None, *,
          config=None, write: bool = True, resume=None, **overrides) -> Result:
    """Solve a problem with a solver family; return the `Result`.

    problem:   a registered name ("poisson2d") or your own `Problem`.
    solver:    a family name ("mlp", "kan"); default "mlp" or the config's.
    form:      "strong", "energy", "inverse" or "operator"; default the problem's first declared form.
    config:    a TOML path, a dict shaped like the config file, or a `RunConfig`.
    overrides: any train or points setting by name (steps=2000, lbfgs=500, dtype="float64", seed=1,
               n_interior=4000), or train={...}, points={...}, model={...}; out=, name= for the run dir.
    write:     write the run directory (config, history, fields, figures, checkpoint).
    resume:    a run directory to continue from its last checkpoint, with its own config.toml; on the
               same device and dtype the Adam stage continues exactly as if never stopped.
    """
    start = None
    if resume is not None:
        cfg, start = _resumable(Path(resume), solver, form, config, overrides)
        problem = registry.get_problem(problem or cfg.problem) if not isinstance(problem, Problem) else problem
    else:
        if problem is None:
            raise KinnError("name a problem to solve, or give resume=RUN_DIR")
        problem = registry.get_problem(problem) if isinstance(problem, str) else problem
        cfg = resolve_config(problem, solver, form, config, **overrides)
    family = registry.get_family(cfg.solver)
    form_obj = problem.form(cfg.form)
    tc = cfg.train
    device, dtype = distributed.local_device(resolve_device(tc.device)), getattr(torch, tc.dtype)
    group = distributed.setup(tc.dist_timeout, device)  # a group of one unless launched by torchrun
    write = write and group.main

    torch.manual_seed(tc.seed)  # the same initial parameters on every rank
    run_dir = (Path(resume) if resume is not None else run_dir_for(cfg)) if write else None

    def open_run():  # the run directory appears once the input has passed every check, not before
        if run_dir is not None and resume is None:
            io.write_text(run_dir / "config.toml", to_toml(cfg))

    if form_obj.kind == "operator":  # learning from a dataset of functions, not from point sets
        from . import operator

        open_run()
        return operator.solve(problem, family, cfg, device=device, dtype=dtype, group=group, run_dir=run_dir,
                              start=start)
    if cfg.points.jitter and form_obj.kind != "energy":
        raise KinnError(f"points.jitter draws the quadrature of an energy form; the {cfg.form} form has none "
                        "(fresh collocation points: train.resample_every)")
    model = build_model(problem, family, cfg, device, dtype)
    x_eval, y_eval = eval_set(problem, cfg)

    draws = [0]

    def sample():
        with geometry.numpy_seed(seed_stream(tc.seed, "train", draws[0])):
            raw = group.shard(form_obj.sample(problem, cfg.points))
        draws[0] += 1
        return {k: torch.as_tensor(v, dtype=dtype, device=device) for k, v in raw.items()}

    if start is not None:
        model.load_state_dict(start["model"])
        draws[0] = start["draws"] - 1  # redraw the point set the run was training on
        torch.set_rng_state(start["rng"]["torch"])
        np.random.set_state(start["rng"]["numpy"])
    points = sample()

    def resample():
        points.update(sample())

    gen = torch.Generator(device=device)

    def draw(step):  # points.jitter: a fresh stratified quadrature, a pure function of the step (resumable)
        points.update(form_obj.jitter(points, gen.manual_seed(seed_stream(tc.seed, "jitter", step))))

    def score(pred=None):
        pred = evaluate.predict(model, x_eval, dtype, device) if pred is None else pred
        errors = evaluate.errors(pred, y_eval, problem.fields)
        return {**errors, **model.unknown_report()} if hasattr(model, "unknown_report") else errors

    open_run()
    t0 = time.perf_counter()
    weights = term_weights(form_obj, tc)
    if hasattr(model, "parts"):  # per-subdomain hooks, each scaling its own share of the points
        hooks, hook_points = model.hooks(family, family.config(cfg.model)), lambda: points["pde"].detach()
    else:
        hooks = family.hooks(model.net, family.config(cfg.model))
        for name, net in getattr(model, "unknown_fields", {}).items():  # an unknown field's network too
            hooks.update({f"{k}:{name}": h for k, h in family.hooks(net, family.config(cfg.model)).items()})
        hook_points = lambda: model.scale(points["pde"]).detach()  # noqa: E731
    history = fit(model, lambda: form_obj.loss(model, problem, points), score, tc, weights=weights,
                  resample=resample, draw=draw if cfg.points.jitter else None,  # energy forms only (checked above)
                  hooks=hooks, hook_points=hook_points,
                  checkpoint=checkpointer(run_dir, model, draws),
                  resume=start["trainer"] if start is not None else None, group=group)
    wall = time.perf_counter() - t0

    pred = evaluate.predict(model, x_eval, dtype, device)
    errors = score(pred)
    if problem.derived and not isinstance(model, GridModel):
        errors.update(evaluate.derived_errors(problem, model, x_eval, dtype, device))
    on_grid = isinstance(model, GridModel)  # a grid model's residual: on its own nodes, in one piece
    x_res = model.nodes().cpu().numpy() if on_grid else x_eval
    residual = (evaluate.residual_norm(form_obj, model, problem, x_res, dtype, device,
                                       chunk=len(x_res) if on_grid else 8192)
                if hasattr(form_obj, "residuals") else None)
    result = Result(problem, family, cfg, model, history, errors, residual, run_dir, wall, points, x_eval)
    if run_dir is not None:
        write_run(result, x_eval, pred, y_eval)
    return result


def checkpointer(run_dir: Path | None, model, draws: list[int]):
    """The trainer's checkpoint callback: model, trainer state, the point-set (or batch) counter and the
    RNG states, written atomically to run_dir/model.pt (nothing without a run directory)."""

    def checkpoint(trainer_state):
        if run_dir is not None:
            io.save_checkpoint(run_dir / "model.pt", {"model": model.state_dict(), "trainer": trainer_state,
                                                      "draws": draws[0], "rng": {"torch": torch.get_rng_state(),
                                                                                 "numpy": np.random.get_state()}})

    return checkpoint


def run_config(run_dir: Path) -> RunConfig:
    """The resolved config a run directory was made with (its config.toml)."""
    if not (run_dir / "config.toml").exists():
        raise KinnError(f"{run_dir} is not a kinn run directory (no config.toml)")
    return from_dict(RunConfig, read_toml(run_dir / "config.toml"))


def _resumable(run_dir: Path, solver, form, config, overrides) -> tuple[RunConfig, dict]:
    """The config and last checkpoint of a run directory to resume; nothing else may be changed."""
    if solver or form or config or any(v is not None for k, v in overrides.items() if k != "progress"):
        raise KinnError("resume continues a run with its own config.toml; give no other settings")
    cfg = run_config(run_dir)
    if overrides.get("progress") is not None:
        cfg.train.progress = overrides["progress"]
    start = io.load_checkpoint(run_dir / "model.pt")
    if "trainer" not in start:
        raise KinnError(f"{run_dir / 'model.pt'} holds no trainer state to resume from")
    return cfg, start


def write_run(result: Result, x: np.ndarray, pred: np.ndarray, ref: np.ndarray) -> None:
    run_dir, problem = result.run_dir, result.problem
    io.write_json(run_dir / "history.json", dataclasses.asdict(result.history))
    io.write_fields(run_dir, x, pred, ref, problem.fields, problem.coords)
    inside = None if problem.time_dependent else (lambda c: geometry.inside(problem.domain, c))
    plots.fields(run_dir / "figures" / "fields.png", x, pred, ref, problem.fields, problem.coords, inside)
    if result.history.rows:
        plots.history(run_dir / "figures" / "history.png", result.history.rows)
    io.write_json(run_dir / "result.json", result.summary())


def load(run_dir, problem: Problem | None = None) -> Result:
    """The `Result` of a finished run directory (pass `problem` for a problem that is not registered)."""
    run_dir = Path(run_dir)
    cfg = run_config(run_dir)
    problem = problem or registry.get_problem(cfg.problem)
    family = registry.get_family(cfg.solver)
    if cfg.form == "operator":
        from . import operator

        model = operator.build(problem, family, cfg, torch.device("cpu"), getattr(torch, cfg.train.dtype))
    else:
        model = build_model(problem, family, cfg, torch.device("cpu"), getattr(torch, cfg.train.dtype))
    model.load_state_dict(io.load_checkpoint(run_dir / "model.pt")["model"])
    h = io.read_json(run_dir / "history.json")
    summary = io.read_json(run_dir / "result.json")
    errors = {f"{k}/{n}": e for n, v in summary["errors"].items() for k, e in v.items()}
    return Result(problem, family, cfg, model, History(**h), errors, summary.get("residual_rms"), run_dir,
                  summary["wall_time"])
